/**
 * Images to embeddings, with decoding overlapping inference and memory bounded by a window, not by the input size.
 *
 * Three kinds of work run at once on different threads:
 *   - file reads on libuv threads, and decoding (sharp, plus the JS Pillow-exact resize) on decode worker threads
 *     (decode-pool.ts; up to `decodeConcurrency` images at a time),
 *   - onnxruntime's `run` on its own thread pool (one batch in flight),
 *   - on the main thread, only bookkeeping: hashing, copying each decoded image's tensor (normalized by the decoder,
 *     fused into the exact resize) into the batch tensor, copying results.
 * The consumer walks the inputs in order; items ahead of it (at most `window` of them) are read, looked up in the
 * cache and decoded concurrently. While batch k runs in onnxruntime, the consumer fills batch k+1 from items that
 * are already decoded, and the window keeps the decoders busy with k+2 and beyond. Two tensor buffers alternate,
 * so a buffer is never written while onnxruntime reads it. Results land in input order.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { BadImageError, type ImageSource, type RawImage, type DecodedImage } from '../preprocess/node-image.js';
import { MainThreadDecoder, type ImageDecoder } from './decode-pool.js';
import { writePixelsToTensor, tensorElementsPerImage } from '../../core/preprocess/tensor.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { imageBytesKey, rawPixelsKey, type EmbeddingCache } from './cache.js';

/** Default images per inference for dynamic-batch models (see bench/embed-throughput.ts for the measurements). */
export const DEFAULT_BATCH_SIZE = 8;
/** Batches decoded ahead of the one being filled. */
export const DEFAULT_PREFETCH_BATCHES = 2;

export interface PipelineStages {
  spec: PreprocessSpec;
  dim: number;
  /** Inference on `count` images laid out in `tensor` (the first count * perImage elements); returns count * dim. */
  infer(tensor: Float32Array, count: number): Promise<Float32Array>;
  /** Largest batch the model takes: a fixed size, or undefined when the batch dimension is dynamic. */
  fixedBatch?: number;
  /** Where images are decoded (default: the main thread, see decode-pool.ts). */
  decoder?: ImageDecoder;
  /** Override decoding altogether (tests). */
  decode?(source: Uint8Array | RawImage, spec: PreprocessSpec): Promise<DecodedImage>;
  cache?: EmbeddingCache;
}

export interface EmbedManyOptions {
  /** Images per inference for dynamic-batch models (default DEFAULT_BATCH_SIZE). Fixed-batch models use their size. */
  batchSize?: number;
  /** Called as items finish: done (embedded + skipped) of total, skipped so far. */
  onProgress?(done: number, total: number, skipped: number): void;
  /** Throw on the first unusable image instead of skipping it. */
  strict?: boolean;
  /** Use the embedding cache when the backbone has one (default true). */
  useCache?: boolean;
  signal?: AbortSignal;
  /** Images decoded at once (default: what the decoder can usefully take, e.g. 2 per worker thread). */
  decodeConcurrency?: number;
  /** Batches decoded ahead (default DEFAULT_PREFETCH_BATCHES). */
  prefetchBatches?: number;
  /**
   * Receives each embedding in input order as soon as it and every earlier item are done (the vector is only valid
   * during the call: copy it to keep it). With `collect: false` this is the only output, and memory stays bounded
   * whatever the number of images.
   */
  onEmbedding?(item: EmbeddedItem, embedding: Float32Array): void;
  /** Gather all embeddings into `result.embeddings` (default true). */
  collect?: boolean;
}

export interface EmbeddedItem {
  /** Position in the input list. */
  index: number;
  /** The path, or a description for buffers and raw images. */
  source: string;
}

export interface SkippedItem {
  index: number;
  path: string;
  reason: string;
}

export interface EmbedManyResult {
  /** [items.length, dim] row-major: row r belongs to items[r]. Empty when `collect` is false. */
  embeddings: Float32Array;
  dim: number;
  items: EmbeddedItem[];
  skipped: SkippedItem[];
  stats: {
    /** Items served from the embedding cache (no decode, no inference). */
    cacheHits: number;
    /** Items decoded and run through the backbone. */
    computed: number;
    batches: number;
    seconds: number;
  };
}

