/**
 * Pillow's BILINEAR resize, reproduced exactly in plain TypeScript (runtime-neutral). torchvision's Resize calls it,
 * so matching it keeps edgetl's tensors equal to the ones a backbone was evaluated with.
 *
 * Pillow (src/libImaging/Resample.c): separable, horizontal pass first then vertical, each pass rounding to 8 bits;
 * a triangle filter whose support widens with the downscale factor (antialiasing), pixel centres at +0.5, the window
 * clamped to the image and renormalized at the edges, and weights in 22-bit fixed point.
 *
 * Node uses it for enlargements (small images), where libvips' resamplers place pixel centres and treat edges differently.
 * Large downscales stay in libvips, which is much faster there and within 1/255 on average of Pillow.
 */

export const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
export const ONE = 1 << PRECISION_BITS;

export interface Coefficients {
  /** Per output index: first input index and tap count. */
  start: Int32Array;
  count: Int32Array;
  /** Fixed-point weights, `taps` per output index. */
  weights: Int32Array;
  taps: number;
}

function bilinearFilter(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

export function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const inverse = 1 / filterScale;
    // C's (int) truncates toward zero; the operands here are >= -support + 0.5, and Pillow clamps below at 0.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * inverse);
      k[x] = w;
      total += w;
    }
    for (let x = 0; x < taps; x++) {
      const w = x < xmax && total !== 0 ? k[x] / total : 0;
      weights[xx * taps + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, taps };
}

function clip8(value: number): number {
  if (value >= ONE * 256) return 255;
  if (value <= 0) return 0;
  return value >> PRECISION_BITS;
}

/** Horizontal pass for output columns [x0, x0 + outCount) of a resize to outWidth, over rows [y0, y0 + rows). */
function horizontal(
  src: Uint8Array,
  width: number,
  channels: number,
  outWidth: number,
  x0: number,
  outCount: number,
  y0: number,
  rows: number,
): Uint8Array {
  const { start, count, weights, taps } = coefficients(width, outWidth);
  const out = new Uint8Array(outCount * rows * channels);
  if (channels === 3) {
    // The common case, unrolled over the three channels (about twice as fast as the general loop).
    for (let y = 0; y < rows; y++) {
      const row = (y0 + y) * width * 3;
      let o3 = y * outCount * 3;
      for (let o = 0; o < outCount; o++, o3 += 3) {
        const xx = x0 + o;
        const n = count[xx];
        const k = xx * taps;
        let p = row + start[xx] * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const w = weights[k + x];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        out[o3] = clip8(s0);
        out[o3 + 1] = clip8(s1);
        out[o3 + 2] = clip8(s2);
      }
    }
    return out;
  }
  for (let y = 0; y < rows; y++) {
    const row = (y0 + y) * width * channels;
    for (let o = 0; o < outCount; o++) {
      const xx = x0 + o;
      const first = start[xx];
      const n = count[xx];
      const k = xx * taps;
      for (let c = 0; c < channels; c++) {
        let sum = HALF;
        for (let x = 0; x < n; x++) sum += src[row + (first + x) * channels + c] * weights[k + x];
        out[(y * outCount + o) * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

/** Vertical pass for output rows [y0, y0 + outCount) of a resize to outHeight; `src` holds rows from `srcRow0`. */
function vertical(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outHeight: number,
  y0: number,
  outCount: number,
  srcRow0: number,
): Uint8Array {
  const { start, count, weights, taps } = coefficients(height, outHeight);
  const stride = width * channels;
  const out = new Uint8Array(outCount * stride);
  // Row by row accumulation: sequential memory access. Sums stay below 2^31 (255 x 2^22 plus rounding).
  const acc = new Int32Array(stride);
  for (let o = 0; o < outCount; o++) {
    const yy = y0 + o;
    const first = start[yy] - srcRow0;
    const n = count[yy];
    const k = yy * taps;
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const w = weights[k + y];
      const row = (first + y) * stride;
      for (let i = 0; i < stride; i++) acc[i] += src[row + i] * w;
    }
    const base = o * stride;
    for (let i = 0; i < stride; i++) out[base + i] = clip8(acc[i]);
  }
  return out;
}

/** Throws RangeError unless `src` holds width x height x channels bytes and `crop` lies inside the output. */
export function checkResizeArguments(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  crop: CropWindow,
): void {
  if (src.length !== width * height * channels) {
    throw new RangeError(`resizeBilinearPillow: ${src.length} bytes are not ${width}x${height}x${channels}`);
  }
  if (crop.left < 0 || crop.top < 0 || crop.left + crop.width > outWidth || crop.top + crop.height > outHeight) {
    throw new RangeError(`resizeBilinearPillow: crop ${JSON.stringify(crop)} is outside ${outWidth}x${outHeight}`);
  }
}

/** Source rows the vertical pass reads for the crop's rows (`vertical` undefined: no vertical pass). */
export function sourceRows(
  vertical: Coefficients | undefined,
  crop: CropWindow,
): { rowFirst: number; rowCount: number } {
  if (!vertical) return { rowFirst: crop.top, rowCount: crop.height };
  const { start, count } = vertical;
  let rowFirst = start[crop.top];
  let rowEnd = rowFirst;
  for (let yy = crop.top; yy < crop.top + crop.height; yy++) {
    rowFirst = Math.min(rowFirst, start[yy]);
    rowEnd = Math.max(rowEnd, start[yy] + count[yy]);
  }
  return { rowFirst, rowCount: rowEnd - rowFirst };
}

export interface CropWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Resize 8-bit interleaved pixels (any channel count) to outWidth x outHeight exactly as Pillow's
 * `Image.resize(size, Image.BILINEAR)` does, and return `crop` of the result (default: all of it). Only the pixels
 * the crop needs are computed; they equal Pillow's full resize followed by `crop`. A pass whose size doesn't change
 * is skipped, as in Pillow.
 */
export function resizeBilinearPillow(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  crop: CropWindow = { left: 0, top: 0, width: outWidth, height: outHeight },
): Uint8Array {
  checkResizeArguments(src, width, height, channels, outWidth, outHeight, crop);
  const { rowFirst, rowCount } = sourceRows(outHeight !== height ? coefficients(height, outHeight) : undefined, crop);
  let data: Uint8Array;
  if (outWidth !== width) {
    data = horizontal(src, width, channels, outWidth, crop.left, crop.width, rowFirst, rowCount);
  } else {
    // No horizontal pass: take the crop's columns of the rows needed.
    data = new Uint8Array(crop.width * rowCount * channels);
    for (let y = 0; y < rowCount; y++) {
      const from = ((rowFirst + y) * width + crop.left) * channels;
      data.set(src.subarray(from, from + crop.width * channels), y * crop.width * channels);
    }
  }
  if (outHeight !== height)
    return vertical(data, crop.width, height, channels, outHeight, crop.top, crop.height, rowFirst);
  return data;
}
