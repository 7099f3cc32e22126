import { stat, readFile } from 'node:fs/promises';
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { sha256File } from '../util/sha256.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { edgetlPackageRoot } from '../util/package-root.js';
import { catalogEntries } from '../../core/models/catalog.js';
import type { CatalogEntry } from '../../core/models/catalog-types.js';
import { downloadFile } from './download.js';

/** A backbone file on disk, identified. */
export interface ResolvedBackbone {
  /** Absolute path of the ONNX file. */
  path: string;
  sha256: string;
  /** The catalog entry whose sha256 the file has (whatever the file is called), if any. */
  entry?: CatalogEntry;
  /** Catalog id, or the file name without `.onnx` for a model the catalog does not know. */
  id: string;
  /** True when this call downloaded the file. */
  downloaded: boolean;
}

export interface ResolveOptions {
  /** Download a missing catalog model from its URL (default true). */
  download?: boolean;
  /** Folders searched for catalog files, in order. Default: modelSearchPath(). */
  searchPath?: string[];
  /** Download progress (bytes received, total when known). */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Called once before a download starts (for a "downloading X from Y" line). */
  onDownloadStart?: (info: { id: string; url: string; dest: string; bytes: number }) => void;
  /** Rehash files instead of trusting the hash memo (path, size, mtime). */
  verify?: boolean;
  signal?: AbortSignal;
  /** Download stall / connect limit in ms (see downloadFile). */
  timeoutMs?: number;
  /** Entries to resolve ids and hashes against instead of the built-in catalog (e.g. a company's own list). */
  catalog?: readonly CatalogEntry[];
}

async function catalogFrom(
  options: { catalog?: readonly CatalogEntry[] } | undefined,
): Promise<readonly CatalogEntry[]> {
  return options?.catalog ?? (await catalogEntries());
}

function entryById(catalog: readonly CatalogEntry[], id: string): CatalogEntry | undefined {
  return catalog.find((e) => e.id === id);
}

function entryBySha256(catalog: readonly CatalogEntry[], sha256: string): CatalogEntry | undefined {
  const wanted = sha256.toLowerCase();
  return catalog.find((e) => e.sha256.toLowerCase() === wanted);
}

/** One place a catalog file was looked for. */
export interface SearchLocation {
  dir: string;
  /** Why this folder is searched: `EDGETL_MODEL_PATH`, `./models`, `bundled` (the package's own), or `cache`. */
  origin: 'EDGETL_MODEL_PATH' | './models' | 'bundled' | 'cache' | 'option';
}

/**
 * The package's own models/ folder, which ships the default backbone (found from the running code, so it works in a
 * checkout, in dist/ and when installed). Undefined when edgetl runs without its package folder.
 */
export function bundledModelsDir(): string | undefined {
  const root = edgetlPackageRoot();
  const models = root ? join(root, 'models') : undefined;
  return models && existsSync(models) ? models : undefined;
}

/**
 * Folders searched for models, in order: each EDGETL_MODEL_PATH entry (":"-separated, ";" on Windows), then
 * ./models under the working directory, then the package's bundled models (the default backbone ships there), then
 * `<cache>/models` (where downloads go).
 */
export function modelSearchLocations(
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): SearchLocation[] {
  const locations: SearchLocation[] = [];
  for (const entry of (env.EDGETL_MODEL_PATH ?? '').split(delimiter)) {
    if (entry.trim()) locations.push({ dir: resolvePath(cwd, entry.trim()), origin: 'EDGETL_MODEL_PATH' });
  }
  locations.push({ dir: resolvePath(cwd, 'models'), origin: './models' });
  const bundled = bundledModelsDir();
  if (bundled) locations.push({ dir: bundled, origin: 'bundled' });
  locations.push({ dir: downloadDir(), origin: 'cache' });
  const seen = new Set<string>();
  return locations.filter((l) => {
    if (seen.has(l.dir)) return false;
    seen.add(l.dir);
    return true;
  });
}

/** modelSearchLocations() as plain folder paths. */
export function modelSearchPath(): string[] {
  return modelSearchLocations().map((l) => l.dir);
}

/** Where downloaded catalog models are stored: `<cache>/models`. */
export function downloadDir(): string {
  return join(edgetlCacheDir(), 'models');
}

function locationsFrom(options: { searchPath?: string[] } | undefined): SearchLocation[] {
  if (options?.searchPath)
    return options.searchPath.map((dir) => ({ dir: resolvePath(dir), origin: 'option' as const }));
  return modelSearchLocations();
}

