/**
 * Fine-tuning the backbone's last block in the browser, as Node's node/fine-tune.ts does: the page cuts the
 * unmodified classifier at its last block (models/last-block-graph.ts), runs the cut graph on onnxruntime-web to get
 * every example's activations there (flipped views too), and hands them to the training worker, which trains block
 * and head with the shared code (core/heads/fine-tune-head.ts: cross-validation decides whether fine-tuning beats the
 * frozen head). The result is the same edgetl-head v2 file Node writes: with `adaptedBlock` when fine-tuning won
 * (run it with loadAdaptedBackbone here, or Classifier / `edgetl predict` in Node), else the frozen head itself.
 *
 * The activations stay in memory (pixels x channels floats per view: 61 KiB per image for MobileNetV2 at 224 px,
 * 31 MiB for 500 images) and are moved, not copied, to the worker; `memoryBytes` bounds them.
 */
import type { WeightDType } from '../core/formats/head-file.js';
import { sha256HexAsync } from '../core/formats/sha256.js';
import {
  assertFineTunable,
  keepFrozenHead,
  type FineTuneReport,
  type FineTuneSettings,
} from '../core/heads/fine-tune-head.js';
import { Head } from '../core/heads/head.js';
import { findLastBlock, type LastBlock } from '../core/models/last-block.js';
import { buildCutExtractor, cutPixels } from '../core/models/last-block-graph.js';
import { parseOnnxModel } from '../core/models/onnx-model.js';
import type { PreprocessSpec } from '../core/preprocess/spec.js';
import { tensorDims, tensorElementsPerImage } from '../core/preprocess/tensor.js';
import { EdgetlError, describeError, isEdgetlError } from '../core/util/errors.js';
import { WebBackbone, modelBytes, type LoadWebBackboneOptions } from './backbone.js';
import { parseWebHead, runInWorker, secondsLeft, type WebHead, type WebTrainProgress } from './heads.js';
import { imageToTensor, type BrowserImageSource } from './preprocess/canvas.js';
import type { WebDenseMathSpec } from './execution/dense-math-web.js';
import { gemmModels } from '../core/heads/dense-math-graph.js';

/**
 * What the worker (src/web/worker.ts) trains on: activation rows at the cut, their classes, the pretrained block and
 * the frozen head. fineTuneInWorker computes it on the page; a caller with activations of its own (computed once and
 * kept, say) can hand it to fineTuneActivationsInWorker directly.
 */
export interface FineTuneActivations {
  /** [rows, pixels * channels], each pixel's channels contiguous (the cut graph's output). */
  activations: Float32Array;
  pixels: number;
  channels: number;
  /** Class index (into the frozen head's labels) per row. */
  targets: Int32Array;
  /** Image index per row: an image and its flipped view share one. */
  groups: Int32Array;
  frozenJson: string;
  block: Pick<
    LastBlock,
    'description' | 'cutTensor' | 'inputChannels' | 'outputChannels' | 'activation' | 'weight' | 'bias'
  >;
  settings: FineTuneSettings;
  dtype?: WeightDType;
  activationSeconds: number;
  /** onnxruntime-web for the block's products (absent: the plain-JS kernel, about 5x slower: bench/web-fine-tune.ts). */
  math?: WebDenseMathSpec;
}

export interface WebFineTuneRequest extends Omit<LoadWebBackboneOptions, 'model' | 'embeddingOutput' | 'sha256'> {
  /** The unmodified classifier (URL or bytes) the frozen head was trained on (its sha256 must match the head's). */
  model: LoadWebBackboneOptions['model'];
  /** The training images, or `tensors`. */
  images?: readonly BrowserImageSource[];
  /** Preprocessed images instead of `images`: [count, ...preprocess dims] (what imageToTensor writes). */
  tensors?: Float32Array;
  /** One class name per image; every one must be among the frozen head's labels. */
  labels: readonly string[];
  /** The frozen linear head trained on the same images: the fallback, and the source of the L2 strength. */
  frozen: WebHead | Head;
  /**
   * Add every image's horizontally mirrored view (grouped with it in cross-validation). Mirrored here after
   * preprocessing; Node mirrors before the center crop, the same view unless the crop's margin is an odd number of
   * pixels.
   */
  flip?: boolean;
  /** Upper bound on the activations kept for training (default 1 GiB): more is refused, naming the size. */
  memoryBytes?: number;
  /** Storage type the head will be saved with (default float16): weights are rounded to it. */
  dtype?: WeightDType;
  /** Training settings, as Node's fineTuneHead takes them (seed, folds, epochs, patience, learning rates...). */
  settings?: FineTuneSettings;
}

