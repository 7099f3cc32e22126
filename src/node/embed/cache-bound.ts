/**
 * The embedding cache's one size bound: EDGETL_CACHE_MAX_SIZE, else `edgetl cache limit` (a config file in the cache
 * root), else DEFAULT_EMBEDDING_CACHE_MAX_BYTES. Maintenance after a run evicts least-recently-used entries across
 * all files down to it (cache-maintenance.ts), and opening one file keeps that file within it (cache.ts), so there is
 * one number to set.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgetlError } from '../../core/util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** Default bound of the embedding cache (bytes), when neither EDGETL_CACHE_MAX_SIZE nor `edgetl cache limit` sets one. */
export const DEFAULT_EMBEDDING_CACHE_MAX_BYTES = 2 * 1024 ** 3;
const CONFIG_FILE = 'cache-config.json';

export interface EmbeddingBound {
  /** null: unbounded. */
  maxBytes: number | null;
  source: 'EDGETL_CACHE_MAX_SIZE' | 'edgetl cache limit' | 'default' | 'option';
}

/** "2GB", "500 MB", "1.5GiB", "123456" (bytes). Decimal (kB, MB, GB) and binary (KiB, MiB, GiB) units. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(text);
  if (!match) throw new EdgetlError('usage', `"${text}" is not a size: write e.g. 500MB, 2GB or 1.5GiB`);
  const unit = (match[2] ?? 'b').toLowerCase();
  const power = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  const base = unit.includes('i') ? 1024 : 1000;
  return Math.round(Number(match[1]) * base ** power);
}

/** The embedding cache's size bound: EDGETL_CACHE_MAX_SIZE, else `edgetl cache limit`, else the default. */
export async function embeddingCacheBound(root: string, env: NodeJS.ProcessEnv = process.env): Promise<EmbeddingBound> {
  const fromEnv = env.EDGETL_CACHE_MAX_SIZE?.trim();
  if (fromEnv) {
    if (/^(none|unlimited|off)$/i.test(fromEnv)) return { maxBytes: null, source: 'EDGETL_CACHE_MAX_SIZE' };
    try {
      return { maxBytes: parseSize(fromEnv), source: 'EDGETL_CACHE_MAX_SIZE' };
    } catch {
      throw new EdgetlError(
        'usage',
        `EDGETL_CACHE_MAX_SIZE="${fromEnv}" is not a size: write e.g. 500MB, 2GB, or none`,
      );
    }
  }
  const config = await readFile(join(root, CONFIG_FILE), 'utf8').then(
    (text) => JSON.parse(text) as { embeddingsMaxBytes?: unknown },
    () => undefined,
  );
  const configured = config?.embeddingsMaxBytes;
  if (configured === null) return { maxBytes: null, source: 'edgetl cache limit' };
  if (typeof configured === 'number' && Number.isFinite(configured) && configured >= 0)
    return { maxBytes: configured, source: 'edgetl cache limit' };
  return { maxBytes: DEFAULT_EMBEDDING_CACHE_MAX_BYTES, source: 'default' };
}

/** Persist the bound (`edgetl cache limit`); null means unbounded. */
export async function setEmbeddingCacheBound(maxBytes: number | null, root: string): Promise<void> {
  await writeFileAtomic(join(root, CONFIG_FILE), JSON.stringify({ embeddingsMaxBytes: maxBytes }, null, 2) + '\n');
}
