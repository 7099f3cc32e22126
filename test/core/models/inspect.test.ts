import t from 'tap';
import { readFileSync } from 'node:fs';
import { inspectModel } from '../../../src/core/models/inspect.js';
import { onnx } from '../../../src/core/models/onnx-model.js';
import { INT64, model, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';
import { sharedModel } from '../../helpers/shared.js';
import { tinyQOperator, tinyQdq, tinyTorchvisionLike } from './tiny-models.js';

t.test('facts of a tiny fp32 classifier: hand-counted MACs and parameters', async (t) => {
  const facts = inspectModel(tinyTorchvisionLike());
  t.same(facts.inputs, [{ name: 'x', elementType: 'float32', dims: ['N', 3, 8, 8] }]);
  t.same(facts.outputs, [{ name: 'probs', elementType: 'float32', dims: ['N', 5] }]);
  t.equal(facts.macsPerImage, 4 * 8 * 8 * 27 + 5 * 4);
  t.equal(facts.parameterCount, 108 + 4 + 20 + 5);
  t.equal(facts.batch, 'dynamic');
  t.equal(facts.quantization, 'none');
  t.equal(facts.irVersion, 8);
  t.equal(facts.producer, 'edgetl-test');
  t.same(facts.opsets, [{ domain: 'ai.onnx', version: 13 }]);
  t.same(facts.opCounts, { Conv: 1, Relu: 1, GlobalAveragePool: 1, Flatten: 1, Gemm: 1, Softmax: 1 });
  t.same(facts.unsupportedOps, []);
  t.same(facts.embedding, { tensor: 'pooled', dim: 4, source: 'classifier-input', needsDequantize: false });
});

t.test('MACs are per image when the batch is fixed above 1, and bytes are accepted', async (t) => {
  const bytes = onnx.ModelProto.encode(tinyTorchvisionLike(4)).finish();
  const facts = inspectModel(bytes);
  t.equal(facts.batch, 4);
  t.equal(facts.macsPerImage, 6932);
});

t.test('depthwise Conv and batched MatMul MACs', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 8, 6, 6]), valueInfo('seq', ['N', 10, 32])],
    outputs: [valueInfo('dw', undefined), valueInfo('mm', undefined)],
    initializers: [tensor('w', [8, 1, 3, 3], pseudoRandom(72)), tensor('m', [32, 16], pseudoRandom(512))],
    nodes: [node('Conv', ['x', 'w'], ['dw'], { group: 8, pads: [1, 1, 1, 1] }), node('MatMul', ['seq', 'm'], ['mm'])],
  });
  // depthwise: 8*6*6 outputs * 1*3*3 = 2592; MatMul: 10*16 outputs * 32 = 5120
  t.equal(inspectModel(m).macsPerImage, 2592 + 5120);
});

t.test('a symbolic input batch pinned by Reshape constants is reported as fixed', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 4, 2, 2])],
    outputs: [valueInfo('y', undefined)],
    initializers: [tensor('shape', [2], [1, 16], INT64)],
    nodes: [node('Reshape', ['x', 'shape'], ['y'])],
  });
  t.equal(inspectModel(m).batch, 1);
});

t.test('quantization styles: QOperator and QDQ', async (t) => {
  const qop = inspectModel(tinyQOperator());
  t.equal(qop.quantization, 'qoperator');
  t.equal(qop.macsPerImage, 6912 + 20);
  t.same(qop.embedding, { tensor: 'pq', dim: 4, source: 'classifier-input', needsDequantize: true });
  const qdq = inspectModel(tinyQdq());
  t.equal(qdq.quantization, 'qdq');
  t.equal(qdq.batch, 1);
  t.equal(qdq.macsPerImage, 6912 + 20);
  t.same(qdq.embedding, { tensor: 'pooled', dim: 4, source: 'classifier-input', needsDequantize: false });
});

