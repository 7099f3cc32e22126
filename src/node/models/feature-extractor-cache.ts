import { readFile, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { sha256Bytes } from '../util/sha256.js';
import { findEmbedding } from '../../core/models/embedding.js';
import { inspectModel, type ModelFacts } from '../../core/models/inspect.js';
import { parseOnnxModel, type IModelProto } from '../../core/models/onnx-model.js';
import { inferShapes, type ShapeInferenceResult } from '../../core/models/shapes.js';
import {
  SURGERY_VERSION,
  buildFeatureExtractor,
  describeSurgery,
  type FeatureExtractor,
} from '../../core/models/surgery.js';

export interface PreparedFeatureExtractor {
  /** The extractor ONNX file (output `embedding`, float32 [N, dim]). */
  path: string;
  /** sha256(source sha256, surgery description, surgery version): the backbone's identity for embedding caches. */
  fingerprint: string;
  /** sha256 of the extractor file. */
  sha256: string;
  /** sha256 of the source model file. */
  sourceSha256: string;
  /** Facts about the source model (its embedding included). */
  facts: ModelFacts;
  dim: number;
  /** True when an extractor from an earlier run was reused. */
  reused: boolean;
}

export interface PrepareOptions {
  /** Cut at this tensor instead of the embedding found automatically. */
  embeddingTensor?: string;
  /** Cache root (default edgetlCacheDir()); extractors go to `<cacheDir>/extractors/`. */
  cacheDir?: string;
  /** The source's sha256 when the caller already knows it (saves nothing but a hash; the file is read anyway). */
  sourceSha256?: string;
  /**
   * A different surgery than the embedding cut (the last-block cut and the adapted block of fine-tuning:
   * models/last-block-graph.ts). `description` must change whenever the graph `build` makes does: it keys the cache.
   */
  surgery?: CustomSurgery;
  /** Shape inference to run (default inferShapes), once per call: lets a test count it. */
  inferShapes?: (model: IModelProto) => ShapeInferenceResult;
}

export interface CustomSurgery {
  description: string;
  build(model: IModelProto): FeatureExtractor;
}

interface ExtractorRecord {
  fingerprint: string;
  sha256: string;
  bytes: number;
  dim: number;
  description: string;
  surgeryVersion: number;
  source: { path: string; sha256: string };
  facts: ModelFacts;
}

export function fingerprintOf(sourceSha256: string, description: string): string {
  return sha256Bytes(`${sourceSha256}\n${description}\nsurgery v${SURGERY_VERSION}`);
}

/**
 * Make (or reuse) the feature extractor of an ONNX backbone: `<cacheDir>/extractors/<fingerprint>.onnx` with a
 * `<fingerprint>.json` record beside it. The source file is only read. Both files are written atomically, so an
 * interrupted run leaves no half-written extractor behind; a damaged cache entry is rebuilt.
 */
export async function prepareFeatureExtractor(
  sourcePath: string,
  options: PrepareOptions = {},
): Promise<PreparedFeatureExtractor> {
  const source = resolve(sourcePath);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not an ONNX file' : describeError(error);
    throw new EdgetlError('model-not-found', `${source}: cannot read backbone model: ${reason}`, {
      file: source,
      cause: error,
    });
  }
  const sourceSha256 = options.sourceSha256 ?? sha256Bytes(bytes);
  const model = parseOnnxModel(bytes, source);
  const surgery = options.surgery;
  const shapes = (options.inferShapes ?? inferShapes)(model);
  const embedding = surgery
    ? undefined
    : findEmbedding(model, { embeddingTensor: options.embeddingTensor, file: source, shapes });
  const description = surgery ? surgery.description : describeSurgery(embedding!);
  const fingerprint = fingerprintOf(sourceSha256, description);

  const dir = join(options.cacheDir ? resolve(options.cacheDir) : edgetlCacheDir(), 'extractors');
  const path = join(dir, `${fingerprint}.onnx`);
  const recordPath = join(dir, `${fingerprint}.json`);

  const cached = await readRecord(recordPath, path, fingerprint);
  if (cached) {
    // The record's time is the extractor's last use, which `edgetl cache clear --older-than` goes by.
    const now = new Date();
    await utimes(recordPath, now, now).catch(() => undefined);
    return {
      path,
      fingerprint,
      sha256: cached.sha256,
      sourceSha256,
      facts: cached.facts,
      dim: cached.dim,
      reused: true,
    };
  }

  const facts = inspectModel(model, { embeddingTensor: options.embeddingTensor, file: source, shapes });
  const extractor = surgery ? surgery.build(model) : buildFeatureExtractor(model, embedding!);
  const sha256 = sha256Bytes(extractor.bytes);
  try {
    await writeFileAtomic(path, extractor.bytes);
    const record: ExtractorRecord = {
      fingerprint,
      sha256,
      bytes: extractor.bytes.length,
      dim: extractor.dim,
      description,
      surgeryVersion: SURGERY_VERSION,
      source: { path: source, sha256: sourceSha256 },
      facts,
    };
    await writeFileAtomic(recordPath, JSON.stringify(record, null, 2) + '\n');
  } catch (error) {
    throw new EdgetlError(
      'cache-write',
      `${path}: cannot write the feature extractor: ${describeError(error)} (set EDGETL_CACHE_DIR to a writable folder)`,
      { file: path, cause: error },
    );
  }
  return { path, fingerprint, sha256, sourceSha256, facts, dim: extractor.dim, reused: false };
}

/** The record of a complete cache entry, or undefined (missing, unreadable, or the .onnx does not match it). */
async function readRecord(
  recordPath: string,
  extractorPath: string,
  fingerprint: string,
): Promise<ExtractorRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(recordPath, 'utf8')) as ExtractorRecord;
    if (record.fingerprint !== fingerprint || record.surgeryVersion !== SURGERY_VERSION) return undefined;
    const info = await stat(extractorPath);
    if (info.size !== record.bytes) return undefined;
    return record;
  } catch {
    return undefined;
  }
}
