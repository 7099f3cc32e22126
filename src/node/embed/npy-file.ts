import { readFile, open, mkdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash, type Hash } from 'node:crypto';
import {
  writeFileAtomic,
  temporarySibling,
  resolveWriteTarget,
  removeAbandonedTemporaries,
  keepOwnership,
  writeError,
  writeFully,
  type WriteTarget,
} from '../util/atomic-write.js';
import { EdgetlError } from '../../core/util/errors.js';
import {
  decodeNpy,
  encodeNpyHeader,
  float32LittleEndianBytes,
  NpyFormatError,
  type NpyArray,
} from '../../core/formats/npy.js';

/** Write a float32 array as `<path>` (NPY 1.0, '<f4', C order), atomically: a crash leaves the old file or the new one. */
export async function writeNpyFile(path: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const count = shape.reduce((product, size) => product * size, 1);
  if (count !== data.length) {
    throw new EdgetlError(
      'npy-shape',
      `cannot write ${path}: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`,
      { file: path },
    );
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
    const reason =
      code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new EdgetlError('npy-read', `cannot read ${path}: ${reason}`, { file: path, cause: error });
  }
  try {
    return decodeNpy(bytes);
  } catch (error) {
    if (error instanceof NpyFormatError)
      throw new EdgetlError('bad-npy', `${path}: ${error.reason}`, { file: path, cause: error });
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

  private readonly dataHash: Hash = createHash('sha256');

  private constructor(
    readonly path: string,
    readonly dim: number,
    private readonly temporary: string,
    private readonly handle: FileHandle,
    private readonly target: WriteTarget,
  ) {}

  static async create(path: string, dim: number): Promise<NpyRowWriter> {
    if (!Number.isInteger(dim) || dim <= 0)
      throw new EdgetlError('npy-shape', `cannot write ${path}: row length must be a positive integer, got ${dim}`, {
        file: path,
      });
    const target = await resolveWriteTarget(path);
    let temporary: string;
    let handle: FileHandle;
    try {
      if (target.mode === 'atomic') {
        await mkdir(dirname(target.path), { recursive: true });
        await removeAbandonedTemporaries(target.path);
        temporary = temporarySibling(target.path);
      } else {
        // A special file (/dev/null, a FIFO) cannot take the final header by position: build the file aside, copy it in.
        temporary = temporarySibling(join(tmpdir(), 'edgetl-npy'));
      }
      handle = await open(temporary, 'wx', target.existing ? target.existing.mode & 0o7777 : 0o666);
    } catch (error) {
      throw writeError(path, error);
    }
    // Sequential writes from here on: the placeholder header, then rows; only `finish` writes by position.
    await writeFully(handle, encodeNpyHeader([0, dim], STREAM_HEADER_BYTES));
    return new NpyRowWriter(path, dim, temporary, handle, target);
  }

  get count(): number {
    return this.rows;
  }

  /** Queue one row (copied). Write errors surface from `finish`. */
  append(row: Float32Array): void {
    if (this.done) throw new EdgetlError('npy-write', `${this.path}: append after finish`, { file: this.path });
    if (row.length !== this.dim)
      throw new EdgetlError('npy-shape', `${this.path}: row of ${row.length} values, expected ${this.dim}`, {
        file: this.path,
      });
    const bytes = float32LittleEndianBytes(row.slice());
    this.dataHash.update(bytes);
    this.pending.push(bytes);
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
        if (this.failure === undefined) await writeFully(this.handle, chunk);
      })
      .catch((error: unknown) => {
        this.failure ??= error;
      });
  }

  /**
   * Write the final header and move the file into place. Returns the number of rows and the sha256 of the row data
   * (what `npyDataSha256` computes from the finished file).
   */
  async finish(): Promise<{ rows: number; dataSha256: string }> {
    this.flushPending();
    this.done = true;
    await this.chain;
    try {
      if (this.failure !== undefined) throw this.failure;
      const header = encodeNpyHeader([this.rows, this.dim], STREAM_HEADER_BYTES);
      if (header.length !== STREAM_HEADER_BYTES)
        throw new Error(`header for [${this.rows}, ${this.dim}] outgrew its ${STREAM_HEADER_BYTES} bytes`);
      await this.handle.write(header, 0, header.length, 0);
      await keepOwnership(this.handle, this.target.existing);
      await this.handle.sync();
      await this.handle.close();
      if (this.target.mode === 'atomic') {
        await rename(this.temporary, this.target.path);
      } else {
        await pipeline(createReadStream(this.temporary), createWriteStream(this.target.path, { flags: 'a' }));
        await unlink(this.temporary).catch(() => undefined);
      }
      return { rows: this.rows, dataSha256: this.dataHash.digest('hex') };
    } catch (error) {
      await this.abort();
      throw writeError(this.path, error);
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
