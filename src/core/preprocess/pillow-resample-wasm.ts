/**
 * Pillow's BILINEAR resize at native speed: the integer arithmetic of pillow-resample.ts (itself Pillow's
 * ImagingResampleHorizontal/Vertical 8-bit paths) as WebAssembly SIMD kernels, bit-exact with it, with the tensor
 * write (scale, mean/std, channel order, NCHW/NHWC) fused into the vertical pass. Runtime-neutral: Node, workers and
 * browsers compile the same bytes (built here by wasm-encoder.ts). Where WebAssembly SIMD is missing, the JS port
 * and writePixelsToTensor do the same work, so results never depend on which path ran.
 *
 * Exactness: the same 22-bit fixed-point weights (computed once in JS by `coefficients`), the same accumulation
 * (sum of pixel x weight + 2^21 in 32-bit integers: bilinear weights are non-negative, so sums stay below 2^31), the
 * same clip to 8 bits after each pass (an arithmetic shift, then saturating narrowing, which is clip8), horizontal
 * pass first. An axis whose size does not change runs a one-tap identity pass ((p << 22) + 2^21) >> 22 = p, which is
 * what Pillow's skipped pass leaves.
 */
import {
  checkResizeArguments,
  coefficients,
  ONE,
  PRECISION_BITS,
  resizeBilinearPillow,
  sourceRows,
  type Coefficients,
  type CropWindow,
} from './pillow-resample.js';
import { assertTensorSlot, normalizationTable, tensorElementsPerImage, writePixelsToTensor } from './tensor.js';
import type { PreprocessSpec } from './spec.js';
import { encodeModule, forLoop, doCountDown, op, i32, v128, type Code, type FunctionDef } from './wasm-encoder.js';

const HALF = 1 << (PRECISION_BITS - 1);

/** Accumulator start value in every lane. */
const splatHalf = (local: number): Code => [...op.i32(HALF), ...op.i32x4Splat, ...op.set(local)];
/** (a >> 22, b >> 22) narrowed to 8 i16 lanes, saturating: two accumulators' worth of clip8 (first half). */
const shiftNarrow = (a: number, b: number): Code => [
  ...op.get(a),
  ...op.i32(PRECISION_BITS),
  ...op.i32x4ShrS,
  ...op.get(b),
  ...op.i32(PRECISION_BITS),
  ...op.i32x4ShrS,
  ...op.i16x8NarrowI32x4S,
];
/** local += value * weight (i32x4). */
const macInto = (acc: number, value: Code, weight: number): Code => [
  ...op.get(acc),
  ...value,
  ...op.get(weight),
  ...op.i32x4Mul,
  ...op.i32x4Add,
  ...op.set(acc),
];
const addTo = (local: number, amount: Code): Code => [...op.get(local), ...amount, ...op.add, ...op.set(local)];
/** base + load(table + index * 4) */
const loadAt = (table: number, index: number): Code => [
  ...op.get(table),
  ...op.get(index),
  ...op.i32(2),
  ...op.shl,
  ...op.add,
  ...op.load(),
];

/**
 * horizontal(src, srcStride, rows, dst, outCount, channels, starts, counts, weights, tapStride): for each of `rows`
 * rows and each output pixel o, sum the `counts[o]` pixels from byte `starts[o]` of the row with weights
 * `weights + o * tapStride`; one pixel (3 or 4 channels) per i32x4, written as 4 bytes (the 4th of an RGB pixel is
 * overwritten by the next pixel; the buffers have slack).
 */
