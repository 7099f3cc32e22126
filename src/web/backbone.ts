/**
 * A frozen backbone in the browser: model bytes -> onnxruntime-web session -> embeddings of images.
 */
import type { PreprocessSpec } from '../core/preprocess/spec.js';
import { tensorDims, tensorElementsPerImage } from '../core/preprocess/tensor.js';
import { imageToTensor, type BrowserImageSource, type CanvasResizeQuality } from './preprocess/canvas.js';
import { PreprocessWorker, workerPreprocessingUnavailable, type PreprocessingReport } from './preprocess/in-worker.js';
import { pillowResampleBackend } from '../core/preprocess/pillow-resample-wasm.js';
import { WebInferenceSession, type WebProviderReport, type WebSessionOptions } from './execution/web-session.js';
import { EdgetlError, describeError } from '../core/util/errors.js';
import { sha256HexAsync } from '../core/formats/sha256.js';
import { fetchWithLimits } from '../core/util/fetch-limits.js';
import type { EmbeddingBackbone } from '../core/contract.js';

/** What a head file needs to know about the backbone it was trained on. */
export interface WebBackboneInfo {
  /** Catalog id or file name. */
  id: string;
  /** sha256 of the SOURCE model file (not of the feature extractor): heads name their backbone by it. */
  sha256: string;
  embeddingDim: number;
  preprocess: PreprocessSpec;
  /** Model output that carries the embedding. */
  outputName: string;
  /** Set when the graph only runs one batch size (e.g. ShuffleNet-QDQ: 1). */
  fixedBatch?: number;
}

export interface LoadWebBackboneOptions extends WebSessionOptions {
  /** A feature-extractor model (URL or bytes): its embedding output is `embeddingOutput`, or its only output. */
  model: string | ArrayBuffer | Uint8Array;
  id: string;
  /** sha256 of the source model; computed from `model` bytes when omitted (only right for an unmodified model). */
  sha256?: string;
  preprocess: PreprocessSpec;
  embeddingOutput?: string;
  fixedBatch?: number;
  /** Images per inference call (default 8; 1 for fixed-batch graphs). */
  batchSize?: number;
  /** Resampling for preprocessing (default 'match-node': the same filter as Node's sharp path). */
  resizeQuality?: CanvasResizeQuality;
  /**
   * URL of the preprocessing worker script (dist/web/preprocess-worker.js; the kiosk server serves it as
   * /preprocess-worker.js). Given, images are decoded, resized and written to tensors there, off the calling thread,
   * with the same values. Omitted, or where the browser lacks workers or OffscreenCanvas, preprocessing runs on the
   * calling thread; `preprocessing` says where it runs and why.
   */
  preprocessWorker?: string | URL;
}

export interface EmbedProgress {
  done: number;
  total: number;
}

/** A model given as a URL (fetched), or as bytes. */
export async function modelBytes(model: LoadWebBackboneOptions['model']): Promise<Uint8Array> {
  if (typeof model === 'string') return fetchModel(model);
  return model instanceof Uint8Array ? model : new Uint8Array(model);
}

/** A model URL within the downloader's limits (10 s to answer, 20 s of silence mid-body), never pending forever. */
export async function fetchModel(url: string): Promise<Uint8Array> {
  try {
    return await fetchWithLimits(url);
  } catch (error) {
    throw new EdgetlError('model-load', `could not fetch the model: ${describeError(error)}`, {
      file: url,
      cause: error,
    });
  }
}

/** Where the time of the last `embed` call went (ms). */
export interface EmbedTimings {
  /** Decode, resize, crop, normalize. */
  preprocessMs: number;
  /** The backbone session run, including reading the embedding back. */
  inferenceMs: number;
  /**
   * The calling thread's share of preprocessMs: with a preprocessing worker, only handing the image over and taking
   * the tensor back; without one, all of preprocessMs (including any wait for the browser's decoder).
   */
  preprocessCallerMs: number;
}

export class WebBackbone implements EmbeddingBackbone {
  /** Timings of the most recent `embed` call. */
  lastTimings: EmbedTimings | undefined;

