/**
 * Keeping the embedding cache in bounds: least-recently-used eviction across every cache file under a root, and
 * compaction of duplicate and damaged records (two processes sharing a cache both append an image they both
 * embedded). One maintenance pass at a time per root (a lock file); a pass never blocks embedding: a process that
 * finds the lock taken skips its pass.
 */
import { open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { embeddingCacheBound } from './cache-bound.js';
import { CACHE_HEADER_BYTES, EmbeddingCache, USAGE_LOG_SUFFIX, USAGE_RECORD_BYTES } from './cache.js';

export {
  DEFAULT_EMBEDDING_CACHE_MAX_BYTES,
  type EmbeddingBound,
  embeddingCacheBound,
  parseSize,
  setEmbeddingCacheBound,
} from './cache-bound.js';

/** A pass that has to evict goes down to this share of the bound, so the next few runs do not evict again. */
export const EVICTION_LOW_WATER = 0.8;
/** A maintenance lock older than this is left over from a crashed process. */
const STALE_LOCK_MS = 10 * 60 * 1000;

export interface EmbeddingFile {
  path: string;
  /** The backbone fingerprint folder it sits in. */
  fingerprint: string;
  /** Bytes on disk of the file and its usage log. */
  bytes: number;
  modifiedMs: number;
}

/** Every embedding cache file under `root` (`embeddings/<fingerprint>/*.bin`), with its size. */
export async function listEmbeddingFiles(root: string): Promise<EmbeddingFile[]> {
  const base = join(root, 'embeddings');
  const folders = await readdir(base, { withFileTypes: true }).catch(() => []);
  const files: EmbeddingFile[] = [];
  for (const folder of folders) {
    if (!folder.isDirectory()) continue;
    const names = await readdir(join(base, folder.name)).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.endsWith('.bin')) continue;
      const path = join(base, folder.name, name);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      const log = await stat(path + USAGE_LOG_SUFFIX).catch(() => undefined);
      files.push({ path, fingerprint: folder.name, bytes: info.size + (log?.size ?? 0), modifiedMs: info.mtimeMs });
    }
  }
  return files;
}

export interface MaintenanceReport {
  /** False when another process held the maintenance lock (nothing was done). */
  ran: boolean;
  bytesBefore: number;
  bytesAfter: number;
  evicted: number;
  /** Duplicate and damaged records removed by compaction. */
  compactedRecords: number;
  filesRemoved: number;
}

export interface MaintenanceOptions {
  /** Evict least-recently-used entries until the embeddings take at most this share of `maxBytes`... */
  maxBytes?: number;
  /** ...or, instead, evict every entry last used before this time (ms since the epoch). */
  usedBefore?: number;
  /** Compact files with duplicate or damaged records ('needed'), or every file ('all'), even when none is over. */
  compact?: 'needed' | 'all';
  /** When nothing needs evicting, look only at these files (a process compacting the file it found duplicates in). */
  onlyFiles?: readonly string[];
  now?: number;
}

interface Entry {
  file: number;
  key: string;
  lastUsed: number;
}

/**
 * One pass over the embedding cache under `root`: evict (by the bound or by age), then rewrite each file that
 * lost entries or holds duplicate or damaged records. Entries the usage log does not know count as last used when
 * their file was last written.
 */
