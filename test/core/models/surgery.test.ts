import t from 'tap';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { findEmbedding } from '../../../src/core/models/embedding.js';
import {
  encodeOnnxModel,
  onnx,
  parseOnnxModel,
  readFloatTensor,
  readIntegerTensor,
  tensorDims,
  type IModelProto,
  type ModelProto,
} from '../../../src/core/models/onnx-model.js';
import { buildFeatureExtractor } from '../../../src/core/models/surgery.js';
import { FLOAT, UINT8, model, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';
import { sharedModel } from '../../helpers/shared.js';
import {
  tinyConvClassifierWithFeatures,
  tinyQOperator,
  tinyQdq,
  tinyTorchvisionLike,
  tinyTwoGemmHead,
} from './tiny-models.js';

type Outputs = Record<string, ort.Tensor>;

async function run(bytes: Uint8Array, input: Float32Array, dims: number[]): Promise<Outputs> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
  } finally {
    await session.release();
  }
}

/** The source model with extra graph outputs, to read intermediate tensors for comparison. */
function withOutputs(source: Uint8Array | IModelProto, outputs: { name: string; elemType: number }[]): Uint8Array {
  const m =
    source instanceof Uint8Array ? parseOnnxModel(source) : parseOnnxModel(onnx.ModelProto.encode(source).finish());
  for (const o of outputs) m.graph!.output!.push(valueInfo(o.name, undefined, o.elemType));
  return encodeOnnxModel(m);
}

function initializer(m: ModelProto, name: string) {
  const found = m.graph?.initializer?.find((i) => i.name === name);
  if (!found) throw new Error(`no initializer ${name}`);
  return found;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** y = x W^T + b for Gemm(transB=1) weights [out, in] (or W for MatMul weights [in, out]). */
function linear(
  x: ArrayLike<number>,
  rows: number,
  weight: Float32Array,
  wDims: number[],
  bias: Float32Array | undefined,
  transB: boolean,
): Float64Array {
  const [inDim, outDim] = transB ? [wDims[1], wDims[0]] : [wDims[0], wDims[1]];
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let sum = bias ? bias[o] : 0;
      for (let i = 0; i < inDim; i++)
        sum += x[r * inDim + i] * (transB ? weight[o * inDim + i] : weight[i * outDim + o]);
      y[r * outDim + o] = sum;
    }
  }
  return y;
}

t.test(
  'tiny classifier: output `embedding` [N, D] equals the pooled tensor; classifier and its weights are gone',
  async (t) => {
    const source = tinyTorchvisionLike();
    const before = onnx.ModelProto.encode(source).finish();
    const extractor = buildFeatureExtractor(source, findEmbedding(source));
    t.same(onnx.ModelProto.encode(source).finish(), before, 'the source model is not modified');
    t.equal(extractor.outputName, 'embedding');
    t.equal(extractor.dim, 4);
    const ex = parseOnnxModel(extractor.bytes);
    t.same(
      ex.graph!.output!.map((o) => o.name),
      ['embedding'],
    );
    t.same(
      ex.graph!.node!.map((n) => n.opType),
      ['Conv', 'Relu', 'GlobalAveragePool', 'Flatten'],
    );
    t.same(ex.graph!.initializer!.map((i) => i.name).sort(), ['conv_b', 'conv_w']);
    t.match(ex.metadataProps?.find((p) => p.key === 'edgetl.surgery')?.value, /cut at "pooled"/);

    const x = pseudoRandom(3 * 3 * 64, 42);
    const original = await run(
      withOutputs(source, [
        { name: 'pooled', elemType: FLOAT },
        { name: 'logits', elemType: FLOAT },
      ]),
      x,
      [3, 3, 8, 8],
    );
    const features = await run(extractor.bytes, x, [3, 3, 8, 8]);
    t.same(features.embedding.dims, [3, 4], 'dynamic batch kept');
    t.same(Array.from(features.embedding.data as Float32Array), Array.from(original.pooled.data as Float32Array));
    // The classifier applied to the embedding gives the original logits back.
    const m = parseOnnxModel(before);
    const logits = linear(
      features.embedding.data as Float32Array,
      3,
      readFloatTensor(initializer(m, 'fc_w'))!,
      [5, 4],
      readFloatTensor(initializer(m, 'fc_b')),
      true,
    );
    t.ok(maxAbsDiff(logits, original.logits.data as Float32Array) < 1e-5, 'Gemm(embedding) reproduces the logits');
  },
);

