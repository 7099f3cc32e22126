/**
 * `trainHead` for Node: the runtime-neutral trainer (src/heads/train.ts) with its dense products on onnxruntime,
 * ~30x faster than plain JS for a 100-class head on 1280-d embeddings (bench/heads-matmul.ts).
 */
import type { DenseMath } from './heads/dense-math.js';
import { type EmbeddingRows, type TrainHeadOptions, trainHead as trainHeadWith } from './heads/train.js';
import type { Head } from './heads/head.js';
import { createOrtDenseMath } from './execution/dense-math-ort.js';

let shared: Promise<DenseMath> | undefined;

/**
 * One onnxruntime-backed DenseMath per process (its few small sessions are reused by every training). One intra-op
 * thread per product: the L2 sweep runs its folds concurrently, so the cores are already shared out, and
 * onnxruntime's spinning worker threads degrade badly when oversubscribed (measured: 2.2-3.3 s with one thread
 * against 2.5-6.5 s with the default for the 2000 x 1280 x 100 sweep on this shared 2-core machine).
 */
export function nodeDenseMath(): Promise<DenseMath> {
  shared ??= createOrtDenseMath({ intraOpThreads: 1 });
  return shared;
}

export async function trainHead(embeddings: EmbeddingRows, labels: readonly string[], options: TrainHeadOptions = {}): Promise<Head> {
  return trainHeadWith(embeddings, labels, { ...options, math: options.math ?? (await nodeDenseMath()) });
}
