/**
 * Pixels to model input in the browser (page or worker): the canvas counterpart of the sharp path.
 *
 * Geometry and normalization are the shared runtime-neutral code (tensor.ts), so the browser resizes to the same
 * size, cuts the same crop window and applies the same per-channel table as Node. By default (`match-node`) the
 * canvas only decodes and the resampling is Node's own too (the Pillow BILINEAR port up to 3 MP, resample.ts's
 * libvips-like reduce above); only the decoders differ. The other `resizeQuality` values hand the resize to the
 * browser's createImageBitmap kernel. Embeddings agree to cosine >= 0.99 (test/web/browser-vs-node.test.ts).
 */
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import {
  assertTensorSlot,
  resizeGeometry,
  tensorElementsPerImage,
  writePixelsToTensor,
  type ResizeGeometry,
  type TensorSlot,
} from '../../core/preprocess/tensor.js';
import { resampleAndCrop } from '../../core/preprocess/resample.js';
import { resizePillowFast, resizePillowToTensor } from '../../core/preprocess/pillow-resample-wasm.js';

/**
 * Sources up to this many pixels are resized by the Pillow port, larger ones by the libvips-like filter: the same
 * split as Node's kernel 'auto' (node-image.ts DEFAULT_PILLOW_MAX_PIXELS; a test keeps the two equal).
 */
export const BROWSER_PILLOW_MAX_PIXELS = 3_000_000;
import { EdgetlError, describeError } from '../../core/util/errors.js';

/** Anything a page can hand over: a photo, a camera frame, a canvas, a file. */
export type BrowserImageSource =
  | HTMLImageElement
  | HTMLVideoElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | ImageBitmap
  | ImageData
  | VideoFrame
  | Blob;

type Drawable = Exclude<BrowserImageSource, Blob | ImageData>;

/**
 * How to resample. `match-node` (default): the canvas only decodes (orientation, sRGB, alpha on white) and edgetl's
 * own resamplers resize exactly as Node does (Pillow port up to 3 MP, libvips-like filter above). The others hand the resize to the browser's
 * createImageBitmap (`resizeQuality`): faster on huge photos, but a different kernel (embeddings drift, see README).
 */
export type CanvasResizeQuality = 'match-node' | 'pixelated' | 'low' | 'medium' | 'high';

export interface CanvasPreprocessOptions {
  /** Name for error messages (a File's own name by default). */
  name?: string;
  resizeQuality?: CanvasResizeQuality;
}

/** Width and height as they will be drawn (EXIF orientation applied for decoded files). */
function drawableSize(source: Drawable): { width: number; height: number } {
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) {
    return { width: source.naturalWidth, height: source.naturalHeight };
  }
  if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) {
    return { width: source.videoWidth, height: source.videoHeight };
  }
  if (typeof VideoFrame !== 'undefined' && source instanceof VideoFrame) {
    return { width: source.displayWidth, height: source.displayHeight };
  }
  const sized = source as { width: number; height: number };
  return { width: sized.width, height: sized.height };
}

/** Decodes a Blob (EXIF orientation applied, colours converted to sRGB) or wraps ImageData; other sources pass through. */
async function toDrawable(source: BrowserImageSource, name: string): Promise<{ drawable: Drawable; owned: boolean }> {
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    try {
      const bitmap = await createImageBitmap(source, {
        imageOrientation: 'from-image',
        colorSpaceConversion: 'default',
        premultiplyAlpha: 'none',
      });
      return { drawable: bitmap, owned: true };
    } catch (error) {
      throw new EdgetlError('bad-image', `${name}: not an image this browser can decode (${describeError(error)})`, {
        file: name,
      });
    }
  }
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) {
    return { drawable: await createImageBitmap(source, { premultiplyAlpha: 'none' }), owned: true };
  }
  return { drawable: source as Drawable, owned: false };
}

type ScratchContext = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

/** Reused canvases, one per role, so alternating sizes (full decode, crop) do not reallocate every image. */
const scratch = new Map<string, { canvas: OffscreenCanvas | HTMLCanvasElement; context: ScratchContext }>();

/** An OffscreenCanvas, or on a page of a browser without one (the main-thread fallback), a detached canvas element. */
function newScratchCanvas(
  width: number,
  height: number,
): { canvas: OffscreenCanvas | HTMLCanvasElement; context: ScratchContext } {
  const options: CanvasRenderingContext2DSettings = { willReadFrequently: true, alpha: true };
  if (typeof OffscreenCanvas !== 'undefined') {
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', options);
    if (context) return { canvas, context };
  } else if (typeof document !== 'undefined') {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d', options);
    if (context) return { canvas, context };
  }
  throw new EdgetlError(
    'no-canvas',
    'this browser gives no 2D canvas context (neither OffscreenCanvas nor a page canvas)',
  );
}

function scratchContext2d(role: 'decode' | 'crop', width: number, height: number): ScratchContext {
  let entry = scratch.get(role);
  if (!entry) {
    entry = newScratchCanvas(width, height);
    scratch.set(role, entry);
  }
  if (entry.canvas.width !== width || entry.canvas.height !== height) {
    entry.canvas.width = width;
    entry.canvas.height = height;
  }
  return entry.context;
}

/**
 * The spec-sized RGBA pixels of one image: resize to the shared geometry, then cut the crop window.
 * Transparent pixels are composited over white, as the sharp path flattens alpha onto white (node-image.ts).
 */
