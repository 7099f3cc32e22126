/**
 * Fine-tuning the backbone's last block for Node: the cut backbone computes each training image's activations at
 * the last block's input once (through the embedding cache, so a second run skips inference; flipped views too),
 * they go to a memory-bounded store that spills to disk, and heads/last-block.ts trains block and head with
 * cross-validation deciding whether the result beats the frozen linear head. The returned head carries the adapted
 * block (run it with `Backbone.load(id, { surgery: adaptedSurgery(head.adaptedBlock) })`, which the Classifier and
 * the CLI do by themselves), or is the frozen head itself when fine-tuning did not help or is not supported.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Backbone, type BackboneLoadOptions } from './embed/backbone.js';
import { ActivationStore, type ActivationStoreStats } from './embed/activation-store.js';
import { flippedEmbeddings } from './embed/augment.js';
import {
  fineTuneLastBlock,
  type EpochScore,
  type FineTuneOptions,
  type FineTuneResult,
} from '../core/heads/last-block.js';
import { Head } from '../core/heads/head.js';
import { rejectionThreshold } from '../core/heads/calibration.js';
import { heldOutMetrics } from '../core/heads/metrics.js';
import { findLastBlock, type LastBlock } from '../core/models/last-block.js';
import { cutPixels, cutSurgery, adaptedSurgery } from '../core/models/last-block-graph.js';
import { parseOnnxModel } from '../core/models/onnx-model.js';
import { tensorDims } from '../core/preprocess/tensor.js';
import { fromFloat16Bits, toFloat16Bits } from '../core/formats/float16.js';
import type { WeightDType } from '../core/formats/head-file.js';
import { nodeDenseMath } from './train-head.js';
import { edgetlCacheDir } from './util/cache-dir.js';
import { EdgetlError, isEdgetlError } from '../core/util/errors.js';

export interface FineTuneHeadOptions extends Partial<Omit<FineTuneOptions, 'math' | 'l2' | 'groups' | 'onProgress'>> {
  /** The open frozen backbone the frozen head was trained on (its model, preprocessing and provider are reused). */
  backbone: Backbone;
  /** Options the cut backbone is opened with (provider, threads, cache folder...). */
  loadOptions?: BackboneLoadOptions;
  /** Training images and their labels (the rows the frozen head was trained on, without augmented views). */
  paths: readonly string[];
  labels: readonly string[];
  /** The frozen linear head trained on the same data: the fallback, and the source of the L2 strength. */
  frozen: Head;
  /** Add the horizontally flipped view of every image (grouped with its original in cross-validation). */
  flip?: boolean;
  /** In-memory budget for the cut activations (default 512 MiB); the rest spills to disk. */
  memoryBytes?: number;
  /** Where spilled activations go (default <cache>/activations). */
  spillDir?: string;
  /** Read and write cut activations through the embedding cache (default true). */
  useCache?: boolean;
  /** Storage type the head will be saved with: weights are rounded to it so the saved head predicts as evaluated. */
  dtype?: WeightDType;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface FineTuneReport {
  outcome: 'fine-tuned' | 'frozen';
  reason: string;
  /** The backbone's block that was trained (absent when unsupported). */
  block?: string;
  cutTensor?: string;
  rows: number;
  folds?: number;
  /** Mean out-of-fold accuracy and log loss per epoch; epoch 0 is the frozen block (linear probe). */
  epochs?: EpochScore[];
  chosenEpochs?: number;
  crossValidation?: {
    frozenAccuracy: number;
    fineTunedAccuracy: number;
    frozenLogLoss: number;
    fineTunedLogLoss: number;
  };
  activationSeconds: number;
  trainSeconds: number;
  memory?: ActivationStoreStats & { peakRssBytes: number };
  settings?: Record<string, number>;
}

function roundToFloat16(values: Float32Array): Float32Array {
  return Float32Array.from(values, (v) => fromFloat16Bits(toFloat16Bits(v)));
}

function l2Of(frozen: Head): number {
  const metrics = frozen.training.metrics as { crossValidation?: { chosenL2?: number } };
  if (typeof metrics.crossValidation?.chosenL2 === 'number') return metrics.crossValidation.chosenL2;
  const l2 = frozen.training.options.l2;
  if (typeof l2 === 'number') return l2;
  return 1e-2;
}

/** Peak resident set size over the run, sampled between steps. */
class PeakRss {
  peak = process.memoryUsage().rss;
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
}

function checkFineTuneInputs(options: FineTuneHeadOptions): void {
  const { backbone, frozen } = options;
  if (frozen.type !== 'linear')
    throw new EdgetlError(
      'usage',
      `fine-tuning the last block trains a linear head; the frozen head given is ${frozen.type}`,
    );
  if (frozen.backbone.sha256 !== backbone.sha256)
    throw new EdgetlError(
      'head-backbone-mismatch',
      `the frozen head was trained on ${frozen.backbone.id}, not on ${backbone.id}`,
    );
  if (options.paths.length !== options.labels.length)
    throw new EdgetlError('train-input', `${options.paths.length} images but ${options.labels.length} labels`);
}

