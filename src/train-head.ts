/**
 * `trainHead` for Node: the runtime-neutral trainer (src/heads/train.ts) with its dense products on onnxruntime,
 * ~30x faster than plain JS for a 100-class head on 1280-d embeddings (bench/heads-matmul.ts).
 */
import type { DenseMath } from './heads/dense-math.js';
import { type EmbeddingRows, type TrainHeadOptions, trainHead as trainHeadWith } from './heads/train.js';
import type { Head } from './heads/head.js';
import { createOrtDenseMath } from './execution/dense-math-ort.js';

let shared: Promise<DenseMath> | undefined;

/** One onnxruntime-backed DenseMath per process (its few small sessions are reused by every training). */
export function nodeDenseMath(): Promise<DenseMath> {
  shared ??= createOrtDenseMath();
  return shared;
}

export async function trainHead(embeddings: EmbeddingRows, labels: readonly string[], options: TrainHeadOptions = {}): Promise<Head> {
  return trainHeadWith(embeddings, labels, { ...options, math: options.math ?? (await nodeDenseMath()) });
}
