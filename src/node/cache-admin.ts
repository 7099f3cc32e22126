/**
 * What edgetl keeps on the device, and control over it: `edgetl cache info` / `clear` / `limit`.
 *
 * Under the cache root (edgetlCacheDir()):
 *   embeddings/   per-backbone embedding caches (src/node/embed/cache.ts): bounded, least-recently-used entries evicted
 *   extractors/   feature-extractor graphs, one per backbone and surgery (src/node/models/feature-extractor-cache.ts)
 *   models/       downloaded catalog backbones (src/node/models/download.ts)
 * plus small bookkeeping files (the sha256 memo, this module's config).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  embeddingCacheBound,
  listEmbeddingFiles,
  maintainEmbeddingCache,
  type EmbeddingBound,
} from './embed/cache-maintenance.js';
import { edgetlCacheDir } from './util/cache-dir.js';
import { EdgetlError } from '../core/util/errors.js';

export {
  embeddingCacheBound,
  setEmbeddingCacheBound,
  parseSize,
  type EmbeddingBound,
} from './embed/cache-maintenance.js';

export const CACHE_KINDS = ['embeddings', 'extractors', 'downloads', 'tuning'] as const;
export type CacheKind = (typeof CACHE_KINDS)[number];

const KIND_FOLDERS: Record<CacheKind, string> = {
  embeddings: 'embeddings',
  extractors: 'extractors',
  downloads: 'models',
  tuning: 'tuning',
};

export interface CacheKindUsage {
  kind: CacheKind;
  path: string;
  bytes: number;
  files: number;
  /**
   * Embeddings: records in the files (from their sizes; an image two processes both appended counts twice until the
   * file is compacted); extractors: backbones; downloads: models; tuning: saved `embed --autotune` choices.
   */
  entries: number;
  /** Last time something of this kind was written or used (ISO), when there is anything. */
  lastUsed: string | null;
}

export interface CacheInfo {
  root: string;
  kinds: CacheKindUsage[];
  /** Bytes of everything under the root, bookkeeping files included. */
  totalBytes: number;
  embeddingsBound: EmbeddingBound;
}

/** "30d", "12h", "2w", "90m", "45s" as milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$/i.exec(text);
  if (!match) throw new EdgetlError('usage', `"${text}" is not a duration: write e.g. 30d, 12h, 2w (s, m, h, d, w)`);
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[
    match[2].toLowerCase() as 's' | 'm' | 'h' | 'd' | 'w'
  ];
  return Number(match[1]) * unit;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

interface FileFacts {
  path: string;
  bytes: number;
  modifiedMs: number;
}

async function filesUnder(dir: string): Promise<FileFacts[]> {
  const out: FileFacts[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) {
      const info = await stat(path).catch(() => undefined);
      if (info) out.push({ path, bytes: info.size, modifiedMs: info.mtimeMs });
    }
  }
  return out;
}

/** Size per kind, where it is, and the bound. */
export async function cacheInfo(root: string = edgetlCacheDir()): Promise<CacheInfo> {
  const kinds: CacheKindUsage[] = [];
  for (const kind of CACHE_KINDS) {
    const path = join(root, KIND_FOLDERS[kind]);
    const files = await filesUnder(path);
    let entries: number;
    if (kind === 'embeddings') {
      entries = 0;
      for (const file of await listEmbeddingFiles(root)) {
        const dim = Number(/\.d(\d+)\.bin$/.exec(file.path)?.[1] ?? 0);
        const size = (await stat(file.path).catch(() => undefined))?.size ?? 0;
        if (dim > 0) entries += Math.floor(Math.max(0, size - 64) / (4 + 32 + dim * 4 + 4));
      }
    } else if (kind === 'extractors') {
      entries = files.filter((f) => f.path.endsWith('.onnx')).length;
    } else if (kind === 'tuning') {
      entries = files.filter((f) => f.path.endsWith('.json')).length;
    } else {
      entries = files.filter((f) => f.path.endsWith('.onnx')).length;
    }
    const newest = Math.max(...files.map((f) => f.modifiedMs), -Infinity);
    kinds.push({
      kind,
      path,
      bytes: files.reduce((s, f) => s + f.bytes, 0),
      files: files.length,
      entries,
      lastUsed: Number.isFinite(newest) ? new Date(newest).toISOString() : null,
    });
  }
  const totalBytes = (await filesUnder(root)).reduce((s, f) => s + f.bytes, 0);
  return { root, kinds, totalBytes, embeddingsBound: await embeddingCacheBound(root) };
}

export interface ClearOptions {
  kinds?: readonly CacheKind[];
  /** Only what was last used (embeddings) or written (extractors, downloads) longer ago than this. */
  olderThanMs?: number;
  now?: number;
}

export interface ClearReport {
  root: string;
  removed: { kind: CacheKind; files: number; bytes: number; entries?: number }[];
}

/** Remove cached data, by kind and age. */
export async function clearCache(root: string = edgetlCacheDir(), options: ClearOptions = {}): Promise<ClearReport> {
  const now = options.now ?? Date.now();
  const cutoff = options.olderThanMs === undefined ? undefined : now - options.olderThanMs;
  const removed: ClearReport['removed'] = [];
  for (const kind of options.kinds ?? CACHE_KINDS) {
    const dir = join(root, KIND_FOLDERS[kind]);
    const before = await filesUnder(dir);
    const bytesBefore = before.reduce((s, f) => s + f.bytes, 0);
    if (kind === 'embeddings' && cutoff !== undefined) {
      const report = await maintainEmbeddingCache(root, { usedBefore: cutoff, now });
      if (!report.ran)
        throw new EdgetlError(
          'cache-busy',
          `another edgetl process is maintaining ${dir} right now; try again in a moment`,
        );
      // Files set aside as unreadable go by age too.
      for (const file of before)
        if (/\.unreadable-\d+$/.test(file.path) && file.modifiedMs < cutoff) await rm(file.path, { force: true });
      const after = await filesUnder(dir);
      removed.push({
        kind,
        files: before.length - after.length,
        bytes: bytesBefore - after.reduce((s, f) => s + f.bytes, 0),
        entries: report.evicted,
      });
      continue;
    }
    if (kind === 'extractors' && cutoff !== undefined) {
      // An extractor is its .onnx and its .json record; the record's time is its last use (touched on reuse).
      let files = 0;
      let bytes = 0;
      for (const record of before.filter((f) => f.path.endsWith('.json') && f.modifiedMs < cutoff)) {
        for (const file of before.filter(
          (f) => f.path === record.path || f.path === record.path.replace(/\.json$/, '.onnx'),
        )) {
          await rm(file.path, { force: true });
          files++;
          bytes += file.bytes;
        }
      }
      removed.push({ kind, files, bytes });
      continue;
    }
    const doomed = cutoff === undefined ? before : before.filter((f) => f.modifiedMs < cutoff);
    for (const file of doomed) await rm(file.path, { force: true });
    removed.push({ kind, files: doomed.length, bytes: doomed.reduce((s, f) => s + f.bytes, 0) });
  }
  return { root, removed };
}
