import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * edgetl's per-user cache folder (downloaded models, feature extractors, embedding caches):
 * EDGETL_CACHE_DIR, else $XDG_CACHE_HOME/edgetl, else ~/.cache/edgetl. Not created here.
 */
export function edgetlCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EDGETL_CACHE_DIR) return resolve(env.EDGETL_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return join(resolve(env.XDG_CACHE_HOME), 'edgetl');
  return join(homedir(), '.cache', 'edgetl');
}
