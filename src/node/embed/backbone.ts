/**
 * The library's main object: a frozen backbone that turns images into embeddings.
 *
 *   const backbone = await Backbone.load('mobilenetv2-12-int8', { ep: 'auto' });
 *   const vector = await backbone.embed('photo.jpg');             // Float32Array(1280)
 *   const { embeddings, labels: rowLabels, skipped } = await backbone.embedMany(paths, { labels, onProgress });
 *   await backbone.close();
 *
 * Loading resolves the model (catalog id or path, downloading a missing catalog model when allowed), works out its
 * preprocessing (catalog, sidecar, flags, defaults), writes or reuses the feature-extractor graph (classifier cut
 * off, embedding as a [N, D] float32 output), and opens an onnxruntime session on the requested provider.
 */
import { availableParallelism } from 'node:os';
import type { ResolvedBackbone } from '../models/resolve.js';
import type { BackboneSpec } from '../models/backbone-spec.js';
import type { CustomSurgery } from '../models/feature-extractor-cache.js';
import { prepareBackbone } from '../models/prepare-backbone.js';
import type { ModelFacts } from '../../core/models/inspect.js';
import { createSession, type BackboneSession } from '../execution/session.js';
import type { ExecutionOptions, ProviderReport } from '../../core/execution/types.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { tensorDims, tensorElementsPerImage } from '../../core/preprocess/tensor.js';
import type { ImageSource, DecodeOptions } from '../preprocess/node-image.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { EmbeddingCache } from './cache.js';
import { keepEmbeddingCacheInBounds } from './cache-maintenance.js';
import { runEmbeddingPipeline, type EmbedManyOptions, type EmbedManyResult } from './pipeline.js';
import { MainThreadDecoder, WorkerDecodePool, type ImageDecoder } from './decode-pool.js';
import type { EmbeddingBackbone } from '../../core/contract.js';

/** embedMany calls with at least this many images decode on worker threads (starting them costs ~0.1 s). */
export const WORKER_DECODE_MIN_IMAGES = 16;

/**
 * onnxruntime intra-op threads when the caller does not choose: every core, light backbone or heavy. Inference
 * and the image decoders share the cores; that works because edgetl's sessions do not let idle pool threads spin
 * (`allowSpinning`), so a waiting inference thread hands its core to a decoder. Measured on 2 cores, quiet,
 * interleaved (bench/results/2026-12-01/throughput): `edgetl embed` of 1,000 photos with MobileNetV2-int8 took
 * 2.43-2.46 s with two non-spinning threads against 3.06-3.12 s with one (the old default for light backbones) and
 * 2.67-2.75 s with two spinning ones; EfficientNet-B0 200 photos 1.40 s against 1.91-1.97 s; ResNet-50 (heavy) the
 * same either way.
 */
export function defaultIntraOpThreads(cores: number): number {
  return Math.max(1, cores);
}

/**
 * Decode worker threads when the caller does not choose: half the cores, at least two. Decoding's own-thread part
 * (the Pillow-exact resize and tensor write, ~0.3-0.5 ms of a 500x375 photo in WebAssembly, ~3 ms before in JS)
 * would otherwise share the main thread with the pipeline's bookkeeping. Measured on the quiet 2-core machine with
 * the JS resize (bench/embed-throughput.ts, hymenoptera/train, MobileNetV2-int8, 1 intra-op thread): main-thread
 * decoding 158-160 images/s, 1 worker 153-155, 2 workers 184-189; re-measured loaded with WebAssembly (2026-12-01),
 * 1 and 2 workers cost the same CPU per image.
 */
export function defaultDecodeThreads(cores: number): number {
  return cores >= 2 ? Math.max(2, Math.floor(cores / 2)) : 0;
}

/** The output the feature-extractor graph exposes (see models/feature-extractor-cache.ts). */
const EMBEDDING_OUTPUT = 'embedding';

