/** What the head verbs (train, eval, predict, head) share: labelled embeddings from a folder or an embedding set, reports. */
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { Backbone, type BackboneLoadOptions } from '../embed/backbone.js';
import { embedFolder } from '../embed/embed-folder.js';
import { embeddingSetPaths, readEmbeddingSet } from '../embed/embedding-set.js';
import { scanImageFolder } from '../embed/dataset.js';
import { DEFAULT_BACKBONE_ID } from '../../core/models/catalog.js';
import { resolveBackbone } from '../models/resolve.js';
import type { HeadBackboneRef } from '../../core/formats/head-file.js';
import type { ClassificationReport } from '../../core/heads/metrics.js';
import { EdgetlError } from '../../core/util/errors.js';
import { inCliTerms, ProgressBar } from './common.js';
import { type EmbedRunSettings, backboneFlagOptions, loadOptionsFromFlags, savedRunSettings } from './embed.js';

export const backboneRunOptions = backboneFlagOptions;
export type BackboneRunValues = {
  [K in keyof typeof backboneFlagOptions]?: (typeof backboneFlagOptions)[K]['type'] extends 'boolean'
    ? boolean
    : string;
};

export function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** A head's load notes (e.g. a version 1 file without open-set data), once, on stderr. */
export function printHeadWarnings(head: { warnings: readonly string[] }): void {
  for (const warning of head.warnings) process.stderr.write(`note: ${warning}\n`);
}

/** Opens the backbone on first use only (an embedding set needs none), and closes it once. */
export class LazyBackbone {
  private opened: Promise<Backbone> | undefined;
  private settings: EmbedRunSettings | undefined;
  constructor(
    private readonly values: BackboneRunValues,
    private readonly fallbackId: string = DEFAULT_BACKBONE_ID,
    /** Added to the flags' load options (an adapted last block: fine-tune.ts adaptedBackboneOptions). */
    private readonly extra: Pick<BackboneLoadOptions, 'surgery'> = {},
  ) {}
  get requested(): string {
    return this.values.backbone ?? this.fallbackId;
  }
  get explicit(): boolean {
    return this.values.backbone !== undefined;
  }
  open(): Promise<Backbone> {
    this.opened ??= this.load().catch((error: unknown) => {
      if (this.explicit || !(error instanceof EdgetlError)) throw error;
      // the id came from a head or an embedding set: say where it came from and how to point at the file
      throw new EdgetlError(
        error.code,
        `${error.message}\n(backbone "${this.requested}" is the one the head or embeddings name; if it is a file, pass --backbone <path to it>)`,
        { file: error.file, cause: error },
      );
    });
    return this.opened;
  }
  /** The flags' load options; threads and decoders no flag gives come from the tuning saved by `embed --autotune`. */
  private async load(): Promise<Backbone> {
    const { settings } = await savedRunSettings({ ...this.values, backbone: this.requested });
    for (const note of settings.notes) process.stderr.write(`note: ${note}\n`);
    this.settings = settings;
    return Backbone.load(this.requested, {
      ...loadOptionsFromFlags(this.values),
      intraOpThreads: settings.intraOpThreads,
      decodeThreads: settings.decodeThreads,
      ...this.extra,
    });
  }
  /** Images per inference: the --batch flag, else the saved tuning's, else the default (known once opened). */
  get batchSize(): number {
    if (!this.settings) throw new Error('internal: LazyBackbone.batchSize before open()');
    return this.settings.batchSize;
  }
  /** sha256 and id of the requested backbone without opening a session (hashing is memoized). */
  async identify(): Promise<{ id: string; sha256: string }> {
    if (this.opened) {
      const backbone = await this.opened;
      return { id: backbone.id, sha256: backbone.sha256 };
    }
    const resolved = await resolveBackbone(this.requested, { download: this.values['no-download'] !== true });
    return { id: resolved.id, sha256: resolved.sha256 };
  }
  async close(): Promise<void> {
    if (this.opened) await (await this.opened.catch(() => undefined))?.close();
  }
}

export interface LabelledEmbeddings {
  source: 'folder' | 'embeddings';
  path: string;
  embeddings: Float32Array;
  labels: string[];
  paths: string[];
  classes: string[];
  dim: number;
  backbone: HeadBackboneRef;
  executionProvider: string;
  embedSeconds: number;
  skipped: { path: string; reason: string }[];
  warnings: string[];
}

/** `x`, `x.npy` or `x.json` naming an embedding set written by `edgetl embed`. */
export function isEmbeddingSet(input: string): boolean {
  if (existsSync(input) && statSync(input).isDirectory()) return false;
  return existsSync(embeddingSetPaths(input).json);
}