function horizontalKernel(): FunctionDef {
  const [src, srcStride, rows, dst, outCount, channels, starts, counts, weights, tapStride] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
  ];
  const [y, o, p, n, wp, d] = [10, 11, 12, 13, 14, 15];
  const [acc, half, w] = [16, 17, 18];
  return {
    name: 'horizontal',
    params: [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32],
    locals: [i32, i32, i32, i32, i32, i32, v128, v128, v128],
    body: [
      splatHalf(half),
      op.get(dst),
      op.set(d),
      forLoop(
        y,
        op.i32(0),
        op.get(rows),
        1,
        forLoop(
          o,
          op.i32(0),
          op.get(outCount),
          1,
          op.get(src),
          loadAt(starts, o),
          op.add,
          op.set(p),
          loadAt(counts, o),
          op.set(n),
          op.get(weights),
          op.get(o),
          op.get(tapStride),
          op.mul,
          op.add,
          op.set(wp),
          op.get(half),
          op.set(acc),
          doCountDown(
            n,
            op.get(wp),
            op.load32Splat(),
            op.set(w),
            macInto(acc, [...op.get(p), ...op.load32Zero(), ...op.i16x8ExtendLowU8, ...op.i32x4ExtendLowU16], w),
            addTo(p, op.get(channels)),
            addTo(wp, op.i32(4)),
          ),
          op.get(d),
          shiftNarrow(acc, acc),
          op.get(acc), // any second operand: only the low 4 bytes are stored
          op.i8x16NarrowI16x8U,
          op.store32Lane(0),
          addTo(d, op.get(channels)),
        ),
        addTo(src, op.get(srcStride)),
      ),
    ],
  };
}

/** Fields of the tensor-write arguments block (i32 each), read by writeRow. */
const TensorArgs = {
  width: 0,
  channels: 4,
  out: 8,
  rowStep: 12,
  pixelStep: 16,
  channelStep: 20,
  s0: 24,
  s1: 28,
  s2: 32,
  table: 36,
};
/** Where the block sits (not 0: vertical takes its address, 0 meaning no tensor write). */
const TENSOR_ARGS_ADDRESS = 16;
const TENSOR_ARGS_BYTES = 64;

/**
 * writeRow(pixels, args, y): row y of the tensor from one row of 8-bit pixels, through the normalization table
 * (3 x 256 float32: the exact values writePixelsToTensor uses).
 */
function writeRowKernel(): FunctionDef {
  const [pixels, args, y] = [0, 1, 2];
  const [x, out0, out1, out2, p0, p1, p2, channels, pixelStep, table, width] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const field = (offset: number): Code => [...op.get(args), ...op.load(offset)];
  const put = (out: number, p: number, tableOffset: number): Code => [
    ...op.get(out),
    ...op.get(table),
    ...op.get(p),
    ...op.load8u(),
    ...op.i32(2),
    ...op.shl,
    ...op.add,
    ...op.f32load(tableOffset),
    ...op.f32store(),
  ];
  return {
    name: 'writeRow',
    params: [i32, i32, i32],
    locals: [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32],
    body: [
      field(TensorArgs.out),
      op.get(y),
      field(TensorArgs.rowStep),
      op.mul,
      op.add,
      op.set(out0),
      op.get(out0),
      field(TensorArgs.channelStep),
      op.add,
      op.set(out1),
      op.get(out1),
      field(TensorArgs.channelStep),
      op.add,
      op.set(out2),
      field(TensorArgs.channels),
      op.set(channels),
      field(TensorArgs.pixelStep),
      op.set(pixelStep),
      field(TensorArgs.table),
      op.set(table),
      field(TensorArgs.width),
      op.set(width),
      op.get(pixels),
      field(TensorArgs.s0),
      op.add,
      op.set(p0),
      op.get(pixels),
      field(TensorArgs.s1),
      op.add,
      op.set(p1),
      op.get(pixels),
      field(TensorArgs.s2),
      op.add,
      op.set(p2),
      forLoop(
        x,
        op.i32(0),
        op.get(width),
        1,
        put(out0, p0, 0),
        put(out1, p1, 1024),
        put(out2, p2, 2048),
        addTo(p0, op.get(channels)),
        addTo(p1, op.get(channels)),
        addTo(p2, op.get(channels)),
        addTo(out0, op.get(pixelStep)),
        addTo(out1, op.get(pixelStep)),
        addTo(out2, op.get(pixelStep)),
      ),
    ],
  };
}

/**
 * vertical(src, stride, dst, dstStep, outRows, starts, counts, weights, tapStride, tensorArgs): output row o sums
 * `counts[o]` rows from byte `starts[o]` of src, 16 bytes at a time (four i32x4 accumulators), into dst (then
 * dst += dstStep). With tensorArgs != 0 each finished row also goes through writeRow (function index 1) as tensor
 * row o; dstStep 0 then reuses one scratch row.
 */
