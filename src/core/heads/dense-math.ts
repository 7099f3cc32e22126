/**
 * The dense products a head needs while training. Heads stay runtime-neutral: the pure-JS implementation here
 * runs anywhere, and a Node (or browser) caller may inject a faster one (src/node/execution/dense-math-ort.ts runs the
 * same products on onnxruntime, ~30x faster for 2000x1280 by 1280x100 on this machine: see bench/heads-matmul.ts).
 */
export interface DenseMath {
  readonly name: string;
  /**
   * out[m,n] = op(A) . op(B), with op(A) of shape [m,k] and op(B) of shape [k,n], all row-major.
   * A is stored as [m,k], or as [k,m] when `transA`; B is stored as [k,n], or as [n,k] when `transB`.
   */
  gemm(
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
  ): Promise<Float32Array>;
  dispose?(): Promise<void>;
}

/** Row-major transpose of a [rows, cols] matrix. */
export function transpose(source: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        const rowOffset = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = source[rowOffset + c];
      }
    }
  }
  return out;
}

/** Rows i..i+3 of A against every row of B over k in [p0, p1): 4x2 register blocks, then the leftover column. */
function gemmNTFourRows(
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  i: number,
  k: number,
  n: number,
  p0: number,
  p1: number,
): void {
  const a0 = i * k;
  const a1 = a0 + k;
  const a2 = a1 + k;
  const a3 = a2 + k;
  let j = 0;
  for (; j + 1 < n; j += 2) {
    const b0 = j * k;
    const b1 = b0 + k;
    let s00 = 0,
      s01 = 0,
      s10 = 0,
      s11 = 0,
      s20 = 0,
      s21 = 0,
      s30 = 0,
      s31 = 0;
    for (let p = p0; p < p1; p++) {
      const y0 = b[b0 + p];
      const y1 = b[b1 + p];
      let x = a[a0 + p];
      s00 += x * y0;
      s01 += x * y1;
      x = a[a1 + p];
      s10 += x * y0;
      s11 += x * y1;
      x = a[a2 + p];
      s20 += x * y0;
      s21 += x * y1;
      x = a[a3 + p];
      s30 += x * y0;
      s31 += x * y1;
    }
    const o = i * n + j;
    out[o] += s00;
    out[o + 1] += s01;
    out[o + n] += s10;
    out[o + n + 1] += s11;
    out[o + 2 * n] += s20;
    out[o + 2 * n + 1] += s21;
    out[o + 3 * n] += s30;
    out[o + 3 * n + 1] += s31;
  }
  for (; j < n; j++) {
    const b0 = j * k;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let p = p0; p < p1; p++) {
      const y = b[b0 + p];
      s0 += a[a0 + p] * y;
      s1 += a[a1 + p] * y;
      s2 += a[a2 + p] * y;
      s3 += a[a3 + p] * y;
    }
    out[i * n + j] += s0;
    out[(i + 1) * n + j] += s1;
    out[(i + 2) * n + j] += s2;
    out[(i + 3) * n + j] += s3;
  }
}

/** One row i of A (leftover rows; a single prediction is one row): 4 columns at a time, four accumulators. */
function gemmNTOneRow(
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  i: number,
  k: number,
  n: number,
  p0: number,
  p1: number,
): void {
  const a0 = i * k;
  let j = 0;
  for (; j + 3 < n; j += 4) {
    const b0 = j * k;
    const b1 = b0 + k;
    const b2 = b1 + k;
    const b3 = b2 + k;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let p = p0; p < p1; p++) {
      const x = a[a0 + p];
      s0 += x * b[b0 + p];
      s1 += x * b[b1 + p];
      s2 += x * b[b2 + p];
      s3 += x * b[b3 + p];
    }
    const o = i * n + j;
    out[o] += s0;
    out[o + 1] += s1;
    out[o + 2] += s2;
    out[o + 3] += s3;
  }
  for (; j < n; j++) {
    const b0 = j * k;
    let s = 0;
    for (let p = p0; p < p1; p++) s += a[a0 + p] * b[b0 + p];
    out[i * n + j] += s;
  }
}

/**
 * out[m,n] = A[m,k] . B[n,k]^T: every output is a dot product of two contiguous rows, which V8 runs fastest.
 * 4x2 register blocking reuses each loaded value 2-4 times; k is tiled so the rows in use stay in L1.
 * Accumulators are JS numbers (float64), so long dot products do not lose float32 precision.
 */
export function gemmNT(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  out = new Float32Array(m * n),
): Float32Array {
  out.fill(0);
  const kTile = 256;
  for (let p0 = 0; p0 < k; p0 += kTile) {
    const p1 = Math.min(k, p0 + kTile);
    let i = 0;
    for (; i + 3 < m; i += 4) gemmNTFourRows(a, b, out, i, k, n, p0, p1);
    for (; i < m; i++) gemmNTOneRow(a, b, out, i, k, n, p0, p1);
  }
  return out;
}

/** Synchronous general product in plain JS (any transposition), reduced to the fast A.B^T kernel. */
export function gemmSync(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Float32Array {
  const left = transA ? transpose(a, k, m) : a;
  const right = transB ? b : transpose(b, k, n);
  return gemmNT(left, right, m, k, n);
}

/** Plain-JS DenseMath: works in every runtime, ~5 GFLOP/s on one core here. */
export const jsDenseMath: DenseMath = {
  name: 'js',
  async gemm(a, b, m, k, n, transA, transB) {
    return gemmSync(a, b, m, k, n, transA, transB);
  },
};
