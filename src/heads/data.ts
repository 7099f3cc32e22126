import { Random } from './random.js';

/** Embeddings as one row-major [rows, dim] Float32Array, with integer class indices per row. */
export interface LabelledMatrix {
  data: Float32Array;
  rows: number;
  dim: number;
  /** Class index per row, 0..classCount-1. */
  targets: Int32Array;
  classCount: number;
}

export function selectRows(matrix: LabelledMatrix, indices: ArrayLike<number>): LabelledMatrix {
  const { dim } = matrix;
  const data = new Float32Array(indices.length * dim);
  const targets = new Int32Array(indices.length);
  for (let r = 0; r < indices.length; r++) {
    const source = indices[r];
    data.set(matrix.data.subarray(source * dim, (source + 1) * dim), r * dim);
    targets[r] = matrix.targets[source];
  }
  return { data, rows: indices.length, dim, targets, classCount: matrix.classCount };
}

export function classCounts(targets: ArrayLike<number>, classCount: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (let i = 0; i < targets.length; i++) counts[targets[i]]++;
  return counts;
}

/** Row indices grouped by class, each group shuffled with `random`. */
function shuffledByClass(targets: ArrayLike<number>, classCount: number, random: Random): number[][] {
  const groups: number[][] = Array.from({ length: classCount }, () => []);
  for (let i = 0; i < targets.length; i++) groups[targets[i]].push(i);
  for (const group of groups) random.shuffle(group);
  return groups;
}

/**
 * Stratified k-fold: each class is dealt round-robin over the folds (continuing where the previous class stopped,
 * so fold sizes stay balanced). Returns the held-out row indices of each fold, sorted.
 */
export function stratifiedFolds(targets: ArrayLike<number>, classCount: number, folds: number, seed: number): number[][] {
  const random = new Random(seed);
  const result: number[][] = Array.from({ length: folds }, () => []);
  let next = 0;
  for (const group of shuffledByClass(targets, classCount, random)) {
    for (const index of group) {
      result[next].push(index);
      next = (next + 1) % folds;
    }
  }
  return result.map((fold) => fold.sort((a, b) => a - b));
}

/**
 * Stratified split holding out about `fraction` of every class (at least one row of each class with two or more
 * rows, never a class's last row). Returns sorted train and held-out indices.
 */
export function stratifiedSplit(targets: ArrayLike<number>, classCount: number, fraction: number, seed: number): { train: number[]; heldOut: number[] } {
  const random = new Random(seed);
  const train: number[] = [];
  const heldOut: number[] = [];
  for (const group of shuffledByClass(targets, classCount, random)) {
    let take = Math.round(group.length * fraction);
    if (group.length >= 2) take = Math.min(group.length - 1, Math.max(1, take));
    else take = 0;
    heldOut.push(...group.slice(0, take));
    train.push(...group.slice(take));
  }
  return { train: train.sort((a, b) => a - b), heldOut: heldOut.sort((a, b) => a - b) };
}

/** Per-row weights: all ones, or `balanced` (n / (classes * count[class]), as scikit-learn). */
export function sampleWeights(targets: Int32Array, classCount: number, mode: 'none' | 'balanced'): Float32Array {
  const weights = new Float32Array(targets.length).fill(1);
  if (mode === 'balanced') {
    const counts = classCounts(targets, classCount);
    for (let i = 0; i < targets.length; i++) weights[i] = targets.length / (classCount * counts[targets[i]]);
  }
  return weights;
}