/** Candidate file paths for `entry` in one folder: `<dir>/<file>`, and `<dir>/<base name>` when `file` has folders. */
function candidatesIn(dir: string, entry: CatalogEntry): string[] {
  const direct = join(dir, entry.file);
  const flat = join(dir, basename(entry.file));
  return direct === flat ? [direct] : [direct, flat];
}

export interface LocatedModel {
  /** First existing file for the entry along the search path, or undefined. Not hashed. */
  path?: string;
  /** Every path looked at, in order. */
  looked: string[];
  /** A candidate that exists but is not a regular file (a folder, a FIFO, a broken link...): what it is. */
  notAFile?: string;
}

/**
 * A model the catalog does not know, by id: the first `<id>.onnx` in a search folder or in one of its immediate
 * subfolders (so a folder of models sorted into subfolders, like ../shared/models/arch-only, works as one entry).
 */
function locateUnknownModel(id: string, locations: SearchLocation[]): { path?: string; looked: string[] } {
  const looked: string[] = [];
  const file = `${id}.onnx`;
  for (const location of locations) {
    const direct = join(location.dir, file);
    looked.push(direct);
    if (isFile(direct)) return { path: direct, looked };
    let subfolders: string[] = [];
    try {
      subfolders = readdirSync(location.dir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort();
    } catch {
      continue;
    }
    for (const sub of subfolders) {
      const nested = join(location.dir, sub, file);
      if (isFile(nested)) return { path: nested, looked: [...looked, nested] };
    }
    if (subfolders.length) looked.push(join(location.dir, '*', file));
  }
  return { looked };
}

/** Is a catalog model present locally, and where? Looks only; never downloads or hashes. */
export async function locateCatalogModel(
  entry: CatalogEntry,
  options?: { searchPath?: string[] },
): Promise<LocatedModel> {
  const looked: string[] = [];
  for (const location of locationsFrom(options)) {
    for (const candidate of candidatesIn(location.dir, entry)) {
      looked.push(candidate);
      const kind = fileKind(candidate);
      if (kind === 'file') return { path: candidate, looked };
      if (kind !== 'missing') return { looked, notAFile: notAFileMessage(candidate, kind) };
    }
  }
  return { looked };
}

function isFile(path: string): boolean {
  return fileKind(path) === 'file';
}

/** 'file', 'missing', or what else is there ("a folder", "a FIFO", "a broken symbolic link", ...). */
function fileKind(path: string): string {
  let info: ReturnType<typeof statSync>;
  try {
    info = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      try {
        return lstatSync(path).isSymbolicLink() ? 'a broken symbolic link' : 'missing';
      } catch {
        return 'missing';
      }
    }
    return code === 'ELOOP' ? 'a symbolic link loop' : `unreadable (${code ?? describeError(error)})`;
  }
  if (info.isFile()) return 'file';
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function notAFileMessage(path: string, kind: string): string {
  return `${path} exists but is ${kind}, not a model file`;
}

// ---- sha256 memo ------------------------------------------------------------------------------------------------

interface HashMemoEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
  usedAt: number;
}

const MEMO_FILE = 'file-hashes.json';
const MEMO_LIMIT = 500;
const memoInProcess = new Map<string, HashMemoEntry>();

function memoPath(): string {
  return join(edgetlCacheDir(), MEMO_FILE);
}

