#!/usr/bin/env bash
# The CUDA check on a real NVIDIA GPU, in one short run (about 8 minutes at most; give the device call a timeout of
# 560 s so a rerun still fits the session's device time). Prepared by bench/cuda-device-pack.sh, which also prints
# the device calls that carry the parts (the last one runs this). Steps, each time-boxed and logged; a failing step
# is recorded and the next one still runs:
#   1. gather the parts (sha256-checked): node_modules, node, dist, models, images, the CUDA package tarball
#   2. host facts: GPU, driver, CPU, OS, Node, where the CUDA/cuDNN libraries are
#   3. edgetl setup cuda --check before anything (what detection says of a bare GPU machine)
#   4. edgetl setup cuda --from <the registry tarball>: the opt-in install itself, with the libraries not yet on the
#      loader path (so its report names them), then again with LD_LIBRARY_PATH pointing at them
#   5. the test suite's CUDA tests (test/node/execution/cuda-gpu.test.ts, cuda-detection, session)
#   6. edgetl embed --ep cuda --strict-ep vs --ep cpu on EfficientNet-B0 (fp32) and MobileNetV2-int8, the cosine of
#      every image's embedding (bench/cuda-embed-compare.mjs) and where onnxruntime put the nodes
#   7. edgetl bench --profile nvidia-cuda (shortened by overrides that the results list), with host facts
# What comes back in $OUT (at most 8 files): cuda-device-check.log, cuda-device-results.tar.gz (facts, setup and
# check JSON, tap output, embedding comparison), nvidia-cuda.json, nvidia-cuda.md, nvidia-cuda.html.
# BENCH_LIMIT_S (default 230) bounds the bench step; it is stopped with SIGINT, so what it measured is still written.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
OUT="${OUT:-/tmp/edgetl-cuda-out}"
stage="${EDGETL_DEV_STAGE:-/tmp/edgetl-dev}"
res="$stage/results"
mkdir -p "$OUT" "$res" "$stage/bin"
exec > >(tee -a "$OUT/cuda-device-check.log") 2>&1
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 ))s] $*" >&2; }
# step NAME SECONDS COMMAND...: run with a time limit (SIGINT first, so edgetl writes what it has), record the outcome.
step() {
  local name="$1" limit="$2"; shift 2
  say "== $name (limit ${limit}s)"
  local s=$(date +%s)
  timeout -s INT -k 10 "$limit" "$@"
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - s ))" >> "$res/steps.tsv"
  say "   $name: exit $rc"
  return 0
}
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" > "$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; fi; }

gather() {
  [ -f "$stage/SHA256SUMS" ] && return 0
  cat "$stage"/parts/payload.* | tar -xf - -C "$stage" || return 1
  (cd "$stage" && sha256sum -c SHA256SUMS) || return 1
  tar -xf "$stage/dist.tar" -C "$repo"
  if [ -L node_modules ] || [ ! -d node_modules/onnxruntime-node ]; then
    rm -rf node_modules && mkdir node_modules
    unxz_to "$stage/node_modules.tar.xz" "$stage/node_modules.tar" && tar -xf "$stage/node_modules.tar" -C node_modules && rm "$stage/node_modules.tar"
  fi
  if ! command -v node >/dev/null; then unxz_to "$stage/node.xz" "$stage/bin/node" && chmod +x "$stage/bin/node"; fi
  unxz_to "$stage/assets.tar.xz" "$stage/assets.tar" && tar -xf "$stage/assets.tar" -C "$stage" && rm "$stage/assets.tar"
}
step gather 120 bash -c "$(declare -f unxz_to gather); stage='$stage' repo='$repo'; gather"
command -v node >/dev/null || export PATH="$stage/bin:$PATH"
export EDGETL_MODEL_PATH="$stage/models" EDGETL_DATA_PATH="$stage/data" EDGETL_CACHE_DIR="$stage/cache"
cli=(node dist/cli.js)
tgz="$stage/com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz"