export interface WebFineTuneOptions {
  /** The training worker (src/web/worker.ts; `edgetl serve` serves it as /worker.js). */
  workerUrl: string | URL;
  /** Stages: 'activations at the cut' (and '(flipped views)'), 'pretrained features', 'fine-tuning ...'. */
  onProgress?: (progress: WebTrainProgress) => void;
  /** Cancels between activation batches, or ends the worker; the promise then rejects with code `aborted`. */
  signal?: AbortSignal;
  /**
   * Where the worker runs the block's products: 'onnxruntime-web' (default; the page's own module, found through its
   * import map, or `onnxruntimeUrl`), falling back to 'js' (the plain-JS kernel) when it cannot load; the report's
   * `denseMath` says which ran.
   */
  denseMath?: 'onnxruntime-web' | 'js';
  /** URL of the onnxruntime-web ES module for the worker (default: what the page resolves `onnxruntime-web` to). */
  onnxruntimeUrl?: string;
}

/** The URL the page's import map (or bundler) gives `onnxruntime-web`, if it can tell. */
function pageOnnxruntimeUrl(): string | undefined {
  try {
    const resolve = (import.meta as ImportMeta & { resolve?: (specifier: string) => string }).resolve;
    return resolve?.('onnxruntime-web');
  } catch {
    return undefined;
  }
}

/** Share of the progress bar the activations take (the rest is the worker's training). */
const ACTIVATION_SHARE = 0.3;

/**
 * Mirrors preprocessed images left to right, in place: rows of `width` values (NCHW) or of `width` pixels (NHWC).
 * The same tensor as mirroring the pixels before writing them (Node's flipped views mirror before the center crop).
 */
export function mirrorTensor(tensor: Float32Array, spec: PreprocessSpec): void {
  const step = spec.layout === 'NCHW' ? 1 : 3;
  const rowLength = spec.width * step;
  for (let row = 0; row < tensor.length; row += rowLength) {
    for (let x = 0; x < spec.width >> 1; x++) {
      const a = row + x * step;
      const b = row + (spec.width - 1 - x) * step;
      for (let c = 0; c < step; c++) {
        const v = tensor[a + c];
        tensor[a + c] = tensor[b + c];
        tensor[b + c] = v;
      }
    }
  }
}

function size(bytes: number): string {
  return bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new EdgetlError('aborted', 'fine-tuning was cancelled');
}

/**
 * Fine-tune the classifier's last block with a linear head, in the browser: activations on the page's
 * onnxruntime-web session, training in a Web Worker. Resolves with the head to keep (adapted, or the frozen head
 * when fine-tuning did not beat it out of fold or the graph's last block is not supported) and the report.
 */