/** An embedding set written by `edgetl embed`: it must have labels, and come from the backbone asked for. */
async function labelledEmbeddingSet(input: string, backbone: LazyBackbone, what: string): Promise<LabelledEmbeddings> {
  const set = await readEmbeddingSet(input);
  if (set.classes === null)
    throw new EdgetlError(
      'usage',
      `${what} ${input} has no labels (it was embedded from a flat folder): ${what} needs class folders`,
      { file: input },
    );
  if (backbone.explicit) {
    const wanted = await backbone.identify();
    if (wanted.sha256 !== set.backbone.sha256) {
      throw new EdgetlError(
        'backbone-mismatch',
        `${what} ${input} was embedded with backbone ${set.backbone.id} (sha256 ${set.backbone.sha256.slice(0, 12)}...) but --backbone ${backbone.requested} is ${wanted.id} (sha256 ${wanted.sha256.slice(0, 12)}...): embeddings of different backbones cannot be mixed`,
        { file: input },
      );
    }
  }
  return {
    source: 'embeddings',
    path: embeddingSetPaths(input).prefix,
    embeddings: set.embeddings,
    labels: set.items.map((i) => i.label!),
    paths: set.items.map((i) => i.path),
    classes: set.classes,
    dim: set.dim,
    backbone: {
      id: set.backbone.id,
      sha256: set.backbone.sha256,
      embeddingDim: set.dim,
      preprocess: set.preprocess ?? null,
    },
    executionProvider: set.executionProvider,
    embedSeconds: 0,
    skipped: set.skipped,
    // What the library warns in its terms, in the CLI's (every verb that reads embeddings prints these).
    warnings: set.warnings.map(inCliTerms),
  };
}

/** The class folders of `input`, refusing a flat folder and a class folder without images. */
async function classFolders(input: string, what: string): Promise<string[]> {
  const scan = await scanImageFolder(input);
  if (scan.classes === null) {
    throw new EdgetlError(
      'usage',
      `${what} ${input} holds images but no class folders: put each class in its own folder (${input}/<class>/*.jpg)`,
      { file: input },
    );
  }
  const emptyClasses = readdirSync(input, { withFileTypes: true })
    .filter(
      (e) =>
        !e.name.startsWith('.') &&
        e.name !== '__MACOSX' &&
        (e.isDirectory() || (e.isSymbolicLink() && statSync(join(input, e.name)).isDirectory())),
    )
    .map((e) => e.name)
    .filter((name) => !scan.classes!.includes(name));
  if (emptyClasses.length > 0) {
    throw new EdgetlError(
      'empty-class',
      `${what} ${input}: class folder${emptyClasses.length > 1 ? 's' : ''} ${emptyClasses.map((c) => `"${c}"`).join(', ')} ha${emptyClasses.length > 1 ? 've' : 's'} no images; add images or remove the folder`,
      { file: input },
    );
  }
  return scan.classes;
}

/** A folder of class folders embedded with the backbone (through the cache); a class whose images all failed is refused. */
async function embeddedClassFolders(
  input: string,
  classes: string[],
  backbone: LazyBackbone,
  values: BackboneRunValues,
  what: string,
): Promise<LabelledEmbeddings> {
  const opened = await backbone.open();
  const showProgress = values.json !== true && process.stderr.isTTY === true;
  const bar = new ProgressBar(`embedding ${shortPath(input)}`, showProgress);
  const result = await embedFolder(opened, input, {
    batchSize: backbone.batchSize,
    strict: values.strict === true,
    useCache: values['no-cache'] !== true,
    onProgress: (done, total, skipped) => bar.update(done, total, skipped ? `(${skipped} skipped)` : ''),
  });
  bar.finish();
  const lost = classes.filter((c) => !result.classCounts[c]);
  if (lost.length > 0) {
    throw new EdgetlError(
      'empty-class',
      `${what} ${input}: no image of class${lost.length > 1 ? 'es' : ''} ${lost.map((c) => `"${c}"`).join(', ')} could be embedded (${result.skipped.length} skipped; see --json for reasons)`,
      { file: input },
    );
  }
  return {
    source: 'folder',
    path: result.dir,
    embeddings: result.embeddings,
    labels: result.items.map((i) => i.label!),
    paths: result.items.map((i) => i.path),
    classes: result.classes!,
    dim: result.dim,
    backbone: {
      id: opened.id,
      sha256: opened.sha256,
      embeddingDim: opened.embeddingDim,
      preprocess: opened.preprocess,
    },
    executionProvider: opened.provider.used,
    embedSeconds: result.seconds,
    skipped: result.skipped,
    warnings: result.warnings.map(inCliTerms),
  };
}

/**
 * Labelled embeddings from a folder of class folders (embedded with the backbone, through the cache) or from an
 * embedding set. Refuses a flat folder, a class folder with no images, a class whose images all failed, and a set
 * from another backbone than the one asked for.
 */
