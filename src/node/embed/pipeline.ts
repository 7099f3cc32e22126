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

/** How one run is sized and where its images are decoded. */
interface PipelinePlan {
  batchSize: number;
  /** Items read and decoded ahead of the consumer. */
  window: number;
  decoder: ImageDecoder;
  decodeLimit: Semaphore;
  decode: (source: Uint8Array | RawImage, spec: PreprocessSpec, transfer: boolean) => Promise<DecodedImage>;
  perImage: number;
  cache: EmbeddingCache | undefined;
}

function planPipeline(stages: PipelineStages, options: EmbedManyOptions): PipelinePlan {
  const batchSize = stages.fixedBatch ?? Math.max(1, Math.floor(options.batchSize ?? DEFAULT_BATCH_SIZE));
  const prefetch = Math.max(0, Math.floor(options.prefetchBatches ?? DEFAULT_PREFETCH_BATCHES));
  const decoder = stages.decoder ?? new MainThreadDecoder({}, availableParallelism());
  const decoders = Math.max(1, Math.floor(options.decodeConcurrency ?? decoder.parallelism));
  return {
    batchSize,
    // Whole batches ahead, and for small (fixed) batches at least enough to keep every decoder busy while a batch
    // runs.
    window: Math.max(batchSize * (prefetch + 1), 2 * decoders + batchSize),
    decoder,
    decodeLimit: new Semaphore(decoders),
    decode:
      stages.decode ??
      ((source: Uint8Array | RawImage, s: PreprocessSpec, transfer: boolean) => decoder.decode(source, s, transfer)),
    perImage: tensorElementsPerImage(stages.spec),
    cache: options.useCache === false ? undefined : stages.cache,
  };
}

/** One input read, looked up in the cache and decoded; never throws (an unusable input comes back as a skip). */
async function prepareItem(
  source: ImageSource,
  stages: PipelineStages,
  plan: PipelinePlan,
  signal: AbortSignal | undefined,
): Promise<Prepared> {
  const { spec } = stages;
  const { cache, decoder, decodeLimit } = plan;
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
    const decoded = await decodeLimit.use(() => plan.decode(input, spec, owned));
    return { kind: 'pixels', pixels: decoded.pixels, key };
  } catch (error) {
    const reason = error instanceof BadImageError ? error.reason : describeError(error);
    return { kind: 'skip', reason, error };
  }
}

/**
 * Finished items wait here until every earlier one is finished too; then they are emitted in input order.
 * Holds at most the items in flight (the window and two batches), never the whole input.
 */
class InOrderResults {
  private readonly finished = new Map<number, Float32Array | null>();
  /** Items emitted so far (embedded or skipped): the input position of the next one. */
  nextToEmit = 0;
  readonly items: EmbeddedItem[] = [];
  private readonly embeddings: Float32Array;

  constructor(
    private readonly sources: readonly ImageSource[],
    private readonly dim: number,
    private readonly collect: boolean,
    private readonly onEmbedding: EmbedManyOptions['onEmbedding'],
  ) {
    this.embeddings = new Float32Array(collect ? sources.length * dim : 0);
  }

  /** `embedding` null: the item was skipped. */
  finish(index: number, embedding: Float32Array | null): void {
    this.finished.set(index, embedding);
    while (this.finished.has(this.nextToEmit)) {
      const position = this.nextToEmit;
      const vector = this.finished.get(position)!;
      this.finished.delete(position);
      if (vector) {
        const item = { index: position, source: describeSource(this.sources[position]!, position) };
        if (this.collect) this.embeddings.set(vector, this.items.length * this.dim);
        this.items.push(item);
        this.onEmbedding?.(item, vector);
      }
      this.nextToEmit++;
    }
  }

  /** [items, dim] row-major (empty when not collecting). */
  collected(): Float32Array {
    return !this.collect || this.items.length === this.sources.length
      ? this.embeddings
      : this.embeddings.slice(0, this.items.length * this.dim);
  }
}

/**
 * Decoded tensors into batches and batches into `infer`, one batch in flight. Two tensor buffers alternate, so a
 * buffer is never written while onnxruntime reads it.
 */
class BatchRunner {
  private readonly buffers: Float32Array[];
  private current = 0;
  private slots: { index: number; key?: string }[] = [];
  private inflight: Promise<void> | undefined;
  // Kept aside so a failing run is never an unhandled rejection while the consumer awaits decodes.
  private inferenceError: { error: unknown } | undefined;
  batches = 0;

  constructor(
    private readonly stages: PipelineStages,
    private readonly plan: PipelinePlan,
    /** Receives each batch's rows (`output` checked to hold batch.length * dim values). */
    private readonly onOutput: (batch: { index: number; key?: string }[], output: Float32Array) => void,
  ) {
    const elements = plan.batchSize * plan.perImage;
    this.buffers = [new Float32Array(elements), new Float32Array(elements)];
  }

