/**
 * Fine-tuning the backbone's last block (a 1x1 convolution, its activation and the global average pool) jointly
 * with a linear head, from activations cached at the cut. Runtime-neutral: the big products (pixels x channels by
 * channels x outputs, forward and for the weight gradient) go through DenseMath, which Node backs with onnxruntime;
 * the elementwise parts (activation, pool, their derivatives) and AdamW are plain TypeScript.
 *
 * Protocol ("linear probe, then fine-tune", Kumar et al. 2022, which keeps the pretrained features from being
 * distorted by a random head): per cross-validation fold, fit the linear head on the pretrained block's pooled
 * features (L-BFGS, the L2 strength the frozen head's sweep chose), then train block and head together with AdamW
 * (decoupled decay towards the pretrained weights), linear warm-up and cosine decay. The held-out fold scores every
 * epoch; the epoch count with the best mean out-of-fold accuracy is early stopping's choice, and epoch 0 (the
 * linear probe alone, i.e. the frozen head) is the baseline on the very same folds. Fine-tuning is kept only when
 * it beats that baseline out of fold; the final model is then trained on all rows for the chosen epoch count.
 */
import type { BlockActivation } from '../models/last-block.js';
import { EdgetlError } from '../util/errors.js';
import { stratifiedFolds } from './data.js';
import type { DenseMath } from './dense-math.js';
import { fitSoftmaxRegression, refitL2 } from './linear.js';
import { accuracy, logLoss } from './metrics.js';
import { applyNormalization, fitNormalization } from './normalization.js';
import { Random } from './random.js';
import { crossEntropyWithGradient } from './softmax.js';
import { fitTemperature } from './calibration.js';

/** Activations at the cut: one row per example, `pixels` x `channels` values, each pixel's channels contiguous. */
export interface ActivationRows {
  readonly rows: number;
  readonly pixels: number;
  readonly channels: number;
  /** Copy the given rows, in that order, into `out` (length indices.length * pixels * channels). */
  read(indices: ArrayLike<number>, out: Float32Array): Promise<void>;
}

export interface BlockWeights {
  /** [outputs, inputs] */
  weight: Float32Array;
  bias: Float32Array;
  inputs: number;
  outputs: number;
  activation: BlockActivation;
}

export interface StandardizedLinearHead {
  mean: Float32Array;
  std: Float32Array;
  /** [classes, outputs] */
  weight: Float32Array;
  bias: Float32Array;
}

function activate(z: number, activation: BlockActivation): number {
  if (activation.kind === 'clip') return z < activation.min ? activation.min : Math.min(z, activation.max);
  return z / (1 + Math.exp(-z));
}

function activationDerivative(z: number, activation: BlockActivation): number {
  if (activation.kind === 'clip') return z > activation.min && z < activation.max ? 1 : 0;
  const s = 1 / (1 + Math.exp(-z));
  return s * (1 + z * (1 - s));
}

/**
 * Block forward on `rows` examples x [rows * pixels, inputs]: pooled [rows, outputs] = mean over pixels of
 * act(x . W^T + b). With `keep`, also returns the pre-activations z [rows * pixels, outputs] for the backward pass.
 */
export async function blockForward(
  block: BlockWeights,
  x: Float32Array,
  rows: number,
  pixels: number,
  math: DenseMath,
  keep = false,
): Promise<{ pooled: Float32Array; z?: Float32Array }> {
  const { outputs, inputs, bias, activation } = block;
  const z = await math.gemm(x, block.weight, rows * pixels, inputs, outputs, false, true);
  const pooled = new Float32Array(rows * outputs);
  const scale = 1 / pixels;
  for (let r = 0; r < rows; r++) {
    const target = r * outputs;
    for (let p = 0; p < pixels; p++) {
      const o = (r * pixels + p) * outputs;
      for (let c = 0; c < outputs; c++) {
        const value = z[o + c] + bias[c];
        z[o + c] = value;
        pooled[target + c] += activate(value, activation) * scale;
      }
    }
  }
  return keep ? { pooled, z } : { pooled };
}

