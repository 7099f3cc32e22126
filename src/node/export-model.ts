/**
 * `edgetl export`: a head and its backbone written as one ONNX file (src/core/models/merged-model.ts builds the graph)
 * plus a sidecar `<name>.edgetl.json` that edgetl reads back (preprocessing, embedding output), so
 * `edgetl embed --backbone app.onnx --embedding probabilities` and `Backbone.load('app.onnx')` work on it.
 *
 * Before anything is written, the merged graph is run once with onnxruntime on a generated input and its
 * probabilities compared with the head applied in TypeScript to its own embedding output: an export that would
 * disagree with `edgetl predict` is refused, not shipped.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Head } from '../core/heads/head.js';
import { loadHead } from './head-io.js';
import { resolveBackbone } from './models/resolve.js';
import { backboneSpecFor, sidecarPathsFor } from './models/backbone-spec.js';
import { findEmbedding } from '../core/models/embedding.js';
import { inspectModel } from '../core/models/inspect.js';
import { parseOnnxModel } from '../core/models/onnx-model.js';
import { inferShapes } from '../core/models/shapes.js';
import { buildMergedModel, PROBABILITIES_OUTPUT } from '../core/models/merged-model.js';
import { EMBEDDING_OUTPUT } from '../core/models/surgery.js';
import { createSession } from './execution/session.js';
import { tensorDims, tensorElementsPerImage } from '../core/preprocess/tensor.js';
import type { PreprocessSpec } from '../core/preprocess/spec.js';
import { writeFileAtomic } from './util/atomic-write.js';
import { EdgetlError, describeError } from '../core/util/errors.js';
import { EDGETL_VERSION } from '../core/version.js';

/** Largest |difference| between the merged graph's probabilities and the head's own on the check input. */
export const EXPORT_CHECK_TOLERANCE = 1e-3;

export interface ExportModelOptions {
  /** The ONNX file to write. */
  out: string;
  /** Catalog id or path of the backbone (default: the one the head names). */
  backbone?: string;
  /** Embedding tensor in the backbone (default: the catalog's, the sidecar's, or found automatically). */
  embeddingTensor?: string;
  /** Download a missing catalog backbone (default true). */
  download?: boolean;
  /** Folders searched for catalog models instead of the default search path. */
  searchPath?: string[];
}

export interface ExportedModel {
  path: string;
  sidecar: string;
  bytes: number;
  labels: string[];
  embeddingDim: number;
  backbone: { id: string; sha256: string; path: string };
  preprocess: PreprocessSpec;
  outputs: { name: string; dims: (string | number)[] }[];
  metadata: Record<string, string>;
  /** The self-check: largest probability difference between the graph and the head in TypeScript. */
  check: { images: number; maxDifference: number };
}