  /** Adds a decoded item to the batch being filled, and runs the batch once full. */
  async add(index: number, item: Extract<Prepared, { kind: 'tensor' | 'pixels' }>): Promise<void> {
    const { spec } = this.stages;
    const buffer = this.buffers[this.current]!;
    if (item.kind === 'tensor') buffer.set(item.tensor, this.slots.length * this.plan.perImage);
    else writePixelsToTensor(item.pixels, spec.width, spec.height, 3, spec, buffer, this.slots.length);
    this.slots.push({ index, key: item.key });
    if (this.slots.length === this.plan.batchSize) await this.launch();
  }

  /** Runs the batch being filled (if any) once the one in flight is done. */
  async launch(): Promise<void> {
    if (this.slots.length === 0) return;
    await this.settle();
    const batch = this.slots;
    const tensor = this.buffers[this.current]!;
    const { dim } = this.stages;
    this.current = 1 - this.current;
    this.slots = [];
    this.batches++;
    this.inflight = this.stages
      .infer(tensor.subarray(0, batch.length * this.plan.perImage), batch.length)
      .then((output) => {
        if (output.length !== batch.length * dim) {
          throw new EdgetlError(
            'internal',
            `backbone returned ${output.length} values for ${batch.length} images of ${dim} dims`,
          );
        }
        this.onOutput(batch, output);
      })
      .catch((error: unknown) => {
        this.inferenceError ??= { error };
      });
  }

  /** Waits for the batch in flight; throws its error, if it failed. */
  async settle(): Promise<void> {
    if (this.inflight) await this.inflight;
    this.inflight = undefined;
    if (this.inferenceError) throw this.inferenceError.error;
  }

  /** Waits for the batch in flight without throwing: never leave a run reading our buffers behind us. */
  async drain(): Promise<void> {
    if (this.inflight) await this.inflight;
  }
}

/** The error `strict` raises for an unusable item (a cancellation stays a cancellation). */
function strictSkipError(source: ImageSource, index: number, item: Extract<Prepared, { kind: 'skip' }>): Error {
  if (item.error instanceof EdgetlError && item.error.code === 'aborted') return item.error;
  const path = describeSource(source, index);
  return new BadImageError(path, item.reason, {
    file: typeof source === 'string' ? path : undefined,
    cause: item.error,
  });
}

/** Embed `sources` in order; see the module comment for how the work overlaps. */
export async function runEmbeddingPipeline(
  sources: readonly ImageSource[],
  stages: PipelineStages,
  options: EmbedManyOptions = {},
): Promise<EmbedManyResult> {
  const started = performance.now();
  const total = sources.length;
  const plan = planPipeline(stages, options);
  const { cache } = plan;
  const signal = options.signal;
  const results = new InOrderResults(sources, stages.dim, options.collect !== false, options.onEmbedding);
  const skipped: SkippedItem[] = [];
  let done = 0;
  let cacheHits = 0;
  let computed = 0;
  const progress = () => options.onProgress?.(done, total, skipped.length);
  const runner = new BatchRunner(stages, plan, (batch, output) => {
    for (let b = 0; b < batch.length; b++) {
      const row = output.subarray(b * stages.dim, (b + 1) * stages.dim);
      const { index, key } = batch[b]!;
      if (cache && key) cache.put(key, row);
      results.finish(index, row);
    }
    computed += batch.length;
    done += batch.length;
    if (cache) void cache.flush().catch(() => undefined);
    progress();
  });

  const prepared = new Map<number, Promise<Prepared>>();
  let launched = 0;
  const fillWindow = (consumer: number) => {
    while (launched < total && launched < consumer + plan.window) {
      prepared.set(launched, prepareItem(sources[launched]!, stages, plan, signal));
      launched++;
    }
  };

  try {
    for (let index = 0; index < total; index++) {
      if (signal?.aborted) throw abortError();
      fillWindow(index);
      const item = await prepared.get(index)!;
      prepared.delete(index);
      if (item.kind === 'hit') {
        results.finish(index, item.embedding);
        cacheHits++;
        done++;
        progress();
      } else if (item.kind === 'skip') {
        if (options.strict) throw strictSkipError(sources[index]!, index, item);
        skipped.push({ index, path: describeSource(sources[index]!, index), reason: item.reason });
        results.finish(index, null);
        done++;
        progress();
      } else {
        await runner.add(index, item);
      }
    }
    await runner.launch();
    await runner.settle();
  } catch (error) {
    // Never leave a run reading our buffers (or a session about to be released) behind us.
    await runner.drain();
    await Promise.allSettled(prepared.values());
    throw error;
  } finally {
    if (cache) await cache.flush().catch(() => undefined);
  }

  if (results.nextToEmit !== total)
    throw new EdgetlError(
      'internal',
      `embedding pipeline finished with ${total - results.nextToEmit} item(s) unaccounted for`,
    );
  return {
    embeddings: results.collected(),
    dim: stages.dim,
    items: results.items,
    skipped,
    stats: { cacheHits, computed, batches: runner.batches, seconds: (performance.now() - started) / 1000 },
  };
}
