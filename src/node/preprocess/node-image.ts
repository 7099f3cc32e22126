/**
 * Image files to model-ready pixels in Node, with sharp (libvips). The only Node module that talks to sharp.
 *
 * Choices, and why:
 * - Alpha is flattened onto white. A transparent pixel's colour is invisible and often garbage (black, or left over
 *   from editing); white is what a person sees in a viewer or on a web page, so the model sees the same picture.
 *   The browser implementation must match: fill the canvas white before drawing.
 * - Any colour space (grayscale, CMYK, 16-bit, embedded ICC profiles) becomes 8-bit sRGB through libvips' colour
 *   management, so a CMYK JPEG from print workflows looks like its RGB twin.
 * - EXIF orientation is applied, so a phone photo taken upright is seen upright.
 * - failOn 'error': truncated or corrupt pixel data fails (sharp's 'none' would decode the missing part as grey and
 *   silently poison the embeddings), but harmless libjpeg warnings such as extraneous bytes before a marker, common
 *   in camera files, do not reject an otherwise good photo (sharp's default 'warning' would).
 * - Resize kernel: see `DEFAULT_RESIZE_KERNEL`.
 * - sharp.concurrency(1) and no operation cache: see `configureSharp`.
 */
import { stat } from 'node:fs/promises';
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import {
  assertTensorSlot,
  resizeGeometry,
  tensorElementsPerImage,
  writePixelsToTensor,
  type ResizeGeometry,
  type TensorSlot,
} from '../../core/preprocess/tensor.js';
import { resizePillowFast, resizePillowToTensor } from '../../core/preprocess/pillow-resample-wasm.js';
import { EdgetlError } from '../../core/util/errors.js';

