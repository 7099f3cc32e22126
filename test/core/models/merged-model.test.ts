import t, { type Test } from 'tap';
import ort from 'onnxruntime-node';
import { findEmbedding } from '../../../src/core/models/embedding.js';
import { buildMergedModel, MERGED_METADATA, PROBABILITIES_OUTPUT } from '../../../src/core/models/merged-model.js';
import { buildFeatureExtractor } from '../../../src/core/models/surgery.js';
import { parseOnnxModel, type IModelProto } from '../../../src/core/models/onnx-model.js';
import { Head, type HeadWeights } from '../../../src/core/heads/head.js';
import type { Normalization } from '../../../src/core/heads/normalization.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { pseudoRandom } from '../../helpers/onnx-graph.js';
import { tinyQOperator, tinyQdq, tinyTorchvisionLike } from './tiny-models.js';

const LABELS = ['cat', 'dog', 'fox'];
const SHA = 'a'.repeat(64);

function head(weights: HeadWeights, normalization: Normalization, dim: number, temperature = 1.7): Head {
  return new Head({
    labels: LABELS,
    backbone: { id: 'tiny', sha256: SHA, embeddingDim: dim, preprocess: null },
    weights,
    normalization,
    temperature,
    rejection: { threshold: 0.4, rate: 0.05 },
    training: {
      edgetlVersion: '0.0.0',
      createdAt: '2026-12-01T00:00:00Z',
      seed: 0,
      counts: {},
      options: {},
      metrics: {},
    },
  });
}

const standardize = (dim: number): Normalization => ({
  kind: 'standardize',
  mean: pseudoRandom(dim, 41).map((v) => v * 0.3),
  std: pseudoRandom(dim, 42).map((v) => 0.5 + Math.abs(v)),
});

function heads(dim: number): Record<string, Head> {
  const classes = LABELS.length;
  const linear = {
    type: 'linear' as const,
    weight: pseudoRandom(classes * dim, 51).map((v) => v * 3),
    bias: pseudoRandom(classes, 52),
  };
  const mlp = (activation: 'relu' | 'gelu') => ({
    type: 'mlp' as const,
    activation,
    layers: [
      { inputs: dim, outputs: 6, weight: pseudoRandom(6 * dim, 61).map((v) => v * 2), bias: pseudoRandom(6, 62) },
      { inputs: 6, outputs: 5, weight: pseudoRandom(30, 63), bias: pseudoRandom(5, 64) },
      {
        inputs: 5,
        outputs: classes,
        weight: pseudoRandom(5 * classes, 65).map((v) => v * 0.3),
        bias: pseudoRandom(classes, 66),
      },
    ],
  });
  const prototype = { type: 'prototype' as const, sums: pseudoRandom(classes * dim, 71), counts: [3, 4, 5], dim };
  return {
    'linear, standardized': head(linear, standardize(dim), dim),
    'linear, l2': head(linear, { kind: 'l2' }, dim),
    'linear, no normalization': head(linear, { kind: 'none' }, dim, 1),
    'mlp relu, standardized': head(mlp('relu'), standardize(dim), dim),
    'mlp gelu, l2': head(mlp('gelu'), { kind: 'l2' }, dim, 0.6),
    'prototype, l2': head(prototype, { kind: 'l2' }, dim, 0.1),
    'prototype, standardized': head(prototype, standardize(dim), dim, 0.2),
  };
}

async function runAll(bytes: Uint8Array, input: Float32Array, dims: number[]): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

async function checkAgreement(t: Test, source: IModelProto, name: string, h: Head, batch: number, inputDims: number[]) {
  const embedding = findEmbedding(source);
  const merged = buildMergedModel(source, embedding, {
    head: h,
    preprocess: IMAGENET_224,
    edgetlVersion: '9.9.9',
    backboneId: 'tiny',
    backboneSha256: SHA,
  });
  const input = pseudoRandom(
    inputDims.reduce((a, b) => a * b, 1),
    7,
  ).map((v) => v * 2);
  // Plain onnxruntime-node, nothing of edgetl's session code.
  const outputs = await runAll(merged.bytes, input, inputDims);
  t.same(Object.keys(outputs).sort(), ['embedding', 'probabilities'], `${name}: two outputs`);
  t.same(outputs.probabilities.dims, [batch, LABELS.length], `${name}: probabilities [N, C]`);
  t.same(outputs.embedding.dims, [batch, embedding.dim], `${name}: embedding [N, D]`);
  const extractor = await runAll(buildFeatureExtractor(source, embedding).bytes, input, inputDims);
  const features = extractor.embedding.data as Float32Array;
  t.equal(
    maxAbsDiff(outputs.embedding.data as Float32Array, features),
    0,
    `${name}: the embedding output is the feature extractor's`,
  );
  const expected = h.probabilities(features, batch);
  const difference = maxAbsDiff(outputs.probabilities.data as Float32Array, expected);
  t.ok(difference <= 2e-3, `${name}: probabilities equal the head's within 2e-3 (max difference ${difference})`);
  // The check can fail: without the temperature the same graph would be off by far more (where T is not 1).
  if (h.temperature !== 1) {
    const uncalibrated = new Head({ ...h, weights: h.weights, labels: h.labels, temperature: 1, training: h.training });
    t.ok(maxAbsDiff(uncalibrated.probabilities(features, batch), expected) > 1e-2, `${name}: temperature matters here`);
  }
  return merged;
}

