/**
 * Antialiased linear (triangle-filter) resampling in plain TypeScript, runtime-neutral: the browser uses it so its
 * pixels match Node's sharp path (libvips' linear reduce, which node-image.ts picks to follow PIL/torchvision), rather
 * than whatever kernel a browser's canvas happens to use. Only the crop window is computed.
 *
 * Like libvips: centre-aligned sample positions, the triangle widened by the shrink factor when reducing (plain
 * bilinear when enlarging), edge pixels replicated, the vertical pass first, each pass rounded to 8 bits.
 */
import type { ResizeGeometry } from './tensor.js';
import { EdgetlError } from '../util/errors.js';

/** Taps of one output position along an axis: first source index and normalized weights. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

function axisTaps(sourceLength: number, targetLength: number, firstOutput: number, outputs: number): Taps {
  const scale = sourceLength / targetLength;
  const support = Math.max(scale, 1);
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outputs);
  const count = new Int32Array(outputs);
  const weights = new Float64Array(outputs * stride);
  for (let o = 0; o < outputs; o++) {
    const centre = (firstOutput + o + 0.5) * scale - 0.5;
    const lo = Math.ceil(centre - support);
    const hi = Math.floor(centre + support);
    let n = 0;
    let sum = 0;
    const base = o * stride;
    for (let i = lo; i <= hi && n < stride; i++) {
      const w = 1 - Math.abs(i - centre) / support;
      if (w <= 0) continue;
      if (n === 0) start[o] = i;
      weights[base + n] = w;
      sum += w;
      n++;
    }
    if (n === 0) {
      start[o] = Math.round(centre);
      weights[base] = 1;
      sum = 1;
      n = 1;
    }
    for (let k = 0; k < n; k++) weights[base + k] /= sum;
    count[o] = n;
  }
  return { start, count, weights, stride };
}

function clampIndex(i: number, length: number): number {
  return i < 0 ? 0 : i >= length ? length - 1 : i;
}

/**
 * Resize `pixels` (row-major, `channels` per pixel; 4 = RGBA with alpha ignored) to `geometry.resizeW x resizeH` and
 * return the `width x height` window at (cropLeft, cropTop) as RGBA bytes (alpha 255).
 */
export function resampleAndCrop(
  pixels: Uint8Array | Uint8ClampedArray,
  sourceWidth: number,
  sourceHeight: number,
  channels: 3 | 4,
  geometry: ResizeGeometry,
  width: number,
  height: number,
): Uint8ClampedArray {
  if (pixels.length !== sourceWidth * sourceHeight * channels) {
    throw new EdgetlError(
      'bad-input',
      `pixel buffer holds ${pixels.length} bytes, expected ${sourceWidth}x${sourceHeight}x${channels}`,
    );
  }
  const rows = axisTaps(sourceHeight, geometry.resizeH, geometry.cropTop, height);
  const cols = axisTaps(sourceWidth, geometry.resizeW, geometry.cropLeft, width);
  // Source columns the horizontal pass will read.
  let colLo = sourceWidth;
  let colHi = -1;
  for (let o = 0; o < width; o++) {
    colLo = Math.min(colLo, clampIndex(cols.start[o], sourceWidth));
    colHi = Math.max(colHi, clampIndex(cols.start[o] + cols.count[o] - 1, sourceWidth));
  }
  const span = colHi - colLo + 1;
  // Vertical pass: `height` rows x `span` columns x 3 channels, rounded to 8 bits like libvips' uchar pipeline.
  const middle = new Uint8ClampedArray(height * span * 3);
  const rowStride = sourceWidth * channels;
  for (let o = 0; o < height; o++) {
    const base = o * rows.stride;
    const n = rows.count[o];
    const first = rows.start[o];
    const outRow = o * span * 3;
    for (let x = 0; x < span; x++) {
      const column = (colLo + x) * channels;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < n; k++) {
        const w = rows.weights[base + k];
        const p = clampIndex(first + k, sourceHeight) * rowStride + column;
        r += w * pixels[p];
        g += w * pixels[p + 1];
        b += w * pixels[p + 2];
      }
      const q = outRow + x * 3;
      middle[q] = Math.round(r);
      middle[q + 1] = Math.round(g);
      middle[q + 2] = Math.round(b);
    }
  }
  // Horizontal pass into RGBA.
  const out = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    const inRow = y * span * 3;
    for (let o = 0; o < width; o++) {
      const base = o * cols.stride;
      const n = cols.count[o];
      const first = cols.start[o];
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < n; k++) {
        const w = cols.weights[base + k];
        const p = inRow + (clampIndex(first + k, sourceWidth) - colLo) * 3;
        r += w * middle[p];
        g += w * middle[p + 1];
        b += w * middle[p + 2];
      }
      const q = (y * width + o) * 4;
      out[q] = Math.round(r);
      out[q + 1] = Math.round(g);
      out[q + 2] = Math.round(b);
      out[q + 3] = 255;
    }
  }
  return out;
}