/** The last block of the backbone's graph and the pixels per channel at its input; a reason when unsupported. */
async function locateLastBlock(
  backbone: Backbone,
): Promise<{ block: LastBlock; pixels: number } | { unsupported: string }> {
  const model = parseOnnxModel(await readFile(backbone.modelPath), backbone.modelPath);
  try {
    const block = findLastBlock(model);
    const input = backbone.facts.inputs[0]?.name ?? model.graph?.input?.[0]?.name ?? '';
    return { block, pixels: cutPixels(model, block, input, tensorDims(backbone.preprocess, 1)) };
  } catch (error) {
    if (isEdgetlError(error) && error.code === 'last-block-unsupported') return { unsupported: error.message };
    throw error;
  }
}

/**
 * Every training image's activations at the cut (then its flipped view, with `flip`) into `store`, in chunks, with
 * its class index and its group (the original image's position).
 */
async function collectActivations(
  options: FineTuneHeadOptions,
  cut: Backbone,
  store: ActivationStore,
  rss: PeakRss,
): Promise<{ targets: number[]; groups: number[] }> {
  const progress = options.onProgress;
  const classes = options.frozen.labels;
  const useCache = options.useCache !== false;
  const targets: number[] = [];
  const groups: number[] = [];
  const chunk = 64;
  const total = options.paths.length * (options.flip ? 2 : 1);
  let done = 0;
  for (let start = 0; start < options.paths.length; start += chunk) {
    const paths = options.paths.slice(start, start + chunk);
    const result = await cut.embedMany(paths, { strict: true, useCache });
    store.append(result.embeddings, result.items.length);
    result.items.forEach((item) => {
      targets.push(classes.indexOf(options.labels[start + item.index]));
      groups.push(start + item.index);
    });
    done += paths.length;
    rss.sample();
    progress?.('activations at the cut', done, total);
  }
  if (options.flip) {
    for (let start = 0; start < options.paths.length; start += chunk) {
      const paths = options.paths.slice(start, start + chunk);
      const flipped = await flippedEmbeddings(cut, paths, { useCache });
      flipped.ok.forEach((ok, i) => {
        if (!ok) return;
        store.append(flipped.embeddings.subarray(i * store.rowValues, (i + 1) * store.rowValues), 1);
        targets.push(classes.indexOf(options.labels[start + i]));
        groups.push(start + i);
      });
      done += paths.length;
      rss.sample();
      progress?.('activations at the cut (flipped views)', done, total);
    }
  }
  if (targets.some((t) => t < 0))
    throw new EdgetlError('label-mismatch', "a training label is not among the frozen head's classes");
  return { targets, groups };
}

/** The decision and its figures: out-of-fold scores per epoch, the one chosen, timings, memory, settings. */
function fineTuneReport(
  options: FineTuneHeadOptions,
  result: FineTuneResult,
  block: LastBlock,
  store: ActivationStore,
  seconds: { activation: number; train: number },
  peakRssBytes: number,
): FineTuneReport {
  const [frozenScore] = result.epochs;
  const chosen = result.epochs.find((e) => e.epoch === result.chosenEpochs) ?? frozenScore;
  const bestTried = result.epochs
    .slice(1)
    .reduce<EpochScore | undefined>((b, e) => (!b || e.accuracy > b.accuracy ? e : b), undefined);
  return {
    outcome: result.improved ? 'fine-tuned' : 'frozen',
    reason: result.improved
      ? `fine-tuning beat the frozen head out of fold: ${(100 * chosen.accuracy).toFixed(2)}% vs ${(100 * frozenScore.accuracy).toFixed(2)}% (${result.folds}-fold, ${result.chosenEpochs} epoch${result.chosenEpochs === 1 ? '' : 's'})`
      : `fine-tuning did not beat the frozen head out of fold (${(100 * (bestTried?.accuracy ?? frozenScore.accuracy)).toFixed(2)}% at best vs ${(100 * frozenScore.accuracy).toFixed(2)}%): the frozen head is kept`,
    block: block.description,
    cutTensor: block.cutTensor,
    rows: store.rows,
    folds: result.folds,
    epochs: result.epochs,
    chosenEpochs: result.chosenEpochs,
    crossValidation: {
      frozenAccuracy: frozenScore.accuracy,
      fineTunedAccuracy: (bestTried ?? frozenScore).accuracy,
      frozenLogLoss: frozenScore.logLoss,
      fineTunedLogLoss: (bestTried ?? frozenScore).logLoss,
    },
    activationSeconds: seconds.activation,
    trainSeconds: seconds.train,
    memory: { ...store.stats(), peakRssBytes },
    settings: {
      epochs: options.epochs ?? 8,
      patience: options.patience ?? 2,
      batchSize: options.batchSize ?? 32,
      blockLearningRate: result.learningRates.block,
      headLearningRate: result.learningRates.head,
      blockDecay: options.blockDecay ?? 1e-2,
      l2: l2Of(options.frozen),
    },
  };
}

