import type { LabelledMatrix } from './data.js';
import { l2NormalizeInPlace } from './normalization.js';

/**
 * Nearest class mean with cosine similarity. `sums[c]` is the sum of the class's L2-normalized embeddings, so a
 * class can gain examples, and classes can be added or removed, without touching the others.
 */
export interface PrototypeParameters {
  /** [classes, dim] sums of unit-length embeddings. */
  sums: Float32Array;
  counts: number[];
  dim: number;
}

export function fitPrototypes(matrix: LabelledMatrix): PrototypeParameters {
  const { dim, classCount } = matrix;
  const sums = new Float64Array(classCount * dim);
  const counts = new Array<number>(classCount).fill(0);
  const row = new Float32Array(dim);
  for (let r = 0; r < matrix.rows; r++) {
    row.set(matrix.data.subarray(r * dim, (r + 1) * dim));
    l2NormalizeInPlace(row, 0, dim);
    const o = matrix.targets[r] * dim;
    for (let d = 0; d < dim; d++) sums[o + d] += row[d];
    counts[matrix.targets[r]]++;
  }
  return { sums: Float32Array.from(sums), counts, dim };
}

/** Unit-length class directions [classes, dim]. */
export function prototypeDirections(params: PrototypeParameters): Float32Array {
  const directions = Float32Array.from(params.sums);
  for (let c = 0; c < params.counts.length; c++) l2NormalizeInPlace(directions, c * params.dim, params.dim);
  return directions;
}

/** Sum of the unit-length versions of `rows` embeddings: what a new class (or new examples) contributes. */
export function prototypeSum(data: Float32Array, rows: number, dim: number): Float32Array {
  const sum = new Float64Array(dim);
  const row = new Float32Array(dim);
  for (let r = 0; r < rows; r++) {
    row.set(data.subarray(r * dim, (r + 1) * dim));
    l2NormalizeInPlace(row, 0, dim);
    for (let d = 0; d < dim; d++) sum[d] += row[d];
  }
  return Float32Array.from(sum);
}
