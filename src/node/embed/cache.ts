import { open, mkdir, rename, link, unlink, stat, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { EDGETL_VERSION } from '../../core/version.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { embeddingCacheBound } from './cache-bound.js';

/**
 * A persistent embedding cache: one append-only file per (backbone fingerprint, preprocessing spec).
 *
 * Layout: `<root>/embeddings/<fingerprint>/<spec-hash>.d<dim>.bin`
 *   header  64 bytes: "EDTLEMB1", u32 format version, u32 dim, 32 bytes spec hash, padding
 *   records one after another: u32 magic "EDTR", 32-byte key (sha256 of the image bytes), dim float32 (LE), u32 crc32
 *
 * Why this shape: appends never touch earlier bytes, so a crash can at worst leave a torn record at the end; the
 * reader checks each record's crc32 and, on a bad one, scans forward to the next magic, so later appends (from this
 * or another process, written with O_APPEND in one write each) are still found. Opening reads the file once in large
 * chunks to build a key -> offset index; lookups then read one record. Thousands of entries cost one sequential
 * read at open and one small read per hit.
 *
 * Beside each file, `<file>.used` logs when entries were last used (u32 magic "EDTU", 32-byte key, f64 ms since the
 * epoch, appended once per session at close): the least-recently-used order the size bound evicts in
 * (src/node/embed/cache-maintenance.ts). Two processes that embed the same new image both append it; `compact` rewrites a
 * file with one intact record per key.
 */

const FILE_MAGIC = 'EDTLEMB1';
const FORMAT_VERSION = 1;
const HEADER_BYTES = 64;
const RECORD_MAGIC = 0x52544445; // "EDTR" read as little-endian u32
const KEY_BYTES = 32;
const SCAN_CHUNK_BYTES = 8 << 20;
const USAGE_MAGIC = 0x55544445; // "EDTU"
/** Bytes of one usage-log record. */
export const USAGE_RECORD_BYTES = 4 + KEY_BYTES + 8;
/** Bytes of a cache file's header. */
export const CACHE_HEADER_BYTES = HEADER_BYTES;
/** Suffix of the usage log beside a cache file. */
export const USAGE_LOG_SUFFIX = '.used';
/**
 * Bumped when the image -> tensor path changes in a way the spec does not capture (a decoder change, a bug fix),
 * so stale embeddings are never served.
 */
export const EMBEDDING_PIPELINE_VERSION = 1;

export interface EmbeddingCacheOptions {
  /** Cache root, usually edgetlCacheDir(). */
  root: string;
  /** Feature-extractor fingerprint (source sha256 + surgery). */
  fingerprint: string;
  preprocess: PreprocessSpec;
  /** Anything else that changes the pixels (decoder options such as the resize kernel); part of the key. */
  variant?: unknown;
  dim: number;
  /**
   * Largest the cache file may grow (default: the cache's bound, see cache-bound.ts): over it, opening keeps the
   * newest entries.
   */
  maxBytes?: number;
}
/** Compaction starts once duplicate or damaged records make up this share of the file (and at least 16 records). */
const WASTE_SHARE_FOR_COMPACTION = 0.25;

export interface EmbeddingCacheStats {
  /** Entries found when the file was opened. */
  loaded: number;
  /** Records ignored at open because they were torn or failed their checksum. */
  damaged: number;
  /** Records at open whose key an earlier record already had (two processes appending the same image). */
  duplicates: number;
  /** Whether opening rewrote the file (dropping duplicates, damage, or the oldest entries beyond maxBytes). */
  compacted: boolean;
  added: number;
  hits: number;
  misses: number;
}

/** Canonical JSON of a spec (keys sorted) so equal specs hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What an entry's validity depends on besides the image and the backbone: the spec, this file's pipeline version and
 * the edgetl version (a release may change decoding or resizing; stale vectors must never be served after an upgrade).
 */
export function preprocessHash(spec: PreprocessSpec, variant?: unknown): Buffer {
  return createHash('sha256')
    .update(canonicalJson({ pipeline: EMBEDDING_PIPELINE_VERSION, edgetl: EDGETL_VERSION, spec, variant }))
    .digest();
}

/** Cache key of encoded image bytes (a file's content): sha256, so a renamed or copied file still hits. */
export function imageBytesKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Cache key of raw pixels: their geometry is part of the content. */
export function rawPixelsKey(
  pixels: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: number,
): string {
  return createHash('sha256').update(`raw:${width}x${height}x${channels}:`).update(pixels).digest('hex');
}

function safeSegment(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128) || '_';
}

