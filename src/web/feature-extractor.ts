/**
 * Classifier bytes -> feature-extractor bytes, the same surgery as Node (src/models/surgery.ts), runtime-neutral:
 * `edgetl serve` runs it before serving a model, and a page can run it on a model it fetched itself.
 */
import { findEmbedding } from '../models/embedding.js';
import { parseOnnxModel } from '../models/onnx-model.js';
import { buildFeatureExtractor, type FeatureExtractor } from '../models/surgery.js';

export interface PreparedFeatureExtractor extends FeatureExtractor {
  /** Set when the graph only runs this batch size (e.g. 1 for ShuffleNet-QDQ). */
  fixedBatch?: number;
  /** The source model's image input dims (numbers, or names for dynamic dims). */
  inputDims: (number | string)[];
}

/** Finds the embedding (or takes `embeddingTensor`) and prunes the classifier away. The input bytes are not changed. */
export function prepareFeatureExtractor(modelBytes: Uint8Array, options: { embeddingTensor?: string; file?: string } = {}): PreparedFeatureExtractor {
  const model = parseOnnxModel(modelBytes, options.file);
  const embedding = findEmbedding(model, { embeddingTensor: options.embeddingTensor, file: options.file });
  const extractor = buildFeatureExtractor(model, embedding);
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const input = (model.graph?.input ?? []).find((i) => i.name && !initializers.has(i.name));
  const inputDims = (input?.type?.tensorType?.shape?.dim ?? []).map((d) => {
    const value = d.dimValue === undefined || d.dimValue === null ? undefined : Number(d.dimValue);
    return value !== undefined && value > 0 ? value : (d.dimParam ?? '?');
  });
  const fixedBatch = typeof embedding.batchDim === 'number' && embedding.batchDim > 0 ? embedding.batchDim : undefined;
  return { ...extractor, fixedBatch, inputDims };
}