t.test(
  'merged model = feature extractor + head: plain onnxruntime gives the head probabilities, for every head type',
  async (t) => {
    const source = tinyTorchvisionLike('N', { size: 8, channels: 4, classes: 5 });
    for (const [name, h] of Object.entries(heads(4))) await checkAgreement(t, source, name, h, 3, [3, 3, 8, 8]);
  },
);

t.test('merged model of an int8 QOperator backbone (embedding dequantized) agrees too', async (t) => {
  const source = tinyQOperator();
  const h = heads(4)['mlp relu, standardized'];
  await checkAgreement(t, source, 'qoperator', h, 2, [2, 3, 8, 8]);
});

t.test(
  'merged model metadata: labels, preprocessing, version, temperature, rejection; the source is untouched',
  async (t) => {
    const source = tinyTorchvisionLike();
    const h = heads(4)['linear, standardized'];
    const merged = buildMergedModel(source, findEmbedding(source), {
      head: h,
      preprocess: IMAGENET_224,
      edgetlVersion: '9.9.9',
      backboneId: 'tiny',
      backboneSha256: SHA,
    });
    const parsed = parseOnnxModel(merged.bytes);
    const props = Object.fromEntries((parsed.metadataProps ?? []).map((p) => [p.key, p.value]));
    t.same(JSON.parse(props[MERGED_METADATA.labels]!), LABELS);
    t.same(JSON.parse(props[MERGED_METADATA.preprocess]!), IMAGENET_224);
    t.equal(props[MERGED_METADATA.version], '9.9.9');
    t.equal(Number(props[MERGED_METADATA.temperature]), 1.7);
    t.same(JSON.parse(props[MERGED_METADATA.rejection]!), { threshold: 0.4, rate: 0.05 });
    t.equal(JSON.parse(props[MERGED_METADATA.backbone]!).sha256, SHA);
    t.same(
      parsed.graph!.output!.map((o) => o.name),
      [PROBABILITIES_OUTPUT, 'embedding'],
    );
    t.same(
      parsed.graph!.input!.map((i) => i.name),
      ['x'],
    );
    t.notOk(
      parsed.graph!.node!.some((n) => n.name === 'Softmax_probs'),
      "the backbone's own classifier is cut off",
    );
    t.same(
      source.graph!.output!.map((o) => o.name),
      ['probs'],
      'the source model message is not modified',
    );
    t.throws(
      () =>
        buildMergedModel(source, findEmbedding(source), {
          head: heads(6)['linear, l2'],
          preprocess: IMAGENET_224,
          edgetlVersion: '1',
          backboneId: 'tiny',
          backboneSha256: SHA,
        }),
      /head expects 6-d embeddings but the backbone's embedding "pooled" is 4-d/,
    );
  },
);

t.test('the merged model runs unchanged in onnxruntime-web (WebAssembly) with the same probabilities', async (t) => {
  const web = await import('onnxruntime-web');
  web.env.wasm.numThreads = 1;
  const source = tinyTorchvisionLike();
  const h = heads(4)['mlp gelu, l2'];
  const merged = buildMergedModel(source, findEmbedding(source), {
    head: h,
    preprocess: IMAGENET_224,
    edgetlVersion: '9.9.9',
    backboneId: 'tiny',
    backboneSha256: SHA,
  });
  const input = pseudoRandom(2 * 3 * 8 * 8, 11).map((v) => v * 2);
  const session = await web.InferenceSession.create(merged.bytes);
  const outputs = await session.run({ x: new web.Tensor('float32', input, [2, 3, 8, 8]) });
  await session.release();
  const native = await runAll(merged.bytes, input, [2, 3, 8, 8]);
  const difference = maxAbsDiff(outputs.probabilities.data as Float32Array, native.probabilities.data as Float32Array);
  t.ok(difference <= 1e-5, `onnxruntime-web and onnxruntime-node agree (max difference ${difference})`);
});

t.test('a fixed-batch QDQ backbone keeps its batch in both outputs', async (t) => {
  const source = tinyQdq();
  const merged = await checkAgreement(t, source, 'qdq, batch 1', heads(4)['prototype, l2'], 1, [1, 3, 8, 8]);
  t.equal(merged.batch, 1);
  t.same(JSON.parse(merged.metadata[MERGED_METADATA.outputs]!), { probabilities: [1, 3], embedding: [1, 4] });
});