/** Write `<out>` (the merged model) and its sidecar. See the module comment. */
export async function exportMergedModel(
  headOrPath: Head | string,
  options: ExportModelOptions,
): Promise<ExportedModel> {
  const head = typeof headOrPath === 'string' ? await loadHead(headOrPath) : headOrPath;
  const out = resolve(options.out);
  const resolved = await resolveBackbone(options.backbone ?? head.backbone.id, {
    download: options.download,
    ...(options.searchPath ? { searchPath: options.searchPath } : {}),
  }).catch((error: unknown) => {
    if (options.backbone !== undefined || !(error instanceof EdgetlError)) throw error;
    // The id came from the head: say so, and how to point at the file.
    throw new EdgetlError(
      error.code,
      `${error.message}\n(backbone "${head.backbone.id}" is the one the head names; if it is a file, give its path as the \`backbone\` option)`,
      { file: error.file, cause: error },
    );
  });
  if (resolved.sha256 !== head.backbone.sha256) {
    throw new EdgetlError(
      'head-backbone-mismatch',
      `head was trained on backbone ${head.backbone.id} (sha256 ${head.backbone.sha256.slice(0, 12)}...) but ${resolved.id} (sha256 ${resolved.sha256.slice(0, 12)}...) was given: use backbone ${head.backbone.id} or retrain the head`,
    );
  }
  if (resolve(resolved.path) === out)
    throw new EdgetlError('usage', `\`out: '${options.out}'\` is the backbone file itself; choose another name`);
  const source = parseOnnxModel(await readFile(resolved.path), resolved.path);
  const stated = backboneSpecFor(resolved);
  const embeddingTensor = options.embeddingTensor ?? stated.embeddingTensor;
  const shapes = inferShapes(source);
  const embedding = findEmbedding(source, { embeddingTensor, file: resolved.path, shapes });
  const facts = inspectModel(source, { embeddingTensor, file: resolved.path });
  // The preprocessing `Backbone.load` would use for this file: what `edgetl predict` feeds the backbone.
  const preprocess = backboneSpecFor(resolved, {}, { inputDims: facts.inputs[0]?.dims }).preprocess;
  const merged = buildMergedModel(source, embedding, {
    head,
    preprocess,
    edgetlVersion: EDGETL_VERSION,
    backboneId: resolved.id,
    backboneSha256: resolved.sha256,
  });

  const check = await checkAgainstHead(
    merged.bytes,
    head,
    preprocess,
    typeof facts.batch === 'number' ? facts.batch : 2,
  );
  if (!(check.maxDifference <= EXPORT_CHECK_TOLERANCE)) {
    throw new EdgetlError(
      'onnx-export',
      `the merged model disagrees with the head by ${check.maxDifference} in probability on a test input (limit ${EXPORT_CHECK_TOLERANCE}); nothing was written. Please report this with the head file.`,
    );
  }

  const sidecar = sidecarPathsFor(out)[0];
  const sidecarContent = {
    description: `edgetl ${EDGETL_VERSION} merged model: ${resolved.id} + ${head.type} head (${head.labels.join(', ')}). Outputs ${PROBABILITIES_OUTPUT} [N, ${head.classCount}] (in label order: ${JSON.stringify(head.labels)}) and ${EMBEDDING_OUTPUT} [N, ${merged.dim}].`,
    preprocess,
    embedding: { tensor: EMBEDDING_OUTPUT, dim: merged.dim },
    labels: head.labels,
  };
  try {
    await writeFileAtomic(out, merged.bytes);
    await writeFileAtomic(sidecar, JSON.stringify(sidecarContent, null, 2) + '\n');
  } catch (error) {
    throw new EdgetlError('export-write', `cannot write ${out}: ${describeError(error)}`, { file: out, cause: error });
  }
  return {
    path: out,
    sidecar,
    bytes: merged.bytes.length,
    labels: head.labels,
    embeddingDim: merged.dim,
    backbone: { id: resolved.id, sha256: resolved.sha256, path: resolved.path },
    preprocess,
    outputs: [
      { name: PROBABILITIES_OUTPUT, dims: [merged.batch, head.classCount] },
      { name: EMBEDDING_OUTPUT, dims: [merged.batch, merged.dim] },
    ],
    metadata: merged.metadata,
    check,
  };
}

/** Run the merged graph on a seeded input; compare its probabilities with the head applied to its embedding. */
async function checkAgainstHead(
  bytes: Uint8Array,
  head: Head,
  spec: PreprocessSpec,
  batch: number,
): Promise<{ images: number; maxDifference: number }> {
  const input = new Float32Array(batch * tensorElementsPerImage(spec));
  let state = 12345;
  for (let i = 0; i < input.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    input[i] = (state / 2 ** 32) * 4 - 2; // roughly the range of a normalized photo
  }
  const session = await createSession(bytes, { ep: 'cpu', intraOpThreads: 1, checkPlacement: false });
  try {
    const dims = tensorDims(spec, batch);
    const probabilities = await session.run(input, dims, PROBABILITIES_OUTPUT);
    const embedding = await session.run(input, dims, EMBEDDING_OUTPUT);
    const expected = head.probabilities(embedding.data, batch);
    let maxDifference = 0;
    for (let i = 0; i < expected.length; i++)
      maxDifference = Math.max(maxDifference, Math.abs(expected[i] - probabilities.data[i]));
    if (probabilities.data.length !== expected.length) maxDifference = Infinity;
    return { images: batch, maxDifference };
  } finally {
    await session.close();
  }
}