export async function imageToPixels(
  source: BrowserImageSource,
  spec: PreprocessSpec,
  options: CanvasPreprocessOptions = {},
): Promise<{ pixels: Uint8ClampedArray; geometry: ResizeGeometry; sourceWidth: number; sourceHeight: number }> {
  return (await preprocess(source, spec, options)) as PixelsResult;
}

type PixelsResult = { pixels: Uint8ClampedArray; geometry: ResizeGeometry; sourceWidth: number; sourceHeight: number };

/**
 * imageToPixels, or with `target` the tensor slot written directly: on the exact (Pillow) path the tensor write is
 * fused into the WebAssembly resize and no pixels are returned.
 */
async function preprocess(
  source: BrowserImageSource,
  spec: PreprocessSpec,
  options: CanvasPreprocessOptions,
  target?: { out: Float32Array; index: number },
): Promise<PixelsResult | undefined> {
  const name = options.name ?? (typeof File !== 'undefined' && source instanceof File ? source.name : 'image');
  const { drawable, owned } = await toDrawable(source, name);
  try {
    const { width: sourceWidth, height: sourceHeight } = drawableSize(drawable);
    if (!sourceWidth || !sourceHeight) {
      throw new EdgetlError('bad-image', `${name}: the image has no pixels yet (not loaded, or a camera not started)`, {
        file: name,
      });
    }
    const geometry = resizeGeometry(sourceWidth, sourceHeight, spec);
    const quality = options.resizeQuality ?? 'match-node';
    if (quality === 'match-node') {
      // Full-size decode flattened onto white (as sharp flattens before resizing), then the shared resampler.
      const context = scratchContext2d('decode', sourceWidth, sourceHeight);
      context.globalCompositeOperation = 'source-over';
      context.fillStyle = '#fff';
      context.fillRect(0, 0, sourceWidth, sourceHeight);
      context.drawImage(drawable, 0, 0, sourceWidth, sourceHeight);
      const full = context.getImageData(0, 0, sourceWidth, sourceHeight, { colorSpace: 'srgb' }).data;
      // The same resampler Node picks for this size: Pillow's BILINEAR (bit-exact port) up to 3 MP, above that
      // libvips' linear reduce (approximated by resample.ts).
      const exact = sourceWidth * sourceHeight <= BROWSER_PILLOW_MAX_PIXELS;
      const bytes = new Uint8Array(full.buffer, full.byteOffset, full.byteLength);
      const crop = { left: geometry.cropLeft, top: geometry.cropTop, width: spec.width, height: spec.height };
      if (exact && target) {
        resizePillowToTensor(
          bytes,
          sourceWidth,
          sourceHeight,
          4,
          geometry.resizeW,
          geometry.resizeH,
          crop,
          spec,
          target.out,
          target.index,
        );
        return undefined;
      }
      const pixels = exact
        ? new Uint8ClampedArray(
            resizePillowFast(bytes, sourceWidth, sourceHeight, 4, geometry.resizeW, geometry.resizeH, crop).buffer,
          )
        : resampleAndCrop(full, sourceWidth, sourceHeight, 4, geometry, spec.width, spec.height);
      return { pixels, geometry, sourceWidth, sourceHeight };
    }
    let resized: ImageBitmap | undefined;
    try {
      // createImageBitmap's resize runs the browser's own kernel; drawImage scaling is the fallback for browsers
      // that ignore resize options.
      resized = await createImageBitmap(drawable, {
        resizeWidth: geometry.resizeW,
        resizeHeight: geometry.resizeH,
        resizeQuality: quality,
        premultiplyAlpha: 'none',
        colorSpaceConversion: 'default',
      });
    } catch {
      resized = undefined;
    }
    const context = scratchContext2d('crop', spec.width, spec.height);
    context.globalCompositeOperation = 'source-over';
    context.fillStyle = '#fff';
    context.fillRect(0, 0, spec.width, spec.height);
    context.imageSmoothingEnabled = quality !== 'pixelated';
    context.imageSmoothingQuality = quality === 'pixelated' ? 'low' : quality;
    if (resized && resized.width === geometry.resizeW && resized.height === geometry.resizeH) {
      context.drawImage(resized, -geometry.cropLeft, -geometry.cropTop);
    } else {
      context.drawImage(drawable, -geometry.cropLeft, -geometry.cropTop, geometry.resizeW, geometry.resizeH);
    }
    resized?.close();
    const pixels = context.getImageData(0, 0, spec.width, spec.height, { colorSpace: 'srgb' }).data;
    return { pixels, geometry, sourceWidth, sourceHeight };
  } finally {
    if (owned && 'close' in drawable && typeof drawable.close === 'function') drawable.close();
  }
}

/** One image into slot `imageIndex` of a batch tensor (allocated for one image when `out` is omitted). */
export async function imageToTensor(
  source: BrowserImageSource,
  spec: PreprocessSpec,
  options: CanvasPreprocessOptions & TensorSlot = {},
): Promise<Float32Array> {
  const out = options.out ?? new Float32Array(tensorElementsPerImage(spec));
  const index = options.imageIndex ?? 0;
  assertTensorSlot(spec, out, index);
  const result = await preprocess(source, spec, options, { out, index });
  if (result) writePixelsToTensor(result.pixels, spec.width, spec.height, 4, spec, out, index);
  return out;
}
