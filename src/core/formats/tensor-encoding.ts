/**
 * How one weight tensor is stored in a head file's byte buffer (little-endian), per dtype:
 *   float32  4 bytes per value
 *   float16  2 bytes per value (IEEE half)
 *   int8     per-row scales, then the values: `rows` float32 scales (rows = shape[0]; 1 for a 1-d tensor), then
 *            one int8 per value, row-major. value = q * scale[row], q in [-127, 127], scale = max |row| / 127.
 *            A quarter of float32, with the rounding error of each row bounded by half its scale.
 * Runtime-neutral.
 */
import { EdgetlError } from '../util/errors.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';

export const WEIGHT_DTYPES = ['float16', 'float32', 'int8'] as const;
export type WeightDType = (typeof WEIGHT_DTYPES)[number];

export function isWeightDType(value: unknown): value is WeightDType {
  return typeof value === 'string' && (WEIGHT_DTYPES as readonly string[]).includes(value);
}

function rowsOf(shape: readonly number[]): number {
  return shape.length >= 2 ? shape[0] : 1;
}

/** Bytes the tensor takes in the buffer. */
export function encodedByteLength(dtype: WeightDType, shape: readonly number[]): number {
  const size = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'float32') return size * 4;
  if (dtype === 'float16') return size * 2;
  return rowsOf(shape) * 4 + size;
}

/** Write `data` at `offset`. Throws (naming the tensor) for non-finite values and values beyond float16's range. */
export function encodeTensor(
  view: DataView,
  offset: number,
  dtype: WeightDType,
  name: string,
  shape: readonly number[],
  data: Float32Array,
): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]))
      throw new EdgetlError(
        'head-invalid',
        `cannot write head: tensor "${name}" holds a non-finite value (${data[i]}) at index ${i}`,
      );
  }
  if (dtype === 'float32') {
    for (let i = 0; i < data.length; i++) view.setFloat32(offset + i * 4, data[i], true);
  } else if (dtype === 'float16') {
    for (let i = 0; i < data.length; i++) {
      const bits = toFloat16Bits(data[i]);
      if ((bits & 0x7c00) === 0x7c00) {
        throw new EdgetlError(
          'head-invalid',
          `cannot write head: tensor "${name}" value ${data[i]} at index ${i} is beyond the float16 range; write with dtype float32`,
        );
      }
      view.setUint16(offset + i * 2, bits, true);
    }
  } else {
    const rows = rowsOf(shape);
    const width = data.length / rows;
    const values = offset + rows * 4;
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let c = 0; c < width; c++) max = Math.max(max, Math.abs(data[r * width + c]));
      // The scale as stored (float32), so quantizing and dequantizing use the same number.
      const scale = Math.fround(max / 127);
      view.setFloat32(offset + r * 4, scale, true);
      for (let c = 0; c < width; c++) {
        const q = scale > 0 ? Math.max(-127, Math.min(127, Math.round(data[r * width + c] / scale))) : 0;
        view.setInt8(values + r * width + c, q);
      }
    }
  }
}

/**
 * Read a tensor at `offset`. Returns the values, or the index and value of the first non-finite one (a float
 * NaN/Infinity, or an int8 row whose scale is not a finite non-negative number).
 */
export function decodeTensor(
  view: DataView,
  offset: number,
  dtype: WeightDType,
  shape: readonly number[],
): { data: Float32Array } | { bad: number; value: number } {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  if (dtype === 'int8') {
    const rows = rowsOf(shape);
    const width = size / rows;
    const values = offset + rows * 4;
    for (let r = 0; r < rows; r++) {
      const scale = view.getFloat32(offset + r * 4, true);
      if (!Number.isFinite(scale) || scale < 0) return { bad: r * width, value: scale };
      for (let c = 0; c < width; c++) data[r * width + c] = view.getInt8(values + r * width + c) * scale;
    }
    return { data };
  }
  for (let i = 0; i < size; i++) {
    const v =
      dtype === 'float16'
        ? fromFloat16Bits(view.getUint16(offset + i * 2, true))
        : view.getFloat32(offset + i * 4, true);
    if (!Number.isFinite(v)) return { bad: i, value: v };
    data[i] = v;
  }
  return { data };
}
