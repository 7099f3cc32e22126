import t from 'tap';
import { readFileSync } from 'node:fs';
import { findEmbedding } from '../../../src/core/models/embedding.js';
import { parseOnnxModel } from '../../../src/core/models/onnx-model.js';
import { findCatalogEntryBySha256 } from '../../../src/core/models/catalog.js';
import { sha256Bytes } from '../../../src/node/util/sha256.js';
import { UINT8, model, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';
import { sharedModel } from '../../helpers/shared.js';
import {
  tinyConvClassifierWithFeatures,
  tinyQOperator,
  tinyQdq,
  tinyTorchvisionLike,
  tinyTwoGemmHead,
} from './tiny-models.js';

t.test('torchvision style: the pooled tensor behind Flatten -> Gemm', async (t) => {
  const e = findEmbedding(tinyTorchvisionLike());
  t.match(e, { tensor: 'pooled', dim: 4, source: 'classifier-input', needsDequantize: false, batchDim: 'N' });
  t.match(e.classifier, { opType: 'Gemm', input: 'flat', weight: 'fc_w', output: 'probs' });
});

t.test('two Gemms in the head: the input of the LAST one', async (t) => {
  const e = findEmbedding(tinyTwoGemmHead());
  t.match(e, { tensor: 'g1_act', dim: 6, source: 'classifier-input' });
  t.equal(e.classifier?.weight, 'g2_w');
});

t.test('1x1 Conv classifier over a 1x1 map; an existing features output is preferred', async (t) => {
  const e = findEmbedding(tinyConvClassifierWithFeatures());
  t.match(e, { tensor: 'features', dim: 4, source: 'output' });
  t.match(e.classifier, { opType: 'Conv', input: 'gap' });
});

t.test('a 1x1 Conv over a larger map is not a classifier', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('y', ['N', 5, 8, 8])],
    initializers: [tensor('w', [5, 3, 1, 1], pseudoRandom(15))],
    nodes: [node('Conv', ['x', 'w'], ['y'])],
  });
  t.throws(() => findEmbedding(m, { file: 'segmenter.onnx' }), {
    code: 'embedding-not-found',
    message: /segmenter\.onnx.*the `embeddingTensor` option/,
  });
});

t.test('QOperator int8: the quantized pooled tensor, with the scale/zero-point of the op that made it', async (t) => {
  const e = findEmbedding(tinyQOperator());
  t.match(e, { tensor: 'pq', dim: 4, source: 'classifier-input', needsDequantize: true, batchDim: 'batch' });
  t.same(e.quantization, { scale: 'p_s', zeroPoint: 'p_z' });
  t.equal(e.classifier?.opType, 'QLinearMatMul');
});

t.test('QDQ: the float tensor before the QuantizeLinear -> DequantizeLinear pair feeding MatMul', async (t) => {
  const e = findEmbedding(tinyQdq());
  t.match(e, { tensor: 'pooled', dim: 4, source: 'classifier-input', needsDequantize: false, batchDim: 1 });
  t.equal(e.classifier?.weight, 'fc');
});

t.test('a graph that is already a feature extractor: its single [N, D] output', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('pooled', undefined)],
    nodes: [node('Relu', ['x'], ['r']), node('GlobalAveragePool', ['r'], ['pooled'])],
  });
  t.match(findEmbedding(m), { tensor: 'pooled', dim: 3, source: 'output' });
});

t.test('explicit tensors: flattened size, quantized ones find their scale, bad names are clear errors', async (t) => {
  t.match(findEmbedding(tinyTorchvisionLike(), { embeddingTensor: 'conv' }), {
    tensor: 'conv',
    dim: 256,
    source: 'explicit',
  });
  const q = findEmbedding(tinyQOperator(), { embeddingTensor: 'cq' });
  t.match(q, { dim: 256, needsDequantize: true, quantization: { scale: 'c_s', zeroPoint: 'c_z' } });
  t.throws(() => findEmbedding(tinyTorchvisionLike(), { embeddingTensor: 'typo', file: 'm.onnx' }), {
    code: 'embedding-not-found',
    message: /m\.onnx: there is no tensor "typo"/,
  });
});

