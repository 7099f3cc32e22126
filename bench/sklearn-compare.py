#!/usr/bin/env python3
"""scikit-learn reference for edgetl's heads on the same embeddings (issue 3 bars).

Accuracy: LogisticRegression(lbfgs) on StandardScaler features, trained on one embedding set, scored on another,
for a log-spaced sweep of C; reports the best C on val (an oracle: edgetl's head must match it while choosing its
L2 strength by cross-validation on train only), the default C=1, and the time of one fit.

    node dist/cli.js embed ../shared/datasets/hymenoptera/train --out /tmp/hy-train   (and val, flowers5)
    /usr/bin/python3 bench/sklearn-compare.py /tmp/hy-train /tmp/hy-val [--json]
    node --loader ts-node/esm bench/heads-accuracy.ts /tmp/hy-train /tmp/hy-val        (edgetl's side)

Speed: with --synthetic ROWS,DIM,CLASSES it times one fit (C=1, max_iter=100, sklearn's defaults) on the embeddings
written by `bench/heads-train.ts --save <prefix>` (pass the prefix as train): the bar edgetl's whole CV sweep must beat.

    node --loader ts-node/esm bench/heads-train.ts --save /tmp/syn && /usr/bin/python3 bench/sklearn-compare.py --synthetic /tmp/syn

Needs numpy and scikit-learn (Debian: python3-sklearn for /usr/bin/python3).
"""
import argparse
import json
import sys
import time


def load(prefix):
    import numpy as np

    for suffix in ('.npy', '.json'):
        if prefix.endswith(suffix):
            prefix = prefix[: -len(suffix)]
    x = np.load(prefix + '.npy')
    with open(prefix + '.json', encoding='utf-8') as f:
        meta = json.load(f)
    labels = [item['label'] for item in meta['items']]
    if any(label is None for label in labels):
        sys.exit(f'{prefix}.json: items without labels (a flat folder); this needs class folders')
    return x, labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('train', nargs='?', help='embedding set prefix (train)')
    parser.add_argument('val', nargs='?', help='embedding set prefix (val)')
    parser.add_argument('--synthetic', help='prefix written by bench/heads-train.ts --save: time one fit')
    parser.add_argument('--time-fit', help='embedding set prefix: time one fit (C=1, max_iter=100) on it, --repeat times')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if args.synthetic:
        x = np.load(args.synthetic + '.npy')
        with open(args.synthetic + '.labels.json', encoding='utf-8') as f:
            y = json.load(f)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=100)).fit(x, y)
            times.append(time.perf_counter() - started)
        result = {'rows': int(x.shape[0]), 'dim': int(x.shape[1]), 'classes': len(set(y)), 'fitSecondsMedian': sorted(times)[1], 'fitSeconds': times}
        print(json.dumps(result) if args.json else f"sklearn lbfgs fit (C=1, max_iter=100) on {x.shape[0]}x{x.shape[1]}, {len(set(y))} classes: {sorted(times)[1]:.2f} s (median of 3: {', '.join(f'{t:.2f}' for t in times)})")
        return

    if args.time_fit:
        x, y = load(args.time_fit)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=100)).fit(x, y)
            times.append(time.perf_counter() - started)
        result = {'train': args.time_fit, 'rows': int(x.shape[0]), 'dim': int(x.shape[1]), 'classes': len(set(y)), 'fitSeconds': times}
        print(json.dumps(result) if args.json else f"sklearn lbfgs fit (C=1, max_iter=100) on {args.time_fit}: {', '.join(f'{t:.2f}' for t in times)} s")
        return

    if not args.train or not args.val:
        parser.error('give train and val prefixes, or --synthetic')
    x_train, y_train = load(args.train)
    x_val, y_val = load(args.val)
    sweep = []
    for c in [10.0 ** e for e in np.arange(-4, 2.01, 0.5)]:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        started = time.perf_counter()
        model.fit(x_train, y_train)
        seconds = time.perf_counter() - started
        sweep.append({'C': float(c), 'valAccuracy': float(model.score(x_val, y_val)), 'fitSeconds': seconds})
    best = max(sweep, key=lambda s: s['valAccuracy'])
    default = min(sweep, key=lambda s: abs(np.log10(s['C'])))
    result = {'train': args.train, 'val': args.val, 'bestC': best['C'], 'bestValAccuracy': best['valAccuracy'], 'defaultCValAccuracy': default['valAccuracy'], 'sweep': sweep}
    if args.json:
        print(json.dumps(result))
    else:
        print(f'{args.train} -> {args.val}: best C {best["C"]:.4g} val accuracy {best["valAccuracy"]:.4f}; C=1 {default["valAccuracy"]:.4f}')
        for s in sweep:
            print(f'  C {s["C"]:<10.4g} val accuracy {s["valAccuracy"]:.4f}  fit {s["fitSeconds"]:.2f} s')


if __name__ == '__main__':
    main()
