/**
 * Pixels to model input, runtime-neutral (Node and browser share this file: it imports nothing from node:* or the DOM).
 *
 * The geometry is pure arithmetic on sizes so that sharp (Node) and canvas (browser) resize and crop to exactly the
 * same pixel grid: the torchvision recipe `Resize(resizeTo)` then `CenterCrop(height, width)`.
 */
import type { PreprocessSpec } from './spec.js';
import { EdgetlError } from '../util/errors.js';

export interface ResizeGeometry {
  /** Size to resize the whole (oriented) image to, before cropping. */
  resizeW: number;
  resizeH: number;
  /** Top-left corner of the `spec.width x spec.height` window cut from the resized image. */
  cropLeft: number;
  cropTop: number;
}

/** Python's round(): halves go to the even neighbour. torchvision's CenterCrop uses it, so we do too. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function assertPositiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new EdgetlError('bad-spec', `preprocessing spec: ${what} must be a positive integer, got ${value}`);
  }
}

/**
 * Where an image of srcW x srcH lands: the resized size and the crop window.
 *
 * `shorter-side` follows torchvision's Resize(int): the shorter side becomes `resizeTo`, the longer one
 * `floor(resizeTo * long / short)`; then CenterCrop with offsets `round((resized - crop) / 2)`. If the resized image
 * would be smaller than the crop in some direction (an odd spec or a very elongated image), it is scaled up just
 * enough to cover the crop, rather than padding with black as torchvision would.
 * `stretch` resizes straight to width x height, no crop.
 */
export function resizeGeometry(srcW: number, srcH: number, spec: PreprocessSpec): ResizeGeometry {
  assertPositiveInteger(srcW, 'source width');
  assertPositiveInteger(srcH, 'source height');
  assertPositiveInteger(spec.width, 'width');
  assertPositiveInteger(spec.height, 'height');
  if (spec.resize === 'stretch') {
    return { resizeW: spec.width, resizeH: spec.height, cropLeft: 0, cropTop: 0 };
  }
  if (spec.resize !== 'shorter-side') {
    throw new EdgetlError('bad-spec', `preprocessing spec: unknown resize mode '${String(spec.resize)}'`);
  }
  assertPositiveInteger(spec.resizeTo, 'resizeTo');
  const shorterSideTo = (target: number): [number, number] =>
    srcW <= srcH ? [target, Math.floor((target * srcH) / srcW)] : [Math.floor((target * srcW) / srcH), target];
  let target = spec.resizeTo;
  let [resizeW, resizeH] = shorterSideTo(target);
  // Grow the shorter side until both sides cover the crop (ends by max(width, height): both sides are >= target).
  while (resizeW < spec.width || resizeH < spec.height) {
    target += 1;
    [resizeW, resizeH] = shorterSideTo(target);
  }
  if (spec.crop === 'none' && (resizeW !== spec.width || resizeH !== spec.height)) {
    throw new EdgetlError(
      'bad-spec',
      `preprocessing spec: resize 'shorter-side' to ${spec.resizeTo} gives ${resizeW}x${resizeH}, not the ` +
        `${spec.width}x${spec.height} input, and crop is 'none'; use crop 'center' or resize 'stretch'`,
    );
  }
  return {
    resizeW,
    resizeH,
    cropLeft: roundHalfEven((resizeW - spec.width) / 2),
    cropTop: roundHalfEven((resizeH - spec.height) / 2),
  };
}

/** Float32 elements one image occupies in the model input (3 x height x width). */
export function tensorElementsPerImage(spec: PreprocessSpec): number {
  return 3 * spec.width * spec.height;
}

/** Where imageToTensor (Node and browser alike) writes: slot `imageIndex` (default 0) of `out` (default: a new one-image tensor). */
export interface TensorSlot {
  out?: Float32Array;
  imageIndex?: number;
}