/** The head that carries the adapted block: weights rounded to the storage type, calibration and rejection refitted. */
function adaptedHead(
  options: FineTuneHeadOptions,
  result: FineTuneResult,
  block: LastBlock,
  report: FineTuneReport,
  targets: number[],
): Head {
  const { frozen } = options;
  const classes = frozen.labels;
  const float16 = (options.dtype ?? 'float16') === 'float16';
  const weight = float16 ? roundToFloat16(result.head.weight) : result.head.weight;
  const blockWeight = float16 ? roundToFloat16(result.block.weight) : result.block.weight;
  const rejection = frozen.rejection
    ? {
        threshold: rejectionThreshold(
          result.outOfFoldLogits,
          targets.length,
          classes.length,
          result.temperature,
          frozen.rejection.rate,
        ),
        rate: frozen.rejection.rate,
      }
    : null;
  return new Head({
    labels: classes,
    backbone: frozen.backbone,
    weights: { type: 'linear', weight, bias: result.head.bias },
    normalization: { kind: 'standardize', mean: result.head.mean, std: result.head.std },
    temperature: result.temperature,
    rejection,
    training: {
      ...frozen.training,
      options: { ...frozen.training.options, fineTune: 'last-block', ...report.settings },
      metrics: {
        ...frozen.training.metrics,
        heldOut: {
          source: `${result.folds}-fold out-of-fold, fine-tuned block`,
          ...heldOutMetrics(result.outOfFoldLogits, targets, classes.length, result.temperature),
        },
        fineTune: report,
      },
    },
    adaptedBlock: {
      kind: 'conv1x1',
      cutTensor: block.cutTensor,
      inputChannels: block.inputChannels,
      outputChannels: block.outputChannels,
      activation: block.activation,
      pool: 'mean',
      replaces: block.description,
      weight: blockWeight,
      bias: result.block.bias,
    },
  });
}

/**
 * Fine-tune the last block of `options.backbone` with a linear head. Returns the adapted head when
 * cross-validation says it beats the frozen one, else the frozen head; either way with `training.metrics.fineTune`.
 */
export async function fineTuneHead(options: FineTuneHeadOptions): Promise<{ head: Head; report: FineTuneReport }> {
  const { backbone, frozen } = options;
  checkFineTuneInputs(options);
  const started = performance.now();
  const keepFrozen = (report: FineTuneReport): { head: Head; report: FineTuneReport } => {
    frozen.training = { ...frozen.training, metrics: { ...frozen.training.metrics, fineTune: report } };
    return { head: frozen, report };
  };

  const located = await locateLastBlock(backbone);
  if ('unsupported' in located)
    return keepFrozen({
      outcome: 'frozen',
      reason: `${backbone.id}: ${located.unsupported}; the frozen head is kept`,
      rows: options.paths.length,
      activationSeconds: 0,
      trainSeconds: (performance.now() - started) / 1000,
    });
  const { block, pixels } = located;

  const progress = options.onProgress;
  const rss = new PeakRss();
  const classes = frozen.labels;
  const store = new ActivationStore(options.paths.length * (options.flip ? 2 : 1), pixels, block.inputChannels, {
    memoryBytes: options.memoryBytes,
    spillDir: options.spillDir ?? join(options.loadOptions?.cacheDir ?? edgetlCacheDir(), 'activations'),
  });
  const cut = await Backbone.load(backbone.modelPath, { ...options.loadOptions, surgery: cutSurgery(pixels) });
  try {
    const { targets, groups } = await collectActivations(options, cut, store, rss);
    const activationSeconds = (performance.now() - started) / 1000;
    const trainStarted = performance.now();
    const result = await fineTuneLastBlock(
      store,
      Int32Array.from(targets),
      classes.length,
      {
        weight: block.weight,
        bias: block.bias,
        inputs: block.inputChannels,
        outputs: block.outputChannels,
        activation: block.activation,
      },
      {
        ...options,
        math: await nodeDenseMath(),
        l2: l2Of(frozen),
        groups,
        onProgress: (stage, d, t) => {
          rss.sample();
          progress?.(stage, d, t);
        },
      },
    );
    rss.sample();
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    const seconds = { activation: activationSeconds, train: trainSeconds };
    const report = fineTuneReport(options, result, block, store, seconds, rss.peak);
    if (!result.improved) return keepFrozen(report);
    return { head: adaptedHead(options, result, block, report, targets), report };
  } finally {
    store.close();
    await cut.close();
  }
}

/** Backbone load options that run a head's adapted block (none for a head without one). */
export function adaptedBackboneOptions(head: Head): Pick<BackboneLoadOptions, 'surgery'> {
  return head.adaptedBlock ? { surgery: adaptedSurgery(head.adaptedBlock) } : {};
}