export async function maintainEmbeddingCache(
  root: string,
  options: MaintenanceOptions = {},
): Promise<MaintenanceReport> {
  const files = await listEmbeddingFiles(root);
  const bytesBefore = files.reduce((sum, f) => sum + f.bytes, 0);
  const report: MaintenanceReport = {
    ran: false,
    bytesBefore,
    bytesAfter: bytesBefore,
    evicted: 0,
    compactedRecords: 0,
    filesRemoved: 0,
  };
  const overBound = options.maxBytes !== undefined && bytesBefore > options.maxBytes;
  if (files.length === 0 || (!overBound && options.usedBefore === undefined && options.compact === undefined))
    return report;
  if (!overBound && options.usedBefore === undefined && options.onlyFiles) {
    const only = new Set(options.onlyFiles);
    files.splice(0, files.length, ...files.filter((f) => only.has(f.path)));
    if (files.length === 0) return report;
  }
  const release = await acquireLock(join(root, 'embeddings', '.maintenance.lock'), options.now ?? Date.now());
  if (!release) return report;
  report.ran = true;
  const caches: EmbeddingCache[] = [];
  try {
    const entries: Entry[] = [];
    for (const file of files) {
      const cache = await EmbeddingCache.openFile(file.path).catch(() => undefined);
      if (!cache) {
        // Not a cache file edgetl can read (a foreign or damaged header): nothing in it is served, so over the bound it goes.
        if (overBound) await rm(file.path, { force: true });
        continue;
      }
      const index = caches.push(cache) - 1;
      const used = await cache.lastUsed();
      for (const key of cache.keys()) entries.push({ file: index, key, lastUsed: used.get(key) ?? file.modifiedMs });
    }
    const drop = caches.map(() => new Set<string>());
    if (options.usedBefore !== undefined) {
      for (const entry of entries) if (entry.lastUsed < options.usedBefore) drop[entry.file].add(entry.key);
    }
    if (overBound) {
      // What the files will take once compacted (a header, and per key one record and at most one log record),
      // then the oldest entries out until that is under the low-water mark.
      const perEntry = (c: EmbeddingCache) => c.bytesPerEntry + USAGE_RECORD_BYTES;
      let projected = caches.reduce((sum, c) => sum + CACHE_HEADER_BYTES + c.keys().length * perEntry(c), 0);
      const target = options.maxBytes! * EVICTION_LOW_WATER;
      entries.sort((a, b) => a.lastUsed - b.lastUsed);
      for (const entry of entries) {
        if (projected <= target) break;
        if (drop[entry.file].has(entry.key)) continue;
        drop[entry.file].add(entry.key);
        projected -= perEntry(caches[entry.file]);
      }
    }
    for (let i = 0; i < caches.length; i++) {
      const cache = caches[i];
      const { duplicates, damaged } = cache.stats();
      const keys = cache.keys().length;
      if (drop[i].size >= keys) {
        await cache.close();
        await rm(cache.path, { force: true });
        await rm(cache.path + USAGE_LOG_SUFFIX, { force: true });
        report.evicted += keys;
        report.filesRemoved++;
        continue;
      }
      if (drop[i].size === 0 && duplicates === 0 && damaged === 0 && options.compact !== 'all') continue;
      const result = await cache.compact(drop[i]);
      report.evicted += result.dropped;
      report.compactedRecords += duplicates + damaged;
    }
  } finally {
    await Promise.all(caches.map((c) => c.close().catch(() => undefined)));
    await release();
  }
  report.bytesAfter = (await listEmbeddingFiles(root)).reduce((sum, f) => sum + f.bytes, 0);
  return report;
}

/** An exclusive lock file; undefined when another live process holds it. A stale lock is taken over. */
async function acquireLock(path: string, now: number): Promise<(() => Promise<void>) | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.write(`${process.pid}\n`);
      await handle.close();
      return () => unlink(path).catch(() => undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      const info = await stat(path).catch(() => undefined);
      if (info && now - info.mtimeMs < STALE_LOCK_MS) return undefined;
      await unlink(path).catch(() => undefined);
    }
  }
  return undefined;
}

/**
 * Enforce the bound after a run: evict least-recently-used embeddings when the cache is over it, and compact
 * `compactFile` (a file this process found duplicates in). Never throws: the cache is an optimization.
 */
export async function keepEmbeddingCacheInBounds(
  root: string,
  options: { maxBytes?: number | null; compactFile?: string } = {},
): Promise<MaintenanceReport | undefined> {
  try {
    const maxBytes = options.maxBytes !== undefined ? options.maxBytes : (await embeddingCacheBound(root)).maxBytes;
    return await maintainEmbeddingCache(root, {
      maxBytes: maxBytes ?? undefined,
      ...(options.compactFile ? { compact: 'needed' as const, onlyFiles: [options.compactFile] } : {}),
    });
  } catch {
    return undefined;
  }
}
