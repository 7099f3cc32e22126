/**
 * Refuses heads whose inference would overflow: every stored value may be finite and yet a tiny
 * normalization.std, a temperature near zero or float32 weights near 3.4e38 make the logits infinite and the
 * probabilities NaN. This bounds what inference computes, in float64, before the head is used.
 */
import { EdgetlError } from '../util/errors.js';
import type { HeadWeights } from './head.js';
import type { Normalization } from './normalization.js';

const FLOAT32_MAX = 3.4028234663852886e38;
/**
 * Embedding values a head must handle without overflow: raw embeddings (normalization none or standardize) within
 * ±1e4, far beyond what image backbones produce; l2-normalized ones are within ±1 anyway.
 */
export const EMBEDDING_VALUE_LIMIT = 1e4;

export interface HeadNumericsInput {
  labels: readonly string[];
  embeddingDim: number;
  weights: HeadWeights;
  normalization: Normalization;
  temperature: number;
}

/** Largest |value| each input dimension can have after normalization, for embeddings within the limit. */
function inputBounds(normalization: Normalization, dim: number): Float64Array {
  const bounds = new Float64Array(dim);
  if (normalization.kind === 'l2') bounds.fill(1);
  else if (normalization.kind === 'none') bounds.fill(EMBEDDING_VALUE_LIMIT);
  else
    for (let d = 0; d < dim; d++)
      bounds[d] = (EMBEDDING_VALUE_LIMIT + Math.abs(normalization.mean[d])) / normalization.std[d];
  return bounds;
}

/** |W| b + |bias| per output: an upper bound of |W x + bias| for |x| <= b (interval arithmetic). */
function layerBound(
  weight: Float32Array,
  bias: Float32Array | undefined,
  inputs: Float64Array,
  outputs: number,
): Float64Array {
  const dim = inputs.length;
  const result = new Float64Array(outputs);
  for (let o = 0; o < outputs; o++) {
    let sum = bias ? Math.abs(bias[o]) : 0;
    for (let d = 0; d < dim; d++) sum += Math.abs(weight[o * dim + d]) * inputs[d];
    result[o] = sum;
  }
  return result;
}

/** Bound of every logit's magnitude (relu and gelu never grow a value's magnitude, so layers chain). */
export function logitBounds(head: HeadNumericsInput): Float64Array {
  const classes = head.labels.length;
  const weights = head.weights;
  // prototype heads score by cosine similarity of unit vectors
  if (weights.type === 'prototype') return new Float64Array(classes).fill(1);
  let bounds = inputBounds(head.normalization, head.embeddingDim);
  if (weights.type === 'linear') return layerBound(weights.weight, weights.bias, bounds, classes);
  for (const layer of weights.layers) bounds = layerBound(layer.weight, layer.bias, bounds, layer.outputs);
  return bounds;
}

function refuse(file: string | undefined, message: string): never {
  throw new EdgetlError(
    'head-nonfinite',
    `${file ? `${file}: ` : ''}${message}: the head's predictions would not be finite numbers; retrain it`,
    { file },
  );
}

/** Throws `head-nonfinite` naming the cause when inference on in-range embeddings could overflow float32. */
export function checkHeadNumerics(head: HeadNumericsInput, file?: string): void {
  if (!(1 / head.temperature <= FLOAT32_MAX))
    refuse(
      file,
      `head file field "calibration.temperature" is ${head.temperature}, too close to 0 (1/temperature overflows)`,
    );
  const bounds = logitBounds(head);
  let worst = 0;
  for (let c = 1; c < bounds.length; c++) if (!(bounds[c] <= bounds[worst])) worst = c;
  const bound = bounds[worst];
  if (bound <= FLOAT32_MAX && bound / head.temperature <= FLOAT32_MAX) return;
  let cause = 'the weights hold extreme values';
  if (head.normalization.kind === 'standardize') {
    const std = head.normalization.std;
    let smallest = 0;
    for (let d = 1; d < std.length; d++) if (std[d] < std[smallest]) smallest = d;
    if (std[smallest] < 1e-20) cause = `normalization.std is ${std[smallest]} at index ${smallest}`;
  }
  const limit =
    head.normalization.kind === 'l2' ? 'unit-length embeddings' : `embeddings within ±${EMBEDDING_VALUE_LIMIT}`;
  refuse(
    file,
    `the logit of "${head.labels[worst]}" can reach ${Number.isFinite(bound) ? bound.toPrecision(3) : 'infinity'}${head.temperature < 1 ? ` (${(bound / head.temperature).toPrecision(3)} after temperature ${head.temperature})` : ''} for ${limit}, beyond float32's ${FLOAT32_MAX.toPrecision(3)} (${cause})`,
  );
}
