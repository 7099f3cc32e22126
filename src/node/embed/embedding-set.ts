import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EdgetlError } from '../../core/util/errors.js';
import { readNpyFile, writeNpyFile } from './npy-file.js';
import { float32LittleEndianBytes } from '../../core/formats/npy.js';
import { sha256Bytes } from '../util/sha256.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import type { SchemaViolation } from '../../core/bench/json-schema.js';
import { checkFormat, cropProblem, describeViolations, underField } from '../../core/formats/format-schemas.js';

/** Identifies the embedding-set sidecar JSON; bumped on any incompatible change. */
export const EMBEDDING_SET_FORMAT = 'edgetl-embeddings/1';

export interface EmbeddingSetItem {
  path: string;
  /** Class folder name; null for a flat folder (no labels). */
  label: string | null;
}

export interface EmbeddingSetSkip {
  path: string;
  reason: string;
}

/**
 * What `<prefix>.json` holds. Row i of `<prefix>.npy` is the embedding of items[i].
 * A flat folder (no labels) has `classes: null` and every label null; a class-folder set lists its classes in
 * sorted order and every label is one of them.
 */
export interface EmbeddingSetMetadata {
  format?: string;
  backbone: { id: string; sha256: string; embeddingDim: number; fingerprint?: string };
  /** The provider that actually ran (cpu, webgpu, cuda). */
  executionProvider: string;
  classes: string[] | null;
  items: EmbeddingSetItem[];
  skipped: EmbeddingSetSkip[];
  preprocess?: PreprocessSpec;
  /** The folder that was embedded, when there was one. */
  root?: string;
  createdAt?: string;
  /**
   * sha256 (hex) of the NPY's row data (float32 little-endian, after the header): binds this JSON to the NPY written
   * with it, so a pair torn by a crash between the two renames is refused rather than read as new rows with old labels.
   * Sets written before this field load with a warning.
   */
  embeddingsSha256?: string;
}

export interface EmbeddingSet extends EmbeddingSetMetadata {
  /** Notes for the user (e.g. a set from an older edgetl that cannot be checked against its NPY). */
  warnings: string[];
  /** [count, dim] row-major float32. */
  embeddings: Float32Array;
  count: number;
  dim: number;
}

/** `x`, `x.npy` and `x.json` all name the set `x`. */
export function embeddingSetPaths(prefix: string): { prefix: string; npy: string; json: string } {
  const base = prefix.replace(/\.(npy|json)$/i, '');
  return { prefix: base, npy: `${base}.npy`, json: `${base}.json` };
}

function checkConsistency(set: EmbeddingSetMetadata, count: number, dim: number, file: string): void {
  const fail = (reason: string) => {
    throw new EdgetlError('bad-embedding-set', `${file}: ${reason}`, { file });
  };
  if (set.items.length !== count) fail(`lists ${set.items.length} items but the embeddings hold ${count} rows`);
  if (set.backbone.embeddingDim !== dim)
    fail(`says embeddingDim ${set.backbone.embeddingDim} but the embeddings have ${dim} columns`);
  if (set.classes !== null) {
    const known = new Set(set.classes);
    const stray = set.items.find((item) => item.label === null || !known.has(item.label));
    if (stray)
      fail(
        `item ${stray.path} has label ${JSON.stringify(stray.label)}, not one of the classes [${set.classes.join(', ')}]`,
      );
  } else {
    const labelled = set.items.find((item) => item.label !== null);
    if (labelled)
      fail(`classes is null (a flat folder) but item ${labelled.path} has label ${JSON.stringify(labelled.label)}`);
  }
}

/**
 * Write `<prefix>.npy` (float32 [N, D]) then `<prefix>.json`, each atomically. The JSON goes last, so a reader that
 * finds a JSON always finds its matching NPY (an interrupted rewrite is caught by the N/D check on read).
 */
export async function writeEmbeddingSet(
  prefix: string,
  set: EmbeddingSetMetadata & { embeddings: Float32Array },
): Promise<{ npy: string; json: string }> {
  const paths = embeddingSetPaths(prefix);
  const dim = set.backbone.embeddingDim;
  const count = set.items.length;
  if (set.embeddings.length !== count * dim) {
    throw new EdgetlError(
      'bad-embedding-set',
      `cannot write ${paths.npy}: ${count} items x ${dim} dims needs ${count * dim} values, got ${set.embeddings.length}`,
      { file: paths.npy },
    );
  }
  checkConsistency(set, count, dim, paths.json);
  await writeNpyFile(paths.npy, set.embeddings, [count, dim]);
  await writeEmbeddingSetJson(prefix, { ...set, embeddingsSha256: embeddingsSha256(set.embeddings) });
  return { npy: paths.npy, json: paths.json };
}

/** The binding stored in the JSON: sha256 of the rows as the NPY holds them (float32 little-endian). */
export function embeddingsSha256(embeddings: Float32Array): string {
  return sha256Bytes(float32LittleEndianBytes(embeddings));
}

/**
 * Write only `<prefix>.json`, atomically, for an NPY already in place with one row per item (a streamed write:
 * see NpyRowWriter, whose `finish` returns the `embeddingsSha256` to pass). Call it after the NPY is complete.
 */
