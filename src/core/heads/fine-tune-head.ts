/**
 * From a last-block fine-tuning run (heads/last-block.ts) to the head a user gets, the same in Node
 * (src/node/fine-tune.ts) and in the browser worker (src/web/worker.ts): the checks on the frozen head, the L2
 * strength it carries, the report (cross-validation scores, the keep-or-drop reason), and either the adapted head
 * (weights rounded to their storage type, rejection threshold from the out-of-fold logits) or the frozen head with
 * the report attached. Runtime-neutral.
 */
import type { HeadBackboneRef, WeightDType } from '../formats/head-file.js';
import { fromFloat16Bits, toFloat16Bits } from '../formats/float16.js';
import type { LastBlock } from '../models/last-block.js';
import { EdgetlError } from '../util/errors.js';
import { rejectionThreshold } from './calibration.js';
import { Head } from './head.js';
import type { DenseMath } from './dense-math.js';
import {
  fineTuneLastBlock,
  type ActivationRows,
  type EpochScore,
  type FineTuneOptions,
  type FineTuneResult,
} from './last-block.js';
import { heldOutMetrics } from './metrics.js';

/** Where the cut activations lived while training (Node: memory and the spill file; browser: memory only). */
export interface FineTuneMemory {
  rows: number;
  rowBytes: number;
  memoryBytes: number;
  spilledBytes: number;
  spillFile: string | null;
  /** Node: the process's peak resident set while fine-tuning. */
  peakRssBytes?: number;
}

export interface FineTuneReport<Memory extends FineTuneMemory = FineTuneMemory> {
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
  memory?: Memory;
  settings?: Record<string, number>;
  /** Which DenseMath ran the block's products (and why, when it is not the one asked for). */
  denseMath?: string;
}

/** The training settings a caller may choose (the rest of FineTuneOptions comes from the frozen head and the data). */
export type FineTuneSettings = Partial<Omit<FineTuneOptions, 'math' | 'l2' | 'groups' | 'onProgress'>>;

/** Refuses a frozen head fine-tuning cannot start from, naming why. */
export function assertFineTunable(
  frozen: Head,
  backbone: Pick<HeadBackboneRef, 'id' | 'sha256'>,
  images: number,
  labels: number,
): void {
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
  if (images !== labels) throw new EdgetlError('train-input', `${images} images but ${labels} labels`);
}

/** The L2 strength of the frozen head's sweep (what fine-tuning's head starts from). */
export function fineTuneL2(frozen: Head): number {
  const metrics = frozen.training.metrics as { crossValidation?: { chosenL2?: number } };
  if (typeof metrics.crossValidation?.chosenL2 === 'number') return metrics.crossValidation.chosenL2;
  const l2 = frozen.training.options.l2;
  if (typeof l2 === 'number') return l2;
  return 1e-2;
}

/** The frozen head, with the report saying why it is kept. */
export function keepFrozenHead<R extends FineTuneReport>(frozen: Head, report: R): { head: Head; report: R } {
  frozen.training = { ...frozen.training, metrics: { ...frozen.training.metrics, fineTune: report } };
  return { head: frozen, report };
}

function roundToFloat16(values: Float32Array): Float32Array {
  return Float32Array.from(values, (v) => fromFloat16Bits(toFloat16Bits(v)));
}

export interface FineTuneOutcomeInput<Memory extends FineTuneMemory> {
  frozen: Head;
  block: Pick<LastBlock, 'description' | 'cutTensor' | 'inputChannels' | 'outputChannels' | 'activation'>;
  result: FineTuneResult;
  /** Class index per activation row (the rows fineTuneLastBlock trained on). */
  targets: ArrayLike<number>;
  rows: number;
  settings: FineTuneSettings;
  /** Storage type the head will be saved with (default auto, float16 for a linear head): weights are rounded to it. */
  dtype?: WeightDType | 'auto';
  activationSeconds: number;
  trainSeconds: number;
  memory?: Memory;
}

/**
 * The report of a finished run and the head to keep: the adapted head when cross-validation said fine-tuning beat
 * the frozen head, else the frozen head itself; either way with `training.metrics.fineTune`.
 */