/** Logits [rows, classes] of pooled features through a standardizing linear head. */
export function headLogits(
  head: StandardizedLinearHead,
  pooled: Float32Array,
  rows: number,
  outputs: number,
  classes: number,
): { logits: Float32Array; normalized: Float32Array } {
  const normalized = new Float32Array(rows * outputs);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < outputs; c++)
      normalized[r * outputs + c] = (pooled[r * outputs + c] - head.mean[c]) / head.std[c];
  const logits = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < classes; k++) {
      let s = head.bias[k];
      const w = k * outputs;
      const x = r * outputs;
      for (let c = 0; c < outputs; c++) s += normalized[x + c] * head.weight[w + c];
      logits[r * classes + k] = s;
    }
  }
  return { logits, normalized };
}

export interface BlockGradients {
  loss: number;
  block: { weight: Float32Array; bias: Float32Array };
  head: { weight: Float32Array; bias: Float32Array };
}

/**
 * Mean cross-entropy (+ l2/2 ||head weight||^2) of a batch and its gradients with respect to the block's weight and
 * bias and the head's weight and bias (the standardization statistics are fixed). The backward pass of
 * pool -> activation -> 1x1 conv: dz = act'(z) * dpooled / pixels, dW = dz^T . x, db = sum of dz.
 */
export async function blockLossAndGradients(
  block: BlockWeights,
  head: StandardizedLinearHead,
  x: Float32Array,
  targets: Int32Array,
  rows: number,
  pixels: number,
  classes: number,
  l2: number,
  math: DenseMath,
): Promise<BlockGradients> {
  const { outputs, inputs } = block;
  const { pooled, z } = await blockForward(block, x, rows, pixels, math, true);
  const { logits, normalized } = headLogits(head, pooled, rows, outputs, classes);
  const dLogits = new Float32Array(rows * classes);
  let loss = crossEntropyWithGradient(logits, targets, undefined, rows, classes, dLogits);
  const headWeight = new Float32Array(classes * outputs);
  const headBias = new Float32Array(classes);
  for (let k = 0; k < classes * outputs; k++) {
    headWeight[k] = l2 * head.weight[k];
    loss += 0.5 * l2 * head.weight[k] * head.weight[k];
  }
  const dPooled = new Float32Array(rows * outputs);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < classes; k++) {
      const g = dLogits[r * classes + k];
      if (g === 0) continue;
      headBias[k] += g;
      const w = k * outputs;
      const o = r * outputs;
      for (let c = 0; c < outputs; c++) {
        headWeight[w + c] += g * normalized[o + c];
        dPooled[o + c] += g * head.weight[w + c];
      }
    }
  }
  for (let r = 0; r < rows; r++) for (let c = 0; c < outputs; c++) dPooled[r * outputs + c] /= head.std[c] * pixels;
  // z becomes dz in place
  const dz = z!;
  const blockBias = new Float32Array(outputs);
  for (let r = 0; r < rows; r++) {
    const g = r * outputs;
    for (let p = 0; p < pixels; p++) {
      const o = (r * pixels + p) * outputs;
      for (let c = 0; c < outputs; c++) {
        const d = activationDerivative(dz[o + c], block.activation) * dPooled[g + c];
        dz[o + c] = d;
        blockBias[c] += d;
      }
    }
  }
  const blockWeight = await math.gemm(dz, x, outputs, rows * pixels, inputs, true, false);
  return { loss, block: { weight: blockWeight, bias: blockBias }, head: { weight: headWeight, bias: headBias } };
}

