import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { backboneSpecFor, readSidecarFor, type BackboneSpec, type Sidecar } from './backbone-spec.js';
import {
  prepareFeatureExtractor,
  type CustomSurgery,
  type PrepareOptions,
  type PreparedFeatureExtractor,
} from './feature-extractor-cache.js';
import { resolveBackbone, type ResolveOptions, type ResolvedBackbone } from './resolve.js';

/** A backbone ready to run: the file, how to preprocess for it, and the feature-extractor graph cut from it. */
export interface BackboneParts {
  resolved: ResolvedBackbone;
  spec: BackboneSpec;
  extractor: PreparedFeatureExtractor;
}

export interface PrepareBackboneOptions
  extends Pick<ResolveOptions, 'download' | 'searchPath' | 'onProgress' | 'onDownloadStart' | 'timeoutMs'> {
  /** Embedding tensor in the source graph; wins over the catalog entry, the sidecar and automatic discovery. */
  embeddingTensor?: string;
  /** Preprocessing fields that override the catalog entry, sidecar or defaults. */
  preprocess?: Partial<PreprocessSpec>;
  /** Cache root for the feature-extractor graph (default edgetlCacheDir()). */
  cacheDir?: string;
  /** Shape inference to run (default inferShapes): lets a test count how often the graph is inferred. */
  inferShapes?: PrepareOptions['inferShapes'];
  /** A different cut than the embedding's (fine-tuning's last-block graphs); see PrepareOptions.surgery. */
  surgery?: CustomSurgery;
}

/** The embedding tensor a backbone's catalog entry or sidecar names, with the sidecar (read once). */
export function statedEmbedding(resolved: ResolvedBackbone): {
  tensor?: string;
  namedBy: 'catalog' | 'sidecar' | null;
  sidecar: Sidecar | null;
} {
  // A catalog model's sidecar is ignored (backboneSpecFor says so in its notes).
  if (resolved.entry)
    return {
      tensor: resolved.entry.embedding.tensor,
      namedBy: resolved.entry.embedding.tensor ? 'catalog' : null,
      sidecar: null,
    };
  const sidecar = readSidecarFor(resolved.path) ?? null;
  const tensor = sidecar?.embedding?.tensor;
  return { tensor, namedBy: tensor ? 'sidecar' : null, sidecar };
}

/**
 * Prepare a backbone once, the same way for every caller (library, kiosk server, benchmarks): resolve the catalog id
 * or path, read what the catalog entry or sidecar states, cut (or reuse) the feature-extractor graph, then settle the
 * preprocessing against the model's real input dims. The graph's shapes are inferred once.
 */
export async function prepareBackbone(idOrPath: string, options: PrepareBackboneOptions = {}): Promise<BackboneParts> {
  const { download, searchPath, onProgress, onDownloadStart, timeoutMs } = options;
  const resolved = await resolveBackbone(idOrPath, {
    ...(download !== undefined ? { download } : {}),
    ...(searchPath ? { searchPath } : {}),
    ...(onProgress ? { onProgress } : {}),
    ...(onDownloadStart ? { onDownloadStart } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
  const stated = statedEmbedding(resolved);
  const extractor = await prepareFeatureExtractor(resolved.path, {
    embeddingTensor: options.embeddingTensor ?? stated.tensor,
    cacheDir: options.cacheDir,
    sourceSha256: resolved.sha256,
    ...(options.inferShapes ? { inferShapes: options.inferShapes } : {}),
    ...(options.surgery ? { surgery: options.surgery } : {}),
  });
  const spec = backboneSpecFor(resolved, options.preprocess ?? {}, {
    inputDims: extractor.facts.inputs[0]?.dims,
    sidecar: stated.sidecar,
  });
  return { resolved, spec, extractor };
}
