import { resolve } from 'node:path';
import type { Backbone } from './backbone.js';
import { scanImageFolder } from './dataset.js';
import { embeddingSetPaths, writeEmbeddingSetJson, type EmbeddingSetItem } from './embedding-set.js';
import { NpyRowWriter } from './npy-file.js';
import type { EmbedManyOptions, EmbedManyResult } from './pipeline.js';
import { EdgetlError } from '../../core/util/errors.js';

export interface EmbedFolderOptions extends Omit<EmbedManyOptions, 'collect'> {
  /** Write `<out>.npy` and `<out>.json` (an embedding set); the .npy is streamed row by row. */
  out?: string;
  /**
   * Return the embeddings in `result.embeddings` (default true). With `out` set and this false, memory stays
   * bounded however many images the folder holds: rows go straight to the file.
   */
  keepEmbeddings?: boolean;
}

export interface EmbedFolderResult {
  /** Absolute folder that was scanned. */
  dir: string;
  /** Classes that have at least one embedded image, sorted; null for a flat folder. */
  classes: string[] | null;
  /** Embedded images per class (empty for a flat folder). */
  classCounts: Record<string, number>;
  items: EmbeddingSetItem[];
  skipped: { path: string; reason: string }[];
  /** Scan and run notes a user should see (empty class folders, ignored files, cache problems). */
  warnings: string[];
  /** [items.length, dim] float32; empty when keepEmbeddings was false. */
  embeddings: Float32Array;
  dim: number;
  /** Wall time of the embedding (scan and model loading excluded). */
  seconds: number;
  /** Embedded images per second of `seconds`. */
  imagesPerSecond: number;
  cacheHits: number;
  computed: number;
  written?: { npy: string; json: string };
}

/** Scan a folder (class folders or flat), embed every image with `backbone`, and optionally write an embedding set. */
export async function embedFolder(
  backbone: Backbone,
  dir: string,
  options: EmbedFolderOptions = {},
): Promise<EmbedFolderResult> {
  const root = resolve(dir);
  const scan = await scanImageFolder(root);
  const warnings = [...scan.warnings];
  const paths = options.out !== undefined ? embeddingSetPaths(options.out) : undefined;
  const writer = paths ? await NpyRowWriter.create(paths.npy, backbone.embeddingDim) : undefined;
  let result: EmbedManyResult;
  try {
    result = await backbone.embedMany(
      scan.items.map((item) => item.path),
      {
        ...options,
        collect: options.keepEmbeddings !== false,
        onEmbedding: (item, embedding) => {
          writer?.append(embedding);
          options.onEmbedding?.(item, embedding);
        },
      },
    );
    if (result.items.length === 0) await writer?.abort();
  } catch (error) {
    await writer?.abort();
    throw error;
  }
  if (backbone.cacheWarning) warnings.push(backbone.cacheWarning);

  const items = result.items.map((item) => ({
    path: scan.items[item.index]!.path,
    label: scan.items[item.index]!.label,
  }));
  const classCounts: Record<string, number> = {};
  for (const item of items) if (item.label !== null) classCounts[item.label] = (classCounts[item.label] ?? 0) + 1;
  let classes = scan.classes;
  if (classes !== null) {
    const lost = classes.filter((name) => !classCounts[name]);
    if (lost.length > 0) warnings.push(`no usable image left in class(es) ${lost.join(', ')}: left out of the classes`);
    classes = classes.filter((name) => classCounts[name]);
  }
  // Broken or looping links found by the scan are listed with the images that failed to decode.
  const skipped = [...scan.skipped, ...result.skipped.map((s) => ({ path: s.path, reason: s.reason }))];
  if (items.length === 0) {
    const shown = skipped
      .slice(0, 5)
      .map((s) => `\n  ${s.path}: ${s.reason}`)
      .join('');
    throw new EdgetlError(
      'no-embeddings',
      `none of the ${scan.items.length} image(s) in ${root} could be embedded:${shown}${skipped.length > 5 ? `\n  ... and ${skipped.length - 5} more` : ''}`,
      { file: root },
    );
  }
  const seconds = result.stats.seconds;
  const summary: EmbedFolderResult = {
    dir: root,
    classes,
    classCounts,
    items,
    skipped,
    warnings,
    embeddings: result.embeddings,
    dim: result.dim,
    seconds,
    imagesPerSecond: seconds > 0 ? items.length / seconds : 0,
    cacheHits: result.stats.cacheHits,
    computed: result.stats.computed,
  };
  if (paths && writer) {
    const { dataSha256 } = await writer.finish();
    const json = await writeEmbeddingSetJson(paths.prefix, {
      embeddingsSha256: dataSha256,
      backbone: {
        id: backbone.id,
        sha256: backbone.sha256,
        embeddingDim: backbone.embeddingDim,
        fingerprint: backbone.fingerprint,
      },
      executionProvider: backbone.provider.used,
      classes,
      items,
      skipped,
      preprocess: backbone.preprocess,
      root,
    });
    summary.written = { npy: paths.npy, json };
  }
  return summary;
}