export class EmbeddingCache {
  readonly path: string;
  readonly dim: number;
  private readonly recordBytes: number;
  private readonly index = new Map<string, number>();
  private readonly added = new Map<string, Float32Array>();
  private pendingRecords: Buffer[] = [];
  private writeChain: Promise<void> = Promise.resolve();
  private writeError: unknown;
  private closed = false;
  private readonly counters = { loaded: 0, damaged: 0, duplicates: 0, hits: 0, misses: 0 };
  private compacted = false;
  private firstWriteProblem: string | undefined;
  /** Keys read or written since open: their use time goes to the usage log at close. */
  private readonly used = new Set<string>();

  private constructor(
    path: string,
    dim: number,
    private handle: FileHandle,
    private readonly specHash: Buffer,
  ) {
    this.path = path;
    this.dim = dim;
    this.recordBytes = 4 + KEY_BYTES + dim * 4 + 4;
  }

  /** Open (creating if needed) the cache file for this backbone and spec, and index its entries. */
  static async open(options: EmbeddingCacheOptions): Promise<EmbeddingCache> {
    if (!Number.isInteger(options.dim) || options.dim <= 0)
      throw new Error(`embedding cache needs a positive dim, got ${options.dim}`);
    const specHash = preprocessHash(options.preprocess, options.variant);
    const dir = join(options.root, 'embeddings', safeSegment(options.fingerprint));
    const path = join(dir, `${specHash.toString('hex').slice(0, 24)}.d${options.dim}.bin`);
    await mkdir(dir, { recursive: true });
    await EmbeddingCache.createIfAbsent(path, options.dim, specHash);
    let handle = await open(path, 'a+');
    if (!(await EmbeddingCache.headerMatches(handle, options.dim, specHash))) {
      // Not ours (or damaged at the very start): set it aside rather than delete, and start afresh.
      await handle.close();
      await rename(path, `${path}.unreadable-${Date.now()}`).catch(() => undefined);
      await EmbeddingCache.createIfAbsent(path, options.dim, specHash);
      handle = await open(path, 'a+');
    }
    const cache = new EmbeddingCache(path, options.dim, handle, specHash);
    await cache.load();
    const maxBytes = options.maxBytes ?? (await embeddingCacheBound(options.root)).maxBytes ?? Number.POSITIVE_INFINITY;
    await cache.compactIfNeeded(maxBytes);
    return cache;
  }

  /**
   * Rewrite the file with one record per key when duplicates or damage waste a quarter of it, and keep only the
   * newest entries (the file is in append order) when it outgrew `maxBytes` (down to three quarters of it, so the
   * next runs append before compacting again), through `compact`: atomic, and the usage log follows.
   */
  private async compactIfNeeded(maxBytes: number): Promise<void> {
    const { size } = await this.handle.stat();
    const records = Math.floor((size - HEADER_BYTES) / this.recordBytes);
    const wasted = records - this.index.size;
    const tooLarge = size > maxBytes;
    if (!tooLarge && !(wasted >= 16 && wasted >= records * WASTE_SHARE_FOR_COMPACTION)) return;
    const keep = tooLarge
      ? Math.max(0, Math.floor((maxBytes * 0.75 - HEADER_BYTES) / this.recordBytes))
      : this.index.size;
    const oldestFirst = [...this.index.entries()].sort((a, b) => a[1] - b[1]).map(([key]) => key);
    const drop = new Set(oldestFirst.slice(0, Math.max(0, oldestFirst.length - keep)));
    // The counters describe the file as it was opened; compact() zeroes them for the file it leaves.
    const { duplicates, damaged } = this.counters;
    try {
      await this.compact(drop);
    } catch {
      // Compaction is an optimisation: on failure keep using the file as it is.
      return;
    }
    this.counters.duplicates = duplicates;
    this.counters.damaged = damaged;
    this.counters.loaded = this.index.size;
    this.compacted = true;
  }