export interface BackboneLoadOptions extends ExecutionOptions {
  /** Embedding tensor in the source graph; overrides the catalog, the sidecar and automatic discovery. */
  embeddingTensor?: string;
  /** Preprocessing fields that override the catalog entry, sidecar or defaults. */
  preprocess?: Partial<PreprocessSpec>;
  /** Download a missing catalog model (default true). */
  download?: boolean;
  onDownloadProgress?(received: number, total: number | undefined): void;
  /** Called once before a missing catalog model is downloaded. */
  onDownloadStart?(info: { id: string; url: string; dest: string; bytes: number }): void;
  /** Folders searched for catalog models instead of the default search path. */
  searchPath?: string[];
  /** Keep embeddings in the on-disk cache so unchanged images skip decoding and inference (default true). */
  cache?: boolean;
  /** Cache root (default edgetlCacheDir()): feature-extractor graphs and embeddings. */
  cacheDir?: string;
  /**
   * Size bound of the embedding cache in bytes (null: none). Default: EDGETL_CACHE_MAX_SIZE, else what
   * `edgetl cache limit` set, else 2 GiB. Least-recently-used entries are evicted when a backbone closes over it.
   */
  cacheMaxBytes?: number | null;
  /** Decode worker threads for embedMany (default defaultDecodeThreads(cores); 0 decodes on the main thread). */
  decodeThreads?: number;
  /** Decoder options (pixel limit, resize kernel, shrink-on-load); see preprocess/node-image.ts. */
  decode?: DecodeOptions;
  /**
   * Run another graph than the plain feature extractor: the last-block cut or an adapted last block
   * (see fine-tune/last-block-backbone.ts). Its description keys the extractor and embedding caches.
   */
  surgery?: CustomSurgery;
}

export class Backbone implements EmbeddingBackbone {
  /** Catalog id, or the file name without `.onnx`. */
  readonly id: string;
  /** sha256 of the source model file. */
  readonly sha256: string;
  /** Identifies the feature-extractor graph (source file + surgery); keys the embedding cache. */
  readonly fingerprint: string;
  readonly embeddingDim: number;
  readonly preprocess: PreprocessSpec;
  /** Which provider actually runs, and why any other did not. */
  readonly provider: ProviderReport;
  readonly facts: ModelFacts;
  /** 'dynamic', or the batch size the graph is fixed to (then images run that many at a time). */
  readonly batch: 'dynamic' | number;
  /** The source model file. */
  readonly modelPath: string;
  /** The feature-extractor graph actually run. */
  readonly featureExtractorPath: string;
  /** How the preprocessing was chosen (catalog, sidecar, flags, defaults), for reports. */
  readonly specNotes: string[];
  readonly resolved: ResolvedBackbone;
  /** The custom surgery's description when the backbone runs one (a last-block cut or an adapted block). */
  readonly surgery: string | undefined;

  private readonly session: BackboneSession;
  private readonly cacheEnabled: boolean;
  private readonly cacheRoot: string;
  private readonly cacheMaxBytes: number | null | undefined;
  private cache: Promise<EmbeddingCache | undefined> | undefined;
  private cacheProblem: string | undefined;
  private openedCache: EmbeddingCache | undefined;
  private closed = false;
  private readonly decodeThreads: number;
  private readonly decodeOptions: DecodeOptions;
  private readonly mainThreadDecoder: MainThreadDecoder;
  private workerDecoder: ImageDecoder | undefined;
  private workerDecoderProblem: string | undefined;

  private constructor(init: {
    resolved: ResolvedBackbone;
    spec: BackboneSpec;
    facts: ModelFacts;
    fingerprint: string;
    featureExtractorPath: string;
    dim: number;
    session: BackboneSession;
    cacheEnabled: boolean;
    cacheRoot: string;
    cacheMaxBytes: number | null | undefined;
    decodeThreads: number;
    decodeOptions: DecodeOptions;
    surgery: string | undefined;
  }) {
    this.resolved = init.resolved;
    this.surgery = init.surgery;
    this.id = init.resolved.id;
    this.sha256 = init.resolved.sha256;
    this.fingerprint = init.fingerprint;
    this.embeddingDim = init.dim;
    this.preprocess = init.spec.preprocess;
    this.specNotes = init.spec.notes;
    this.facts = init.facts;
    this.batch = init.facts.batch;
    this.modelPath = init.resolved.path;
    this.featureExtractorPath = init.featureExtractorPath;
    this.session = init.session;
    this.provider = init.session.provider;
    this.cacheEnabled = init.cacheEnabled;
    this.cacheRoot = init.cacheRoot;
    this.cacheMaxBytes = init.cacheMaxBytes;
    this.decodeThreads = Math.max(0, Math.floor(init.decodeThreads));
    this.decodeOptions = init.decodeOptions;
    this.mainThreadDecoder = new MainThreadDecoder(this.decodeOptions, availableParallelism());
  }