async function readMemo(): Promise<Record<string, HashMemoEntry>> {
  try {
    const parsed: unknown = JSON.parse(await readFile(memoPath(), 'utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, HashMemoEntry>;
  } catch {
    // Missing or damaged memo: it is only a shortcut, rebuild it.
  }
  return {};
}

/**
 * sha256 of a model file, remembered by (absolute path, size, mtime) in `<cache>/file-hashes.json` so a 100 MB
 * backbone is hashed once, not on every run. `verify` forces a fresh hash.
 */
export async function hashModelFile(path: string, options?: { verify?: boolean }): Promise<string> {
  const absolute = resolvePath(path);
  const info = await stat(absolute);
  const fresh = (m: HashMemoEntry | undefined) => m !== undefined && m.size === info.size && m.mtimeMs === info.mtimeMs;
  if (!options?.verify) {
    const inProcess = memoInProcess.get(absolute);
    if (fresh(inProcess)) return inProcess!.sha256;
    const stored = (await readMemo())[absolute];
    if (fresh(stored) && typeof stored!.sha256 === 'string') {
      memoInProcess.set(absolute, stored!);
      return stored!.sha256;
    }
  }
  const sha256 = await sha256File(absolute);
  const entry: HashMemoEntry = { size: info.size, mtimeMs: info.mtimeMs, sha256, usedAt: Date.now() };
  memoInProcess.set(absolute, entry);
  await rememberHash(absolute, entry);
  return sha256;
}

async function rememberHash(absolute: string, entry: HashMemoEntry): Promise<void> {
  try {
    const memo = await readMemo();
    memo[absolute] = entry;
    const keys = Object.keys(memo);
    if (keys.length > MEMO_LIMIT) {
      keys.sort((a, b) => (memo[a]!.usedAt ?? 0) - (memo[b]!.usedAt ?? 0));
      for (const key of keys.slice(0, keys.length - MEMO_LIMIT)) delete memo[key];
    }
    await writeFileAtomic(memoPath(), JSON.stringify(memo));
  } catch {
    // A read-only cache must not stop a run: the hash is simply recomputed next time.
  }
}

// ---- resolution -------------------------------------------------------------------------------------------------

function looksLikePath(value: string): boolean {
  return (
    isAbsolute(value) || value.includes('/') || value.includes('\\') || value.startsWith('.') || /\.onnx$/i.test(value)
  );
}

/**
 * Find a backbone by path or catalog id.
 *
 * - A path (anything with a slash, starting with `.`, or ending in `.onnx`) is used as is; its sha256 is matched
 *   against the catalog so a renamed catalog file still gets its entry.
 * - A catalog id is looked for as `<entry.file>` in each EDGETL_MODEL_PATH folder, then ./models, then the
 *   package's bundled models, then `<cache>/models`. A file found there must have the catalog sha256; otherwise this
 *   fails naming the file and both hashes (a damaged or different file is never used silently). When no folder has
 *   it, it is downloaded into `<cache>/models` from the entry's URL (unless `download: false`).
 * - Any other id is looked for as `<id>.onnx` in the same folders (and their immediate subfolders): a model the
 *   catalog does not know, described by its sidecar or the defaults. Failing that, the error names the closest ids.
 */
export async function resolveBackbone(idOrPath: string, options: ResolveOptions = {}): Promise<ResolvedBackbone> {
  const value = idOrPath.trim();
  const catalog = await catalogFrom(options);
  if (!value)
    throw new EdgetlError(
      'usage',
      'no backbone given: pass a catalog id (catalogEntries() lists them) or a path to an .onnx file',
    );

  if (looksLikePath(value)) {
    const absolute = resolvePath(value);
    if (existsSync(absolute)) return resolveFile(absolute, catalog, options);
    // `resnet50-v1-12.onnx` typed as a bare name: treat it as the catalog id when no such file is here.
    const bare = !value.includes('/') && !value.includes('\\');
    const asId = bare ? entryById(catalog, value.replace(/\.onnx$/i, '')) : undefined;
    if (!asId) {
      throw new EdgetlError('model-not-found', `backbone file not found: ${absolute}`, { file: absolute });
    }
    return resolveCatalogEntry(asId, options);
  }

  const entry = entryById(catalog, value);
  if (entry) return resolveCatalogEntry(entry, options);
  if (isFile(resolvePath(value))) return resolveFile(resolvePath(value), catalog, options);
  const unknown = locateUnknownModel(value, locationsFrom(options));
  if (unknown.path) return resolveFile(unknown.path, catalog, options);
  const ids = catalog.map((e) => e.id);
  const close = closestIds(value, ids);
  throw new EdgetlError(
    'unknown-backbone',
    `unknown backbone "${value}": not a catalog id, and no ${value}.onnx in the model search path ` +
      `(${locationsFrom(options)
        .map((l) => l.dir)
        .join(', ')}). ` +
      (close.length ? `Closest catalog ids: ${close.join(', ')}. ` : '') +
      `catalogEntries() lists all ${ids.length}; or pass a path to an .onnx file.`,
  );
}

async function resolveFile(
  absolute: string,
  catalog: readonly CatalogEntry[],
  options: ResolveOptions,
): Promise<ResolvedBackbone> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(absolute);
  } catch (error) {
    throw new EdgetlError('model-not-found', `cannot read backbone file ${absolute}: ${describeError(error)}`, {
      file: absolute,
      cause: error,
    });
  }
  if (!info.isFile())
    throw new EdgetlError('model-not-a-file', notAFileMessage(absolute, fileKind(absolute)), { file: absolute });
  const sha256 = await hashModelFile(absolute, { verify: options.verify });
  const entry = entryBySha256(catalog, sha256);
  return {
    path: absolute,
    sha256,
    entry,
    id: entry?.id ?? basename(absolute).replace(/\.onnx$/i, ''),
    downloaded: false,
  };
}