  /** Open an existing cache file by path (maintenance: listing, compaction, eviction); its header gives the dim. */
  static async openFile(path: string): Promise<EmbeddingCache> {
    const handle = await open(path, 'a+');
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      const { bytesRead } = await handle.read(header, 0, HEADER_BYTES, 0);
      const dim = header.readUInt32LE(12);
      const specHash = Buffer.from(header.subarray(16, 48));
      if (bytesRead !== HEADER_BYTES || !(dim > 0) || !header.equals(EmbeddingCache.header(dim, specHash))) {
        throw new Error(`${path} is not an edgetl embedding cache file (bad header)`);
      }
      const cache = new EmbeddingCache(path, dim, handle, specHash);
      await cache.load();
      return cache;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  private static header(dim: number, specHash: Buffer): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(FILE_MAGIC, 0, 'latin1');
    header.writeUInt32LE(FORMAT_VERSION, 8);
    header.writeUInt32LE(dim, 12);
    specHash.copy(header, 16, 0, 32);
    return header;
  }

  /** Write the header to a private file, then hard-link it into place: exactly one concurrent creator wins. */
  private static async createIfAbsent(path: string, dim: number, specHash: Buffer): Promise<void> {
    if (
      await stat(path).then(
        () => true,
        () => false,
      )
    )
      return;
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = await open(temporary, 'w');
    await fd.writeFile(EmbeddingCache.header(dim, specHash));
    await fd.sync();
    await fd.close();
    await link(temporary, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    await unlink(temporary).catch(() => undefined);
  }

  private static async headerMatches(handle: FileHandle, dim: number, specHash: Buffer): Promise<boolean> {
    const header = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, HEADER_BYTES, 0);
    return bytesRead === HEADER_BYTES && header.equals(EmbeddingCache.header(dim, specHash));
  }

  /** One sequential pass: index every intact record, count torn or corrupt ones, resynchronize on the magic. */
  private async load(): Promise<void> {
    const { size } = await this.handle.stat();
    const magic = Buffer.alloc(4);
    magic.writeUInt32LE(RECORD_MAGIC, 0);
    let carry = Buffer.alloc(0);
    let carryOffset = HEADER_BYTES; // file offset of carry[0]
    let position = HEADER_BYTES;
    let damagedRun = false;
    while (position < size) {
      const chunk = Buffer.alloc(Math.min(SCAN_CHUNK_BYTES, size - position));
      const { bytesRead } = await this.handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const buffer =
        carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let cursor = 0;
      while (buffer.length - cursor >= this.recordBytes) {
        if (buffer.readUInt32LE(cursor) === RECORD_MAGIC) {
          const body = buffer.subarray(cursor + 4, cursor + this.recordBytes - 4);
          const stored = buffer.readUInt32LE(cursor + this.recordBytes - 4);
          if (crc32(body) === stored) {
            const key = body.subarray(0, KEY_BYTES).toString('hex');
            if (this.index.has(key)) this.counters.duplicates++;
            this.index.set(key, carryOffset + cursor + 4 + KEY_BYTES);
            cursor += this.recordBytes;
            damagedRun = false;
            continue;
          }
        }
        if (!damagedRun) this.counters.damaged++;
        damagedRun = true;
        const next = buffer.indexOf(magic, cursor + 1);
        // No magic in what is left: keep the last 3 bytes, they may start one that the next chunk completes.
        cursor = next === -1 ? Math.max(cursor + 1, buffer.length - 3) : next;
      }
      carry = buffer.subarray(cursor);
      carryOffset += cursor;
    }
    // A tail shorter than a record is a torn final write.
    if (carry.length > 0 && !damagedRun) this.counters.damaged++;
    this.counters.loaded = this.index.size;
  }

  get size(): number {
    return this.index.size + this.added.size;
  }

  has(key: string): boolean {
    return this.added.has(key) || this.index.has(key);
  }