t.test('two-Gemm head: cut before the last Gemm', async (t) => {
  const source = tinyTwoGemmHead();
  const extractor = buildFeatureExtractor(source, findEmbedding(source));
  const x = pseudoRandom(3 * 64, 5);
  const original = await run(withOutputs(source, [{ name: 'g1_act', elemType: FLOAT }]), x, [1, 3, 8, 8]);
  const features = await run(extractor.bytes, x, [1, 3, 8, 8]);
  t.same(features.embedding.dims, [1, 6]);
  t.same(Array.from(features.embedding.data as Float32Array), Array.from(original.g1_act.data as Float32Array));
});

t.test('existing features output: the extractor keeps it and drops the softmax branch', async (t) => {
  const source = tinyConvClassifierWithFeatures();
  const extractor = buildFeatureExtractor(source, findEmbedding(source));
  const ex = parseOnnxModel(extractor.bytes);
  t.notOk(ex.graph!.node!.some((n) => n.opType === 'Softmax' || n.input?.includes('cls_w')));
  const x = pseudoRandom(2 * 3 * 64, 9);
  const original = await run(onnx.ModelProto.encode(source).finish(), x, [2, 3, 8, 8]);
  const features = await run(extractor.bytes, x, [2, 3, 8, 8]);
  t.same(Array.from(features.embedding.data as Float32Array), Array.from(original.features.data as Float32Array));
});

t.test(
  'QOperator: a DequantizeLinear turns the uint8 pooled tensor into float32 with its scale and zero point',
  async (t) => {
    const source = tinyQOperator();
    const e = findEmbedding(source);
    const extractor = buildFeatureExtractor(source, e);
    const ex = parseOnnxModel(extractor.bytes);
    t.notOk(
      ex.graph!.node!.some((n) => ['QLinearMatMul', 'Shape', 'Gather', 'Reshape'].includes(n.opType ?? '')),
      'classifier and shape branch pruned',
    );
    const x = pseudoRandom(2 * 3 * 64, 10);
    const original = await run(withOutputs(source, [{ name: 'pq', elemType: UINT8 }]), x, [2, 3, 8, 8]);
    const features = await run(extractor.bytes, x, [2, 3, 8, 8]);
    const scale = readFloatTensor(initializer(parseOnnxModel(onnx.ModelProto.encode(source).finish()), 'p_s'))![0];
    const expected = Array.from(original.pq.data as Uint8Array, (q) => Math.fround((q - 3) * scale));
    t.same(features.embedding.dims, [2, 4]);
    t.same(Array.from(features.embedding.data as Float32Array), expected);
  },
);

t.test('QDQ with fixed batch 1: cut at the float ReduceMean output', async (t) => {
  const source = tinyQdq();
  const extractor = buildFeatureExtractor(source, findEmbedding(source));
  const x = pseudoRandom(3 * 64, 11);
  const original = await run(withOutputs(source, [{ name: 'pooled', elemType: FLOAT }]), x, [1, 3, 8, 8]);
  const features = await run(extractor.bytes, x, [1, 3, 8, 8]);
  t.same(features.embedding.dims, [1, 4]);
  t.same(Array.from(features.embedding.data as Float32Array), Array.from(original.pooled.data as Float32Array));
});

