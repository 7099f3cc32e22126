/**
 * How embeddings are normalized before the head sees them. Stored in the head file so prediction applies exactly
 * what training did.
 */
export type Normalization =
  | { kind: 'none' }
  | { kind: 'l2' }
  | { kind: 'standardize'; mean: Float32Array; std: Float32Array };

export type NormalizationKind = Normalization['kind'];

/** Per-dimension mean and standard deviation (float64 sums); constant dimensions get std 1 so they stay finite. */
export function fitNormalization(
  kind: NormalizationKind,
  data: Float32Array,
  rows: number,
  dim: number,
): Normalization {
  if (kind !== 'standardize') return { kind };
  const sum = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let d = 0; d < dim; d++) sum[d] += data[o + d];
  }
  const mean = new Float64Array(dim);
  for (let d = 0; d < dim; d++) mean[d] = sum[d] / rows;
  const squares = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let d = 0; d < dim; d++) {
      const centered = data[o + d] - mean[d];
      squares[d] += centered * centered;
    }
  }
  const std = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    const s = Math.sqrt(squares[d] / rows);
    std[d] = s > 1e-6 * Math.max(1, Math.abs(mean[d])) ? s : 1;
  }
  return { kind, mean: Float32Array.from(mean), std };
}

/** Normalized copy of `rows` embeddings of length `dim`. */
export function applyNormalization(
  normalization: Normalization,
  data: Float32Array,
  rows: number,
  dim: number,
): Float32Array {
  const out = Float32Array.from(data.subarray(0, rows * dim));
  if (normalization.kind === 'standardize') {
    const { mean, std } = normalization;
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      for (let d = 0; d < dim; d++) out[o + d] = (out[o + d] - mean[d]) / std[d];
    }
  } else if (normalization.kind === 'l2') {
    for (let r = 0; r < rows; r++) l2NormalizeInPlace(out, r * dim, dim);
  }
  return out;
}

export function l2NormalizeInPlace(values: Float32Array, offset: number, length: number): void {
  let norm = 0;
  for (let d = 0; d < length; d++) norm += values[offset + d] * values[offset + d];
  norm = Math.sqrt(norm);
  if (norm > 0) for (let d = 0; d < length; d++) values[offset + d] /= norm;
}