// What discovery must find in the shared models (MODELS.md); for those the product catalog lists, it must agree.
const expectations: {
  file: string;
  tensor: string;
  dim: number;
  source: string;
  needsDequantize: boolean;
  classifier?: string;
  inCatalog?: true;
}[] = [
  {
    file: 'mobilenetv2-12-int8.onnx',
    tensor: '464_quantized',
    dim: 1280,
    source: 'classifier-input',
    needsDequantize: true,
    classifier: 'QLinearMatMul',
    inCatalog: true,
  },
  {
    file: 'shufflenet-v2-12-qdq.onnx',
    tensor: '611',
    dim: 1024,
    source: 'classifier-input',
    needsDequantize: false,
    classifier: 'MatMul',
    inCatalog: true,
  },
  {
    file: 'mobilenet-v1-0.25-224.fp32.onnx',
    tensor: 'features',
    dim: 256,
    source: 'output',
    needsDequantize: false,
    classifier: 'Conv',
  },
  {
    file: 'resnet8-cifar10.fp32.onnx',
    tensor: 'features',
    dim: 64,
    source: 'output',
    needsDequantize: false,
    classifier: 'Gemm',
  },
  {
    file: 'arch-only/resnet50.arch-only.onnx',
    tensor: '/avgpool/GlobalAveragePool_output_0',
    dim: 2048,
    source: 'classifier-input',
    needsDequantize: false,
    classifier: 'Gemm',
  },
  {
    file: 'arch-only/efficientnet_b0.arch-only.onnx',
    tensor: '/avgpool/GlobalAveragePool_output_0',
    dim: 1280,
    source: 'classifier-input',
    needsDequantize: false,
    classifier: 'Gemm',
  },
  {
    file: 'arch-only/mobilenet_v3_large.arch-only.onnx',
    tensor: '/classifier/classifier.1/HardSwish_output_0',
    dim: 1280,
    source: 'classifier-input',
    needsDequantize: false,
    classifier: 'Gemm',
  },
];

for (const expected of expectations) {
  const shared = sharedModel(expected.file);
  t.test(`${expected.file}: embedding ${expected.tensor} (${expected.dim})`, { skip: shared.skip }, async (t) => {
    const bytes = readFileSync(shared.path!);
    const e = findEmbedding(parseOnnxModel(bytes, shared.path));
    t.match(e, {
      tensor: expected.tensor,
      dim: expected.dim,
      source: expected.source,
      needsDequantize: expected.needsDequantize,
    });
    t.equal(e.classifier?.opType, expected.classifier);
    const entry = findCatalogEntryBySha256(sha256Bytes(bytes));
    if (expected.inCatalog) {
      t.ok(entry, 'catalog knows the file');
      t.same(entry?.embedding, { tensor: expected.tensor, dim: expected.dim }, 'catalog entry agrees');
    } else {
      t.equal(entry, undefined, 'test data, not a catalog model');
    }
  });
}

t.test(
  'MobileNetV3-L: the last Gemm, not the 960->1280 one',
  { skip: sharedModel('arch-only/mobilenet_v3_large.arch-only.onnx').skip },
  async (t) => {
    const e = findEmbedding(
      parseOnnxModel(readFileSync(sharedModel('arch-only/mobilenet_v3_large.arch-only.onnx').path!)),
    );
    t.equal(e.classifier?.weight, 'classifier.3.weight');
  },
);

t.test('QOperator classifier fed by QuantizeLinear of a float tensor: cut at the float tensor', async (t) => {
  const m = model({
    opset: 13,
    inputs: [valueInfo('x', ['N', 3, 4, 4])],
    outputs: [valueInfo('y', ['N', 2])],
    initializers: [
      tensor('s', [], [0.1]),
      tensor('z', [], [128], UINT8),
      tensor('w', [3, 2], [120, 130, 125, 135, 128, 140], UINT8),
    ],
    nodes: [
      node('GlobalAveragePool', ['x'], ['gap']),
      node('Flatten', ['gap'], ['flat']),
      node('QuantizeLinear', ['flat', 's', 'z'], ['flat_q']),
      node('QLinearMatMul', ['flat_q', 's', 'z', 'w', 's', 'z', 's', 'z'], ['y_q']),
      node('DequantizeLinear', ['y_q', 's', 'z'], ['y']),
    ],
  });
  t.match(findEmbedding(m), { tensor: 'gap', dim: 3, needsDequantize: false, source: 'classifier-input' });
});
