#!/usr/bin/env bash
# Prepares the CUDA device check (bench/cuda-device-check.sh) for a session that has the GPU machine: that machine
# reaches no registry, has no Node.js of its own as far as is known, and takes at most 64 MiB of carried files per
# call, while the CUDA provider package alone is 179 MB. So everything it needs is packed here into parts of at most
# $PART_MB MiB under .devcarry/ (ignored by git), carried one part per device call, and gathered there in
# /tmp/edgetl-dev by each call; the last call runs the check. Run on the dev machine (npm registry reachable):
#
#   bash bench/cuda-device-pack.sh          # prints the device calls to make, in order, back to back
#
# What it packs: the npm tarball of com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (split; its sha512 checked there
# against the registry's), node_modules without other platforms' binaries, the node binary, the built dist/, the
# models the check and the nvidia-cuda profile use (EfficientNet-B0 fp32, MobileNetV2-int8, the three arch-only
# graphs) and datasets/flowers5/val. Needs ../shared (or EDGETL_MODEL_PATH / EDGETL_DATA_PATH), xz, split, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."
PART_MB="${PART_MB:-58}"
shared="$(cd .. && pwd)/shared"
models="${EDGETL_MODEL_PATH:-$shared/models}"
data="${EDGETL_DATA_PATH:-$shared}"
spec='com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9'
tgz_name='com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz'
cache="${EDGETL_CACHE_DIR:-$HOME/.cache/edgetl}/cuda"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.devcarry/' "$exclude" 2>/dev/null || echo '/.devcarry/' >> "$exclude"
rm -rf .devcarry && mkdir -p .devcarry

echo "== build" >&2
node esbuild.config.mjs
tar -cf "$work/dist.tar" dist

echo "== the CUDA package ($spec)" >&2
mkdir -p "$cache"
if [ ! -f "$cache/$tgz_name" ]; then npm pack "$spec" --pack-destination "$cache" --silent >/dev/null; fi
cp "$cache/$tgz_name" "$work/$tgz_name"

echo "== node_modules (linux/x64 only) and node" >&2
tar -C node_modules/ -cf - \
  --exclude='onnxruntime-node/bin/napi-v6/darwin' --exclude='onnxruntime-node/bin/napi-v6/win32' \
  --exclude='onnxruntime-node/bin/napi-v6/linux/arm64' --exclude='./onnxruntime-web' --exclude='./playwright-core' \
  --exclude='./@typescript' --exclude='./@esbuild' --exclude='./esbuild' --exclude='./.cache' . \
  | xz -T2 -3 > "$work/node_modules.tar.xz"
xz -T2 -3 -c "$(command -v node)" > "$work/node.xz"

echo "== models and images" >&2
mkdir -p "$work/models/arch-only" "$work/data/datasets/flowers5"
for f in efficientnet-b0-imagenet.nhwc.fp32.onnx efficientnet-b0-imagenet.nhwc.fp32.edgetl.json mobilenetv2-12-int8.onnx; do cp "$models/$f" "$work/models/"; done
for f in resnet50 efficientnet_b0 mobilenet_v3_large; do cp "$models/arch-only/$f.arch-only.onnx" "$work/models/arch-only/"; done
cp -r "$data/datasets/flowers5/val" "$work/data/datasets/flowers5/val"
tar -C "$work" -cf - models data | xz -T2 -3 > "$work/assets.tar.xz"

# One stream of everything, cut into parts: the device side concatenates them and checks each piece's sha256.
(cd "$work" && sha256sum "$tgz_name" dist.tar node_modules.tar.xz node.xz assets.tar.xz > SHA256SUMS)
(cd "$work" && tar -cf - SHA256SUMS dist.tar node_modules.tar.xz node.xz assets.tar.xz "$tgz_name") \
  | split -b "${PART_MB}M" -d -a 2 - "$work/payload."
n=0
for piece in "$work"/payload.*; do
  n=$((n + 1))
  mkdir -p ".devcarry/part$n"
  mv "$piece" ".devcarry/part$n/"
done
du -sh .devcarry/part* >&2
tree_mb=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | awk '{printf "%d", $1/1048576}')
echo "working tree travels too: about ${tree_mb} MiB per call (each call must stay under 64 MiB)" >&2

cat <<EOF

Device calls (run tool), one right after the other: the machine stays warm about 30 s between calls, and a cold
one starts bare (then begin again at call 1). Each gathers its part into /tmp/edgetl-dev on the device.
EOF
for i in $(seq 1 "$n"); do
  if [ "$i" -lt "$n" ]; then
    echo "  $i. carry [\".devcarry/part$i\"], timeout_s 120, command:"
    echo "     mkdir -p /tmp/edgetl-dev/parts && cp .devcarry/part$i/* /tmp/edgetl-dev/parts/ && ls /tmp/edgetl-dev/parts && nvidia-smi -L; command -v node || echo no node"
  else
    echo "  $i. carry [\".devcarry/part$i\"], timeout_s 560, command:"
    echo "     mkdir -p /tmp/edgetl-dev/parts && cp .devcarry/part$i/* /tmp/edgetl-dev/parts/ && bash bench/cuda-device-check.sh"
  fi
done
echo "Then copy the files that came back into bench/results/<date>-nvidia-cuda/ and commit them (see the check's summary)."