function verticalKernel(writeRowIndex: number): FunctionDef {
  const [src, stride, dst, dstStep, outRows, starts, counts, weights, tapStride, tensorArgs] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
  ];
  const [o, i, base, n, p, wp, wbase, n0] = [10, 11, 12, 13, 14, 15, 16, 17];
  const [a0, a1, a2, a3, v, w, half, part] = [18, 19, 20, 21, 22, 23, 24, 25];
  const widen = (extend8: Code, extend16: Code): Code => [...op.get(v), ...extend8, ...extend16];
  return {
    name: 'vertical',
    params: [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32],
    locals: [i32, i32, i32, i32, i32, i32, i32, i32, v128, v128, v128, v128, v128, v128, v128, v128],
    body: [
      splatHalf(half),
      forLoop(
        o,
        op.i32(0),
        op.get(outRows),
        1,
        op.get(src),
        loadAt(starts, o),
        op.add,
        op.set(base),
        loadAt(counts, o),
        op.set(n0),
        op.get(weights),
        op.get(o),
        op.get(tapStride),
        op.mul,
        op.add,
        op.set(wbase),
        forLoop(
          i,
          op.i32(0),
          op.get(stride),
          16,
          op.get(half),
          op.set(a0),
          op.get(half),
          op.set(a1),
          op.get(half),
          op.set(a2),
          op.get(half),
          op.set(a3),
          op.get(base),
          op.get(i),
          op.add,
          op.set(p),
          op.get(wbase),
          op.set(wp),
          op.get(n0),
          op.set(n),
          doCountDown(
            n,
            op.get(p),
            op.v128load(),
            op.set(v),
            op.get(wp),
            op.load32Splat(),
            op.set(w),
            macInto(a0, widen(op.i16x8ExtendLowU8, op.i32x4ExtendLowU16), w),
            macInto(a1, widen(op.i16x8ExtendLowU8, op.i32x4ExtendHighU16), w),
            macInto(a2, widen(op.i16x8ExtendHighU8, op.i32x4ExtendLowU16), w),
            macInto(a3, widen(op.i16x8ExtendHighU8, op.i32x4ExtendHighU16), w),
            addTo(p, op.get(stride)),
            addTo(wp, op.i32(4)),
          ),
          op.get(dst),
          op.get(i),
          op.add,
          shiftNarrow(a0, a1),
          op.set(part),
          op.get(part),
          shiftNarrow(a2, a3),
          op.i8x16NarrowI16x8U,
          op.v128store(),
        ),
        op.get(tensorArgs),
        [0x04, 0x40], // if
        op.get(dst),
        op.get(tensorArgs),
        op.get(o),
        [0x10, writeRowIndex],
        [0x0b],
        addTo(dst, op.get(dstStep)),
      ),
    ],
  };
}

interface Kernels {
  memory: WebAssembly.Memory;
  horizontal(
    src: number,
    srcStride: number,
    rows: number,
    dst: number,
    outCount: number,
    channels: number,
    starts: number,
    counts: number,
    weights: number,
    tapStride: number,
  ): void;
  vertical(
    src: number,
    stride: number,
    dst: number,
    dstStep: number,
    outRows: number,
    starts: number,
    counts: number,
    weights: number,
    tapStride: number,
    tensorArgs: number,
  ): void;
}

/** The module bytes (exported for tests and for checking what a browser accepts). */
export function pillowResampleWasmBytes(): Uint8Array<ArrayBuffer> {
  // Function indices: horizontal 0, writeRow 1, vertical 2 (vertical calls writeRow).
  return encodeModule([horizontalKernel(), writeRowKernel(), verticalKernel(1)]);
}

let kernelsOnce: Kernels | null | undefined;

/** Compiled once per thread (a few hundred bytes: synchronous compilation is allowed everywhere, main thread included). */
function kernels(): Kernels | null {
  if (kernelsOnce !== undefined) return kernelsOnce;
  kernelsOnce = null;
  try {
    if (typeof WebAssembly === 'object') {
      const bytes = pillowResampleWasmBytes();
      if (WebAssembly.validate(bytes)) {
        const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Kernels;
        kernelsOnce = exports;
      }
    }
  } catch {
    kernelsOnce = null;
  }
  return kernelsOnce;
}

let forcedFallback = false;

/**
 * Whether the WebAssembly SIMD kernels run here ('wasm-simd') or the JS port does ('js'). `useWasm(false)` forces
 * the JS path (tests and benchmarks compare the two).
 */
export function pillowResampleBackend(): 'wasm-simd' | 'js' {
  return !forcedFallback && kernels() ? 'wasm-simd' : 'js';
}