export async function labelledEmbeddings(
  input: string,
  backbone: LazyBackbone,
  values: BackboneRunValues,
  what: string,
): Promise<LabelledEmbeddings> {
  if (isEmbeddingSet(input)) return labelledEmbeddingSet(input, backbone, what);
  if (!existsSync(input))
    throw new EdgetlError(
      'not-found',
      `${what} ${input} is neither a folder nor an embedding set (no ${embeddingSetPaths(input).json})`,
      { file: input },
    );
  const classes = await classFolders(input, what);
  return embeddedClassFolders(input, classes, backbone, values, what);
}

const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '-');

/** Per-class table and confusion matrix, as text. */
export function formatClassificationReport(report: ClassificationReport, labels: string[]): string {
  const width = Math.max(5, ...labels.map((l) => l.length));
  const lines: string[] = [];
  lines.push(`  ${'class'.padEnd(width)}  precision  recall     f1  support`);
  report.perClass.forEach((c, i) => {
    lines.push(
      `  ${labels[i].padEnd(width)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}  ${pct(c.f1).padStart(5)}  ${String(c.support).padStart(7)}`,
    );
  });
  lines.push('');
  const columns = report.confusion[0]?.length > labels.length ? [...labels, 'unknown'] : labels;
  const cell = Math.max(
    5,
    ...columns.map((c) => Math.min(c.length, 10)),
    ...report.confusion.flat().map((v) => String(v).length),
  );
  lines.push(`  confusion (rows: true class, columns: predicted)`);
  lines.push(`  ${''.padEnd(width)}  ${columns.map((c) => c.slice(0, 10).padStart(cell)).join(' ')}`);
  report.confusion.forEach((row, i) =>
    lines.push(`  ${labels[i].padEnd(width)}  ${row.map((v) => String(v).padStart(cell)).join(' ')}`),
  );
  return lines.join('\n');
}

/** JSON form of a classification report, keyed by label (the `eval --json` shape). */
export function classificationJson(report: ClassificationReport, labels: string[]) {
  return {
    count: report.count,
    accuracy: report.accuracy,
    balancedAccuracy: report.balancedAccuracy,
    perClass: Object.fromEntries(labels.map((label, i) => [label, report.perClass[i]])),
    confusion: {
      labels,
      ...(report.confusion[0]?.length > labels.length ? { columns: [...labels, 'unknown'] } : {}),
      matrix: report.confusion,
    },
  };
}

/** Embeddings of a folder of field photos (flat or class folders; labels unused) or of an embedding set, for a head. */
export async function fieldEmbeddings(
  input: string,
  head: { backbone: HeadBackboneRef },
  backbone: LazyBackbone,
  values: BackboneRunValues,
  what: string,
): Promise<{
  embeddings: Float32Array;
  rows: number;
  paths: string[];
  skipped: { path: string; reason: string }[];
  embedSeconds: number;
}> {
  if (isEmbeddingSet(input)) {
    const set = await readEmbeddingSet(input);
    if (set.backbone.sha256 !== head.backbone.sha256) {
      throw new EdgetlError(
        'head-backbone-mismatch',
        `${what} ${input} was embedded with backbone ${set.backbone.id} but the head needs ${head.backbone.id}: embed the photos with ${head.backbone.id}`,
        { file: input },
      );
    }
    return {
      embeddings: set.embeddings,
      rows: set.count,
      paths: set.items.map((i) => i.path),
      skipped: set.skipped,
      embedSeconds: 0,
    };
  }
  if (!existsSync(input) || !statSync(input).isDirectory())
    throw new EdgetlError(
      'not-found',
      `${what} ${input} is neither a folder nor an embedding set (no ${embeddingSetPaths(input).json})`,
      { file: input },
    );
  const opened = await backbone.open();
  if (opened.sha256 !== head.backbone.sha256) {
    throw new EdgetlError(
      'head-backbone-mismatch',
      `the head was trained on backbone ${head.backbone.id} but ${opened.id} was given: pass --backbone ${head.backbone.id}`,
    );
  }
  const bar = new ProgressBar(`embedding ${shortPath(input)}`, values.json !== true && process.stderr.isTTY === true);
  const result = await embedFolder(opened, input, {
    batchSize: backbone.batchSize,
    strict: values.strict === true,
    useCache: values['no-cache'] !== true,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.finish();
  if (result.items.length === 0)
    throw new EdgetlError(
      'empty-folder',
      `${what} ${input} has no usable images${result.skipped.length ? ` (${result.skipped.length} skipped)` : ''}`,
      { file: input },
    );
  return {
    embeddings: result.embeddings,
    rows: result.items.length,
    paths: result.items.map((i) => i.path),
    skipped: result.skipped,
    embedSeconds: result.seconds,
  };
}
