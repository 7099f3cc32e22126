/**
 * A minimal WebAssembly binary encoder, runtime-neutral: enough to write small SIMD kernels as readable TypeScript
 * (one helper per instruction, structured loops) and get module bytes at run time. Why not a .wasm file or a WAT
 * toolchain: the kernels are a few hundred bytes, the bytes are built in microseconds in Node, workers and browsers
 * alike, the source of truth stays the TypeScript beside its JS twin, and no build step or dependency is added.
 *
 * Only what the kernels use is here; opcodes follow the WebAssembly 2.0 spec (SIMD: 0xfd prefix, LEB128 opcode).
 */

export type Code = number[];

export const i32 = 0x7f;
export const f32 = 0x7d;
export const v128 = 0x7b;
export type ValueType = typeof i32 | typeof f32 | typeof v128;

export function uleb(value: number): Code {
  const out: Code = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: number): Code {
  const out: Code = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const flat = (parts: Code[]): Code => parts.flat();
const memarg = (align: number, offset: number): Code => [align, ...uleb(offset)];
const simd = (opcode: number, ...immediates: number[]): Code => [0xfd, ...uleb(opcode), ...immediates];

/** Instructions. Locals are referred to by index (parameters first). */
export const op = {
  get: (local: number): Code => [0x20, ...uleb(local)],
  set: (local: number): Code => [0x21, ...uleb(local)],
  tee: (local: number): Code => [0x22, ...uleb(local)],
  i32: (value: number): Code => [0x41, ...sleb(value)],
  add: [0x6a] as Code,
  sub: [0x6b] as Code,
  mul: [0x6c] as Code,
  shl: [0x74] as Code,
  eqz: [0x45] as Code,
  ne: [0x47] as Code,
  ltS: [0x48] as Code,
  geS: [0x4e] as Code,
  load: (offset = 0): Code => [0x28, ...memarg(2, offset)],
  load8u: (offset = 0): Code => [0x2d, ...memarg(0, offset)],
  store: (offset = 0): Code => [0x36, ...memarg(2, offset)],
  f32load: (offset = 0): Code => [0x2a, ...memarg(2, offset)],
  f32store: (offset = 0): Code => [0x38, ...memarg(2, offset)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  // SIMD
  v128load: (offset = 0): Code => simd(0x00, ...memarg(0, offset)),
  v128store: (offset = 0): Code => simd(0x0b, ...memarg(0, offset)),
  load32Splat: (offset = 0): Code => simd(0x09, ...memarg(2, offset)),
  load32Zero: (offset = 0): Code => simd(0x5c, ...memarg(0, offset)),
  load64Zero: (offset = 0): Code => simd(0x5d, ...memarg(0, offset)),
  store32Lane: (lane: number, offset = 0): Code => simd(0x5a, ...memarg(0, offset), lane),
  i32x4Splat: simd(0x11),
  i8x16Shuffle: (lanes: number[]): Code => simd(0x0d, ...lanes),
  i8x16NarrowI16x8U: simd(0x66),
  i16x8NarrowI32x4S: simd(0x85),
  i16x8ExtendLowU8: simd(0x89),
  i16x8ExtendHighU8: simd(0x8a),
  i32x4ExtendLowU16: simd(0xa9),
  i32x4ExtendHighU16: simd(0xaa),
  i32x4Shl: simd(0xab),
  i32x4ShrS: simd(0xac),
  i32x4Add: simd(0xae),
  i32x4Mul: simd(0xb5),
  i32x4DotI16x8S: simd(0xba),
};

/** `for (counter = from; counter < limit; counter += step) body` (body skipped when from >= limit). */
export function forLoop(counter: number, from: Code, limit: Code, step: number, ...body: Code[]): Code {
  return flat([
    from,
    op.set(counter),
    [0x02, 0x40], // block
    op.get(counter),
    limit,
    op.geS,
    op.brIf(0),
    [0x03, 0x40], // loop
    ...body,
    op.get(counter),
    op.i32(step),
    op.add,
    op.tee(counter),
    limit,
    op.ltS,
    op.brIf(0),
    [0x0b, 0x0b],
  ]);
}

/** `do { body } while (--counter !== 0)`: for counts known to be >= 1. */
export function doCountDown(counter: number, ...body: Code[]): Code {
  return flat([[0x03, 0x40], ...body, op.get(counter), op.i32(1), op.sub, op.tee(counter), op.brIf(0), [0x0b]]);
}

export interface FunctionDef {
  name: string;
  params: ValueType[];
  /** Locals after the parameters, in order. */
  locals: ValueType[];
  body: Code[];
}

function section(id: number, payload: Code): Code {
  return [id, ...uleb(payload.length), ...payload];
}

function vector(items: Code[]): Code {
  return [...uleb(items.length), ...items.flat()];
}

function name(text: string): Code {
  const bytes = Array.from(new TextEncoder().encode(text));
  return [...uleb(bytes.length), ...bytes];
}

/** A module with one exported memory ("memory", `pages` x 64 KiB initially, growable) and the given functions. */
export function encodeModule(functions: FunctionDef[], pages = 1): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...vector(f.params.map((p) => [p])), 0x00]);
  const bodies = functions.map((f) => {
    // Run-length groups of locals, as the format stores them.
    const groups: Code[] = [];
    for (let i = 0; i < f.locals.length; ) {
      let j = i;
      while (j < f.locals.length && f.locals[j] === f.locals[i]) j++;
      groups.push([...uleb(j - i), f.locals[i]!]);
      i = j;
    }
    const code = [...vector(groups), ...f.body.flat(), 0x0b];
    return [...uleb(code.length), ...code];
  });
  const exports = [
    [...name('memory'), 0x02, 0x00],
    ...functions.map((f, index) => [...name(f.name), 0x00, ...uleb(index)]),
  ];
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(3, vector(functions.map((_, index) => uleb(index)))),
    ...section(5, vector([[0x00, ...uleb(pages)]])),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}