export function fineTuneOutcome<Memory extends FineTuneMemory = FineTuneMemory>(
  input: FineTuneOutcomeInput<Memory>,
): { head: Head; report: FineTuneReport<Memory> } {
  const { frozen, block, result, settings } = input;
  const classes = frozen.labels;
  const l2 = fineTuneL2(frozen);
  const [frozenScore] = result.epochs;
  const chosen = result.epochs.find((e) => e.epoch === result.chosenEpochs) ?? frozenScore;
  const bestTried = result.epochs
    .slice(1)
    .reduce<EpochScore | undefined>((b, e) => (!b || e.accuracy > b.accuracy ? e : b), undefined);
  const report: FineTuneReport<Memory> = {
    outcome: result.improved ? 'fine-tuned' : 'frozen',
    reason: result.improved
      ? `fine-tuning beat the frozen head out of fold: ${(100 * chosen.accuracy).toFixed(2)}% vs ${(100 * frozenScore.accuracy).toFixed(2)}% (${result.folds}-fold, ${result.chosenEpochs} epoch${result.chosenEpochs === 1 ? '' : 's'})`
      : `fine-tuning did not beat the frozen head out of fold (${(100 * (bestTried?.accuracy ?? frozenScore.accuracy)).toFixed(2)}% at best vs ${(100 * frozenScore.accuracy).toFixed(2)}%): the frozen head is kept`,
    block: block.description,
    cutTensor: block.cutTensor,
    rows: input.rows,
    folds: result.folds,
    epochs: result.epochs,
    chosenEpochs: result.chosenEpochs,
    crossValidation: {
      frozenAccuracy: frozenScore.accuracy,
      fineTunedAccuracy: (bestTried ?? frozenScore).accuracy,
      frozenLogLoss: frozenScore.logLoss,
      fineTunedLogLoss: (bestTried ?? frozenScore).logLoss,
    },
    activationSeconds: input.activationSeconds,
    trainSeconds: input.trainSeconds,
    ...(input.memory ? { memory: input.memory } : {}),
    settings: {
      epochs: settings.epochs ?? 8,
      patience: settings.patience ?? 2,
      batchSize: settings.batchSize ?? 32,
      blockLearningRate: result.learningRates.block,
      headLearningRate: result.learningRates.head,
      blockDecay: settings.blockDecay ?? 1e-2,
      l2,
    },
  };
  if (!result.improved) return keepFrozenHead(frozen, report);
  // a fine-tuned head is linear: `auto` stores its matrices as float16
  const dtype = input.dtype ?? 'auto';
  const float16 = dtype === 'float16' || dtype === 'auto';
  const weight = float16 ? roundToFloat16(result.head.weight) : result.head.weight;
  const blockWeight = float16 ? roundToFloat16(result.block.weight) : result.block.weight;
  const targets = Array.from(input.targets);
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
  const head = new Head({
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
  return { head, report };
}

/** Cut activations held in one array (the browser's store; Node's ActivationStore spills to disk instead). */
export class MemoryActivationRows implements ActivationRows {
  readonly rows: number;
  constructor(
    readonly values: Float32Array,
    readonly pixels: number,
    readonly channels: number,
  ) {
    const rowValues = pixels * channels;
    if (rowValues <= 0 || values.length % rowValues !== 0)
      throw new EdgetlError(
        'train-input',
        `${values.length} activation values are not whole rows of ${pixels} pixels x ${channels} channels`,
      );
    this.rows = values.length / rowValues;
  }
  async read(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    const rowValues = this.pixels * this.channels;
    for (let i = 0; i < indices.length; i++) {
      const row = indices[i];
      if (row < 0 || row >= this.rows) throw new EdgetlError('train-input', `activation row ${row} out of range`);
      out.set(this.values.subarray(row * rowValues, (row + 1) * rowValues), i * rowValues);
    }
  }
  stats(): FineTuneMemory {
    return {
      rows: this.rows,
      rowBytes: this.pixels * this.channels * 4,
      memoryBytes: this.values.byteLength,
      spilledBytes: 0,
      spillFile: null,
    };
  }
}

export interface FineTuneFromActivationsInput<Memory extends FineTuneMemory> {
  store: ActivationRows;
  /** Class index (into frozen.labels) per row of `store`. */
  targets: ArrayLike<number>;
  /** Rows sharing a group (an image and its flipped view) stay in one cross-validation fold. */
  groups?: ArrayLike<number>;
  frozen: Head;
  /** The backbone's pretrained last block (models/last-block.ts). */
  block: Pick<
    LastBlock,
    'description' | 'cutTensor' | 'inputChannels' | 'outputChannels' | 'activation' | 'weight' | 'bias'
  >;
  settings: FineTuneSettings;
  math: DenseMath;
  /** Why `math` is not the DenseMath asked for, for the report. */
  denseMathNote?: string;
  dtype?: WeightDType | 'auto';
  /** Seconds spent computing the activations, for the report. */
  activationSeconds: number;
  /** Called after training, for the report (Node samples its resident set here). */
  memory?: () => Memory;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/**
 * Cross-validated fine-tuning of the last block from activations at the cut, then the keep-or-drop decision:
 * what Node (on onnxruntime's dense math, activations spilled to disk) and the browser worker (plain-JS math,
 * activations in memory) both run, so the same rows, seed and frozen head give the same decision.
 */
export async function fineTuneFromActivations<Memory extends FineTuneMemory = FineTuneMemory>(
  input: FineTuneFromActivationsInput<Memory>,
): Promise<{ head: Head; report: FineTuneReport<Memory> }> {
  const { frozen, block, store } = input;
  const targets = Int32Array.from(input.targets);
  if (targets.some((t) => t < 0 || t >= frozen.labels.length))
    throw new EdgetlError('label-mismatch', "a training label is not among the frozen head's classes");
  const started = performance.now();
  const result = await fineTuneLastBlock(
    store,
    targets,
    frozen.labels.length,
    {
      weight: block.weight,
      bias: block.bias,
      inputs: block.inputChannels,
      outputs: block.outputChannels,
      activation: block.activation,
    },
    {
      ...input.settings,
      math: input.math,
      l2: fineTuneL2(frozen),
      groups: input.groups,
      onProgress: input.onProgress,
    },
  );
  const trainSeconds = (performance.now() - started) / 1000;
  const outcome = fineTuneOutcome({
    frozen,
    block,
    result,
    targets,
    rows: store.rows,
    settings: input.settings,
    dtype: input.dtype,
    activationSeconds: input.activationSeconds,
    trainSeconds,
    memory: input.memory?.(),
  });
  outcome.report.denseMath = input.denseMathNote ? `${input.math.name} (${input.denseMathNote})` : input.math.name;
  return outcome;
}