/** Adam moments for one parameter array, with decoupled decay towards an anchor (the pretrained value) or zero. */
class AdamW {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  constructor(
    private readonly values: Float32Array,
    private readonly anchor: Float32Array | undefined,
  ) {
    this.m = new Float32Array(values.length);
    this.v = new Float32Array(values.length);
  }
  step(gradient: Float32Array, lr: number, decay: number, step: number): void {
    const beta1 = 0.9;
    const beta2 = 0.999;
    const c1 = 1 - beta1 ** step;
    const c2 = 1 - beta2 ** step;
    const { m, v, values, anchor } = this;
    for (let i = 0; i < values.length; i++) {
      const g = gradient[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      values[i] -=
        (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8) + lr * decay * (values[i] - (anchor ? anchor[i] : 0));
    }
  }
}

export interface FineTuneOptions {
  math: DenseMath;
  seed?: number;
  /** Cross-validation folds (default 3). */
  folds?: number;
  /** Upper bound on epochs (default 8); early stopping usually ends sooner. */
  epochs?: number;
  /** Epochs without a better mean out-of-fold accuracy before stopping (default 2). */
  patience?: number;
  /** Examples per step (default 32). */
  batchSize?: number;
  /**
   * Peak AdamW learning rate of the block. Default: `blockRelativeLearningRate` times the root mean square of the
   * pretrained weights, since Adam's steps have about the learning rate's size whatever the gradient's scale, and
   * blocks differ (MobileNetV2-int8's 1x1 conv weights have an RMS of 0.33, EfficientNet-B0's folded ones 0.046).
   */
  blockLearningRate?: number;
  /** Default 1e-2: each step moves a weight by about 1% of the typical weight size at the peak of the schedule. */
  blockRelativeLearningRate?: number;
  /** Peak AdamW learning rate of the head (default 3e-4). */
  headLearningRate?: number;
  /** Decoupled decay of the block towards its pretrained weights (default 1e-2). */
  blockDecay?: number;
  /** L2 strength of the head on the mean loss, as the frozen linear head's sweep chose it for a fold. */
  l2: number;
  /** Rows sharing a group (an image and its flipped view) stay in one fold. */
  groups?: ArrayLike<number>;
  /** Rows per forward pass when only features are needed (default 64). */
  evalBatch?: number;
  /** Return the fine-tuned model even when it does not beat the frozen head out of fold (tests, experiments). */
  keepFineTuned?: boolean;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface EpochScore {
  epoch: number;
  accuracy: number;
  logLoss: number;
}

export interface FineTuneResult {
  /** True when fine-tuning beat the linear probe (the frozen head) out of fold. */
  improved: boolean;
  /** Mean out-of-fold scores per epoch; epoch 0 is the linear probe alone (frozen block). */
  epochs: EpochScore[];
  chosenEpochs: number;
  block: BlockWeights;
  head: StandardizedLinearHead;
  /** Temperature fitted on the out-of-fold logits at the chosen epoch. */
  temperature: number;
  /** Out-of-fold logits at the chosen epoch (or epoch 0 when not improved), for calibration and rejection. */
  outOfFoldLogits: Float32Array;
  folds: number;
  steps: number;
  /** The learning rates used (the block's after scaling by its weights' size). */
  learningRates: { block: number; head: number };
}

export function rootMeanSquare(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum / Math.max(1, values.length));
}

function copyBlock(block: BlockWeights): BlockWeights {
  return { ...block, weight: Float32Array.from(block.weight), bias: Float32Array.from(block.bias) };
}

/** Pooled features of the given rows (all rows by default) through `block`, batch by batch. */
export async function pooledFeatures(
  store: ActivationRows,
  block: BlockWeights,
  math: DenseMath,
  rows?: ArrayLike<number>,
  batch = 64,
  onBatch?: (done: number, total: number) => void,
): Promise<Float32Array> {
  const indices = rows ?? Int32Array.from({ length: store.rows }, (_, i) => i);
  const count = indices.length;
  const out = new Float32Array(count * block.outputs);
  const buffer = new Float32Array(Math.min(batch, count) * store.pixels * store.channels);
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const slice = Array.from({ length: n }, (_, i) => indices[start + i]);
    const x = buffer.subarray(0, n * store.pixels * store.channels);
    await store.read(slice, x);
    const { pooled } = await blockForward(block, x, n, store.pixels, math);
    out.set(pooled, start * block.outputs);
    onBatch?.(start + n, count);
  }
  return out;
}

interface Run {
  train: Int32Array;
  heldOut: Int32Array;
  block: BlockWeights;
  head: StandardizedLinearHead;
  optimizers: AdamW[];
  random: Random;
  step: number;
  totalSteps: number;
  warmupSteps: number;
}