export function useWasm(enabled: boolean): void {
  forcedFallback = !enabled;
}

/** Coefficients for the sizes a folder of photos repeats (a few sizes, many images). */
const coefficientCache = new Map<string, Coefficients>();
function cachedCoefficients(inSize: number, outSize: number): Coefficients {
  const key = `${inSize}>${outSize}`;
  let found = coefficientCache.get(key);
  if (!found) {
    found = coefficients(inSize, outSize);
    if (coefficientCache.size >= 32) coefficientCache.clear();
    coefficientCache.set(key, found);
  }
  return found;
}

const SLACK = 64;
const align16 = (n: number): number => (n + 15) & ~15;

/** Bump allocator over the kernels' memory for one call; grows the memory when needed. */
class Arena {
  private next = TENSOR_ARGS_ADDRESS + TENSOR_ARGS_BYTES;
  alloc(bytes: number): number {
    const at = this.next;
    this.next = align16(at + bytes + SLACK);
    return at;
  }
  commit(memory: WebAssembly.Memory): void {
    const missing = this.next - memory.buffer.byteLength;
    if (missing > 0) memory.grow(Math.ceil(missing / 65536));
  }
}

interface Plan {
  arena: Arena;
  channels: number;
  width: number;
  rowFirst: number;
  rowCount: number;
  crop: CropWindow;
  h: Coefficients | undefined;
  v: Coefficients | undefined;
  srcAt: number;
  midAt: number;
  hStarts: number;
  hCounts: number;
  hWeights: number;
  hTaps: number;
  vStarts: number;
  vCounts: number;
  vWeights: number;
  vTaps: number;
}

function plan(
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  crop: CropWindow,
): Plan {
  const h = outWidth !== width ? cachedCoefficients(width, outWidth) : undefined;
  const v = outHeight !== height ? cachedCoefficients(height, outHeight) : undefined;
  const { rowFirst, rowCount } = sourceRows(v, crop);
  const arena = new Arena();
  const hTaps = h ? h.taps : 1;
  const vTaps = v ? v.taps : 1;
  return {
    arena,
    channels,
    width,
    rowFirst,
    rowCount,
    crop,
    h,
    v,
    hStarts: arena.alloc(crop.width * 4),
    hCounts: arena.alloc(crop.width * 4),
    hWeights: arena.alloc(crop.width * hTaps * 4),
    hTaps,
    vStarts: arena.alloc(crop.height * 4),
    vCounts: arena.alloc(crop.height * 4),
    vWeights: arena.alloc(crop.height * vTaps * 4),
    vTaps,
    srcAt: arena.alloc(rowCount * width * channels),
    midAt: arena.alloc(rowCount * crop.width * channels),
  };
}

/** Coefficients and source rows into memory, then the horizontal pass (into midAt). */
function runHorizontal(k: Kernels, p: Plan, src: Uint8Array): void {
  const { crop, channels, h, v } = p;
  const heap = k.memory.buffer;
  const i32s = new Int32Array(heap);
  for (let o = 0; o < crop.width; o++) {
    const xx = crop.left + o;
    i32s[(p.hStarts >> 2) + o] = (h ? h.start[xx]! : xx) * channels;
    i32s[(p.hCounts >> 2) + o] = h ? h.count[xx]! : 1;
    if (!h) i32s[(p.hWeights >> 2) + o] = ONE;
  }
  if (h) i32s.set(h.weights.subarray(crop.left * h.taps, (crop.left + crop.width) * h.taps), p.hWeights >> 2);
  const midStride = crop.width * channels;
  for (let o = 0; o < crop.height; o++) {
    const yy = crop.top + o;
    i32s[(p.vStarts >> 2) + o] = ((v ? v.start[yy]! : yy) - p.rowFirst) * midStride;
    i32s[(p.vCounts >> 2) + o] = v ? v.count[yy]! : 1;
    if (!v) i32s[(p.vWeights >> 2) + o] = ONE;
  }
  if (v) i32s.set(v.weights.subarray(crop.top * v.taps, (crop.top + crop.height) * v.taps), p.vWeights >> 2);
  const srcStride = p.width * channels;
  new Uint8Array(heap).set(src.subarray(p.rowFirst * srcStride, (p.rowFirst + p.rowCount) * srcStride), p.srcAt);
  k.horizontal(
    p.srcAt,
    srcStride,
    p.rowCount,
    p.midAt,
    crop.width,
    channels,
    p.hStarts,
    p.hCounts,
    p.hWeights,
    p.hTaps * 4,
  );
}