type Prepared =
  | { kind: 'hit'; embedding: Float32Array }
  | { kind: 'pixels'; pixels: Uint8Array; key?: string }
  | { kind: 'tensor'; tensor: Float32Array; key?: string }
  | { kind: 'skip'; reason: string; error: unknown };

export function describeSource(source: ImageSource, index: number): string {
  if (typeof source === 'string') return source;
  if (source instanceof Uint8Array) return `<buffer #${index}>`;
  return `<raw ${source.width}x${source.height} #${index}>`;
}

/** Counting semaphore: at most `limit` holders. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function readReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return `cannot read (${describeError(error)})`;
}

function abortError(): EdgetlError {
  return new EdgetlError('aborted', 'embedding was cancelled');
}

/** Embed `sources` in order; see the module comment for how the work overlaps. */
export async function runEmbeddingPipeline(
  sources: readonly ImageSource[],
  stages: PipelineStages,
  options: EmbedManyOptions = {},
): Promise<EmbedManyResult> {
  const started = performance.now();
  const total = sources.length;
  const { spec, dim } = stages;
  const batchSize = stages.fixedBatch ?? Math.max(1, Math.floor(options.batchSize ?? DEFAULT_BATCH_SIZE));
  const prefetch = Math.max(0, Math.floor(options.prefetchBatches ?? DEFAULT_PREFETCH_BATCHES));
  const decoder = stages.decoder ?? new MainThreadDecoder({}, availableParallelism());
  const decoders = Math.max(1, Math.floor(options.decodeConcurrency ?? decoder.parallelism));
  const decodeLimit = new Semaphore(decoders);
  // Items read and decoded ahead of the consumer: whole batches ahead, and for small (fixed) batches at least enough
  // to keep every decoder busy while a batch runs.
  const window = Math.max(batchSize * (prefetch + 1), 2 * decoders + batchSize);
  const cache = options.useCache === false ? undefined : stages.cache;
  const decode =
    stages.decode ??
    ((source: Uint8Array | RawImage, s: PreprocessSpec, transfer: boolean) => decoder.decode(source, s, transfer));
  const perImage = tensorElementsPerImage(spec);
  const signal = options.signal;

  const collect = options.collect !== false;
  const results = new Float32Array(collect ? total * dim : 0);
  const items: EmbeddedItem[] = [];
  const skipped: SkippedItem[] = [];
  // Finished items wait here until every earlier one is finished too; then they are emitted in input order.
  // Holds at most the items in flight (the window and two batches), never the whole input.
  const finished = new Map<number, Float32Array | null>();
  let nextToEmit = 0;
  const finish = (index: number, embedding: Float32Array | null) => {
    finished.set(index, embedding);
    while (finished.has(nextToEmit)) {
      const vector = finished.get(nextToEmit)!;
      finished.delete(nextToEmit);
      if (vector) {
        const item = { index: nextToEmit, source: describeSource(sources[nextToEmit]!, nextToEmit) };
        if (collect) results.set(vector, items.length * dim);
        items.push(item);
        options.onEmbedding?.(item, vector);
      }
      nextToEmit++;
    }
  };
  let done = 0;
  let cacheHits = 0;
  let computed = 0;
  let batches = 0;
  const progress = () => options.onProgress?.(done, total, skipped.length);

  async function prepare(index: number): Promise<Prepared> {
    const source = sources[index]!;
    try {
      let input: Uint8Array | RawImage;
      let key: string | undefined;
      if (typeof source === 'string') {
        try {
          input = await readFile(source);
        } catch (error) {
          return { kind: 'skip', reason: readReason(error), error };
        }
      } else {
        input = source;
      }
      if (cache) {
        key =
          input instanceof Uint8Array
            ? imageBytesKey(input)
            : rawPixelsKey(input.rgb, input.width, input.height, input.channels);
        const hit = await cache.get(key);
        if (hit) return { kind: 'hit', embedding: hit };
      }
      if (signal?.aborted) return { kind: 'skip', reason: 'cancelled', error: abortError() };
      // A buffer we read ourselves can move to a decode worker without a copy; a caller's buffer is never taken.
      const owned = typeof source === 'string';
      if (!stages.decode) {
        // The decoder writes the normalized tensor itself (fused into the exact resize), off this thread.
        const tensor = await decodeLimit.use(() => decoder.decodeTensor(input, spec, owned));
        return { kind: 'tensor', tensor, key };
      }
      const decoded = await decodeLimit.use(() => decode(input, spec, owned));
      return { kind: 'pixels', pixels: decoded.pixels, key };
    } catch (error) {
      const reason = error instanceof BadImageError ? error.reason : describeError(error);
      return { kind: 'skip', reason, error };
    }
  }

  const prepared = new Map<number, Promise<Prepared>>();
  let launched = 0;
  const fillWindow = (consumer: number) => {
    while (launched < total && launched < consumer + window) {
      prepared.set(launched, prepare(launched));
      launched++;
    }
  };

  const buffers = [new Float32Array(batchSize * perImage), new Float32Array(batchSize * perImage)];
  let current = 0;
  let slots: { index: number; key?: string }[] = [];
  let inflight: Promise<void> | undefined;
  // Kept aside so a failing run is never an unhandled rejection while the consumer awaits decodes.
  let inferenceError: { error: unknown } | undefined;
  const settleInflight = async () => {
    if (inflight) await inflight;
    inflight = undefined;
    if (inferenceError) throw inferenceError.error;
  };

  const launchBatch = async () => {
    if (slots.length === 0) return;
    await settleInflight();
    const batch = slots;
    const tensor = buffers[current]!;
    current = 1 - current;
    slots = [];
    batches++;
    inflight = stages
      .infer(tensor.subarray(0, batch.length * perImage), batch.length)
      .then((output) => {
        if (output.length !== batch.length * dim) {
          throw new EdgetlError(
            'internal',
            `backbone returned ${output.length} values for ${batch.length} images of ${dim} dims`,
          );
        }
        for (let b = 0; b < batch.length; b++) {
          const row = output.subarray(b * dim, (b + 1) * dim);
          const { index, key } = batch[b]!;
          if (cache && key) cache.put(key, row);
          finish(index, row);
        }
        computed += batch.length;
        done += batch.length;
        if (cache) void cache.flush().catch(() => undefined);
        progress();
      })
      .catch((error: unknown) => {
        inferenceError ??= { error };
      });
  };

  try {
    for (let index = 0; index < total; index++) {
      if (signal?.aborted) throw abortError();
      fillWindow(index);
      const item = await prepared.get(index)!;
      prepared.delete(index);
      if (item.kind === 'hit') {
        finish(index, item.embedding);
        cacheHits++;
        done++;
        progress();
      } else if (item.kind === 'skip') {
        const path = describeSource(sources[index]!, index);
        if (options.strict) {
          if (item.error instanceof EdgetlError && item.error.code === 'aborted') throw item.error;
          throw new BadImageError(path, item.reason, {
            file: typeof sources[index] === 'string' ? path : undefined,
            cause: item.error,
          });
        }
        skipped.push({ index, path, reason: item.reason });
        finish(index, null);
        done++;
        progress();
      } else {
        if (item.kind === 'tensor') buffers[current]!.set(item.tensor, slots.length * perImage);
        else writePixelsToTensor(item.pixels, spec.width, spec.height, 3, spec, buffers[current]!, slots.length);
        slots.push({ index, key: item.key });
        if (slots.length === batchSize) await launchBatch();
      }
    }
    await launchBatch();
    await settleInflight();
  } catch (error) {
    // Never leave a run reading our buffers (or a session about to be released) behind us.
    if (inflight) await inflight;
    await Promise.allSettled(prepared.values());
    throw error;
  } finally {
    if (cache) await cache.flush().catch(() => undefined);
  }

  if (nextToEmit !== total)
    throw new EdgetlError('internal', `embedding pipeline finished with ${total - nextToEmit} item(s) unaccounted for`);
  return {
    embeddings: !collect || items.length === total ? results : results.slice(0, items.length * dim),
    dim,
    items,
    skipped,
    stats: { cacheHits, computed, batches, seconds: (performance.now() - started) / 1000 },
  };
}