t.test('an explicit embedding tensor overrides discovery; a missing one is a clear error', async (t) => {
  const facts = inspectModel(tinyTorchvisionLike(), { embeddingTensor: 'relu' });
  t.same(facts.embedding, { tensor: 'relu', dim: 256, source: 'explicit', needsDequantize: false });
  t.throws(() => inspectModel(tinyTorchvisionLike(), { embeddingTensor: 'no_such_tensor', file: 'tiny.onnx' }), {
    code: 'embedding-not-found',
    message: /tiny\.onnx.*"no_such_tensor"/,
  });
  t.throws(() => inspectModel(tinyTorchvisionLike(), { embeddingTensor: 'fc_w' }), { message: /weight/ });
});

t.test('a model without a classifier or embedding-like output reports why instead of failing', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('y', undefined)],
    nodes: [node('Relu', ['x'], ['y'])],
  });
  const facts = inspectModel(m);
  t.equal(facts.embedding, null);
  t.same(facts.unsupportedOps, []);
  t.match(facts.embeddingError, /the `embeddingTensor` option/);
});

// Published references: ResNet-50 4.1 GMACs, MobileNetV2 0.30, EfficientNet-B0 0.39, MobileNetV3-L 0.22,
// ShuffleNetV2 1.0x 0.146, MobileNet V1 0.25/224 0.041.
const realModels: {
  file: string;
  gmacs: number;
  tolerance: number;
  batch: 'dynamic' | number;
  quantization: string;
}[] = [
  { file: 'arch-only/resnet50.arch-only.onnx', gmacs: 4.1, tolerance: 0.03, batch: 'dynamic', quantization: 'none' },
  { file: 'mobilenetv2-12-int8.onnx', gmacs: 0.3, tolerance: 0.05, batch: 'dynamic', quantization: 'qoperator' },
  {
    file: 'arch-only/efficientnet_b0.arch-only.onnx',
    gmacs: 0.39,
    tolerance: 0.03,
    batch: 'dynamic',
    quantization: 'none',
  },
  {
    file: 'arch-only/mobilenet_v3_large.arch-only.onnx',
    gmacs: 0.22,
    tolerance: 0.05,
    batch: 'dynamic',
    quantization: 'none',
  },
  { file: 'shufflenet-v2-12-qdq.onnx', gmacs: 0.146, tolerance: 0.03, batch: 1, quantization: 'qdq' },
  { file: 'mobilenet-v1-0.25-224.fp32.onnx', gmacs: 0.041, tolerance: 0.05, batch: 'dynamic', quantization: 'none' },
];

for (const expected of realModels) {
  const shared = sharedModel(expected.file);
  t.test(
    `${expected.file}: ~${expected.gmacs} GMACs per image (±${expected.tolerance * 100}%), batch ${expected.batch}, ${expected.quantization}`,
    { skip: shared.skip },
    async (t) => {
      const facts = inspectModel(readFileSync(shared.path!), { file: shared.path });
      t.ok(facts.macsPerImage !== null, 'MACs known');
      const gmacs = (facts.macsPerImage ?? 0) / 1e9;
      t.ok(Math.abs(gmacs - expected.gmacs) <= expected.gmacs * expected.tolerance, `${gmacs.toFixed(4)} GMACs`);
      t.equal(facts.batch, expected.batch);
      t.equal(facts.quantization, expected.quantization);
      t.ok(facts.parameterCount > 0);
      t.equal(facts.inputs.length, 1);
      t.same(facts.unsupportedOps, [], 'shape inference covers every op');
    },
  );
}

t.test('MACs are null, not a guess, when a Conv input shape cannot be inferred', async (t) => {
  const m = model({
    domains: { 'com.example': 1 },
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('y', undefined)],
    initializers: [tensor('w', [4, 3, 3, 3], pseudoRandom(108))],
    nodes: [node('Mystery', ['x'], ['m'], {}, 'com.example'), node('Conv', ['m', 'w'], ['y'])],
  });
  const facts = inspectModel(m);
  t.equal(facts.macsPerImage, null);
  t.same(facts.unsupportedOps, ['com.example:Mystery']);
});
