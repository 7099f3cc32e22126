/**
 * `trainHead` for Node: the runtime-neutral trainer (src/core/heads/train.ts) with its dense products on onnxruntime,
 * ~30x faster than plain JS for a 100-class head on 1280-d embeddings (bench/heads-matmul.ts).
 */
import { availableParallelism } from 'node:os';
import type { DenseMath } from '../core/heads/dense-math.js';
import { type EmbeddingRows, type TrainHeadOptions, trainHead as trainHeadWith } from '../core/heads/train.js';
import type { Head } from '../core/heads/head.js';
import { createOrtDenseMath } from './execution/dense-math-ort.js';

let shared: Promise<DenseMath> | undefined;

/**
 * One onnxruntime-backed DenseMath per process (its few small sessions are reused by every training): all cores per
 * product, with spinning off. The L2 sweep runs its folds concurrently, and spinning pool threads degrade badly
 * when oversubscribed. Measured on the 2-core dev machine, 2000 x 1280 x 100 sweep (bench/heads-train.ts, quiet):
 * 2 threads without spinning 1.99-2.02 s; 1 thread 2.2 s; 2 threads spinning 2.9 s.
 */
export function nodeDenseMath(): Promise<DenseMath> {
  shared ??= createOrtDenseMath({ intraOpThreads: availableParallelism(), allowSpinning: false });
  return shared;
}

export async function trainHead(
  embeddings: EmbeddingRows,
  labels: readonly string[],
  options: TrainHeadOptions = {},
): Promise<Head> {
  return trainHeadWith(embeddings, labels, { ...options, math: options.math ?? (await nodeDenseMath()) });
}