t.test('a tensor already named `embedding` is renamed out of the way', async (t) => {
  const source = model({
    inputs: [valueInfo('x', ['N', 3, 4, 4])],
    outputs: [valueInfo('y', ['N', 2])],
    initializers: [tensor('w', [2, 3], pseudoRandom(6))],
    nodes: [
      node('GlobalAveragePool', ['x'], ['embedding']),
      node('Flatten', ['embedding'], ['flat']),
      node('Gemm', ['flat', 'w'], ['y'], { transB: 1 }),
    ],
  });
  const e = findEmbedding(source);
  t.equal(e.tensor, 'embedding');
  const extractor = buildFeatureExtractor(source, e);
  const ex = parseOnnxModel(extractor.bytes);
  t.equal(ex.graph!.node!.filter((n) => n.output?.includes('embedding')).length, 1, 'one producer of `embedding`');
  const x = pseudoRandom(2 * 3 * 16, 12);
  const features = await run(extractor.bytes, x, [2, 3, 4, 4]);
  const mean = (n: number, c: number) => {
    let s = 0;
    for (let i = 0; i < 16; i++) s += x[(n * 3 + c) * 16 + i];
    return s / 16;
  };
  const got = Array.from(features.embedding.data as Float32Array);
  t.ok(maxAbsDiff(got, [mean(0, 0), mean(0, 1), mean(0, 2), mean(1, 0), mean(1, 1), mean(1, 2)]) < 1e-6);
});

t.test('an explicit tensor that does not depend on the input is refused', async (t) => {
  const source = model({
    inputs: [valueInfo('x', ['N', 3])],
    outputs: [valueInfo('y', ['N', 3])],
    initializers: [tensor('a', [1, 3], [1, 2, 3]), tensor('b', [1, 3], [1, 1, 1])],
    nodes: [node('Add', ['a', 'b'], ['c']), node('Add', ['x', 'c'], ['y'])],
  });
  t.throws(() => buildFeatureExtractor(source, findEmbedding(source, { embeddingTensor: 'c' })), {
    message: /does not depend on any model input/,
  });
});

// ---- real backbones

const IMAGE = pseudoRandom(3 * 224 * 224, 2024).map((v) => v * 2);

for (const file of ['mobilenet-v1-0.25-224.fp32.onnx', 'resnet8-cifar10.fp32.onnx']) {
  const shared = sharedModel(file);
  t.test(
    `${file}: the extractor's embedding equals the model's own \`features\` output`,
    { skip: shared.skip },
    async (t) => {
      const bytes = readFileSync(shared.path!);
      const size = file.startsWith('resnet8') ? 32 : 224;
      const x = file.startsWith('resnet8') ? pseudoRandom(3 * 32 * 32, 5).map((v) => (v + 1) * 127.5) : IMAGE;
      const extractor = buildFeatureExtractor(parseOnnxModel(bytes), findEmbedding(parseOnnxModel(bytes)));
      const [original, features] = [
        await run(bytes, x, [1, 3, size, size]),
        await run(extractor.bytes, x, [1, 3, size, size]),
      ];
      t.same(Array.from(features.embedding.data as Float32Array), Array.from(original.features.data as Float32Array));
      if (file.startsWith('mobilenet'))
        t.ok(
          extractor.bytes.length < bytes.length * 0.5,
          `${extractor.bytes.length} bytes of ${bytes.length}: the 256x1000 classifier is gone`,
        );
    },
  );
}