export async function fineTuneInWorker(
  request: WebFineTuneRequest,
  options: WebFineTuneOptions,
): Promise<{ head: WebHead; report: FineTuneReport }> {
  const frozen = request.frozen instanceof Head ? request.frozen : request.frozen.head;
  // what is left are the session and preprocessing options for the cut graph
  const { images, tensors, labels: _labels, frozen: _frozen, flip, settings, memoryBytes, dtype, ...load } = request;
  const spec = request.preprocess;
  const per = tensorElementsPerImage(spec);
  const count = images?.length ?? (tensors ? tensors.length / per : 0);
  if (images && tensors) throw new EdgetlError('usage', 'give images or tensors, not both');
  if (!images && !tensors) throw new EdgetlError('usage', 'give the training images (or their tensors)');
  if (count === 0) throw new EdgetlError('train-input', 'no training images');
  if (tensors && !Number.isInteger(count))
    throw new EdgetlError('train-input', `tensors hold ${tensors.length} values, not whole images of ${per}`);
  const source = await modelBytes(request.model);
  const sha256 = await sha256HexAsync(source);
  assertFineTunable(frozen, { id: request.id, sha256 }, count, request.labels.length);
  const targets = Int32Array.from(request.labels, (label) => frozen.labels.indexOf(label));
  const missing = request.labels.find((_, i) => targets[i] < 0);
  if (missing !== undefined)
    throw new EdgetlError('label-mismatch', `the training label "${missing}" is not among the frozen head's classes`);
  const started = performance.now();
  const result = (head: Head, report: FineTuneReport) => ({ head: parseWebHead(head.serialize({ dtype })), report });

  const file = typeof request.model === 'string' ? request.model : request.id;
  const model = parseOnnxModel(source, file);
  let block: LastBlock;
  let pixels: number;
  try {
    block = findLastBlock(model);
    const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
    const input = (model.graph?.input ?? []).find((i) => i.name && !initializers.has(i.name))?.name ?? '';
    pixels = cutPixels(model, block, input, tensorDims(spec, 1));
  } catch (error) {
    if (isEdgetlError(error) && error.code === 'last-block-unsupported') {
      const kept = keepFrozenHead(frozen, {
        outcome: 'frozen',
        reason: `${request.id}: ${error.message}; the frozen head is kept`,
        rows: count,
        activationSeconds: 0,
        trainSeconds: (performance.now() - started) / 1000,
      });
      return result(kept.head, kept.report);
    }
    throw error;
  }

  const views = request.flip ? 2 : 1;
  const rowValues = pixels * block.inputChannels;
  const bytes = count * views * rowValues * 4;
  const limit = memoryBytes ?? 2 ** 30;
  if (bytes > limit)
    throw new EdgetlError(
      'train-input',
      `the activations at the cut would take ${size(bytes)} (${count} images x ${views} views x ${rowValues} floats), over the ${size(limit)} allowed: use fewer images or raise memoryBytes`,
    );
  const extractor = buildCutExtractor(model, block, pixels);
  const cut = await WebBackbone.load({
    ...load,
    model: extractor.bytes,
    sha256,
    embeddingOutput: extractor.outputName,
  });
  const activations = new Float32Array(count * views * rowValues);
  try {
    const batch = 8;
    const total = count * views;
    let done = 0;
    const activationsStarted = performance.now();
    const report = (stage: string) => {
      options.onProgress?.({
        stage,
        done,
        total,
        fraction: (ACTIVATION_SHARE * done) / total,
        etaSeconds: secondsLeft(performance.now() - activationsStarted, done, total),
      });
    };
    for (let start = 0; start < count; start += batch) {
      aborted(options.signal);
      const n = Math.min(batch, count - start);
      let input: Float32Array;
      if (tensors) input = tensors.slice(start * per, (start + n) * per);
      else {
        input = new Float32Array(n * per);
        for (let i = 0; i < n; i++) {
          try {
            await imageToTensor(images![start + i], spec, {
              out: input,
              imageIndex: i,
              resizeQuality: request.resizeQuality,
            });
          } catch (error) {
            throw new EdgetlError(
              'image-decode',
              `training image ${start + i} could not be read: ${describeError(error)}`,
            );
          }
        }
      }
      activations.set(await cut.embedTensors(input, n), start * rowValues);
      done += n;
      report('activations at the cut');
      if (flip) {
        mirrorTensor(input, spec);
        activations.set(await cut.embedTensors(input, n), (count + start) * rowValues);
        done += n;
        report('activations at the cut (flipped views)');
      }
    }
  } finally {
    await cut.close();
  }
  aborted(options.signal);
  const imageIndex = Int32Array.from({ length: count * views }, (_, r) => r % count);
  const job: FineTuneActivations = {
    activations,
    pixels,
    channels: block.inputChannels,
    targets: Int32Array.from(imageIndex, (i) => targets[i]),
    groups: imageIndex,
    frozenJson: frozen.serialize(),
    block,
    settings: settings ?? {},
    dtype,
    activationSeconds: (performance.now() - started) / 1000,
  };
  if ((options.denseMath ?? 'onnxruntime-web') === 'onnxruntime-web') {
    const moduleUrl = options.onnxruntimeUrl ?? pageOnnxruntimeUrl();
    if (moduleUrl)
      job.math = { moduleUrl, wasmPaths: load.wasmPaths, numThreads: load.numThreads, models: gemmModels() };
  }
  return fineTuneActivationsInWorker(job, {
    ...options,
    transfer: true,
    onProgress: (p) => options.onProgress?.({ ...p, fraction: ACTIVATION_SHARE + (1 - ACTIVATION_SHARE) * p.fraction }),
  });
}

/**
 * The worker's half of fineTuneInWorker: cross-validated fine-tuning of the block and head on activations already
 * at the cut, and the keep-or-drop decision (the same code as Node's, on the plain-JS dense math). With `transfer`
 * the activations' buffer moves to the worker (and is unusable here afterwards) instead of being copied.
 */
export async function fineTuneActivationsInWorker(
  job: FineTuneActivations,
  options: WebFineTuneOptions & { transfer?: boolean },
): Promise<{ head: WebHead; report: FineTuneReport }> {
  const reply = await runInWorker(
    { kind: 'fine-tune', request: job },
    options,
    'fine-tuning',
    options.transfer ? [job.activations.buffer] : [],
  );
  if (!reply.report) throw new EdgetlError('worker', 'the training worker sent no fine-tuning report');
  return { head: parseWebHead(reply.json, 'the fine-tuned head'), report: reply.report };
}
