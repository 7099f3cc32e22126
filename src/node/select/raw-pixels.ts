/**
 * The baseline every backbone must beat: the photos themselves, shrunk to 16x16 RGB (768 values in 0..1), fed to the
 * same head. Runs through the real embedding pipeline (decode workers, the embedding cache) with inference replaced
 * by copying the pixel tensor out, so a second selection on the same folder reads it from the cache.
 */
import { availableParallelism } from 'node:os';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import type { DecodeOptions } from '../preprocess/node-image.js';
import { tensorElementsPerImage } from '../../core/preprocess/tensor.js';
import { EmbeddingCache } from '../embed/cache.js';
import { MainThreadDecoder, WorkerDecodePool } from '../embed/decode-pool.js';
import { defaultDecodeThreads } from '../embed/backbone.js';
import { runEmbeddingPipeline, type EmbedManyResult } from '../embed/pipeline.js';
import { edgetlCacheDir } from '../util/cache-dir.js';

export const RAW_PIXELS_SIZE = 16;

/** Shorter side to 16, center crop 16x16, RGB scaled to 0..1 (the head standardizes them anyway). */
export const RAW_PIXELS_SPEC: PreprocessSpec = {
  layout: 'NCHW',
  width: RAW_PIXELS_SIZE,
  height: RAW_PIXELS_SIZE,
  resize: 'shorter-side',
  resizeTo: RAW_PIXELS_SIZE,
  crop: 'center',
  channelOrder: 'RGB',
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
};

export const RAW_PIXELS_NAME = `raw ${RAW_PIXELS_SIZE}x${RAW_PIXELS_SIZE} RGB pixels`;

/**
 * libvips' linear kernel with shrink-on-load: a 16x16 thumbnail needs no Pillow-exact resampling, and decoding at
 * 1/8 scale makes the baseline a small fraction of one backbone's embedding time.
 */
const RAW_PIXELS_DECODE: DecodeOptions = { kernel: 'linear', fastShrinkOnLoad: true };

/** Cache identity of the baseline (in place of a backbone fingerprint). */
const RAW_PIXELS_FINGERPRINT = `raw-pixels-${RAW_PIXELS_SIZE}`;

export interface RawPixelOptions {
  useCache?: boolean;
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** 768-value raw-pixel rows of `paths`, in order (unusable images skipped and listed, as for a backbone). */
export async function rawPixelEmbeddings(
  paths: readonly string[],
  options: RawPixelOptions = {},
): Promise<EmbedManyResult> {
  const dim = tensorElementsPerImage(RAW_PIXELS_SPEC);
  const cache =
    options.useCache === false
      ? undefined
      : await EmbeddingCache.open({
          root: options.cacheDir ?? edgetlCacheDir(),
          fingerprint: RAW_PIXELS_FINGERPRINT,
          preprocess: RAW_PIXELS_SPEC,
          variant: RAW_PIXELS_DECODE,
          dim,
        }).catch(() => undefined);
  const threads = defaultDecodeThreads(availableParallelism());
  const pool = threads > 0 && paths.length >= 16 ? WorkerDecodePool.create(threads, RAW_PIXELS_DECODE).pool : undefined;
  const decoder = pool ?? new MainThreadDecoder(RAW_PIXELS_DECODE, availableParallelism());
  try {
    return await runEmbeddingPipeline(
      paths,
      {
        spec: RAW_PIXELS_SPEC,
        dim,
        // The pipeline reuses its tensor buffers: copy the rows out.
        infer: async (tensor, count) => tensor.slice(0, count * dim),
        decoder,
        cache,
      },
      { batchSize: 32, signal: options.signal, onProgress: (done, total) => options.onProgress?.(done, total) },
    );
  } finally {
    await cache?.close().catch(() => undefined);
    await pool?.close();
  }
}