for (const file of [
  'arch-only/resnet50.arch-only.onnx',
  'arch-only/efficientnet_b0.arch-only.onnx',
  'arch-only/mobilenet_v3_large.arch-only.onnx',
]) {
  const shared = sharedModel(file);
  t.test(
    `${file}: Gemm(embedding) with the classifier weights reproduces the logits; the file shrinks by the classifier`,
    { skip: shared.skip },
    async (t) => {
      const bytes = readFileSync(shared.path!);
      const source = parseOnnxModel(bytes);
      const e = findEmbedding(source);
      const extractor = buildFeatureExtractor(source, e);
      const weight = initializer(source, e.classifier!.weight);
      const biasName = source.graph!.node!.find((n) => n.input?.[1] === e.classifier!.weight)!.input![2];
      const wDims = tensorDims(weight);
      t.equal(wDims[1], e.dim);
      const classifierBytes = wDims[0] * wDims[1] * 4;
      t.ok(
        bytes.length - extractor.bytes.length >= classifierBytes,
        `${bytes.length} -> ${extractor.bytes.length} bytes (classifier ${classifierBytes})`,
      );
      const original = await run(bytes, IMAGE, [1, 3, 224, 224]);
      const features = await run(extractor.bytes, IMAGE, [1, 3, 224, 224]);
      t.same(features.embedding.dims, [1, e.dim]);
      const logits = linear(
        features.embedding.data as Float32Array,
        1,
        readFloatTensor(weight)!,
        wDims,
        readFloatTensor(initializer(source, biasName)),
        true,
      );
      const reference = original.logits.data as Float32Array;
      const scale = Math.max(...Array.from(reference, Math.abs));
      t.ok(
        maxAbsDiff(logits, reference) <= 1e-4 * scale,
        `max |diff| ${maxAbsDiff(logits, reference)} vs max |logit| ${scale}`,
      );
    },
  );
}

const mobilenetInt8 = sharedModel('mobilenetv2-12-int8.onnx');
t.test(
  'mobilenetv2-12-int8: embedding = DequantizeLinear of the pooled uint8 tensor; QLinearMatMul and shape branch pruned',
  { skip: mobilenetInt8.skip },
  async (t) => {
    const bytes = readFileSync(mobilenetInt8.path!);
    const source = parseOnnxModel(bytes);
    const e = findEmbedding(source);
    const extractor = buildFeatureExtractor(source, e);
    const ex = parseOnnxModel(extractor.bytes);
    t.notOk(ex.graph!.node!.some((n) => ['QLinearMatMul', 'Shape', 'Gather'].includes(n.opType ?? '')));
    t.ok(extractor.bytes.length < bytes.length - 1280 * 1000, 'the 1280x1000 int8 classifier is gone');
    const original = await run(withOutputs(bytes, [{ name: e.tensor, elemType: UINT8 }]), IMAGE, [1, 3, 224, 224]);
    const features = await run(extractor.bytes, IMAGE, [1, 3, 224, 224]);
    const scale = readFloatTensor(initializer(source, e.quantization!.scale))![0];
    const zero = readIntegerTensor(initializer(source, e.quantization!.zeroPoint!))![0];
    const expected = Array.from(original[e.tensor].data as Uint8Array, (q) => Math.fround((q - zero) * scale));
    t.same(features.embedding.dims, [1, 1280]);
    t.same(Array.from(features.embedding.data as Float32Array), expected);
    t.ok(
      expected.some((v) => v !== 0),
      'a non-trivial embedding',
    );
  },
);

const shufflenet = sharedModel('shufflenet-v2-12-qdq.onnx');
t.test('shufflenet-v2-12-qdq: embedding = the float ReduceMean output (1024)', { skip: shufflenet.skip }, async (t) => {
  const bytes = readFileSync(shufflenet.path!);
  const source = parseOnnxModel(bytes);
  const e = findEmbedding(source);
  const extractor = buildFeatureExtractor(source, e);
  const original = await run(withOutputs(bytes, [{ name: e.tensor, elemType: FLOAT }]), IMAGE, [1, 3, 224, 224]);
  const features = await run(extractor.bytes, IMAGE, [1, 3, 224, 224]);
  t.same(features.embedding.dims, [1, 1024]);
  t.same(Array.from(features.embedding.data as Float32Array), Array.from(original[e.tensor].data as Float32Array));
});
