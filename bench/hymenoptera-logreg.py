#!/usr/bin/env python3
"""Quality bar for embeddings: a standardized logistic regression (scikit-learn, C=0.1) trained on one embedding set
and scored on another, e.g. MobileNetV2-int8 embeddings of hymenoptera train/val (issue 2 bar: val accuracy >= 0.94).

    node dist/cli.js embed ../shared/datasets/hymenoptera/train --out /tmp/hy-train
    node dist/cli.js embed ../shared/datasets/hymenoptera/val   --out /tmp/hy-val
    /usr/bin/python3 bench/hymenoptera-logreg.py /tmp/hy-train /tmp/hy-val [--json]

Needs numpy and scikit-learn (Debian: python3-sklearn for /usr/bin/python3). The embeddings are read with numpy's own
np.load, so this also checks that edgetl's .npy files are standard.
"""
import argparse
import json
import sys


def load(prefix):
    import numpy as np

    base = prefix
    for suffix in ('.npy', '.json'):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    x = np.load(base + '.npy')
    with open(base + '.json', encoding='utf-8') as f:
        meta = json.load(f)
    if x.dtype != np.float32 or x.ndim != 2:
        sys.exit(f'{base}.npy: expected float32 [N, D], got {x.dtype} {x.shape}')
    if len(meta['items']) != x.shape[0]:
        sys.exit(f'{base}.json lists {len(meta["items"])} items but {base}.npy has {x.shape[0]} rows')
    labels = [item['label'] for item in meta['items']]
    if any(label is None for label in labels):
        sys.exit(f'{base}.json: items without labels (a flat folder); this needs class folders')
    return x, labels, meta


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('train', help='embedding set prefix (train)')
    parser.add_argument('val', help='embedding set prefix (val)')
    parser.add_argument('--C', type=float, default=0.1, help='inverse regularization strength (default 0.1)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    args = parser.parse_args()
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as error:
        sys.exit(f'needs numpy and scikit-learn ({error}); on Debian: apt install python3-sklearn, run with /usr/bin/python3')

    x_train, y_train, meta_train = load(args.train)
    x_val, y_val, meta_val = load(args.val)
    if meta_train['backbone'] != meta_val['backbone']:
        sys.exit(f'train and val come from different backbones: {meta_train["backbone"]} vs {meta_val["backbone"]}')
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(C=args.C, max_iter=5000).fit(scaler.transform(x_train), y_train)
    predicted = model.predict(scaler.transform(x_val))
    y_val = np.array(y_val)
    accuracy = float((predicted == y_val).mean())
    per_class = {c: float((predicted[y_val == c] == c).mean()) for c in sorted(set(y_val.tolist()))}
    result = {
        'backbone': meta_train['backbone']['id'],
        'executionProvider': meta_train.get('executionProvider'),
        'train': int(x_train.shape[0]),
        'val': int(x_val.shape[0]),
        'dim': int(x_train.shape[1]),
        'C': args.C,
        'valAccuracy': round(accuracy, 4),
        'perClassRecall': {k: round(v, 4) for k, v in per_class.items()},
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f'{result["backbone"]} ({result["dim"]}-d): train {result["train"]}, val {result["val"]}, '
              f'LogisticRegression(C={args.C}) on standardized embeddings')
        print(f'val accuracy {accuracy:.4f}  per-class recall ' + ', '.join(f'{k} {v:.3f}' for k, v in per_class.items()))


if __name__ == '__main__':
    main()
