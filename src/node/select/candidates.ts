/**
 * Which backbones a selection compares: the ones the user names, or every pretrained backbone on this machine (catalog
 * models found along the model search path, and other .onnx files in those folders). Architecture-only graphs
 * (random weights) are left out of the default set and listed as excluded: their accuracy means nothing.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { catalogEntries } from '../../core/models/catalog.js';
import { locateCatalogModel, modelSearchLocations, resolveBackbone } from '../models/resolve.js';
import { describeError } from '../../core/util/errors.js';

export interface CandidateRef {
  /** The backbone as given (or, in the default set, its catalog id or file path). */
  backbone: string;
  /** What Backbone.load gets: the same, or the file a bare name was found as. */
  load: string;
  /** Short name for tables (catalog id or file name without .onnx). */
  id: string;
}

export interface ExcludedBackbone {
  backbone: string;
  reason: string;
}

const ARCH_ONLY_NAME = /arch-only/i;

function onnxFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((name) => name.toLowerCase().endsWith('.onnx'))
      .map((name) => join(dir, name))
      .filter((path) => statSync(path).isFile())
      .sort();
  } catch {
    return [];
  }
}

/**
 * Every backbone present locally, each once (by sha256): pretrained catalog entries first (catalog order), then
 * files the catalog does not know, from the model search path folders (top level). Catalog entries of kind
 * `arch-only`, and unknown files named `*arch-only*`, are excluded with the reason.
 */
export async function localBackbones(
  options: { searchPath?: string[] } = {},
): Promise<{ candidates: CandidateRef[]; excluded: ExcludedBackbone[] }> {
  const catalog = catalogEntries();
  const candidates: CandidateRef[] = [];
  const excluded: ExcludedBackbone[] = [];
  const seen = new Set<string>();
  const archOnlyHashes = new Set(catalog.filter((e) => e.kind === 'arch-only').map((e) => e.sha256.toLowerCase()));
  for (const entry of catalog) {
    const located = await locateCatalogModel(entry, options);
    if (!located.path) continue;
    if (entry.kind === 'arch-only') {
      excluded.push({ backbone: entry.id, reason: 'architecture only (random weights): its accuracy means nothing' });
      seen.add(entry.sha256.toLowerCase());
      continue;
    }
    try {
      const resolved = await resolveBackbone(entry.id, { download: false, ...options });
      if (seen.has(resolved.sha256)) continue;
      seen.add(resolved.sha256);
      candidates.push({ backbone: entry.id, load: entry.id, id: entry.id });
    } catch (error) {
      excluded.push({ backbone: entry.id, reason: describeError(error) });
    }
  }
  const folders = options.searchPath ?? modelSearchLocations().map((l) => l.dir);
  const catalogFiles = new Set(catalog.map((e) => basename(e.file)));
  for (const dir of folders) {
    for (const path of onnxFilesIn(dir)) {
      const name = basename(path).replace(/\.onnx$/i, '');
      if (catalogFiles.has(basename(path))) continue;
      if (ARCH_ONLY_NAME.test(name)) {
        excluded.push({
          backbone: path,
          reason: 'architecture only by its name (random weights): its accuracy means nothing',
        });
        continue;
      }
      try {
        const resolved = await resolveBackbone(path, { download: false });
        if (archOnlyHashes.has(resolved.sha256)) {
          excluded.push({ backbone: path, reason: `the catalog's architecture-only ${resolved.id} (random weights)` });
          continue;
        }
        if (seen.has(resolved.sha256)) continue;
        seen.add(resolved.sha256);
        candidates.push({ backbone: path, load: path, id: resolved.id });
      } catch (error) {
        excluded.push({ backbone: path, reason: describeError(error) });
      }
    }
  }
  return { candidates, excluded };
}

/**
 * The user's list: each name is a catalog id, a path, or the bare name of a file in a model search path folder
 * (`efficientnet-b0-imagenet.nhwc.fp32` for `$EDGETL_MODEL_PATH/efficientnet-b0-imagenet.nhwc.fp32.onnx`).
 */
export function namedBackbones(names: readonly string[], options: { searchPath?: string[] } = {}): CandidateRef[] {
  const folders = options.searchPath ?? modelSearchLocations().map((l) => l.dir);
  const catalogIds = new Set(catalogEntries().map((e) => e.id));
  return names.map((name) => {
    if (catalogIds.has(name) || name.includes('/') || name.includes('\\'))
      return { backbone: name, load: name, id: basename(name).replace(/\.onnx$/i, '') };
    const file = name.toLowerCase().endsWith('.onnx') ? name : `${name}.onnx`;
    for (const dir of folders) {
      const path = join(dir, file);
      try {
        if (statSync(path).isFile()) return { backbone: name, load: path, id: basename(file, '.onnx') };
      } catch {
        // not in this folder
      }
    }
    return { backbone: name, load: name, id: name.replace(/\.onnx$/i, '') };
  });
}
