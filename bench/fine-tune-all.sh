#!/bin/sh
# Frozen vs last-block fine-tuning on the shared datasets and backbones (bench/fine-tune.ts), one JSON line each,
# then the Markdown table (bench/fine-tune-table.mjs). Usage: bench/fine-tune-all.sh <out-dir> [extra fine-tune.ts flags]
# Needs EDGETL_MODEL_PATH (../shared/models) and the datasets under ${EDGETL_DATA_PATH:-../shared}/datasets.
set -e
out=${1:?usage: bench/fine-tune-all.sh <out-dir> [flags]}
shift
data=${EDGETL_DATA_PATH:-../shared}/datasets
mkdir -p "$out"
models=${EDGETL_MODEL_PATH:-../shared/models}
for backbone in mobilenetv2-12-int8 "$models/efficientnet-b0-imagenet.nhwc.fp32.onnx"; do
  name=$(basename "$backbone" .onnx)
  for set in hymenoptera flowers5; do
    echo "== $name $set" >&2
    node --import @tapjs/typescript/import bench/fine-tune.ts "$data/$set/train" "$data/$set/val" \
      --backbone "$backbone" --out "$out/$set-$name.head.json" --json "$@" > "$out/$set-$name.json"
  done
done
node bench/fine-tune-table.mjs "$out"/*.json
