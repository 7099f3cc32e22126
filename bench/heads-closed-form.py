#!/usr/bin/env python3
"""Would closed-form heads pay off? Issue 16 item 6 asks for ridge (one eigendecomposition gives a free L2 sweep)
and shrinkage LDA as head types "if they pay off". This measures them where they are at their best, scikit-learn on
LAPACK, on the same embedding sets as bench/heads-vs-sklearn.ts: held-out accuracy and fit time, against the
logistic regression at its best C on val (the bar the linear head is held to).

    /usr/bin/python3 bench/heads-closed-form.py --set name=trainPrefix,valPrefix [--set ...] [--json]

Prefixes are `edgetl embed` outputs (<prefix>.npy + <prefix>.json). Needs python3-sklearn (Debian).
- ridge: StandardScaler + RidgeClassifierCV over 13 alphas (leave-one-out by the SVD: the sweep is free);
- LDA: StandardScaler + LinearDiscriminantAnalysis(solver='lsqr', shrinkage='auto') (Ledoit-Wolf);
- logistic: StandardScaler + LogisticRegression(lbfgs) at 13 Cs, the best on val (an oracle: optimistic).
"""
import argparse
import json
import platform
import time
import warnings


def load(prefix):
    import numpy as np

    x = np.load(prefix + '.npy')
    with open(prefix + '.json', encoding='utf-8') as f:
        meta = json.load(f)
    return x, [item['label'] for item in meta['items']]


def timed(fit):
    started = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--set', action='append', default=[], help='name=trainPrefix,valPrefix')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()

    import numpy as np
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    warnings.simplefilter('ignore', ConvergenceWarning)
    rows = []
    for spec in args.set:
        name, prefixes = spec.split('=', 1)
        train_prefix, val_prefix = prefixes.split(',')
        x, y = load(train_prefix)
        xv, yv = load(val_prefix)
        result = {'set': name, 'trainRows': int(x.shape[0]), 'dim': int(x.shape[1]), 'classes': len(set(y))}
        ridge, seconds = timed(
            lambda: make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 5, 13))).fit(x, y)
        )
        result['ridge'] = {
            'valAccuracy': float(ridge.score(xv, yv)),
            'fitSeconds': seconds,
            'alpha': float(ridge[-1].alpha_),
        }
        lda, seconds = timed(
            lambda: make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver='lsqr', shrinkage='auto')).fit(x, y)
        )
        result['lda'] = {'valAccuracy': float(lda.score(xv, yv)), 'fitSeconds': seconds}
        best = None
        for c in np.logspace(-4, 2, 13):
            model, seconds = timed(
                lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(x, y)
            )
            accuracy = float(model.score(xv, yv))
            if best is None or accuracy > best['valAccuracy']:
                best = {'valAccuracy': accuracy, 'C': float(c), 'fitSeconds': seconds}
        result['logisticBestC'] = best
        rows.append(result)
        if not args.json:
            print(
                f"{name}: {result['trainRows']} x {result['dim']}, {result['classes']} classes\n"
                f"  ridge (alpha {result['ridge']['alpha']:.3g}): val {result['ridge']['valAccuracy']:.4f}, "
                f"{result['ridge']['fitSeconds']:.2f} s\n"
                f"  shrinkage LDA: val {result['lda']['valAccuracy']:.4f}, {result['lda']['fitSeconds']:.2f} s\n"
                f"  logistic, best C on val ({best['C']:.3g}): val {best['valAccuracy']:.4f}, {best['fitSeconds']:.2f} s"
            )
    if args.json:
        print(json.dumps({'machine': {'python': platform.python_version(), 'processor': platform.processor()}, 'results': rows}, indent=2))


if __name__ == '__main__':
    main()
