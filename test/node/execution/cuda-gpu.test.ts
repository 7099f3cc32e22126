// The CUDA provider on a real NVIDIA GPU: sessions open on CUDA with --strict-ep semantics, nodes land on CUDA, and
// outputs agree with the CPU provider. Skipped, with the reason, wherever CUDA is not ready (every machine without
// an NVIDIA GPU, the CUDA 13 libraries and `edgetl setup cuda`); bench/cuda-device-check.sh runs it on a GPU.
import t from 'tap';
import { createSession } from '../../../src/node/execution/session.js';
import { assessCuda, gatherHostFacts } from '../../../src/node/execution/providers.js';
import { tinyConvClassifierWithFeatures } from '../../core/models/tiny-models.js';
import onnxProto from 'onnx-proto';
import { sharedModel } from '../../helpers/shared.js';
import { cosine } from '../../helpers/vectors.js';

const cuda = assessCuda(gatherHostFacts());
const skip = cuda.ready ? false : `CUDA is not ready here: ${cuda.missing.map((m) => m.name).join(', ')}`;

/** A deterministic input in the range images have after normalization. */
function inputFor(dims: number[]): Float32Array {
  const count = dims.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37) * 1.5);
}

async function cudaVersusCpu(model: string | Uint8Array, dims: number[], outputName?: string) {
  const gpu = await createSession(model, { ep: 'cuda', strictEp: true });
  const cpu = await createSession(model, { ep: 'cpu' });
  try {
    const x = inputFor(dims);
    const a = await gpu.run(x, dims, outputName);
    const b = await cpu.run(x, dims, outputName);
    let maxAbs = 0;
    for (let i = 0; i < a.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a.data[i] - b.data[i]));
    return { provider: gpu.provider, cosine: cosine(a.data, b.data), maxAbs, dims: a.dims };
  } finally {
    await gpu.close();
    await cpu.close();
  }
}

t.test('a small conv net runs on CUDA, every node on CUDA, and matches the CPU', { skip }, async (t) => {
  const bytes = onnxProto.onnx.ModelProto.encode(tinyConvClassifierWithFeatures()).finish();
  const result = await cudaVersusCpu(bytes, [2, 3, 8, 8]);
  t.equal(result.provider.used, 'cuda');
  t.same(result.provider.fallbacks, []);
  t.ok(
    result.provider.placement?.some((p) => p.provider === 'cuda'),
    JSON.stringify(result.provider.placement),
  );
  t.ok(result.cosine >= 0.9999, `cosine ${result.cosine}`);
  t.ok(result.maxAbs < 1e-3, `max |cuda - cpu| ${result.maxAbs}`);
});

for (const [file, dims] of [
  ['efficientnet-b0-imagenet.nhwc.fp32.onnx', [2, 224, 224, 3]],
  ['mobilenetv2-12-int8.onnx', [2, 3, 224, 224]],
] as const) {
  const model = sharedModel(file);
  t.test(`${file}: CUDA output matches CPU (cosine >= 0.9999)`, { skip: skip || model.skip }, async (t) => {
    const result = await cudaVersusCpu(model.path as string, [...dims]);
    t.equal(result.provider.used, 'cuda');
    t.ok(result.cosine >= 0.9999, `cosine ${result.cosine}, max |diff| ${result.maxAbs}`);
    t.comment(
      `${file}: cosine ${result.cosine.toFixed(7)}, max |diff| ${result.maxAbs.toExponential(2)}; ${(result.provider.notes ?? []).join('; ')}`,
    );
  });
}