  /** The cached embedding for `key` (hex sha256), or undefined. Counts hits and misses. */
  async get(key: string): Promise<Float32Array | undefined> {
    const fresh = this.added.get(key);
    if (fresh) {
      this.counters.hits++;
      this.used.add(key);
      return fresh.slice();
    }
    const offset = this.index.get(key);
    if (offset === undefined) {
      this.counters.misses++;
      return undefined;
    }
    const bytes = Buffer.alloc(this.dim * 4);
    const { bytesRead } = await this.handle.read(bytes, 0, bytes.length, offset);
    if (bytesRead !== bytes.length) {
      this.index.delete(key);
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.used.add(key);
    const out = new Float32Array(this.dim);
    for (let i = 0; i < this.dim; i++) out[i] = bytes.readFloatLE(i * 4);
    return out;
  }

  /** Remember an embedding; it is appended to the file on the next flush (records batch into one write). */
  put(key: string, embedding: Float32Array): void {
    if (this.closed) throw new Error(`embedding cache ${this.path} is closed`);
    if (embedding.length !== this.dim)
      throw new Error(`embedding cache ${this.path} holds ${this.dim}-d vectors, got ${embedding.length}`);
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`embedding cache key must be a hex sha256, got "${key}"`);
    this.used.add(key);
    if (this.has(key)) return;
    const copy = embedding.slice();
    this.added.set(key, copy);
    this.pendingRecords.push(this.record(key, copy));
  }

  private record(key: string, embedding: Float32Array): Buffer {
    const record = Buffer.alloc(this.recordBytes);
    record.writeUInt32LE(RECORD_MAGIC, 0);
    Buffer.from(key, 'hex').copy(record, 4);
    for (let i = 0; i < this.dim; i++) record.writeFloatLE(embedding[i]!, 4 + KEY_BYTES + i * 4);
    record.writeUInt32LE(crc32(record.subarray(4, this.recordBytes - 4)), this.recordBytes - 4);
    return record;
  }

  /** Append everything put so far. Errors are kept and rethrown here (a cache write failure never loses results). */
  flush(): Promise<void> {
    if (this.pendingRecords.length > 0) {
      const batch = Buffer.concat(this.pendingRecords);
      this.pendingRecords = [];
      this.writeChain = this.writeChain
        .then(async () => {
          // O_APPEND + one write: the record lands whole at the end, even with another process appending.
          let written = 0;
          while (written < batch.length) {
            const { bytesWritten } = await this.handle.write(batch, written, batch.length - written);
            if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
            written += bytesWritten;
          }
        })
        .catch((error: unknown) => {
          this.writeError ??= error;
          const code = (error as NodeJS.ErrnoException).code;
          this.firstWriteProblem ??= `cannot write the embedding cache ${this.path}: ${code === 'ENOSPC' ? 'no space left on the device (ENOSPC)' : error instanceof Error ? error.message : String(error)}; new embeddings are not cached`;
        });
    }
    return this.writeChain.then(() => {
      if (this.writeError !== undefined) {
        const error = this.writeError;
        this.writeError = undefined;
        throw error;
      }
    });
  }

  stats(): EmbeddingCacheStats {
    return { ...this.counters, added: this.added.size, compacted: this.compacted };
  }

  /** Why appends failed, once any did (the results are unaffected; the user should still be told). */
  get writeProblem(): string | undefined {
    return this.firstWriteProblem;
  }

  /** Bytes one record takes in the file. */
  get bytesPerEntry(): number {
    return this.recordBytes;
  }

  /** Every key in the cache (one per key, whatever the duplicates in the file). */
  keys(): string[] {
    return [...new Set([...this.index.keys(), ...this.added.keys()])];
  }

  /** Last use (ms since the epoch) of each key the usage log knows; keys it does not know are absent. */
  async lastUsed(): Promise<Map<string, number>> {
    return readUsageLog(this.path + USAGE_LOG_SUFFIX);
  }