export async function writeEmbeddingSetJson(
  prefix: string,
  set: EmbeddingSetMetadata & { embeddingsSha256: string },
): Promise<string> {
  const paths = embeddingSetPaths(prefix);
  checkConsistency(set, set.items.length, set.backbone.embeddingDim, paths.json);
  const metadata: EmbeddingSetMetadata = {
    format: EMBEDDING_SET_FORMAT,
    backbone: set.backbone,
    executionProvider: set.executionProvider,
    classes: set.classes,
    items: set.items.map((item) => ({ path: item.path, label: item.label })),
    skipped: set.skipped.map((skip) => ({ path: skip.path, reason: skip.reason })),
    ...(set.preprocess ? { preprocess: set.preprocess } : {}),
    ...(set.root !== undefined ? { root: set.root } : {}),
    createdAt: set.createdAt ?? new Date().toISOString(),
    embeddingsSha256: set.embeddingsSha256,
  };
  // The reader's own check, before anything is written: a NaN would be written as null, a std of 0 read back refused.
  const violations = metadataViolations(metadata);
  if (violations.length > 0)
    throw new EdgetlError('bad-embedding-set', `cannot write ${paths.json}: ${describeViolations(violations)}`, {
      file: paths.json,
    });
  await writeFileAtomic(paths.json, JSON.stringify(metadata, null, 1) + '\n');
  return paths.json;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * What edgetl-embeddings-v1.schema.json (with the shared preprocessing definition) and the rules it cannot say
 * find wrong in a metadata document; paths name the field.
 */
function metadataViolations(value: unknown): SchemaViolation[] {
  const violations = checkFormat('embeddingsV1', value);
  if (violations.length > 0 || !isRecord(value) || !isRecord(value.preprocess)) return violations;
  const problem = cropProblem(value.preprocess as unknown as PreprocessSpec);
  return problem ? underField('preprocess', [problem]) : [];
}

function parseMetadata(text: string, file: string): EmbeddingSetMetadata {
  const fail = (reason: string): never => {
    throw new EdgetlError('bad-embedding-set', `${file}: ${reason}`, { file });
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return fail(`not valid JSON (${(error as Error).message})`);
  }
  const violations = metadataViolations(raw);
  if (violations.length > 0) fail(`embedding set ${describeViolations(violations)}`);
  const set = raw as EmbeddingSetMetadata;
  return {
    ...set,
    format: EMBEDDING_SET_FORMAT,
    // Sets from older edgetl versions may lack the list: nothing was recorded as skipped.
    skipped: set.skipped ?? [],
  };
}

/** Read and cross-check `<prefix>.npy` and `<prefix>.json` (row count = items, columns = embeddingDim). */
export async function readEmbeddingSet(prefix: string): Promise<EmbeddingSet> {
  const paths = embeddingSetPaths(prefix);
  let text: string;
  try {
    text = await readFile(paths.json, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new EdgetlError(
      'not-found',
      `cannot read ${paths.json}: ${code === 'ENOENT' ? `file not found (embedFolder with \`out: '${paths.prefix}'\` writes it)` : (error as Error).message}`,
      { file: paths.json, cause: error },
    );
  }
  const metadata = parseMetadata(text, paths.json);
  const array = await readNpyFile(paths.npy);
  if (array.shape.length !== 2) {
    throw new EdgetlError(
      'bad-embedding-set',
      `${paths.npy}: expected a 2-D array [N, D], got shape [${array.shape.join(', ')}]`,
      { file: paths.npy },
    );
  }
  const [count, dim] = array.shape as [number, number];
  if (metadata.items.length !== count) {
    throw new EdgetlError(
      'bad-embedding-set',
      `${paths.npy} has ${count} rows but ${paths.json} lists ${metadata.items.length} items (files from different runs?)`,
      { file: paths.npy },
    );
  }
  if (metadata.backbone.embeddingDim !== dim) {
    throw new EdgetlError(
      'bad-embedding-set',
      `${paths.npy} has ${dim} columns but ${paths.json} says embeddingDim ${metadata.backbone.embeddingDim}`,
      { file: paths.npy },
    );
  }
  checkConsistency(metadata, count, dim, paths.json);
  const warnings: string[] = [];
  if (metadata.embeddingsSha256 === undefined) {
    warnings.push(
      `${paths.json} does not record the sha256 of ${paths.npy} (written by an older edgetl), so a pair torn by an interrupted rewrite cannot be detected; write the set again (embedFolder with \`out\`) to bind them`,
    );
  } else if (embeddingsSha256(array.data) !== metadata.embeddingsSha256) {
    throw new EdgetlError(
      'embedding-set-torn',
      `${paths.npy} does not belong to ${paths.json}: its rows hash to another sha256 than the JSON records (the files come from different runs, e.g. a rewrite interrupted between the two); write the set again (embedFolder with \`out\`) to rewrite both`,
      { file: paths.npy },
    );
  }
  return { ...metadata, embeddings: array.data, count, dim, warnings };
}