async function resolveCatalogEntry(entry: CatalogEntry, options: ResolveOptions): Promise<ResolvedBackbone> {
  const locations = locationsFrom(options);
  const looked: { path: string; origin: SearchLocation['origin'] }[] = [];
  for (const location of locations) {
    for (const candidate of candidatesIn(location.dir, entry)) {
      looked.push({ path: candidate, origin: location.origin });
      const kind = fileKind(candidate);
      if (kind === 'missing') continue;
      if (kind !== 'file') {
        throw new EdgetlError(
          'model-not-a-file',
          `${notAFileMessage(candidate, kind)}: remove or replace it so ${entry.id} can be found (or fetched) there`,
          { file: candidate },
        );
      }
      const sha256 = await hashModelFile(candidate, { verify: options.verify });
      if (sha256 !== entry.sha256.toLowerCase()) {
        const size = statSync(candidate).size;
        throw new EdgetlError(
          'model-checksum',
          `${candidate} is not the catalog's ${entry.id}: expected sha256 ${entry.sha256} (${entry.bytes} bytes), ` +
            `the file has ${sha256} (${size} bytes). It may be damaged, truncated or another version. ` +
            `Replace or delete it` +
            (entry.url ? ` (then Backbone.load('${entry.id}') downloads a verified copy)` : '') +
            `, or pass the file's path instead of the id to use it as a model the catalog does not know.`,
          { file: candidate },
        );
      }
      return { path: candidate, sha256, entry, id: entry.id, downloaded: false };
    }
  }

  const lookedList = looked.map((l) => `  ${l.path}${l.origin === 'option' ? '' : `  (${l.origin})`}`).join('\n');
  const fileName = basename(entry.file);
  const byHand = `Place ${fileName} (sha256 ${entry.sha256}) in any of those folders, or point EDGETL_MODEL_PATH at the folder that has it.`;
  if (options.download === false || !entry.url) {
    const why = !entry.url
      ? `The catalog has no download URL for it (source: ${entry.source}).`
      : `Downloading is off (\`download: false\`); with it on, Backbone.load('${entry.id}') downloads it from ${entry.url}.`;
    throw new EdgetlError(
      'model-missing',
      `backbone ${entry.id} is not on this machine. Looked for:\n${lookedList}\n${why}\n${byHand}`,
    );
  }

  const dest = join(downloadDir(), fileName);
  options.onDownloadStart?.({ id: entry.id, url: entry.url, dest, bytes: entry.bytes });
  try {
    const result = await downloadFile(entry.url, dest, {
      sha256: entry.sha256,
      bytes: entry.bytes,
      onProgress: options.onProgress,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      manualInstallHint: 'or into any folder listed above',
    });
    await rememberHash(resolvePath(dest), { ...(await memoFor(dest, result.sha256)), usedAt: Date.now() });
    return { path: dest, sha256: result.sha256, entry, id: entry.id, downloaded: true };
  } catch (error) {
    if (error instanceof EdgetlError && error.code === 'download-aborted') throw error;
    throw new EdgetlError(
      error instanceof EdgetlError ? error.code : 'download-failed',
      `backbone ${entry.id} is not on this machine and could not be downloaded.\nLooked for:\n${lookedList}\n` +
        `Download failed: ${describeError(error)}`,
      { cause: error },
    );
  }
}

async function memoFor(path: string, sha256: string): Promise<Omit<HashMemoEntry, 'usedAt'>> {
  const info = await stat(path);
  return { size: info.size, mtimeMs: info.mtimeMs, sha256 };
}

/** Up to `limit` ids nearest to `wanted` (edit distance, with a bonus for shared prefixes/substrings). */
export function closestIds(wanted: string, ids: string[], limit = 3): string[] {
  const target = wanted.toLowerCase();
  const scored = ids.map((id) => {
    const candidate = id.toLowerCase();
    let score = editDistance(target, candidate);
    if (candidate.includes(target) || target.includes(candidate))
      score -= Math.min(target.length, candidate.length) / 2;
    return { id, score };
  });
  scored.sort((a, b) => a.score - b.score || a.id.localeCompare(b.id));
  const threshold = Math.max(3, target.length * 0.6);
  return scored
    .filter((s) => s.score <= threshold)
    .slice(0, limit)
    .map((s) => s.id);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