/** Tensor dims for a batch of `batch` images in the spec's layout. */
export function tensorDims(spec: PreprocessSpec, batch: number): number[] {
  return spec.layout === 'NCHW' ? [batch, 3, spec.height, spec.width] : [batch, spec.height, spec.width, 3];
}

/**
 * For each model channel, the value of each byte 0..255: ((v * scale) - mean[c]) / std[c], rounded once to float32.
 * A table keeps every implementation bit-identical to that formula (no reassociation) and is faster than dividing.
 */
const lookupCache = new Map<string, Float32Array>();

export function normalizationTable(spec: PreprocessSpec): Float32Array {
  // Keyed by value, not by object, so a spec edited in place never reuses a stale table.
  const key = `${spec.scale}|${spec.mean.join(',')}|${spec.std.join(',')}`;
  const cached = lookupCache.get(key);
  if (cached) return cached;
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const std = spec.std[c];
    if (!(std !== 0 && Number.isFinite(std))) {
      throw new EdgetlError('bad-spec', `preprocessing spec: std[${c}] must be a non-zero number, got ${std}`);
    }
    for (let v = 0; v < 256; v++) table[c * 256 + v] = (v * spec.scale - spec.mean[c]) / std;
  }
  if (lookupCache.size > 64) lookupCache.clear();
  lookupCache.set(key, table);
  return table;
}

/** Throws unless image `imageIndex` of a batch tensor for `spec` fits in `out`. */
export function assertTensorSlot(spec: PreprocessSpec, out: Float32Array, imageIndex: number): void {
  const perImage = tensorElementsPerImage(spec);
  if (!Number.isInteger(imageIndex) || imageIndex < 0 || (imageIndex + 1) * perImage > out.length) {
    throw new EdgetlError(
      'bad-input',
      `image index ${imageIndex} does not fit a tensor of ${out.length} elements (${perImage} per image)`,
    );
  }
}

/**
 * Write one image (8-bit RGB or RGBA, row-major, already `spec.width x spec.height`) into slot `imageIndex` of a
 * batch tensor `out`, in the spec's layout and channel order. `mean`/`std` are indexed in model channel order
 * (for a BGR model, index 0 is blue). An alpha channel, if present, is ignored.
 */
export function writePixelsToTensor(
  pixels: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: 3 | 4,
  spec: PreprocessSpec,
  out: Float32Array,
  imageIndex: number,
): void {
  if (width !== spec.width || height !== spec.height) {
    throw new EdgetlError(
      'bad-input',
      `image is ${width}x${height} but the model wants ${spec.width}x${spec.height}: resize it first`,
    );
  }
  if (channels !== 3 && channels !== 4) {
    throw new EdgetlError('bad-input', `pixels must have 3 (RGB) or 4 (RGBA) channels, got ${String(channels)}`);
  }
  if (pixels.length !== width * height * channels) {
    throw new EdgetlError(
      'bad-input',
      `pixel buffer holds ${pixels.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`,
    );
  }
  const perImage = tensorElementsPerImage(spec);
  assertTensorSlot(spec, out, imageIndex);
  const table = normalizationTable(spec);
  // Source channel (R=0, G=1, B=2) feeding model channel c.
  const source = spec.channelOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const s0 = source[0];
  const s1 = source[1];
  const s2 = source[2];
  const base = imageIndex * perImage;
  const pixelCount = width * height;
  if (spec.layout === 'NCHW') {
    const plane1 = base + pixelCount;
    const plane2 = base + 2 * pixelCount;
    for (let p = 0, i = 0; p < pixelCount; p++, i += channels) {
      out[base + p] = table[pixels[i + s0]];
      out[plane1 + p] = table[256 + pixels[i + s1]];
      out[plane2 + p] = table[512 + pixels[i + s2]];
    }
  } else {
    for (let p = 0, i = 0, o = base; p < pixelCount; p++, i += channels, o += 3) {
      out[o] = table[pixels[i + s0]];
      out[o + 1] = table[256 + pixels[i + s1]];
      out[o + 2] = table[512 + pixels[i + s2]];
    }
  }
}