/** Already-decoded pixels (e.g. a camera frame), row-major 8-bit RGB or RGBA. Taken as upright (no EXIF here). */
export interface RawImage {
  rgb: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** A file path, the bytes of an encoded image (JPEG, PNG, ...), or raw pixels. */
export type ImageSource = string | Uint8Array | RawImage;

/**
 * 'pillow': the bit-exact port of Pillow's BILINEAR that torchvision's Resize uses (pillow-resample.ts): the same
 *   tensors the published backbones were evaluated with. It runs on the calling thread, as WebAssembly SIMD kernels
 *   (pillow-resample-wasm.ts; the JS port where SIMD is missing).
 * 'linear': libvips' antialiased linear reduce, in sharp's worker threads; within 1/255 on average of Pillow, but
 *   int8 backbones turn even that into visibly different logits (see `DEFAULT_RESIZE_KERNEL`). Enlargements still
 *   use the Pillow port (libvips enlarges with different pixel centres).
 * 'auto' (the default): 'pillow' up to `pillowMaxPixels` source pixels, 'linear' above, where the exact path costs
 *   about twice libvips' (a 12 MP photo: ~79 CPU-ms against ~41, most of it the full-size decode and its hand-over;
 *   a 0.24 MP one: the resize itself 0.3-0.5 ms; bench/results/2026-12-01/resize.md).
 * The others are libvips kernels, for comparison only.
 */
export type ResizeKernel = 'auto' | 'pillow' | 'linear' | 'cubic' | 'lanczos3' | 'mitchell' | 'nearest';

export interface DecodeOptions {
  /**
   * Refuse images with more pixels than this (width x height of the stored image) before decoding them:
   * a 50 KB PNG can declare 50 000 x 50 000 pixels and take 7.5 GB to decode. Default `DEFAULT_MAX_PIXELS`.
   */
  maxPixels?: number;
  /** Resize kernel; default `DEFAULT_RESIZE_KERNEL` ('auto'). */
  kernel?: ResizeKernel;
  /** With kernel 'auto': the largest source (width x height) resized by the Pillow port. Default 3 000 000. */
  pillowMaxPixels?: number;
  /**
   * Let libjpeg/libwebp downscale while decoding (faster on big photos, a slightly different filter). Default false,
   * for fidelity to the torchvision recipe.
   */
  fastShrinkOnLoad?: boolean;
}

export interface DecodedImage {
  /** Row-major 8-bit sRGB, `width * height * 3` bytes, already resized and cropped to the spec. */
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

/** 100 megapixels: above any phone or DSLR photo (a 61 MP full-frame sensor fits), far below what exhausts memory. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * Measured against Pillow/torchvision (Resize(256) + CenterCrop(224)) on the 15 ../shared/images photos with
 * bench/preprocess-parity.ts, in 8-bit levels: 'pillow' 0 difference (bit-exact, decoding included); libvips
 * 'linear' mean 0.19, max 3; sharp's default 'lanczos3' mean 2.6, max 131 (it sharpens, and enlarges differently).
 * Small as 'linear' looks, the int8 MobileNetV2's logits for the same photos differ between 'linear' and 'pillow'
 * with cosine 0.98 on average (0.96 worst) and 2 of 15 top-1 labels change: quantized models amplify it. Hence
 * exact by default, with libvips taking over only for images big enough to make the exact path costly.
 * JPEG shrink-on-load stays off by default: its DCT-domain downscale is a different filter again.
 */
export const DEFAULT_RESIZE_KERNEL: ResizeKernel = 'auto';

/** Sources up to this many pixels are resized by the Pillow port under kernel 'auto' (1080p frames included). */
export const DEFAULT_PILLOW_MAX_PIXELS = 3_000_000;

/** Decoders edgetl accepts. sharp can also render SVG (and more with a custom libvips); those are refused. */
const ACCEPTED_FORMATS = new Map<string, string>([
  ['jpeg', 'JPEG'],
  ['png', 'PNG'],
  ['webp', 'WebP'],
  ['gif', 'GIF'],
  ['tiff', 'TIFF'],
  ['heif', 'AVIF'],
  ['raw', 'raw pixels'],
]);

/** An image that can't be used, with the reason in plain words. `message` names the file too. */
export class BadImageError extends EdgetlError {
  readonly reason: string;
  constructor(where: string, reason: string, options?: { file?: string; cause?: unknown }) {
    super('bad-image', `${where}: ${reason}`, options);
    this.name = 'BadImageError';
    this.reason = reason;
  }
}

let sharpConfigured = false;

/**
 * Set how sharp uses the machine. Called once automatically with the defaults on the first decode.
 *
 * concurrency 1: libvips threads per image. edgetl decodes several images at once (each sharp call runs on its own
 * libuv worker) while onnxruntime uses the cores for inference; one thread per image gives parallelism across
 * images without oversubscribing a 2-core device, and small photos gain little from intra-image threads anyway.
 * cache off: the pipeline reads each file once, so libvips' operation cache only holds memory.
 */
export function configureSharp(options: { concurrency?: number; cache?: boolean } = {}): void {
  sharp.concurrency(options.concurrency ?? 1);
  sharp.cache(options.cache ?? false);
  sharpConfigured = true;
}

function isRawImage(source: ImageSource): source is RawImage {
  return typeof source === 'object' && !(source instanceof Uint8Array) && 'rgb' in source;
}

function describeSource(source: ImageSource): string {
  if (typeof source === 'string') return source;
  if (isRawImage(source)) return `raw ${source.width}x${source.height} image`;
  return `image buffer (${source.byteLength} bytes)`;
}

/** sharp's messages, translated into what a user can act on. */
function explainSharpError(message: string, format: string | undefined): string {
  const name = format ? (ACCEPTED_FORMATS.get(format) ?? format.toUpperCase()) : 'image';
  if (/unsupported image format/i.test(message)) return 'not an image (unsupported format)';
  if (/premature end|truncated|unexpected end|end of (file|stream)|not enough data|read error/i.test(message)) {
    return `truncated ${name} (the file ends before the image data does)`;
  }
  if (/exceeds pixel limit/i.test(message)) return 'image exceeds the pixel limit';
  if (/Input file is missing/i.test(message)) return 'file not found';
  return `corrupt ${name} (${message.replace(/\s+/g, ' ').trim()})`;
}

function sharpInput(source: ImageSource, maxPixels: number): Sharp {
  const options: SharpOptions = {
    failOn: 'error',
    limitInputPixels: maxPixels,
    autoOrient: true,
    pages: 1,
  };
  if (typeof source === 'string') return sharp(source, options);
  if (isRawImage(source)) {
    const { rgb, width, height, channels } = source;
    if (!(channels === 3 || channels === 4) || rgb.length !== width * height * channels) {
      throw new EdgetlError(
        'bad-input',
        `raw image: ${rgb.length} bytes do not make ${width}x${height} pixels of ${channels} channels`,
      );
    }
    return sharp(rgb, { ...options, raw: { width, height, channels } });
  }
  return sharp(source, options);
}

/**
 * Decode (or take) an image and bring it to the spec's final size as 8-bit sRGB: orient, convert colour, flatten
 * alpha onto white, resize and crop exactly as `resizeGeometry` says. Throws `BadImageError` (code 'bad-image')
 * for anything that isn't a usable image.
 */
export async function decodeToRgb(
  source: ImageSource,
  spec: PreprocessSpec,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  return (await decode(source, spec, options))!;
}

/** Where `decode` writes the model tensor instead of returning pixels. */
interface TensorTarget {
  out: Float32Array;
  index: number;
}

/** A resized image as sharp hands it back (before the RGB conversion). */
interface ResizedPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** Refuses a missing, non-regular or empty file, and an empty buffer, before sharp is asked. */
async function checkSource(source: ImageSource, where: string, file: string | undefined): Promise<void> {
  if (typeof source === 'string') {
    const info = await stat(source).catch(() => undefined);
    if (!info) throw new BadImageError(where, 'file not found', { file });
    if (!info.isFile()) throw new BadImageError(where, 'not a regular file', { file });
    if (info.size === 0) throw new BadImageError(where, 'empty file (0 bytes)', { file });
  } else if (source instanceof Uint8Array && source.byteLength === 0) {
    throw new BadImageError(where, 'empty buffer (0 bytes)');
  }
}

/** The header's format and size checked: an accepted format, and no more pixels than the decompression-bomb guard. */
function checkHeader(meta: Metadata, where: string, file: string | undefined, maxPixels: number): void {
  if (!ACCEPTED_FORMATS.has(meta.format)) {
    throw new BadImageError(
      where,
      `unsupported format (${meta.format}); edgetl reads JPEG, PNG, WebP, GIF, TIFF, AVIF`,
      {
        file,
      },
    );
  }
  const pixels = meta.width * meta.height;
  if (pixels > maxPixels) {
    throw new BadImageError(
      where,
      `image is ${meta.width}x${meta.height} = ${(pixels / 1e6).toFixed(1)} megapixels, above the limit of ` +
        `${(maxPixels / 1e6).toFixed(1)} megapixels (a guard against decompression bombs; raise maxPixels to allow it)`,
      { file },
    );
  }
}

/** `auto`: the exact Pillow resize up to `pillowMaxPixels`, libvips' linear above. */
function resizeKernel(options: DecodeOptions, width: number, height: number): Exclude<ResizeKernel, 'auto'> {
  const requested = options.kernel ?? DEFAULT_RESIZE_KERNEL;
  if (requested !== 'auto') return requested;
  return width * height <= (options.pillowMaxPixels ?? DEFAULT_PILLOW_MAX_PIXELS) ? 'pillow' : 'linear';
}

/** libvips' resize with `kernel`, then the crop to the spec's size. */
async function libvipsResize(
  pipeline: Sharp,
  geometry: ResizeGeometry,
  spec: PreprocessSpec,
  kernel: Exclude<ResizeKernel, 'auto' | 'pillow'>,
  options: DecodeOptions,
): Promise<ResizedPixels> {
  let resizing = pipeline.resize(geometry.resizeW, geometry.resizeH, {
    fit: 'fill',
    kernel,
    fastShrinkOnLoad: options.fastShrinkOnLoad ?? false,
  });
  if (geometry.resizeW !== spec.width || geometry.resizeH !== spec.height) {
    resizing = resizing.extract({
      left: geometry.cropLeft,
      top: geometry.cropTop,
      width: spec.width,
      height: spec.height,
    });
  }
  const { data, info } = await resizing.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** The resized pixels as RGB of the spec's size (returned), or written into the tensor slot of `target`. */
function finishDecode(
  resized: ResizedPixels,
  spec: PreprocessSpec,
  where: string,
  target: TensorTarget | undefined,
): DecodedImage | undefined {
  if (resized.width !== spec.width || resized.height !== spec.height) {
    throw new EdgetlError(
      'internal',
      `${where}: resized to ${resized.width}x${resized.height}, expected ${spec.width}x${spec.height}`,
    );
  }
  const image: DecodedImage = {
    pixels: toRgb(resized.data, resized.channels, spec.width * spec.height),
    width: spec.width,
    height: spec.height,
    channels: 3,
  };
  if (!target) return image;
  writePixelsToTensor(image.pixels, image.width, image.height, 3, spec, target.out, target.index);
  return undefined;
}

/**
 * decodeToRgb, or with `target` the same pixels written as a tensor slot: on the exact (Pillow) path the tensor write
 * is fused into the resize and nothing is returned.
 */
async function decode(
  source: ImageSource,
  spec: PreprocessSpec,
  options: DecodeOptions,
  target?: TensorTarget,
): Promise<DecodedImage | undefined> {
  if (!sharpConfigured) configureSharp();
  const where = describeSource(source);
  const file = typeof source === 'string' ? source : undefined;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(Number.isInteger(maxPixels) && maxPixels > 0)) {
    throw new EdgetlError('bad-input', `maxPixels must be a positive integer, got ${maxPixels}`);
  }
  await checkSource(source, where, file);

  let format: string | undefined;
  try {
    // Header only: dimensions and format, so the pixel limit can be checked (and explained) before decoding.
    const meta = await sharpInput(source, 0).metadata();
    format = meta.format;
    checkHeader(meta, where, file, maxPixels);
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    const geometry = resizeGeometry(width, height, spec);

    let pipeline = sharpInput(source, maxPixels);
    if (meta.hasAlpha) pipeline = pipeline.flatten({ background: { r: 255, g: 255, b: 255 } });
    pipeline = pipeline.toColourspace('srgb');
    const kernel = resizeKernel(options, width, height);
    const enlarges = geometry.resizeW > width || geometry.resizeH > height;
    let resized: ResizedPixels;
    if (kernel !== 'pillow' && !(kernel === 'linear' && enlarges)) {
      resized = await libvipsResize(pipeline, geometry, spec, kernel, options);
    } else {
      const fused = await resizeLikePillow(
        pipeline,
        width,
        height,
        geometry,
        spec,
        {
          reduceFirst: kernel !== 'pillow',
          fastShrinkOnLoad: options.fastShrinkOnLoad ?? false,
        },
        target,
      );
      if (!fused) return undefined;
      resized = fused;
    }
    return finishDecode(resized, spec, where, target);
  } catch (error) {
    if (error instanceof EdgetlError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new BadImageError(where, explainSharpError(message, format), { file, cause: error });
  }
}

/**
 * Resize with the bit-exact Pillow port. Used for enlargements (an image smaller than the target in some direction,
 * e.g. a 259x194 thumbnail going to 341x256), where libvips places pixel centres and treats edges differently from
 * Pillow (4.6/255 mean difference on such a photo with its linear resize; black-blended borders with affine). With
 * `reduceFirst`, axes that shrink are reduced by libvips first, so the exact pass only enlarges a small image.
 * Without it (kernel 'pillow') the whole resize is Pillow's.
 */
async function resizeLikePillow(
  pipeline: Sharp,
  srcW: number,
  srcH: number,
  geometry: ResizeGeometry,
  spec: PreprocessSpec,
  options: { reduceFirst: boolean; fastShrinkOnLoad: boolean },
  target?: TensorTarget,
): Promise<{ data: Uint8Array; width: number; height: number; channels: number } | undefined> {
  const midW = options.reduceFirst ? Math.min(srcW, geometry.resizeW) : srcW;
  const midH = options.reduceFirst ? Math.min(srcH, geometry.resizeH) : srcH;
  const stage =
    midW !== srcW || midH !== srcH
      ? pipeline.resize(midW, midH, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: options.fastShrinkOnLoad })
      : pipeline;
  const { data, info } = await stage.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== midW || info.height !== midH) {
    throw new EdgetlError('internal', `reduced to ${info.width}x${info.height}, expected ${midW}x${midH}`);
  }
  const crop = { left: geometry.cropLeft, top: geometry.cropTop, width: spec.width, height: spec.height };
  if (target && (info.channels === 3 || info.channels === 4)) {
    resizePillowToTensor(
      data,
      midW,
      midH,
      info.channels,
      geometry.resizeW,
      geometry.resizeH,
      crop,
      spec,
      target.out,
      target.index,
    );
    return undefined;
  }
  const out = resizePillowFast(data, midW, midH, info.channels, geometry.resizeW, geometry.resizeH, crop);
  return { data: out, width: spec.width, height: spec.height, channels: info.channels };
}

/** libvips hands back 3 bands for sRGB; gray (1) or anything with a leftover alpha band is brought to RGB here. */
function toRgb(data: Uint8Array, channels: number, pixelCount: number): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, pixelCount * 3);
  const rgb = new Uint8Array(pixelCount * 3);
  for (let p = 0; p < pixelCount; p++) {
    if (channels <= 2) {
      const v = data[p * channels];
      rgb[p * 3] = v;
      rgb[p * 3 + 1] = v;
      rgb[p * 3 + 2] = v;
    } else {
      rgb[p * 3] = data[p * channels];
      rgb[p * 3 + 1] = data[p * channels + 1];
      rgb[p * 3 + 2] = data[p * channels + 2];
    }
  }
  return rgb;
}

/**
 * Decode `source` into a fresh one-image model tensor (`tensorElementsPerImage(spec)` floats, the spec's layout and
 * normalization): what decode workers hand back, so the tensor write happens inside the (exact) resize, off the
 * thread that feeds inference.
 */
export async function decodeToTensor(
  source: ImageSource,
  spec: PreprocessSpec,
  options: DecodeOptions = {},
): Promise<Float32Array> {
  const out = new Float32Array(tensorElementsPerImage(spec));
  await decode(source, spec, options, { out, index: 0 });
  return out;
}

/**
 * Decode `source` into slot `imageIndex` of a batch tensor (allocated for one image when `out` is omitted); see
 * `writePixelsToTensor`. The same signature as the browser's (preprocess/canvas.ts).
 */
export async function imageToTensor(
  source: ImageSource,
  spec: PreprocessSpec,
  options: DecodeOptions & TensorSlot = {},
): Promise<Float32Array> {
  const { out: given, imageIndex, ...decodeOptions } = options;
  const out = given ?? new Float32Array(tensorElementsPerImage(spec));
  const index = imageIndex ?? 0;
  assertTensorSlot(spec, out, index);
  await decode(source, spec, decodeOptions, { out, index });
  return out;
}