function usable(channels: number): Kernels | null {
  if (forcedFallback || !(channels === 3 || channels === 4)) return null;
  return kernels();
}

/**
 * `resizeBilinearPillow` (same arguments, same bytes) on the WebAssembly SIMD kernels where available.
 * 3- and 4-channel images take the fast path; other channel counts, and runtimes without SIMD, the JS port.
 */
export function resizePillowFast(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  crop: CropWindow = { left: 0, top: 0, width: outWidth, height: outHeight },
): Uint8Array {
  const k = usable(channels);
  if (!k) return resizeBilinearPillow(src, width, height, channels, outWidth, outHeight, crop);
  checkResizeArguments(src, width, height, channels, outWidth, outHeight, crop);
  const p = plan(width, height, channels, outWidth, outHeight, crop);
  const stride = crop.width * channels;
  const outAt = p.arena.alloc(stride * crop.height);
  p.arena.commit(k.memory);
  runHorizontal(k, p, src);
  k.vertical(p.midAt, stride, outAt, stride, crop.height, p.vStarts, p.vCounts, p.vWeights, p.vTaps * 4, 0);
  return new Uint8Array(k.memory.buffer, outAt, stride * crop.height).slice();
}

/**
 * Resize exactly as `resizePillowFast` and write the `crop` (which must be `spec.width x spec.height`) as image
 * `imageIndex` of the batch tensor `out`, with the values writePixelsToTensor gives: the normalization is fused into
 * the vertical pass, so the 8-bit crop is never materialized.
 */
export function resizePillowToTensor(
  src: Uint8Array,
  width: number,
  height: number,
  channels: 3 | 4,
  outWidth: number,
  outHeight: number,
  crop: CropWindow,
  spec: PreprocessSpec,
  out: Float32Array,
  imageIndex: number,
): void {
  const k = usable(channels);
  if (!k || crop.width !== spec.width || crop.height !== spec.height) {
    const pixels = resizeBilinearPillow(src, width, height, channels, outWidth, outHeight, crop);
    writePixelsToTensor(pixels, crop.width, crop.height, channels, spec, out, imageIndex);
    return;
  }
  checkResizeArguments(src, width, height, channels, outWidth, outHeight, crop);
  assertTensorSlot(spec, out, imageIndex);
  const table = normalizationTable(spec);
  const p = plan(width, height, channels, outWidth, outHeight, crop);
  const stride = crop.width * channels;
  const scratchAt = p.arena.alloc(stride);
  const tableAt = p.arena.alloc(table.byteLength);
  const elements = tensorElementsPerImage(spec);
  const tensorAt = p.arena.alloc(elements * 4);
  p.arena.commit(k.memory);
  runHorizontal(k, p, src);
  const heap = k.memory.buffer;
  new Float32Array(heap, tableAt, table.length).set(table);
  const nchw = spec.layout === 'NCHW';
  const source = spec.channelOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const args = new Int32Array(heap, TENSOR_ARGS_ADDRESS, TENSOR_ARGS_BYTES >> 2);
  args[TensorArgs.width >> 2] = crop.width;
  args[TensorArgs.channels >> 2] = channels;
  args[TensorArgs.out >> 2] = tensorAt;
  args[TensorArgs.rowStep >> 2] = crop.width * (nchw ? 4 : 12);
  args[TensorArgs.pixelStep >> 2] = nchw ? 4 : 12;
  args[TensorArgs.channelStep >> 2] = nchw ? crop.width * crop.height * 4 : 4;
  args[TensorArgs.s0 >> 2] = source[0]!;
  args[TensorArgs.s1 >> 2] = source[1]!;
  args[TensorArgs.s2 >> 2] = source[2]!;
  args[TensorArgs.table >> 2] = tableAt;
  k.vertical(
    p.midAt,
    stride,
    scratchAt,
    0,
    crop.height,
    p.vStarts,
    p.vCounts,
    p.vWeights,
    p.vTaps * 4,
    TENSOR_ARGS_ADDRESS,
  );
  out.set(new Float32Array(heap, tensorAt, elements), imageIndex * elements);
}