  private constructor(
    private readonly session: WebInferenceSession,
    readonly info: WebBackboneInfo,
    private readonly batchSize: number,
    private readonly resizeQuality: CanvasResizeQuality = 'match-node',
    private readonly worker: PreprocessWorker | undefined,
    private readonly fallbackReason: string | undefined,
  ) {}

  /** Where images are preprocessed (a worker or the calling thread), with which resize kernel, and why. */
  get preprocessing(): PreprocessingReport {
    if (this.worker && !this.worker.failed) return { where: 'worker', resize: this.worker.resize };
    return {
      where: 'main-thread',
      resize: pillowResampleBackend(),
      reason: this.worker?.failed ?? this.fallbackReason ?? 'no preprocessing worker was asked for',
    };
  }

  /** One image's tensor (into `out` at `imageIndex` when given), in the worker while it works, else here. */
  private async tensorOf(
    source: BrowserImageSource,
    out?: Float32Array,
    imageIndex = 0,
  ): Promise<{ tensor: Float32Array; callerMs: number }> {
    const spec = this.info.preprocess;
    const worker = this.worker;
    if (worker && !worker.failed) {
      try {
        const { tensor, mainThreadMs } = await worker.imageToTensor(source, spec, {
          resizeQuality: this.resizeQuality,
        });
        if (!out) return { tensor, callerMs: mainThreadMs };
        const t0 = performance.now();
        out.set(tensor, imageIndex * tensor.length);
        return { tensor: out, callerMs: mainThreadMs + performance.now() - t0 };
      } catch (error) {
        // One bad image is that image's error; a worker that died leaves the rest to this thread.
        if (!worker.failed) throw error;
        console.warn(`edgetl: preprocessing moves to the main thread: ${worker.failed}`);
      }
    }
    const t0 = performance.now();
    const tensor = await imageToTensor(source, spec, { out, imageIndex, resizeQuality: this.resizeQuality });
    return { tensor, callerMs: performance.now() - t0 };
  }

  get id(): string {
    return this.info.id;
  }

  get sha256(): string {
    return this.info.sha256;
  }

  get embeddingDim(): number {
    return this.info.embeddingDim;
  }

  get preprocess(): PreprocessSpec {
    return this.info.preprocess;
  }

  /** Which provider ran, the adapter, threads, and why anything fell back. */
  get provider(): WebProviderReport {
    return this.session.provider;
  }

  /** @deprecated the same report as `provider` (one name per concept); kept for the kiosk app until it moves over. */
  get report(): WebProviderReport {
    return this.provider;
  }

  static async load(options: LoadWebBackboneOptions): Promise<WebBackbone> {
    const bytes = await modelBytes(options.model);
    const sha256 = options.sha256 ?? (await sha256HexAsync(bytes));
    const session = await WebInferenceSession.create(bytes, options);
    const outputName =
      options.embeddingOutput ?? (session.outputNames.length === 1 ? session.outputNames[0] : undefined);
    if (!outputName || !session.outputNames.includes(outputName)) {
      await session.close();
      throw new EdgetlError(
        'model-load',
        `${typeof options.model === 'string' ? options.model : options.id}: cannot tell which output is the embedding ` +
          `(outputs: ${session.outputNames.join(', ')}); serve a feature extractor (a classifier cut at its embedding, as the kiosk server serves) or pass embeddingOutput`,
      );
    }
    const fixedBatch = options.fixedBatch;
    const batchSize = fixedBatch ?? Math.max(1, options.batchSize ?? 8);
    // Probe one image to learn the embedding size (and prove the session really runs before a user adds examples).
    const probe = new Float32Array(tensorElementsPerImage(options.preprocess) * (fixedBatch ?? 1));
    let dims: number[];
    try {
      dims = (await session.run(probe, tensorDims(options.preprocess, fixedBatch ?? 1), outputName)).dims;
    } catch (error) {
      await session.close();
      throw new EdgetlError(
        'model-load',
        `${options.id}: the model loaded but does not run on ${session.provider.used}: ${describeError(error)}`,
      );
    }
    const embeddingDim = dims.slice(1).reduce((a, b) => a * b, 1);
    let worker: PreprocessWorker | undefined;
    let fallbackReason: string | undefined;
    if (options.preprocessWorker !== undefined) {
      fallbackReason = workerPreprocessingUnavailable();
      if (!fallbackReason) {
        try {
          worker = await PreprocessWorker.start(options.preprocessWorker);
        } catch (error) {
          fallbackReason = describeError(error);
        }
      }
      // Asked for and not available: the page still works, a little less smoothly; say so where developers look.
      if (fallbackReason) console.warn(`edgetl: preprocessing runs on the main thread: ${fallbackReason}`);
    }
    return new WebBackbone(
      session,
      { id: options.id, sha256, embeddingDim, preprocess: options.preprocess, outputName, fixedBatch },
      batchSize,
      options.resizeQuality,
      worker,
      fallbackReason,
    );
  }