  /** Load a backbone by catalog id or path. See BackboneLoadOptions; ExecutionOptions pick the provider. */
  static async load(idOrPath: string, options: BackboneLoadOptions = {}): Promise<Backbone> {
    const cacheRoot = options.cacheDir ?? edgetlCacheDir();
    const { resolved, spec, extractor } = await prepareBackbone(idOrPath, {
      download: options.download,
      onProgress: options.onDownloadProgress,
      onDownloadStart: options.onDownloadStart,
      ...(options.searchPath ? { searchPath: options.searchPath } : {}),
      embeddingTensor: options.embeddingTensor,
      preprocess: options.preprocess,
      cacheDir: options.cacheDir,
      surgery: options.surgery,
    });
    const {
      embeddingTensor: _tensor,
      preprocess: _preprocess,
      download: _download,
      onDownloadProgress: _progress,
      onDownloadStart: _start,
      searchPath: _searchPath,
      cache: _cache,
      cacheDir: _cacheDir,
      cacheMaxBytes: _cacheMaxBytes,
      decodeThreads: _decodeThreads,
      decode: _decode,
      surgery: _surgery,
      ...execution
    } = options;
    const session = await createSession(extractor.path, {
      ...execution,
      intraOpThreads: execution.intraOpThreads ?? defaultIntraOpThreads(availableParallelism()),
    });
    return new Backbone({
      resolved,
      spec,
      facts: extractor.facts,
      fingerprint: extractor.fingerprint,
      featureExtractorPath: extractor.path,
      dim: extractor.dim,
      session,
      cacheEnabled: options.cache !== false,
      cacheRoot,
      cacheMaxBytes: options.cacheMaxBytes,
      decodeThreads: options.decodeThreads ?? defaultDecodeThreads(availableParallelism()),
      decodeOptions: options.decode ?? {},
      surgery: options.surgery?.description,
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new EdgetlError('closed', `backbone ${this.id} is closed`);
  }

  /** The embedding cache, opened on first use; a cache that cannot be opened is reported once and skipped. */
  private embeddingCache(): Promise<EmbeddingCache | undefined> {
    if (!this.cacheEnabled) return Promise.resolve(undefined);
    // Decoder options that change pixels are part of the key (the pixel limit only refuses images).
    const { kernel, pillowMaxPixels, fastShrinkOnLoad } = this.decodeOptions;
    const variant =
      kernel === undefined && pillowMaxPixels === undefined && fastShrinkOnLoad === undefined
        ? undefined
        : { kernel, pillowMaxPixels, fastShrinkOnLoad };
    this.cache ??= EmbeddingCache.open({
      root: this.cacheRoot,
      fingerprint: this.fingerprint,
      preprocess: this.preprocess,
      variant,
      dim: this.embeddingDim,
    }).then(
      (cache) => (this.openedCache = cache),
      (error: unknown) => {
        this.cacheProblem = `embedding cache unavailable (${describeError(error)}); every image is computed`;
        return undefined;
      },
    );
    return this.cache;
  }

  /** Worker threads for many images (started once, kept until close), the main thread for a few. */
  private decoderFor(count: number): ImageDecoder {
    if (this.decodeThreads === 0 || count < WORKER_DECODE_MIN_IMAGES || this.workerDecoderProblem)
      return this.mainThreadDecoder;
    if (!this.workerDecoder) {
      const created = WorkerDecodePool.create(this.decodeThreads, this.decodeOptions);
      if (!created.pool) {
        this.workerDecoderProblem = created.reason;
        return this.mainThreadDecoder;
      }
      this.workerDecoder = created.pool;
    }
    return this.workerDecoder;
  }

  /** Where the last embedMany decoded its images ("2 worker threads", "main thread (why)"). */
  get decoding(): string {
    if (this.workerDecoderProblem) return `main thread (${this.workerDecoderProblem})`;
    return this.workerDecoder?.description ?? this.mainThreadDecoder.description;
  }

  /** Why the embedding cache is not in use (it failed to open) or not complete (appends failed). */
  get cacheWarning(): string | undefined {
    return this.cacheProblem ?? this.openedCache?.writeProblem;
  }

  /** Embedding of one image (path, encoded bytes, or raw RGB/RGBA pixels). Throws for an unusable image. */
  async embed(image: ImageSource): Promise<Float32Array> {
    const result = await this.embedMany([image], { strict: true, batchSize: 1 });
    return result.embeddings;
  }

  /**
   * Embed many images: batched, decoding overlapped with inference, results in input order, unusable images skipped
   * with their reason (or fatal with `strict`). Memory stays bounded by the batch window, not by `images.length`.
   * Row r of `embeddings` is `items[r]`, which is `images[items[r].index]`. Give `labels` (one per image) to get back
   * `labels` aligned with the rows, ready for trainHead even when images were skipped.
   */
  async embedMany(
    images: readonly ImageSource[],
    options: EmbedManyOptions & { labels: readonly string[] },
  ): Promise<EmbedManyResult & { labels: string[] }>;
  async embedMany(images: readonly ImageSource[], options?: EmbedManyOptions): Promise<EmbedManyResult>;
  async embedMany(
    images: readonly ImageSource[],
    options: EmbedManyOptions & { labels?: readonly string[] } = {},
  ): Promise<EmbedManyResult & { labels?: string[] }> {
    this.assertOpen();
    const labels = options.labels;
    if (labels !== undefined && labels.length !== images.length) {
      throw new EdgetlError(
        'bad-input',
        `embedMany: ${labels.length} labels for ${images.length} images; give one label per image, in the same order`,
      );
    }
    const result = await this.embedImages(images, options);
    // Skipped images leave no row: the labels that come back are those of the rows, in row order.
    return labels === undefined ? result : { ...result, labels: result.items.map((item) => labels[item.index]!) };
  }

  private async embedImages(images: readonly ImageSource[], options: EmbedManyOptions): Promise<EmbedManyResult> {
    const cache = options.useCache === false ? undefined : await this.embeddingCache();
    return runEmbeddingPipeline(
      images,
      {
        spec: this.preprocess,
        dim: this.embeddingDim,
        fixedBatch: this.batch === 'dynamic' ? undefined : this.batch,
        infer: (tensor, count) => this.embedTensors(tensor, count),
        decoder: this.decoderFor(images.length),
        cache,
      },
      options,
    );
  }

  /**
   * Raw inference on ready tensors: `batch` holds `count` preprocessed images in the model's layout. A fixed-batch
   * model runs them in groups of its size, padding the last group. Returns count x embeddingDim values.
   */
  async embedTensors(batch: Float32Array, count: number): Promise<Float32Array> {
    this.assertOpen();
    const perImage = tensorElementsPerImage(this.preprocess);
    if (!Number.isInteger(count) || count < 0 || batch.length < count * perImage) {
      throw new EdgetlError(
        'bad-input',
        `embedTensors: ${batch.length} values do not hold ${count} images of ${perImage} values (${this.preprocess.layout} ${this.preprocess.width}x${this.preprocess.height})`,
      );
    }
    const dim = this.embeddingDim;
    const out = new Float32Array(count * dim);
    if (count === 0) return out;
    const group = this.batch === 'dynamic' ? count : this.batch;
    let padded: Float32Array | undefined;
    for (let start = 0; start < count; start += group) {
      const n = Math.min(group, count - start);
      let input = batch.subarray(start * perImage, (start + n) * perImage);
      if (n < group) {
        padded ??= new Float32Array(group * perImage);
        padded.fill(0);
        padded.set(input);
        input = padded;
      }
      const result = await this.session.run(input, tensorDims(this.preprocess, group), EMBEDDING_OUTPUT);
      const expected = group * dim;
      if (result.data.length !== expected) {
        throw new EdgetlError(
          'internal',
          `backbone ${this.id}: embedding output has ${result.data.length} values [${result.dims.join(', ')}], expected ${group} x ${dim}`,
        );
      }
      out.set(result.data.subarray(0, n * dim), start * dim);
    }
    return out;
  }

  /** A plain-data description (what `JSON.stringify(backbone)` gives): identity, preprocessing, provider, facts. */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      sha256: this.sha256,
      fingerprint: this.fingerprint,
      modelPath: this.modelPath,
      featureExtractorPath: this.featureExtractorPath,
      embeddingDim: this.embeddingDim,
      batch: this.batch,
      preprocess: this.preprocess,
      specNotes: this.specNotes,
      provider: this.provider,
      facts: this.facts,
    };
  }

  /**
   * Release the session and flush the embedding cache; then keep the cache within its size bound (evicting the
   * least-recently-used entries) and compact this backbone's cache file if it held duplicate or damaged records.
   * Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cache = await this.cache;
    try {
      await cache?.close();
      await this.workerDecoder?.close();
    } finally {
      await this.session.close();
    }
    if (cache) {
      const { duplicates, damaged } = cache.stats();
      await keepEmbeddingCacheInBounds(this.cacheRoot, {
        maxBytes: this.cacheMaxBytes,
        ...(duplicates > 0 || damaged > 0 ? { compactFile: cache.path } : {}),
      });
    }
  }
}