  /**
   * Rewrite the file with one intact record per key, leaving out `drop`, and the usage log to match: write a
   * temporary sibling, fsync, rename over the file (a crash leaves the old file or the new one). Records another
   * process appends to the old file meanwhile are lost, which a cache can afford.
   */
  async compact(
    drop: ReadonlySet<string> = new Set(),
  ): Promise<{ kept: number; dropped: number; bytesBefore: number; bytesAfter: number }> {
    if (this.closed) throw new Error(`embedding cache ${this.path} is closed`);
    await this.flush();
    const bytesBefore = (await this.handle.stat()).size;
    const used = await this.lastUsed();
    const kept = [...this.index.entries()].filter(([key]) => !drop.has(key));
    const dropped = this.index.size - kept.length;
    const temporary = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const out = await open(temporary, 'w');
    const newIndex = new Map<string, number>();
    let position = HEADER_BYTES;
    try {
      await out.write(EmbeddingCache.header(this.dim, this.specHash));
      const chunk: Buffer[] = [];
      let chunkBytes = 0;
      // Records indexed at open, then those this instance added since (in memory, and flushed above).
      const sources: [string, number | Float32Array][] = [
        ...kept,
        ...[...this.added.entries()].filter(([key]) => !drop.has(key) && !this.index.has(key)),
      ];
      for (const [key, source] of sources) {
        let record: Buffer;
        if (typeof source === 'number') {
          record = Buffer.alloc(this.recordBytes);
          const { bytesRead } = await this.handle.read(record, 0, this.recordBytes, source - 4 - KEY_BYTES);
          if (bytesRead !== this.recordBytes) continue;
        } else {
          record = this.record(key, source);
        }
        newIndex.set(key, position + 4 + KEY_BYTES);
        position += this.recordBytes;
        chunk.push(record);
        chunkBytes += record.length;
        if (chunkBytes >= SCAN_CHUNK_BYTES) {
          await out.write(Buffer.concat(chunk));
          chunk.length = 0;
          chunkBytes = 0;
        }
      }
      if (chunk.length > 0) await out.write(Buffer.concat(chunk));
      await out.sync();
      await out.close();
      await writeUsageLog(
        this.path + USAGE_LOG_SUFFIX,
        [...newIndex.keys()].filter((k) => used.has(k)).map((k) => [k, used.get(k)!]),
      );
      await rename(temporary, this.path);
    } catch (error) {
      await out.close().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    await this.handle.close();
    this.handle = await open(this.path, 'a+');
    this.index.clear();
    for (const [key, offset] of newIndex) this.index.set(key, offset);
    for (const key of drop) this.added.delete(key);
    this.counters.duplicates = 0;
    this.counters.damaged = 0;
    return { kept: newIndex.size, dropped: dropped, bytesBefore, bytesAfter: position };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
      await this.logUse();
    } finally {
      this.closed = true;
      await this.handle.close();
    }
  }

  /** Append this session's use times to the usage log (best effort: a cache that cannot log still works). */
  private async logUse(): Promise<void> {
    if (this.used.size === 0) return;
    const now = Date.now();
    const records = usageRecords([...this.used].map((key) => [key, now]));
    this.used.clear();
    const logPath = this.path + USAGE_LOG_SUFFIX;
    const log = await open(logPath, 'a').catch(() => undefined);
    if (!log) return;
    try {
      await log.write(records);
      // Every session appends its keys: past a few records per key, fold the log to the latest use of each.
      const { size } = await log.stat();
      if (size > 4 * this.keys().length * USAGE_RECORD_BYTES + 65536)
        await writeUsageLog(logPath, [...(await readUsageLog(logPath))]);
    } catch {
      // the order of eviction gets coarser; nothing is lost
    } finally {
      await log.close();
    }
  }
}

/** Last use per key from a usage log (latest wins); torn or foreign records are skipped. */
export async function readUsageLog(path: string): Promise<Map<string, number>> {
  const used = new Map<string, number>();
  const bytes = await readFile(path).catch(() => undefined);
  if (!bytes) return used;
  for (let offset = 0; offset + USAGE_RECORD_BYTES <= bytes.length; offset += USAGE_RECORD_BYTES) {
    if (bytes.readUInt32LE(offset) !== USAGE_MAGIC) continue;
    const key = bytes.subarray(offset + 4, offset + 4 + KEY_BYTES).toString('hex');
    const when = bytes.readDoubleLE(offset + 4 + KEY_BYTES);
    if (Number.isFinite(when) && when > (used.get(key) ?? -Infinity)) used.set(key, when);
  }
  return used;
}

function usageRecords(entries: [string, number][]): Buffer {
  const records = Buffer.alloc(entries.length * USAGE_RECORD_BYTES);
  entries.forEach(([key, when], i) => {
    const offset = i * USAGE_RECORD_BYTES;
    records.writeUInt32LE(USAGE_MAGIC, offset);
    Buffer.from(key, 'hex').copy(records, offset + 4);
    records.writeDoubleLE(when, offset + 4 + KEY_BYTES);
  });
  return records;
}

async function writeUsageLog(path: string, entries: [string, number][]): Promise<void> {
  await writeFileAtomic(path, usageRecords(entries));
}
