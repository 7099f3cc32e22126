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

/**
 * Units that must stay together when splitting, by class, each class's list shuffled with `random`. Without
 * `groups` every row is its own unit; with them, rows sharing a group id (e.g. an image and its flipped view)
 * form one unit, so no split ever puts a view in training and its twin in validation.
 */
function shuffledUnitsByClass(
  targets: ArrayLike<number>,
  classCount: number,
  random: Random,
  groups?: ArrayLike<number>,
): number[][][] {
  const units: number[][][] = Array.from({ length: classCount }, () => []);
  if (!groups) {
    for (let i = 0; i < targets.length; i++) units[targets[i]].push([i]);
  } else {
    const byGroup = new Map<number, number[]>();
    for (let i = 0; i < targets.length; i++) {
      const members = byGroup.get(groups[i]);
      if (members) members.push(i);
      else {
        const unit = [i];
        byGroup.set(groups[i], unit);
        units[targets[i]].push(unit);
      }
    }
  }
  for (const list of units) random.shuffle(list);
  return units;
}

/**
 * Stratified k-fold: each class's units are dealt round-robin over the folds (continuing where the previous class
 * stopped, so fold sizes stay balanced). Returns the held-out row indices of each fold, sorted.
 */
export function stratifiedFolds(
  targets: ArrayLike<number>,
  classCount: number,
  folds: number,
  seed: number,
  groups?: ArrayLike<number>,
): number[][] {
  const random = new Random(seed);
  const result: number[][] = Array.from({ length: folds }, () => []);
  let next = 0;
  for (const units of shuffledUnitsByClass(targets, classCount, random, groups)) {
    for (const unit of units) {
      result[next].push(...unit);
      next = (next + 1) % folds;
    }
  }
  return result.map((fold) => fold.sort((a, b) => a - b));
}

/**
 * Stratified split holding out about `fraction` of every class's units (at least one unit of each class with two
 * or more, never a class's last unit). Returns sorted train and held-out indices.
 */
export function stratifiedSplit(
  targets: ArrayLike<number>,
  classCount: number,
  fraction: number,
  seed: number,
  groups?: ArrayLike<number>,
): { train: number[]; heldOut: number[] } {
  const random = new Random(seed);
  const train: number[] = [];
  const heldOut: number[] = [];
  for (const units of shuffledUnitsByClass(targets, classCount, random, groups)) {
    let take = Math.round(units.length * fraction);
    if (units.length >= 2) take = Math.min(units.length - 1, Math.max(1, take));
    else take = 0;
    units.slice(0, take).forEach((unit) => heldOut.push(...unit));
    units.slice(take).forEach((unit) => train.push(...unit));
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