async function linearProbe(
  pooled: Float32Array,
  outputs: number,
  rows: Int32Array,
  targets: Int32Array,
  classes: number,
  l2: number,
  math: DenseMath,
): Promise<StandardizedLinearHead> {
  const data = new Float32Array(rows.length * outputs);
  rows.forEach((row, i) => data.set(pooled.subarray(row * outputs, (row + 1) * outputs), i * outputs));
  const normalization = fitNormalization('standardize', data, rows.length, outputs) as {
    kind: 'standardize';
    mean: Float32Array;
    std: Float32Array;
  };
  const matrix = {
    data: applyNormalization(normalization, data, rows.length, outputs),
    rows: rows.length,
    dim: outputs,
    targets: Int32Array.from(rows, (r) => targets[r]),
    classCount: classes,
  };
  const fit = await fitSoftmaxRegression(matrix, { l2, math, maxIterations: 300 });
  return { mean: normalization.mean, std: normalization.std, weight: fit.weight, bias: fit.bias };
}

function startRun(
  pretrained: BlockWeights,
  head: StandardizedLinearHead,
  train: Int32Array,
  heldOut: Int32Array,
  seed: number,
  epochs: number,
  batch: number,
): Run {
  const block = copyBlock(pretrained);
  const steps = epochs * Math.ceil(train.length / batch);
  return {
    train,
    heldOut,
    block,
    head,
    optimizers: [
      new AdamW(block.weight, pretrained.weight),
      new AdamW(block.bias, pretrained.bias),
      new AdamW(head.weight, undefined),
      new AdamW(head.bias, undefined),
    ],
    random: new Random(seed),
    step: 0,
    totalSteps: steps,
    warmupSteps: Math.max(1, Math.round(0.1 * steps)),
  };
}

async function trainEpoch(
  run: Run,
  store: ActivationRows,
  targets: Int32Array,
  classes: number,
  options: FineTuneSettings,
  math: DenseMath,
  onStep?: () => void,
): Promise<number> {
  const order = Int32Array.from(run.train);
  run.random.shuffle(order);
  const { pixels, channels } = store;
  const buffer = new Float32Array(options.batchSize * pixels * channels);
  let lossSum = 0;
  let batches = 0;
  for (let start = 0; start < order.length; start += options.batchSize) {
    const n = Math.min(options.batchSize, order.length - start);
    const rows = order.subarray(start, start + n);
    const x = buffer.subarray(0, n * pixels * channels);
    await store.read(rows, x);
    const batchTargets = Int32Array.from(rows, (r) => targets[r]);
    const grads = await blockLossAndGradients(
      run.block,
      run.head,
      x,
      batchTargets,
      n,
      pixels,
      classes,
      options.l2,
      math,
    );
    run.step++;
    const t = run.step;
    const schedule =
      t <= run.warmupSteps
        ? t / run.warmupSteps
        : 0.5 * (1 + Math.cos((Math.PI * (t - run.warmupSteps)) / Math.max(1, run.totalSteps - run.warmupSteps)));
    const [w, b, hw, hb] = run.optimizers;
    w.step(grads.block.weight, options.blockLearningRate * schedule, options.blockDecay, t);
    b.step(grads.block.bias, options.blockLearningRate * schedule, options.blockDecay, t);
    hw.step(grads.head.weight, options.headLearningRate * schedule, 0, t);
    hb.step(grads.head.bias, options.headLearningRate * schedule, 0, t);
    lossSum += grads.loss;
    batches++;
    onStep?.();
  }
  return lossSum / Math.max(1, batches);
}

async function heldOutLogits(
  run: Run,
  store: ActivationRows,
  classes: number,
  math: DenseMath,
  batch: number,
): Promise<Float32Array> {
  const pooled = await pooledFeatures(store, run.block, math, run.heldOut, batch);
  return headLogits(run.head, pooled, run.heldOut.length, run.block.outputs, classes).logits;
}

type FineTuneSettings = Required<
  Pick<FineTuneOptions, 'batchSize' | 'blockLearningRate' | 'headLearningRate' | 'blockDecay' | 'l2'>
>;

function fineTuneSettings(options: FineTuneOptions, pretrained: BlockWeights): FineTuneSettings {
  return {
    batchSize: options.batchSize ?? 32,
    blockLearningRate:
      options.blockLearningRate ?? (options.blockRelativeLearningRate ?? 1e-2) * rootMeanSquare(pretrained.weight),
    headLearningRate: options.headLearningRate ?? 3e-4,
    blockDecay: options.blockDecay ?? 1e-2,
    l2: options.l2,
  };
}

