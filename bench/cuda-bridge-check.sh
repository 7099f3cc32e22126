#!/usr/bin/env bash
# Does the onnxruntime 1.29.0 CUDA provider (com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9) work inside the
# onnxruntime-node 1.30 core? onnxruntime's provider bridge checks no versions, so this loads the provider into both
# cores on a machine WITHOUT a GPU, with stand-in CUDA libraries (every function the provider imports from
# libcudart.so.13, libcublas.so.13 and libcublasLt.so.13, compiled to return success; device memory is host memory;
# kernels do nothing), creates and runs sessions, and compares everything the two cores log. Same placement and same
# log lines = the bridge (graph, kernel registry, allocators, data transfer) behaves alike; the numbers are NOT
# checked (the stand-ins compute nothing): that is what bench/cuda-device-check.sh does on a GPU.
# Needs gcc, npm (registry), ../shared/models. Writes into a temp folder; prints the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
models="${EDGETL_MODEL_PATH:-$(cd .. && pwd)/shared/models}"
w="$(mktemp -d)"
trap 'rm -rf "$w"' EXIT
cd "$w"
npm pack com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 onnxruntime-node@1.29.0 onnxruntime-common@1.29.0 onnxruntime-node@1.30.0 onnxruntime-common@1.30.0 --silent >/dev/null
mkdir gpu && tar -xzf com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz -C gpu
provider=gpu/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so
for v in 1.29.0 1.30.0; do
  mkdir -p "core-$v/node_modules" && for p in onnxruntime-node onnxruntime-common; do
    mkdir -p "x" && tar -xzf "$p-$v.tgz" -C x && mv x/package "core-$v/node_modules/$p" && rmdir x
  done
  cp gpu/package/Plugins/Linux/x64/libonnxruntime_providers_{cuda,shared}.so "core-$v/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
done

mkdir stubs
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
  {
    echo '#include <stddef.h>'; echo '#include <stdlib.h>'; echo '#include <string.h>'
    echo 'static const char msg[] = "stand-in CUDA library"; static char handle[4096];'
    for s in $(readelf --dyn-syms -W "$provider" | awk '$7=="UND"{print $8}' | grep "@$lib" | sed 's/@.*//' | sort -u); do
      case $s in
        cudaGetErrorString|cudaGetErrorName|cublasGetStatusName|cublasGetStatusString) echo "const char* $s(int e){(void)e;return msg;}";;
        cudaGetDeviceCount) echo "int $s(int* c){*c=1;return 0;}";;
        cudaGetDevice) echo "int $s(int* d){*d=0;return 0;}";;
        cudaDriverGetVersion|cudaRuntimeGetVersion) echo "int $s(int* v){*v=13000;return 0;}";;
        cudaMalloc|cudaMallocHost) echo "int $s(void** p,size_t n){*p=calloc(1,n?n:1);return 0;}";;
        cudaHostAlloc) echo "int $s(void** p,size_t n,unsigned f){(void)f;*p=calloc(1,n?n:1);return 0;}";;
        cudaMemcpy) echo "int $s(void* d,const void* s,size_t n,int k){(void)k;memcpy(d,s,n);return 0;}";;
        cudaMemcpyAsync) echo "int $s(void* d,const void* s,size_t n,int k,void* t){(void)k;(void)t;memcpy(d,s,n);return 0;}";;
        cudaMemset) echo "int $s(void* d,int v,size_t n){memset(d,v,n);return 0;}";;
        cudaMemsetAsync) echo "int $s(void* d,int v,size_t n,void* t){(void)t;memset(d,v,n);return 0;}";;
        cudaMemGetInfo) echo "int $s(size_t* f,size_t* t){*f=1ull<<34;*t=1ull<<35;return 0;}";;
        cudaGetDeviceProperties) echo "int $s(void* p,int d){(void)d;memset(p,0,1008);return 0;}";;
        cudaDeviceGetAttribute) echo "int $s(int* v,int a,int d){(void)a;(void)d;*v=8;return 0;}";;
        cudaStreamCreate|cudaEventCreate|cublasCreate_v2|cublasLtCreate) echo "int $s(void** h){*h=handle;return 0;}";;
        cudaStreamCreateWithFlags|cudaEventCreateWithFlags) echo "int $s(void** h,unsigned f){(void)f;*h=handle;return 0;}";;
        __cudaRegisterFatBinary) echo "void** $s(void* f){(void)f;return (void**)handle;}";;
        *) echo "int $s(void){return 0;}";;
      esac
    done
  } > "stubs/$lib.c"
  echo "$lib { global: *; };" > "stubs/$lib.map"
  gcc -shared -fPIC -o "stubs/$lib" "stubs/$lib.c" -Wl,--version-script="stubs/$lib.map" -Wl,-soname,"$lib"
done
for lib in libcurand.so.10 libcuda.so.1; do
  echo "int edgetl_stand_in(void){return 0;}" > "stubs/$lib.c"; echo "$lib { global: *; };" > "stubs/$lib.map"
  gcc -shared -fPIC -o "stubs/$lib" "stubs/$lib.c" -Wl,--version-script="stubs/$lib.map" -Wl,-soname,"$lib"
done

cat > run.cjs <<'EOF'
const ort = require(process.argv[2] + '/node_modules/onnxruntime-node');
(async () => {
  try {
    const s = await ort.InferenceSession.create(process.argv[3], { executionProviders: [{ name: 'cuda', deviceId: 0 }], logSeverityLevel: 0 });
    const dims = s.inputMetadata[0].shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims) });
    console.log('RAN', JSON.stringify(out[s.outputNames[0]].dims));
  } catch (e) { console.log('ERROR', e.message.split('\n')[0].slice(0, 300)); }
})();
EOF
status=0
for m in efficientnet-b0-imagenet.nhwc.fp32.onnx mobilenetv2-12-int8.onnx mobilenet-v1-0.25-224.fp32.onnx; do
  [ -f "$models/$m" ] || { echo "$m: not in $models, skipped"; continue; }
  for v in 1.29.0 1.30.0; do
    LD_LIBRARY_PATH="$w/stubs" node run.cjs "$w/core-$v" "$models/$m" > "log-$v" 2>&1 || true
    sed -E 's/^(\x1b\[[0-9;]*m)?[0-9-]+ [0-9:.]+ //; s/\.cc:[0-9]+/.cc/g; s/\x1b\[[0-9;]*m//g' "log-$v" > "norm-$v"
  done
  placed=$(grep -hoE '(All nodes|Node\(s\)) placed on \[[A-Za-z]+\]\. Number of nodes: [0-9]+' norm-1.30.0 | tr '\n' ';')
  if diff -q norm-1.29.0 norm-1.30.0 >/dev/null; then
    echo "$m: the 1.29.0 and 1.30.0 cores log the same $(wc -l < norm-1.30.0) lines; $placed $(grep -hE '^(RAN|ERROR)' norm-1.30.0)"
  else
    status=1
    echo "$m: the cores differ:"; diff norm-1.29.0 norm-1.30.0 | head -20
  fi
done
exit $status
