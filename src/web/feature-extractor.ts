/**
 * Classifier bytes -> feature-extractor bytes, the same surgery as Node (src/core/models/surgery.ts), runtime-neutral:
 * a page can run it on a classifier it fetched itself (`loadBackboneFromClassifier`). `edgetl serve` uses Node's
 * cached extractor (models/feature-extractor-cache.ts), which is the same surgery written to a file.
 */
import { findEmbedding } from '../core/models/embedding.js';
import { parseOnnxModel } from '../core/models/onnx-model.js';
import { buildFeatureExtractor, type FeatureExtractor } from '../core/models/surgery.js';
import { WebBackbone, modelBytes, type LoadWebBackboneOptions } from './backbone.js';
import { sha256HexAsync } from '../core/formats/sha256.js';
import { adaptedSurgery } from '../core/models/last-block-graph.js';
import { assertHeadFitsBackbone } from '../core/heads/compatibility.js';
import type { Head } from '../core/heads/head.js';
import { EdgetlError } from '../core/util/errors.js';

export interface BrowserFeatureExtractor extends FeatureExtractor {
  /** Set when the graph only runs this batch size (e.g. 1 for ShuffleNet-QDQ). */
  fixedBatch?: number;
  /** The source model's image input dims (numbers, or names for dynamic dims). */
  inputDims: (number | string)[];
}

/** Finds the embedding (or takes `embeddingTensor`) and prunes the classifier away. The input bytes are not changed. */
export function featureExtractorFromBytes(
  modelBytes: Uint8Array,
  options: { embeddingTensor?: string; file?: string } = {},
): BrowserFeatureExtractor {
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

/**
 * Loads an unmodified classifier (URL or bytes) and cuts it into a feature extractor here, in the browser, with the
 * same surgery as Node (embedding found automatically unless `embeddingTensor` names it). The backbone's sha256 (what
 * head files name) is the classifier's own. Kept apart from WebBackbone so pages that load a prepared extractor do
 * not carry the ONNX protobuf code.
 */
export async function loadBackboneFromClassifier(
  options: Omit<LoadWebBackboneOptions, 'embeddingOutput' | 'sha256'> & { embeddingTensor?: string },
): Promise<WebBackbone> {
  const source = await modelBytes(options.model);
  const sha256 = await sha256HexAsync(source);
  const extractor = featureExtractorFromBytes(source, {
    embeddingTensor: options.embeddingTensor,
    file: typeof options.model === 'string' ? options.model : options.id,
  });
  return WebBackbone.load({
    ...options,
    model: extractor.bytes,
    sha256,
    embeddingOutput: extractor.outputName,
    fixedBatch: options.fixedBatch ?? extractor.fixedBatch,
  });
}

/**
 * Loads an unmodified classifier and builds, here in the browser, the graph a fine-tuned head needs: the backbone
 * cut at its last block, the head's adapted block, the pool (the same surgery as Node: models/last-block-graph.ts).
 * The embeddings it gives are what `head` was trained on; its sha256 is the classifier's own.
 */
export async function loadAdaptedBackbone(
  options: Omit<LoadWebBackboneOptions, 'embeddingOutput' | 'sha256'> & {
    head: Pick<Head, 'adaptedBlock' | 'backbone'>;
  },
): Promise<WebBackbone> {
  const block = options.head.adaptedBlock;
  if (!block)
    throw new EdgetlError('usage', `the head has no adapted block: load the backbone with loadBackboneFromClassifier`);
  const source = await modelBytes(options.model);
  const sha256 = await sha256HexAsync(source);
  const trainedOn = options.head.backbone;
  // the embedding size is the head's own until the graph is built: the sha256 decides here
  assertHeadFitsBackbone(
    trainedOn,
    { id: options.id ?? 'the model', sha256, embeddingDim: trainedOn.embeddingDim },
    { givenAs: 'the model given is' },
  );
  const extractor = adaptedSurgery(block).build(
    parseOnnxModel(source, typeof options.model === 'string' ? options.model : options.id),
  );
  return WebBackbone.load({ ...options, model: extractor.bytes, sha256, embeddingOutput: extractor.outputName });
}