/**
 * Progress in steps: the cross-validation epochs, then a final fit as long as the best epoch so far (all epochs
 * while none is chosen).
 */
class StepProgress {
  done = 0;
  bestEpoch: number | undefined;

  constructor(
    private readonly epochs: number,
    private readonly stepsPerEpoch: number,
    private readonly finalStepsPerEpoch: number,
    private readonly onProgress: FineTuneOptions['onProgress'],
  ) {}

  total(): number {
    return this.epochs * this.stepsPerEpoch + (this.bestEpoch ?? this.epochs) * this.finalStepsPerEpoch;
  }

  step(stage: string): void {
    this.onProgress?.(stage, ++this.done, this.total());
  }
}

/** One run per fold, each starting from a linear probe on the pretrained block's features of its training rows. */
async function foldRuns(
  pooled0: Float32Array,
  pretrained: BlockWeights,
  targets: Int32Array,
  classes: number,
  options: FineTuneOptions,
  settings: FineTuneSettings,
): Promise<Run[]> {
  const seed = options.seed ?? 0;
  const rows = targets.length;
  const foldList = stratifiedFolds(targets, classes, options.folds ?? 3, seed, options.groups);
  const all = Int32Array.from({ length: rows }, (_, i) => i);
  return Promise.all(
    foldList.map(async (fold, f) => {
      const inFold = new Uint8Array(rows);
      for (const i of fold) inFold[i] = 1;
      const train = all.filter((i) => !inFold[i]);
      const heldOut = Int32Array.from(fold);
      const head = await linearProbe(pooled0, pretrained.outputs, train, targets, classes, options.l2, options.math);
      return startRun(pretrained, head, train, heldOut, seed + 1 + f, options.epochs ?? 8, settings.batchSize);
    }),
  );
}

/** Every fold's held-out logits, and their accuracy and log loss over all held-out rows. */
async function scoreRuns(
  runs: Run[],
  heldOutTargets: Int32Array[],
  store: ActivationRows,
  classes: number,
  math: DenseMath,
  evalBatch: number,
  epoch: number,
): Promise<{ score: EpochScore; logits: Float32Array[] }> {
  const logits = await Promise.all(runs.map((run) => heldOutLogits(run, store, classes, math, evalBatch)));
  let correct = 0;
  let loss = 0;
  let count = 0;
  logits.forEach((l, f) => {
    const n = runs[f].heldOut.length;
    correct += accuracy(l, heldOutTargets[f], classes) * n;
    loss += logLoss(l, heldOutTargets[f], classes) * n;
    count += n;
  });
  return { score: { epoch, accuracy: correct / count, logLoss: loss / count }, logits };
}

/** The folds' held-out logits put back in row order: [rows, classes]. */
function outOfFold(runs: Run[], perFold: Float32Array[], rows: number, classes: number): Float32Array {
  const out = new Float32Array(rows * classes);
  runs.forEach((run, f) =>
    run.heldOut.forEach((row, r) => out.set(perFold[f].subarray(r * classes, (r + 1) * classes), row * classes)),
  );
  return out;
}

/**
 * The cross-validated epochs: every fold trains an epoch, then all are scored; the best epoch (accuracy, then log
 * loss) is kept, and `patience` epochs without a better one stop early. Scores[0] is the frozen block.
 */
