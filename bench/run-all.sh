#!/usr/bin/env bash
# Every figure the README quotes, measured in one go on a quiet machine, into bench/results/<date>/.
# Needs ../shared (models, datasets); the scikit-learn comparison needs /usr/bin/python3 with sklearn
# (Debian: python3-sklearn) and is skipped without it.
#   bash bench/run-all.sh                  every part
#   bash bench/run-all.sh backbones heads  only those parts (backbones, embed, preprocess, budget, heads, transformersjs,
#                                          kiosk: needs chromium)
# transformersjs needs @huggingface/transformers installed outside the repo (TJS_DIR, default /tmp/tjs; see
# bench/transformersjs-compare.mjs) and is skipped without it.
set -euo pipefail
parts="${*:-backbones embed preprocess budget heads transformersjs kiosk}"
want() { [[ " $parts " == *" $1 "* ]]; }
cd "$(dirname "$0")/.."
shared="$(cd .. && pwd)/shared"
export EDGETL_MODEL_PATH="${EDGETL_MODEL_PATH:-$shared/models}" EDGETL_DATA_PATH="${EDGETL_DATA_PATH:-$shared}"
export EDGETL_CACHE_DIR="${EDGETL_CACHE_DIR:-$(mktemp -d)}"
day=$(date +%F)
out="bench/results/$day"
mkdir -p "$out"
ts=(node --import=@tapjs/typescript/import)
export TS_NODE_TRANSPILE_ONLY=1
node esbuild.config.mjs
cli=(node dist/cli.js)

if want backbones; then
echo "== backbones: x86-cpu profile three times, each pair compared, and against a plain onnxruntime loop" >&2
"${cli[@]}" bench --profile x86-cpu --out "$out/x86-cpu-a.json" --report "$out/x86-cpu-a.html" > "$out/x86-cpu-a.md"
"${cli[@]}" bench --profile x86-cpu --out "$out/x86-cpu-b.json" > "$out/x86-cpu-b.md"
"${cli[@]}" bench --profile x86-cpu --out "$out/x86-cpu-c.json" > "$out/x86-cpu-c.md"
{
  for pair in "a b" "b c" "a c"; do
    set -- $pair
    "${cli[@]}" bench compare "$out/x86-cpu-$1.json" "$out/x86-cpu-$2.json" || true
    echo
  done
} > "$out/x86-cpu-compare.md"
node bench/raw-onnxruntime-loop.mjs --from "$out/x86-cpu-a.json" --paired > "$out/x86-cpu-raw-loop.md" || true
node bench/results-table.mjs "$out/x86-cpu-a.json" --batch 1 --batch 8 > "$out/x86-cpu-table.md"
fi

if want embed; then
echo "== embedding pipeline vs ready tensors vs a naive loop" >&2
"${ts[@]}" bench/embed-throughput.ts --dir "$shared/datasets/hymenoptera/train" --workers 0,2 --decode 2,4 --repeats 3 > "$out/embed-throughput.md"

fi

if want preprocess; then
echo "== exact resize: WebAssembly vs JS port vs libvips linear (0.2 MP photos)" >&2
"${ts[@]}" bench/decode-throughput.ts "$shared/datasets/hymenoptera/train" --limit 200 --rounds 3 --tensor > "$out/decode-throughput.md"
fi

if want budget; then
echo "== CPU-ms per stage against each stage's limit" >&2
"${ts[@]}" bench/stage-budget.ts "$shared/datasets/hymenoptera/val" --limit 100 --rounds 3 --json > "$out/stage-budget.json"
fi

if want embed; then
echo "== edgetl embed of 1,000 photos: default threads against --threads 1, interleaved" >&2
photos=$(mktemp -d)
find "$shared/datasets/flowers5/val" "$shared/datasets/hymenoptera/val" -type f -iname '*.jp*g' | sort | head -1000 |
  while read -r f; do ln -s "$f" "$photos/$(basename "$(dirname "$f")")-$(basename "$f")"; done