# Where the CUDA 13 / cuDNN 9 libraries are on this machine (the loader's cache, CUDA folders, Python wheels).
find_lib_dirs() {
  local dirs=() so d
  local py_sites
  py_sites=$(python3 -c 'import site,sys; print("\n".join(site.getsitepackages()))' 2>/dev/null)
  for so in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9; do
    d=$(ldconfig -p 2>/dev/null | awk -v s="$so" '$1==s && /x86-64/ {print $NF; exit}')
    [ -n "$d" ] && continue
    d=$( { ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu 2>/dev/null; for p in $py_sites; do ls -d "$p"/nvidia/*/lib 2>/dev/null; done; } \
      | while read -r dir; do [ -e "$dir/$so" ] && { echo "$dir"; break; }; done)
    [ -n "$d" ] && dirs+=("$d")
  done
  printf '%s\n' "${dirs[@]}" | awk 'NF && !seen[$0]++' | paste -sd: -
}

facts() {
  echo "date: $(date -u +%FT%TZ)"; uname -a; echo
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1; echo
  nvidia-smi 2>&1 | head -15; echo
  cat /proc/driver/nvidia/version 2>&1; echo
  lscpu 2>/dev/null | grep -E 'Model name|^CPU\(s\)|Thread|Socket'; free -g | head -2; echo
  echo "node $(node --version)"; node -e 'const o=require("./node_modules/onnxruntime-node");console.log("onnxruntime-node", o.env.versions)'
  echo; echo "ldconfig -p (CUDA stack):"; ldconfig -p 2>/dev/null | grep -E 'libcu|libcudnn|libnv' | head -40
  echo; echo "CUDA library folders found (for LD_LIBRARY_PATH): $(find_lib_dirs)"
}
step facts 30 bash -c "$(declare -f facts find_lib_dirs); facts" > "$res/host-facts.txt"
cat "$res/host-facts.txt"

step check-bare 30 "${cli[@]}" setup cuda --check --json > "$res/check-0-bare.json"
step setup-no-lib-path 90 "${cli[@]}" setup cuda --from "$tgz" --json > "$res/setup-1-no-lib-path.json"
libdirs=$(find_lib_dirs)
say "LD_LIBRARY_PATH += $libdirs"
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step setup 90 "${cli[@]}" setup cuda --from "$tgz" --json > "$res/setup-2.json"
step check-ready 60 "${cli[@]}" setup cuda --check > "$res/check-2-ready.txt"
cat "$res/check-2-ready.txt"

step tests 150 node node_modules/.bin/tap --reporter=tap --timeout 140 \
  test/node/execution/cuda-gpu.test.ts test/node/execution/cuda-detection.test.ts test/node/execution/session.test.ts > "$res/tap.txt"
grep -E '^# |^not ok|^ok' "$res/tap.txt" | tail -20

images="$stage/data/datasets/flowers5/val"
for b in efficientnet-b0-imagenet.nhwc.fp32.onnx mobilenetv2-12-int8; do
  ref="$b"; [ "${b%.onnx}" != "$b" ] && ref="$stage/models/$b"
  for ep in cuda cpu; do
    extra=(); [ "$ep" = cuda ] && extra=(--strict-ep)
    step "embed-$b-$ep" 90 "${cli[@]}" embed "$images" --out "$stage/emb-$b-$ep" --backbone "$ref" --ep "$ep" "${extra[@]}" --no-cache --json > "$res/embed-$b-$ep.json"
  done
  step "compare-$b" 30 node bench/cuda-embed-compare.mjs "$stage/emb-$b-cuda.npy" "$stage/emb-$b-cpu.npy" --min-cosine 0.9999 \
    --label "$b" --embed-json "$res/embed-$b-cuda.json" > "$res/compare-$b.json"
  cat "$res/compare-$b.json"
done

step bench "${BENCH_LIMIT_S:-230}" "${cli[@]}" bench --profile nvidia-cuda --warmup 5 --min-runs 20 --min-duration-ms 1500 \
  --out "$OUT/nvidia-cuda.json" --report "$OUT/nvidia-cuda.html" > "$OUT/nvidia-cuda.md"
head -60 "$OUT/nvidia-cuda.md"

cp "$res/steps.tsv" "$res/steps.txt" 2>/dev/null
tar -czf "$OUT/cuda-device-results.tar.gz" -C "$stage" results
say "done: $(awk -F'\t' '$2!=0{printf "%s(rc %s) ", $1, $2}' "$res/steps.tsv")"
say "steps that failed are listed above (none: all passed). Results in \$OUT: $(ls "$OUT" | tr '\n' ' ')"