async function crossValidatedEpochs(
  runs: Run[],
  store: ActivationRows,
  targets: Int32Array,
  classes: number,
  options: FineTuneOptions,
  settings: FineTuneSettings,
  progress: StepProgress,
): Promise<{ scores: EpochScore[]; frozenLogits: Float32Array; best?: { score: EpochScore; logits: Float32Array } }> {
  const { math } = options;
  const epochs = options.epochs ?? 8;
  const patience = options.patience ?? 2;
  const evalBatch = options.evalBatch ?? 64;
  const heldOutTargets = runs.map((run) => Int32Array.from(run.heldOut, (r) => targets[r]));
  const score = (epoch: number) => scoreRuns(runs, heldOutTargets, store, classes, math, evalBatch, epoch);
  const scores: EpochScore[] = [];
  const first = await score(0);
  scores.push(first.score);
  const frozenLogits = outOfFold(runs, first.logits, store.rows, classes);
  let best: { score: EpochScore; logits: Float32Array } | undefined;
  let sinceBest = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    await Promise.all(
      runs.map((run) =>
        trainEpoch(run, store, targets, classes, settings, math, () => progress.step('fine-tuning (cross-validation)')),
      ),
    );
    const scored = await score(epoch);
    scores.push(scored.score);
    const better =
      !best ||
      scored.score.accuracy > best.score.accuracy + 1e-9 ||
      (Math.abs(scored.score.accuracy - best.score.accuracy) <= 1e-9 && scored.score.logLoss < best.score.logLoss);
    if (better) {
      best = { score: scored.score, logits: outOfFold(runs, scored.logits, store.rows, classes) };
      progress.bestEpoch = best.score.epoch;
      sinceBest = 0;
    } else if (++sinceBest >= patience) {
      break;
    }
  }
  return { scores, frozenLogits, best };
}

/**
 * Cross-validated fine-tuning of the last block (see the file comment). `targets` and `groups` are per row of
 * `store`; folds are the ones the frozen linear head's sweep uses for the same targets, groups and seed.
 */
export async function fineTuneLastBlock(
  store: ActivationRows,
  targets: Int32Array,
  classes: number,
  pretrained: BlockWeights,
  options: FineTuneOptions,
): Promise<FineTuneResult> {
  const { math } = options;
  const seed = options.seed ?? 0;
  const epochs = options.epochs ?? 8;
  const settings = fineTuneSettings(options, pretrained);
  const evalBatch = options.evalBatch ?? 64;
  if (store.rows !== targets.length)
    throw new EdgetlError('train-input', `${store.rows} activation rows but ${targets.length} targets`);
  if (store.channels !== pretrained.inputs)
    throw new EdgetlError(
      'train-input',
      `activations have ${store.channels} channels but the block reads ${pretrained.inputs}`,
    );
  const onProgress = options.onProgress;
  const outputs = pretrained.outputs;

  onProgress?.('pretrained features', 0, store.rows);
  const pooled0 = await pooledFeatures(store, pretrained, math, undefined, evalBatch, (d, t) =>
    onProgress?.('pretrained features', d, t),
  );
  const runs = await foldRuns(pooled0, pretrained, targets, classes, options, settings);
  const stepsPerEpoch = runs.reduce((s, run) => s + Math.ceil(run.train.length / settings.batchSize), 0);
  const progress = new StepProgress(epochs, stepsPerEpoch, Math.ceil(store.rows / settings.batchSize), onProgress);
  const { scores, frozenLogits, best } = await crossValidatedEpochs(
    runs,
    store,
    targets,
    classes,
    options,
    settings,
    progress,
  );
  const frozen = scores[0];
  const improved =
    best !== undefined && (best.score.accuracy > frozen.accuracy + 1e-9 || options.keepFineTuned === true);
  progress.done = epochs * stepsPerEpoch;

  // final model on every row: the linear probe, then (if it helped out of fold) the chosen number of epochs
  const all = Int32Array.from({ length: store.rows }, (_, i) => i);
  const finalL2 = refitL2(options.l2, runs.length);
  const head = await linearProbe(pooled0, outputs, all, targets, classes, finalL2, math);
  const chosenEpochs = improved ? best!.score.epoch : 0;
  const final = startRun(pretrained, head, all, new Int32Array(0), seed, epochs, settings.batchSize);
  for (let epoch = 1; epoch <= chosenEpochs; epoch++) {
    await trainEpoch(final, store, targets, classes, { ...settings, l2: finalL2 }, math, () =>
      progress.step('fine-tuning (final fit)'),
    );
  }
  const outOfFoldLogits = improved ? best!.logits : frozenLogits;
  return {
    improved,
    epochs: scores,
    chosenEpochs,
    block: final.block,
    head: final.head,
    temperature: fitTemperature(outOfFoldLogits, targets, classes),
    outOfFoldLogits,
    folds: runs.length,
    steps: final.step,
    learningRates: { block: settings.blockLearningRate, head: settings.headLearningRate },
  };
}