bash bench/embed-threads.sh "$photos" 3 > "$out/embed-threads.md"
fi

if want transformersjs && [ -d "${TJS_DIR:-/tmp/tjs}/node_modules/@huggingface/transformers" ]; then
echo "== edgetl embed vs Transformers.js, whole processes, 1,000 photos" >&2
node bench/transformersjs-compare.mjs --tjs "${TJS_DIR:-/tmp/tjs}" --images "$shared/datasets/flowers5/val,$shared/datasets/hymenoptera/val" --limit 1000 --rounds 3 > "$out/embed-vs-transformersjs.json"
fi

if want heads; then
echo "== heads: accuracy against scikit-learn on the same embeddings" >&2
emb=$(mktemp -d)
for set in hymenoptera/train hymenoptera/val flowers5/train flowers5/val; do
  "${cli[@]}" embed "$shared/datasets/$set" --out "$emb/${set//\//-}" --json > /dev/null
done
{
  for ds in hymenoptera flowers5; do
    echo "### $ds (edgetl linear head, L2 chosen by 3-fold CV on train)"
    "${ts[@]}" bench/heads-accuracy.ts "$emb/$ds-train" "$emb/$ds-val"
    if /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
      echo "### $ds (scikit-learn LogisticRegression lbfgs, standardized)"
      /usr/bin/python3 bench/sklearn-compare.py "$emb/$ds-train" "$emb/$ds-val"
    fi
  done
} > "$out/heads-accuracy.md" 2>&1

if /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
  echo "== heads: whole linear training vs one scikit-learn fit, interleaved (synthetic 102- and 2-class, real sets)" >&2
  # a real 2-class set of 2,000 photos: flowers5 as daisy+dandelion+sunflower against rose+tulip
  for split in train val; do
    "${ts[@]}" bench/heads-merge-classes.ts --from "$emb/flowers5-$split" --to "$emb/flowers5-2class-$split" \
      --group daisy,dandelion,sunflower --group rose,tulip $([ $split = train ] && echo --rows 2000) > /dev/null
  done
  "${ts[@]}" bench/heads-vs-sklearn.ts --synthetic --rounds 5 \
    --set "flowers5 as 2 classes, 2000 photos=$emb/flowers5-2class-train,$emb/flowers5-2class-val" \
    --set "hymenoptera=$emb/hymenoptera-train,$emb/hymenoptera-val" --set "flowers5=$emb/flowers5-train,$emb/flowers5-val" \
    --variant 'linear head alone={"openSet":false}' --variant 'default={}' \
    --out "$out/heads-vs-sklearn.json" > "$out/heads-vs-sklearn.md" 2>&1
fi

echo "== heads: the 2-class sweep start, on every 2-class pair of flowers5" >&2
"${ts[@]}" bench/heads-pairs.ts --train "$emb/flowers5-train" --val "$emb/flowers5-val" --start 1e-2,1 > "$out/heads-pairs.md"

echo "== heads: the few-column products of the 2-class sweep, every layout" >&2
"${ts[@]}" bench/heads-gemm-shapes.ts > "$out/heads-gemm-shapes.md"

echo "== heads: training time (2000 x 1280, 100 classes) and prediction latency" >&2
{
  "${ts[@]}" bench/heads-train.ts --save "$emb/synthetic"
  if /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
    echo "### scikit-learn, one fit on the same embeddings"
    /usr/bin/python3 bench/sklearn-compare.py --synthetic "$emb/synthetic"
  fi
} > "$out/heads-train.md" 2>&1
fi

if want kiosk && [ -x "${EDGETL_CHROMIUM:-/usr/bin/chromium}" ]; then
echo "== kiosk page: main-thread ms per image, preprocessing on the page vs in the Web Worker (headless Chromium)" >&2
"${ts[@]}" bench/kiosk-main-thread.ts --rounds 8 --frames 20 --photos 30 --out "$out/kiosk-main-thread.md" > /dev/null
fi
echo "done: $out" >&2
