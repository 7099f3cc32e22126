/**
 * NPY (NumPy's array file format) for float32 arrays, runtime-neutral: bytes in, bytes out.
 *
 * We write version 1.0, little-endian '<f4', C order, the header padded so the data starts on a 64-byte
 * boundary (what numpy itself does). We read versions 1.0, 2.0 and 3.0 but only '<f4' in C order: anything else
 * is reported, never silently reinterpreted.
 * Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const HEADER_ALIGNMENT = 64;

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** Thrown by decodeNpy; the file layer adds the file name. `reason` is a short phrase. */
export class NpyFormatError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'NpyFormatError';
    this.reason = reason;
  }
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

function validateShape(shape: readonly number[]): void {
  for (const size of shape) {
    if (!Number.isInteger(size) || size < 0)
      throw new NpyFormatError(`invalid dimension ${size} in shape [${shape.join(', ')}]`);
  }
}

/** The header dict numpy writes, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }". */
function headerDict(shape: readonly number[]): string {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
}

/**
 * The bytes before the data: magic, version 1.0, header length, padded header ending with a newline.
 * `minBytes` pads the header to at least that many bytes (rounded up to 64), so a header written before the row
 * count is known can later be rewritten in place with the final shape.
 */
export function encodeNpyHeader(shape: readonly number[], minBytes = 0): Uint8Array {
  validateShape(shape);
  const dict = headerDict(shape);
  const prefixLength = MAGIC.length + 2 + 2;
  const unpadded = prefixLength + dict.length + 1;
  const total = Math.ceil(Math.max(unpadded, minBytes) / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const headerLength = total - prefixLength;
  if (headerLength > 0xffff)
    throw new NpyFormatError(`shape [${shape.join(', ')}] makes a header too long for NPY 1.0`);
  const bytes = new Uint8Array(total);
  bytes.set(MAGIC, 0);
  bytes[6] = 1;
  bytes[7] = 0;
  bytes[8] = headerLength & 0xff;
  bytes[9] = headerLength >> 8;
  const text = dict + ' '.repeat(total - unpadded) + '\n';
  for (let i = 0; i < text.length; i++) bytes[prefixLength + i] = text.charCodeAt(i);
  return bytes;
}

/** The little-endian bytes of `data` (a view when the host is little-endian, which every supported one is). */
export function float32LittleEndianBytes(data: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return bytes;
}

/** A whole NPY file for a float32 array of `shape` (data in C order, length = product of shape). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  validateShape(shape);
  if (elementCount(shape) !== data.length) {
    throw new NpyFormatError(
      `shape [${shape.join(', ')}] holds ${elementCount(shape)} values but the data has ${data.length}`,
    );
  }
  const header = encodeNpyHeader(shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(float32LittleEndianBytes(data), header.length);
  return out;
}

interface ParsedHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  dataOffset: number;
}

/** Parse the Python-literal header dict. Only the three keys NPY defines are accepted. */
function parseHeaderDict(text: string): Omit<ParsedHeader, 'dataOffset'> {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) throw new NpyFormatError('header is not a dictionary');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(trimmed);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(trimmed);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(trimmed);
  if (!descr) throw new NpyFormatError("header has no 'descr' (dtype)");
  if (!fortran) throw new NpyFormatError("header has no 'fortran_order'");
  if (!shape) throw new NpyFormatError("header has no 'shape'");
  const dims = shape[1]!
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const value = Number(part.replace(/L$/, ''));
      if (!Number.isInteger(value) || value < 0) throw new NpyFormatError(`invalid dimension "${part}" in shape`);
      return value;
    });
  return { descr: descr[1]!, fortranOrder: fortran[1] === 'True', shape: dims };
}

export function decodeNpyHeader(bytes: Uint8Array): ParsedHeader {
  if (bytes.length < 10 || MAGIC.some((value, i) => bytes[i] !== value)) {
    throw new NpyFormatError('not an NPY file (bad magic: expected "\\x93NUMPY")');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = bytes[8]! | (bytes[9]! << 8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyFormatError('truncated header');
    headerLength = (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16)) + bytes[11]! * 0x1000000;
    headerStart = 12;
  } else {
    throw new NpyFormatError(`unsupported NPY version ${major}.${minor}`);
  }
  const dataOffset = headerStart + headerLength;
  if (bytes.length < dataOffset)
    throw new NpyFormatError(`truncated header (needs ${dataOffset} bytes, file has ${bytes.length})`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataOffset));
  return { ...parseHeaderDict(text), dataOffset };
}

/** Decode a float32 NPY file. Throws NpyFormatError for a wrong dtype, Fortran order, or truncated data. */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  const header = decodeNpyHeader(bytes);
  if (header.descr !== '<f4') {
    const hint =
      header.descr === '<f8'
        ? " (float64: save with arr.astype('float32'))"
        : header.descr === '>f4'
          ? ' (big-endian float32)'
          : '';
    throw new NpyFormatError(`dtype is '${header.descr}', expected little-endian float32 '<f4'${hint}`);
  }
  if (header.fortranOrder)
    throw new NpyFormatError('array is in Fortran order; expected C order (save with np.ascontiguousarray)');
  const count = elementCount(header.shape);
  const expectedBytes = count * 4;
  const available = bytes.length - header.dataOffset;
  if (available < expectedBytes) {
    throw new NpyFormatError(
      `truncated data: shape [${header.shape.join(', ')}] needs ${expectedBytes} bytes, file has ${available}`,
    );
  }
  if (available > expectedBytes) {
    throw new NpyFormatError(
      `${available - expectedBytes} unexpected bytes after the data for shape [${header.shape.join(', ')}]`,
    );
  }
  const start = bytes.byteOffset + header.dataOffset;
  let data: Float32Array;
  if (HOST_IS_LITTLE_ENDIAN) {
    // Copy: the source buffer may be unaligned (pooled Node buffers) and the caller may reuse it.
    data = new Float32Array(bytes.buffer.slice(start, start + expectedBytes));
  } else {
    data = new Float32Array(count);
    const view = new DataView(bytes.buffer, start, expectedBytes);
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
  }
  return { shape: header.shape, data };
}