  /** Runs a ready tensor batch [n, ...spec] and returns n embeddings (row-major n x dim). */
  async embedTensors(tensor: Float32Array, count: number): Promise<Float32Array> {
    const spec = this.info.preprocess;
    const per = tensorElementsPerImage(spec);
    if (tensor.length !== per * count)
      throw new EdgetlError('bad-input', `tensor holds ${tensor.length} values, expected ${count} x ${per}`);
    const dim = this.info.embeddingDim;
    const out = new Float32Array(count * dim);
    const step = this.info.fixedBatch ?? this.batchSize;
    for (let start = 0; start < count; start += step) {
      const n = Math.min(step, count - start);
      const runBatch = this.info.fixedBatch ?? n;
      let input = tensor.subarray(start * per, (start + n) * per);
      if (runBatch !== n) {
        const padded = new Float32Array(runBatch * per);
        padded.set(input);
        input = padded;
      }
      const result = await this.session.run(input, tensorDims(spec, runBatch), this.info.outputName);
      out.set(result.data.subarray(0, n * dim), start * dim);
    }
    return out;
  }

  /** The embedding of one image, camera frame, canvas or file. */
  async embed(source: BrowserImageSource): Promise<Float32Array> {
    const t0 = performance.now();
    const { tensor, callerMs } = await this.tensorOf(source);
    const t1 = performance.now();
    const embedding = await this.embedTensors(tensor, 1);
    this.lastTimings = { preprocessMs: t1 - t0, inferenceMs: performance.now() - t1, preprocessCallerMs: callerMs };
    return embedding;
  }

  /** Embeddings of many images (row-major count x dim), in batches; decoding overlaps the previous batch's inference. */
  async embedMany(
    sources: readonly BrowserImageSource[],
    onProgress?: (progress: EmbedProgress) => void,
  ): Promise<Float32Array> {
    const spec = this.info.preprocess;
    const per = tensorElementsPerImage(spec);
    const dim = this.info.embeddingDim;
    const out = new Float32Array(sources.length * dim);
    const step = this.info.fixedBatch ?? this.batchSize;
    const prepare = async (start: number): Promise<Float32Array> => {
      const n = Math.min(step, sources.length - start);
      const batch = new Float32Array(n * per);
      if (this.worker && !this.worker.failed) {
        // The whole batch goes to the worker at once: it decodes the next image while it resizes this one.
        await Promise.all(Array.from({ length: n }, (_, i) => this.tensorOf(sources[start + i], batch, i)));
      } else {
        for (let i = 0; i < n; i++) await this.tensorOf(sources[start + i], batch, i);
      }
      return batch;
    };
    let pending = sources.length ? prepare(0) : undefined;
    for (let start = 0; start < sources.length; start += step) {
      const batch = await pending!;
      const next = start + step < sources.length ? prepare(start + step) : undefined;
      const n = batch.length / per;
      out.set(await this.embedTensors(batch, n), start * dim);
      pending = next;
      onProgress?.({ done: start + n, total: sources.length });
    }
    return out;
  }

  /** Free the onnxruntime-web session and the preprocessing worker. Safe to call twice. */
  async close(): Promise<void> {
    this.worker?.close();
    await this.session.close();
  }
}
