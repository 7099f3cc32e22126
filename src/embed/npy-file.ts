import { readFile, open, mkdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic, temporarySibling } from '../util/atomic-write.js';
import { EdgetlError } from '../util/errors.js';
import { decodeNpy, encodeNpyHeader, float32LittleEndianBytes, NpyFormatError, type NpyArray } from './npy.js';

/** Write a float32 array as `<path>` (NPY 1.0, '<f4', C order), atomically: a crash leaves the old file or the new one. */
export async function writeNpyFile(path: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const count = shape.reduce((product, size) => product * size, 1);
  if (count !== data.length) {
    throw new EdgetlError('npy-shape', `cannot write ${path}: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`, { file: path });
  }
  await writeFileAtomic(path, [encodeNpyHeader(shape), float32LittleEndianBytes(data)]);
}

/** Read a float32 NPY file; errors name the file and say what is wrong (magic, dtype, order, truncation). */
export async function readNpyFile(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new EdgetlError('npy-read', `cannot read ${path}: ${reason}`, { file: path, cause: error });
  }
  try {
    return decodeNpy(bytes);
  } catch (error) {
    if (error instanceof NpyFormatError) throw new EdgetlError('bad-npy', `${path}: ${error.reason}`, { file: path, cause: error });
    throw error;
  }
}

/** Header bytes reserved by NpyRowWriter: room for any row count and dimension. */
const STREAM_HEADER_BYTES = 128;
/** Rows are gathered into writes of about this size. */
const STREAM_CHUNK_BYTES = 1 << 20;

/**
 * Writes a float32 [N, dim] NPY file row by row, for outputs too large to hold in memory. Rows go to a temporary
 * sibling; `finish` writes the final header (same length as the placeholder, so in place), syncs and renames over
 * `path`. Until then `path` is untouched, so an interrupted run leaves the previous file (or none), never a torn one.
 */
export class NpyRowWriter {
  private rows = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  private done = false;

  private constructor(
    readonly path: string,
    readonly dim: number,
    private readonly temporary: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string, dim: number): Promise<NpyRowWriter> {
    if (!Number.isInteger(dim) || dim <= 0) throw new EdgetlError('npy-shape', `cannot write ${path}: row length must be a positive integer, got ${dim}`, { file: path });
    await mkdir(dirname(path), { recursive: true });
    const temporary = temporarySibling(path);
    let handle: FileHandle;
    try {
      handle = await open(temporary, 'w');
    } catch (error) {
      throw new EdgetlError('npy-write', `cannot write ${path}: ${(error as Error).message}`, { file: path, cause: error });
    }
    // Sequential writes from here on: the placeholder header, then rows; only `finish` writes by position.
    await handle.write(encodeNpyHeader([0, dim], STREAM_HEADER_BYTES));
    return new NpyRowWriter(path, dim, temporary, handle);
  }

  get count(): number {
    return this.rows;
  }

  /** Queue one row (copied). Write errors surface from `finish`. */
  append(row: Float32Array): void {
    if (this.done) throw new EdgetlError('npy-write', `${this.path}: append after finish`, { file: this.path });
    if (row.length !== this.dim) throw new EdgetlError('npy-shape', `${this.path}: row of ${row.length} values, expected ${this.dim}`, { file: this.path });
    this.pending.push(float32LittleEndianBytes(row.slice()));
    this.pendingBytes += row.length * 4;
    this.rows++;
    if (this.pendingBytes >= STREAM_CHUNK_BYTES) this.flushPending();
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    const chunk = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.chain = this.chain
      .then(async () => {
        if (this.failure === undefined) await this.handle.write(chunk);
      })
      .catch((error: unknown) => {
        this.failure ??= error;
      });
  }

  /** Write the final header and move the file into place. Returns the number of rows. */
  async finish(): Promise<number> {
    this.flushPending();
    this.done = true;
    await this.chain;
    try {
      if (this.failure !== undefined) throw this.failure;
      const header = encodeNpyHeader([this.rows, this.dim], STREAM_HEADER_BYTES);
      if (header.length !== STREAM_HEADER_BYTES) throw new Error(`header for [${this.rows}, ${this.dim}] outgrew its ${STREAM_HEADER_BYTES} bytes`);
      await this.handle.write(header, 0, header.length, 0);
      await this.handle.sync();
      await this.handle.close();
      await rename(this.temporary, this.path);
      return this.rows;
    } catch (error) {
      await this.abort();
      throw new EdgetlError('npy-write', `cannot write ${this.path}: ${(error as Error).message}`, { file: this.path, cause: error });
    }
  }

  /** Drop the temporary file (the target is left as it was). */
  async abort(): Promise<void> {
    this.done = true;
    await this.chain;
    await this.handle.close().catch(() => undefined);
    await unlink(this.temporary).catch(() => undefined);
  }
}
