import type { HeadBackboneRef, HeadType, TrainingSummary } from '../formats/head-file.js';
import { EdgetlError } from '../util/errors.js';
import { EDGETL_VERSION } from '../version.js';
import { fitTemperature, rejectionThreshold } from './calibration.js';
import {
  type LabelledMatrix,
  classCounts,
  sampleWeights,
  selectRows,
  stratifiedFolds,
  stratifiedSplit,
} from './data.js';
import { type DenseMath, jsDenseMath } from './dense-math.js';
import { Head, UNKNOWN_LABEL, type HeadOpenSet, type HeadWeights } from './head.js';
import {
  type L2Candidate,
  DEFAULT_L2_START,
  UNPRECONDITIONED_L2_START,
  fitSoftmaxRegression,
  linearLogits,
  refitL2,
  searchL2,
} from './linear.js';
import type { LinearCurvature } from './curvature.js';
import { heldOutMetrics } from './metrics.js';
import { type MlpOptions, mlpLogits, trainNetwork } from './mlp.js';
import {
  type Normalization,
  type NormalizationKind,
  applyNormalization,
  fitNormalization,
  l2NormalizeInPlace,
} from './normalization.js';
import { fitPrototypes, prototypeDirections } from './prototype.js';
import { type OpenSetOptions, fitOpenSet, outlierThreshold } from './open-set.js';
import { fitSpectralPreconditioner } from './preconditioner.js';

export type { MlpOptions };

/**
 * Share of the head's own photos, scored out of fold, that the default rejection turns into "unknown": about 95% are
 * kept. It is shared by two cuts (DEFAULT_AMBIGUOUS_SHARE): photos unlike every training photo (the outlier score)
 * and photos between classes (the lowest calibrated top probabilities). Measured on hymenoptera (MobileNetV2-int8,
 * bench/results/2026-12-01/open-set.md): 92.8% of val kept, accuracy on the accepted 96.5% against 96.1% closed-set;
 * with the outlier cut alone at 4%, 93.5% kept but 95.8% on the accepted, since every rejected photo was right and
 * the head's errors are confident-looking ants/bees confusions an outlier score cannot see.
 */
export const DEFAULT_REJECT_RATE = 0.05;
/**
 * Part of the reject rate given to the low-confidence cut (the rest goes to the outlier cut). New photos sit a little
 * farther from the training memory than the training photos' own folds do, so the outlier cut's nominal 3% rejects
 * about 6.5% of a real val split; the low-confidence cut catches the ambiguous ones, which are the likely errors.
 */
export const DEFAULT_AMBIGUOUS_SHARE = 0.4;

export const DEFAULT_MLP_OPTIONS: MlpOptions = {
  hidden: [256],
  activation: 'relu',
  dropout: 0.2,
  epochs: 100,
  batchSize: 64,
  learningRate: 1e-3,
  weightDecay: 1e-2,
  labelSmoothing: 0.1,
  patience: 10,
};

export interface TrainHeadOptions {
  type?: HeadType;
  /** Same data and seed give identical weights. Default 0. */
  seed?: number;
  /** Default: standardize for linear and mlp, l2 for prototype. */
  normalization?: NormalizationKind;
  classWeight?: 'none' | 'balanced';
  /** Label order in the head (default: sorted). Every class must have at least one row. */
  classes?: string[];
  /** Backbone the embeddings came from; recorded in the head file and checked when loading. */
  backbone?: HeadBackboneRef;
  /** Linear head: L2 strength on the mean loss, or `auto` (default) for the cross-validated sweep. */
  l2?: number | 'auto';
  /** Where the L2 sweep's walk starts (a decade of the default grid, 100 .. 1e-6; default 1e-3 preconditioned, else 1). */
  l2Start?: number;
  /** How the L2 sweep ranks strengths (default accuracy, ties by log loss, perfect scores to the stronger). */
  l2Criterion?: 'logLoss' | 'accuracy';
  /** Folds for the L2 sweep and the out-of-fold calibration data (default 3, fewer when a class is smaller). */
  folds?: number;
  /**
   * Linear head (L-BFGS): shape the solver's initial inverse Hessian by the features' top principal directions
   * (default: with more than two classes; rank 48). The same objective, reached in a fraction of the iterations on
   * correlated embeddings (see heads/preconditioner.ts).
   */
  precondition?: boolean | { rank: number };
  /** Linear head optimizer: full-batch L-BFGS (default) or mini-batch Adam for very large sets. */
  solver?: 'lbfgs' | 'minibatch';
  maxIterations?: number;
  mlp?: Partial<MlpOptions>;
  /** Share of the training rows held out for early stopping (mlp, mini-batch linear). Default 0.15. */
  heldOutFraction?: number;
  /** Temperature scaling on held-out (or out-of-fold) logits. Default true. */
  calibrate?: boolean;
  /**
   * Share of the training rows (scored out of fold) that rejection turns into "unknown" (default DEFAULT_REJECT_RATE,
   * 0.05). `ambiguousShare` of it goes to a cut on the calibrated top probability ("low-confidence"), the rest to the
   * outlier-score threshold ("outlier": unlike the training data). 0 keeps the open-set scores but never rejects.
   */
  rejectRate?: number;
  /** Part of `rejectRate` given to the low-confidence cut, in [0, 1] (default DEFAULT_AMBIGUOUS_SHARE, 0.4; 0: outliers only). */
  ambiguousShare?: number;
  /**
   * Open-set memory options (default: 4 * sqrt(rows) k-means centroids, at most 128; k = 1). `false` fits none: the
   * head gives no outlier scores (the low-confidence cut still applies), for callers that only compare accuracies,
   * such as backbone selection.
   */
  openSet?: OpenSetOptions | false;
  /**
   * Group id per row: rows of one group (an image and its augmented views) always fall in the same fold or split,
   * so cross-validation, calibration and early stopping never score a view whose twin was trained on.
   */
  groups?: ArrayLike<number>;
  /** Dense products; the Node API injects onnxruntime (src/node/execution/dense-math-ort.ts). */
  math?: DenseMath;
  /**
   * Receives the held-out predictions the training summary's `heldOut` figures come from (out-of-fold logits of the
   * cross-validation, or of the early-stopping split), with the rows of each fold: what `edgetl select` compares
   * backbones on, so its figures are the ones `train` reports.
   */
  onHeldOut?: (predictions: HeldOutPredictions) => void;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Logits of rows the scoring model did not train on, grouped by the fold (or single split) that held them out. */
export interface HeldOutPredictions {
  /** [targets.length, classCount], uncalibrated (calibration does not move the arg max). */
  logits: Float32Array;
  targets: Int32Array;
  classCount: number;
  /** Positions in `logits` / `targets` of each fold; one entry for a single held-out split. */
  folds: number[][];
  /** Training rows (indices into the data given to trainHead) that `logits` row i belongs to. */
  rows: number[];
  source: string;
}

/** `trainHead` accepts rows as one flat [rows * dim] array or as one array per row. */
export type EmbeddingRows = Float32Array | Float32Array[];

/** What usually makes rows and labels disagree, and the fix. */
const MISALIGNED_HINT =
  'Embeddings and labels must line up, one label per row. If the rows come from embedMany, images it skipped ' +
  '(result.skipped) have no row: pass the labels to embedMany(images, { labels }) and train on its result.labels ' +
  '(or take labels[item.index] for each of result.items).';

function allRows(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

function flatten(embeddings: EmbeddingRows, rows: number, expectedDim?: number): { data: Float32Array; dim: number } {
  if (Array.isArray(embeddings) && embeddings.length !== rows) {
    throw new EdgetlError('train-input', `${embeddings.length} embedding rows but ${rows} labels. ${MISALIGNED_HINT}`);
  }
  // Whole rows of the backbone's size, but not one per label: rows went missing (or labels were added).
  if (
    !Array.isArray(embeddings) &&
    expectedDim &&
    embeddings.length % expectedDim === 0 &&
    embeddings.length / expectedDim !== rows
  ) {
    throw new EdgetlError(
      'train-input',
      `${embeddings.length / expectedDim} embedding rows but ${rows} labels. ${MISALIGNED_HINT}`,
    );
  }
  if (Array.isArray(embeddings)) {
    const dim = embeddings[0]?.length ?? 0;
    const data = new Float32Array(rows * dim);
    embeddings.forEach((row, i) => {
      if (row.length !== dim)
        throw new EdgetlError('train-input', `embedding ${i} has ${row.length} values but embedding 0 has ${dim}`);
      data.set(row, i * dim);
    });
    return { data, dim };
  }
  if (rows === 0 || embeddings.length % rows !== 0) {
    throw new EdgetlError(
      'train-input',
      `${embeddings.length} embedding values cannot be split into ${rows} rows, one per label. ${MISALIGNED_HINT}`,
    );
  }
  return { data: embeddings, dim: embeddings.length / rows };
}

/** Rows and labels checked and turned into class indices: what every head type trains on. */
interface TrainingData {
  /** The embeddings as given, [rows * dim] (the open-set memory keeps them unnormalized). */
  raw: Float32Array;
  rows: number;
  dim: number;
  classes: string[];
  targets: Int32Array;
  /** Rows per class, in `classes` order. */
  counts: number[];
}

/** Logits of rows the fitted model did not train on, for calibration and rejection. */
type HeldOutLogits = Omit<HeldOutPredictions, 'classCount'>;

/** What one head type's training step adds to the head: its weights, held-out logits, summary entries. */
interface FittedWeights {
  weights: HeadWeights;
  heldOut?: HeldOutLogits;
  metrics: Record<string, unknown>;
  options: Record<string, unknown>;
}

/** Everything a head type's training step needs, decided once by trainHead. */
interface TrainingContext {
  data: TrainingData;
  matrix: LabelledMatrix;
  type: HeadType;
  options: TrainHeadOptions;
  seed: number;
  math: DenseMath;
  weightsPerRow: Float32Array | undefined;
  /** Cross-validation folds (at most the smallest class's number of groups). */
  folds: number;
  /** Rows (or groups) of the smallest class, and that class's index in the class list. */
  minCount: number;
  minClass: number;
  progress: TrainHeadOptions['onProgress'];
}

/**
 * Every embedding value finite, or an error naming the first row that is not. Standardization's column sums already
 * read every value, and a sum is finite only when all its values are (float32 values cannot overflow a float64 sum
 * of rows): with finite means the scan, a tenth of a 2-class head's training, is skipped.
 */
function checkFinite(data: TrainingData, normalization: Normalization): void {
  if (normalization.kind === 'standardize' && normalization.mean.every(Number.isFinite)) return;
  const { raw, dim, classes, targets } = data;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    // v - v is 0 for every finite v and NaN for NaN and the infinities: one subtraction per value
    if (v - v !== 0) {
      const row = Math.floor(i / dim);
      throw new EdgetlError(
        'train-input',
        `embedding ${row} (label "${classes[targets[row]]}") holds a non-finite value`,
      );
    }
  }
}

function checkClassList(classes: string[]): void {
  if (new Set(classes).size !== classes.length)
    throw new EdgetlError('train-input', `class list repeats a label: ${classes.join(', ')}`);
  if (classes.includes(UNKNOWN_LABEL))
    throw new EdgetlError('train-input', `"${UNKNOWN_LABEL}" is reserved for rejected predictions; rename that class`);
  if (classes.length < 2)
    throw new EdgetlError(
      'train-input',
      `only one class (${classes[0] ?? 'none'}): a head needs at least 2 classes to tell apart`,
    );
}

function classTargets(labels: readonly string[], classes: string[]): Int32Array {
  const index = new Map(classes.map((c, i) => [c, i]));
  const targets = new Int32Array(labels.length);
  labels.forEach((label, i) => {
    const t = index.get(label);
    if (t === undefined)
      throw new EdgetlError(
        'train-input',
        `row ${i} has label "${label}", which is not in the class list (${classes.join(', ')})`,
      );
    targets[i] = t;
  });
  return targets;
}

/** Validates rows, labels, groups and backbone against each other (errors name the row or class at fault). */
function trainingData(embeddings: EmbeddingRows, labels: readonly string[], options: TrainHeadOptions): TrainingData {
  const rows = labels.length;
  if (rows === 0) throw new EdgetlError('train-input', 'no training examples');
  const { data: raw, dim } = flatten(embeddings, rows, options.backbone?.embeddingDim);
  if (options.groups && options.groups.length !== rows)
    throw new EdgetlError('train-input', `${options.groups.length} group ids for ${rows} rows`);
  if (options.backbone && options.backbone.embeddingDim !== dim) {
    throw new EdgetlError(
      'train-input',
      `embeddings have ${dim} values each but backbone ${options.backbone.id} produces ${options.backbone.embeddingDim}`,
    );
  }
  const classes = options.classes ? [...options.classes] : [...new Set(labels)].sort();
  checkClassList(classes);
  const targets = classTargets(labels, classes);
  const counts = classCounts(targets, classes.length);
  const empty = classes.filter((_, c) => counts[c] === 0);
  if (empty.length > 0)
    throw new EdgetlError(
      'train-input',
      `class${empty.length > 1 ? 'es' : ''} ${empty.map((c) => `"${c}"`).join(', ')} ha${empty.length > 1 ? 've' : 's'} no examples`,
    );
  return { raw, rows, dim, classes, targets, counts };
}

/** Folds split whole groups, so a class can have only as many folds as it has groups. */
function foldCount(
  data: TrainingData,
  options: TrainHeadOptions,
): { folds: number; minCount: number; minClass: number } {
  const { classes, targets, counts } = data;
  const groups = options.groups;
  const unitCounts = groups
    ? classes.map((_, c) => new Set(Array.from(groups).filter((_, i) => targets[i] === c)).size)
    : Array.from(counts);
  const minCount = Math.min(...unitCounts);
  return { folds: Math.min(options.folds ?? 3, minCount), minCount, minClass: unitCounts.indexOf(minCount) };
}

/** Linear head by full-batch L-BFGS: the L2 sweep (cross-validated, its out-of-fold logits kept), then the refit. */
async function trainLinearLbfgs(context: TrainingContext): Promise<FittedWeights> {
  const { data, matrix, options, seed, math, weightsPerRow, folds, progress } = context;
  const { rows, dim, classes, targets } = data;
  const metrics: Record<string, unknown> = {};
  let l2: number;
  let warmStart: Float64Array | undefined;
  let warmCurvature: LinearCurvature | undefined;
  let candidates: L2Candidate[] | undefined;
  let heldOut: HeldOutLogits | undefined;
  const wantHeldOut = options.calibrate !== false;
  // Two classes: two weight rows, as many iterations with or without it (bench/results/2026-12-01), and fitting
  // it (0.3-0.6 s for 2,000 x 1,280 on 2 loaded cores) would outweigh the sweep; so by default only above two.
  const wantPreconditioner = options.precondition ?? classes.length > 2;
  const preconditioner =
    wantPreconditioner === false
      ? undefined
      : await fitSpectralPreconditioner(matrix.data, rows, dim, math, {
          seed,
          rank: typeof options.precondition === 'object' ? options.precondition.rank : undefined,
        });
  if ((options.l2 ?? 'auto') === 'auto' || wantHeldOut) {
    if (folds < 2) {
      if ((options.l2 ?? 'auto') === 'auto') {
        throw new EdgetlError(
          'train-input',
          `the L2 sweep needs at least 2 examples per class for cross-validation; class "${classes[context.minClass]}" has ${context.minCount} (pass an explicit l2 and calibrate: false)`,
        );
      }
    }
    const grid = typeof options.l2 === 'number' ? [options.l2] : undefined;
    const search = await searchL2(matrix, {
      math,
      folds,
      seed,
      sampleWeights: weightsPerRow,
      grid,
      criterion: options.l2Criterion,
      groups: options.groups,
      preconditioner,
      start: options.l2Start ?? (preconditioner ? DEFAULT_L2_START : UNPRECONDITIONED_L2_START),
      onProgress: (d, t) => progress?.('cross-validation', d, t),
    });
    l2 = typeof options.l2 === 'number' ? options.l2 : refitL2(search.l2, folds);
    warmStart = search.warmStart;
    warmCurvature = search.warmCurvature;
    candidates = search.candidates;
    heldOut = {
      logits: search.outOfFoldLogits,
      targets,
      source: `${folds}-fold out-of-fold`,
      folds: search.heldOutFolds,
      rows: allRows(rows),
    };
    metrics.crossValidation = { folds, chosenL2: search.l2, candidates: search.candidates };
  } else {
    l2 = options.l2 as number;
  }
  progress?.('fit', 0, 1);
  const fit = await fitSoftmaxRegression(matrix, {
    l2,
    math,
    sampleWeights: weightsPerRow,
    start: warmStart,
    curvature: warmCurvature,
    preconditioner,
    maxIterations: options.maxIterations ?? 500,
  });
  progress?.('fit', 1, 1);
  metrics.fit = {
    iterations: fit.iterations,
    converged: fit.converged,
    objective: fit.objective,
    candidatesTried: candidates?.length ?? 0,
  };
  return {
    weights: { type: 'linear', weight: fit.weight, bias: fit.bias },
    heldOut,
    metrics,
    options: {
      solver: 'lbfgs',
      precondition: preconditioner ? { rank: preconditioner.rank } : false,
      l2,
      C: 1 / (l2 * rows),
    },
  };
}

/** MLP, or a linear head by mini-batch Adam: one network trainer, early-stopped on a held-out split. */
async function trainNetworkHead(context: TrainingContext): Promise<FittedWeights> {
  const { data, matrix, options, seed, math, weightsPerRow, progress } = context;
  const { classes, targets } = data;
  const split = stratifiedSplit(targets, classes.length, options.heldOutFraction ?? 0.15, seed, options.groups);
  if (split.heldOut.length === 0)
    throw new EdgetlError(
      'train-input',
      'too few examples to hold any out for early stopping (each class needs at least 2)',
    );
  const train = selectRows(matrix, split.train);
  const held = selectRows(matrix, split.heldOut);
  const trainWeights = weightsPerRow ? Float32Array.from(split.train, (i) => weightsPerRow[i]) : undefined;
  const mlp = { ...DEFAULT_MLP_OPTIONS, ...options.mlp };
  const linearMinibatch = context.type === 'linear';
  const l2 = typeof options.l2 === 'number' ? options.l2 : 1 / train.rows;
  const result = await trainNetwork(train, held, {
    math,
    seed,
    hidden: linearMinibatch ? [] : mlp.hidden,
    activation: mlp.activation,
    dropout: linearMinibatch ? 0 : mlp.dropout,
    epochs: mlp.epochs,
    batchSize: mlp.batchSize,
    learningRate: mlp.learningRate,
    weightDecay: linearMinibatch ? 0 : mlp.weightDecay,
    l2: linearMinibatch ? l2 : 0,
    labelSmoothing: linearMinibatch ? 0 : mlp.labelSmoothing,
    patience: mlp.patience,
    sampleWeights: trainWeights,
    onEpoch: (epoch, total) => progress?.('epochs', epoch, total),
  });
  const heldOut: HeldOutLogits = {
    logits: await mlpLogits(result.params, held.data, held.rows, math),
    targets: held.targets,
    source: `held-out ${held.rows} rows`,
    folds: [allRows(held.rows)],
    rows: split.heldOut,
  };
  const metrics = { fit: { epochsRun: result.epochsRun, bestEpoch: result.bestEpoch, heldOutRows: held.rows } };
  if (linearMinibatch) {
    const layer = result.params.layers[0];
    return {
      weights: { type: 'linear', weight: layer.weight, bias: layer.bias },
      heldOut,
      metrics,
      options: {
        solver: 'minibatch',
        l2,
        epochs: mlp.epochs,
        batchSize: mlp.batchSize,
        learningRate: mlp.learningRate,
      },
    };
  }
  return { weights: { type: 'mlp', ...result.params }, heldOut, metrics, options: { mlp } };
}

/** Prototype head: class means, with out-of-fold cosine logits when every class has at least 2 folds' worth. */
async function trainPrototypeHead(context: TrainingContext): Promise<FittedWeights> {
  const { data, matrix, options, seed, math, folds } = context;
  const { rows, dim, classes, targets } = data;
  const weights: HeadWeights = { type: 'prototype', ...fitPrototypes(matrix) };
  if (folds < 2) return { weights, metrics: {}, options: {} };
  const logits = new Float32Array(rows * classes.length);
  const heldOutFolds = stratifiedFolds(targets, classes.length, folds, seed, options.groups);
  for (const fold of heldOutFolds) {
    const inFold = new Set(fold);
    const train = selectRows(
      matrix,
      Array.from({ length: rows }, (_, i) => i).filter((i) => !inFold.has(i)),
    );
    const directions = prototypeDirections(fitPrototypes(train));
    const held = selectRows(matrix, fold);
    for (let r = 0; r < held.rows; r++) l2NormalizeInPlace(held.data, r * dim, dim);
    const foldLogits = await math.gemm(held.data, directions, held.rows, dim, classes.length, false, true);
    fold.forEach((row, r) =>
      logits.set(foldLogits.subarray(r * classes.length, (r + 1) * classes.length), row * classes.length),
    );
  }
  const heldOut = { logits, targets, source: `${folds}-fold out-of-fold`, folds: heldOutFolds, rows: allRows(rows) };
  return { weights, heldOut, metrics: {}, options: {} };
}

/**
 * The softmax temperature, fitted on the held-out logits (when any) and the held-out figures before and after it;
 * hands the held-out predictions to `onHeldOut`.
 */
function calibrate(
  type: HeadType,
  heldOut: HeldOutLogits | undefined,
  classCount: number,
  options: TrainHeadOptions,
  metrics: Record<string, unknown>,
): number {
  // cosine scores live in [-1, 1]: without calibration data a prototype head still needs a sharpening scale
  let temperature = type === 'prototype' ? 0.05 : 1;
  if (!heldOut) return temperature;
  metrics.heldOutUncalibrated = heldOutMetrics(heldOut.logits, heldOut.targets, classCount, temperature);
  options.onHeldOut?.({
    logits: heldOut.logits,
    targets: heldOut.targets,
    classCount,
    folds: heldOut.folds,
    rows: heldOut.rows,
    source: heldOut.source,
  });
  if (options.calibrate !== false) temperature = fitTemperature(heldOut.logits, heldOut.targets, classCount);
  metrics.heldOut = {
    source: heldOut.source,
    ...heldOutMetrics(heldOut.logits, heldOut.targets, classCount, temperature),
  };
  return temperature;
}

/** Open set: a memory of the raw training embeddings, scored out of fold so the threshold reflects new photos. */
/**
 * The two rejection cuts, sharing the reject rate: the open-set memory with its outlier threshold (scored out of fold)
 * and the low-confidence cut on the calibrated held-out probabilities.
 */
async function rejectionCuts(
  context: TrainingContext,
  heldOut: HeldOutLogits | undefined,
  temperature: number,
  metrics: Record<string, unknown>,
): Promise<{
  openSet: HeadOpenSet | null;
  rejection: { threshold: number; rate: number } | null;
  ambiguousShare: number;
}> {
  const { data, options, seed, folds, progress, math } = context;
  const { raw, dim, classes, targets } = data;
  progress?.('open-set', 0, 1);
  const totalRate = options.rejectRate ?? DEFAULT_REJECT_RATE;
  if (!(totalRate >= 0 && totalRate < 1))
    throw new EdgetlError('train-input', `rejectRate must be in [0, 1), got ${totalRate}`);
  const ambiguousShare = options.ambiguousShare ?? DEFAULT_AMBIGUOUS_SHARE;
  if (!(ambiguousShare >= 0 && ambiguousShare <= 1))
    throw new EdgetlError('train-input', `ambiguousShare must be in [0, 1], got ${ambiguousShare}`);
  // without held-out logits there is nothing to set a confidence cut on: the outlier cut takes the whole rate
  // rounded so that files and summaries say 0.02, not 0.020000000000000004
  const ambiguousRate = heldOut ? Number((totalRate * ambiguousShare).toFixed(6)) : 0;
  const rate = Number((totalRate - ambiguousRate).toFixed(6));
  const openSetFolds = folds >= 2 ? stratifiedFolds(targets, classes.length, folds, seed, options.groups) : [];
  if (openSetFolds.length === 0 && options.rejectRate !== undefined && options.rejectRate > 0) {
    throw new EdgetlError(
      'train-input',
      'a rejection threshold needs out-of-fold rows: every class needs at least 2 examples',
    );
  }
  const fitted =
    options.openSet === false
      ? null
      : await fitHeadOpenSet({
          raw,
          targets,
          classCount: classes.length,
          dim,
          folds: openSetFolds,
          groups: options.groups,
          seed,
          rate,
          options: options.openSet,
          math,
        });
  const openSet = fitted?.openSet ?? null;
  if (fitted) metrics.openSet = fitted.metrics;
  const rejection =
    heldOut && ambiguousRate > 0
      ? {
          threshold: rejectionThreshold(
            heldOut.logits,
            heldOut.targets.length,
            classes.length,
            temperature,
            ambiguousRate,
          ),
          rate: ambiguousRate,
        }
      : null;
  if (rejection)
    metrics.lowConfidence = { source: heldOut!.source, threshold: rejection.threshold, rate: rejection.rate };
  progress?.('open-set', 1, 1);
  return { openSet, rejection, ambiguousShare };
}

/** Normalization fitted on the raw rows, class weights and folds: what every head type's trainer works from. */
function trainingContext(
  data: TrainingData,
  options: TrainHeadOptions,
  type: HeadType,
  seed: number,
  math: DenseMath,
): {
  context: TrainingContext;
  normalization: Normalization;
  normalizationKind: NormalizationKind;
  classWeight: NonNullable<TrainHeadOptions['classWeight']>;
} {
  const { raw, rows, dim, classes, targets } = data;
  const normalizationKind = options.normalization ?? (type === 'prototype' ? 'l2' : 'standardize');
  const normalization = fitNormalization(normalizationKind, raw, rows, dim);
  checkFinite(data, normalization);
  const matrix: LabelledMatrix = {
    data: applyNormalization(normalization, raw, rows, dim),
    rows,
    dim,
    targets,
    classCount: classes.length,
  };
  const classWeight = options.classWeight ?? 'none';
  const weightsPerRow = classWeight === 'balanced' ? sampleWeights(targets, classes.length, 'balanced') : undefined;
  const { folds, minCount, minClass } = foldCount(data, options);
  const context: TrainingContext = {
    data,
    matrix,
    type,
    options,
    seed,
    math,
    weightsPerRow,
    folds,
    minCount,
    minClass,
    progress: options.onProgress,
  };
  return { context, normalization, normalizationKind, classWeight };
}

/** The head type's trainer: full-batch L-BFGS (linear), the network trainer (mlp, mini-batch linear), or prototypes. */
function fitWeights(context: TrainingContext): Promise<FittedWeights> {
  const { type, options } = context;
  if (type === 'linear' && (options.solver ?? 'lbfgs') === 'lbfgs') return trainLinearLbfgs(context);
  if (type === 'linear' || type === 'mlp') return trainNetworkHead(context);
  return trainPrototypeHead(context);
}

/**
 * Train a head on embeddings (rows) and their labels. Validates the data (at least two classes, no empty class,
 * finite values), normalizes, trains the chosen head, then calibrates and sets the rejection threshold on
 * held-out or out-of-fold rows, so every figure in the training summary comes from rows the model did not fit.
 */
export async function trainHead(
  embeddings: EmbeddingRows,
  labels: readonly string[],
  options: TrainHeadOptions = {},
): Promise<Head> {
  const started = Date.now();
  const type = options.type ?? 'linear';
  const seed = options.seed ?? 0;
  const math = options.math ?? jsDenseMath;
  const data = trainingData(embeddings, labels, options);
  const { dim, classes, counts } = data;

  const { context, normalization, normalizationKind, classWeight } = trainingContext(data, options, type, seed, math);
  const fitted = await fitWeights(context);
  const metrics: Record<string, unknown> = { ...fitted.metrics };
  const usedOptions: Record<string, unknown> = {
    type,
    normalization: normalizationKind,
    classWeight,
    ...fitted.options,
  };
  const temperature = calibrate(type, fitted.heldOut, classes.length, options, metrics);
  const { openSet, rejection, ambiguousShare } = await rejectionCuts(context, fitted.heldOut, temperature, metrics);
  usedOptions.calibrate = options.calibrate !== false;
  usedOptions.rejectRate = (openSet?.rate ?? 0) + (rejection?.rate ?? 0);
  usedOptions.openSet = openSet !== null;
  usedOptions.ambiguousShare = rejection ? ambiguousShare : 0;
  usedOptions.folds = context.folds;

  const training: TrainingSummary = {
    edgetlVersion: EDGETL_VERSION,
    createdAt: new Date().toISOString(),
    seed,
    counts: Object.fromEntries(classes.map((c, i) => [c, counts[i]])),
    options: usedOptions,
    metrics,
    trainSeconds: (Date.now() - started) / 1000,
    denseMath: math.name,
  };
  // the reference only (a loaded Backbone passed as `backbone` carries much more)
  const backbone: HeadBackboneRef = options.backbone
    ? {
        id: options.backbone.id,
        sha256: options.backbone.sha256,
        embeddingDim: options.backbone.embeddingDim,
        preprocess: options.backbone.preprocess ?? null,
      }
    : { id: 'unspecified', sha256: '0'.repeat(64), embeddingDim: dim, preprocess: null };
  return new Head({
    labels: classes,
    backbone,
    weights: fitted.weights,
    normalization,
    temperature,
    rejection,
    training,
    openSet,
  });
}

/**
 * The open-set part of a head: a memory of the raw training embeddings, scored out of fold so the outlier threshold
 * reflects new photos (the `rate` share of those scores lies above it).
 */
async function fitHeadOpenSet(input: {
  raw: Float32Array;
  targets: Int32Array;
  classCount: number;
  dim: number;
  folds: number[][];
  groups: ArrayLike<number> | undefined;
  seed: number;
  rate: number;
  options: OpenSetOptions | undefined;
  math: DenseMath;
}): Promise<{ openSet: HeadOpenSet; metrics: Record<string, unknown> }> {
  const { raw, targets, classCount, dim, folds, seed, rate } = input;
  const rows = targets.length;
  const foldCount = folds.length;
  // Small sets repeat the split with other seeds (pooling ~1,000 out-of-fold scores): on 244 hymenoptera photos a
  // single 3-fold split put the threshold anywhere in 0.289-0.312 across seeds (own val kept 90-96%).
  const splitRepeats = foldCount > 0 ? Math.min(5, Math.max(1, Math.ceil(1000 / rows))) : 0;
  const splits = Array.from({ length: splitRepeats }, (_, r) =>
    r === 0 ? folds : stratifiedFolds(targets, classCount, foldCount, seed + 7907 * r, input.groups),
  );
  const fit = await fitOpenSet(raw, targets, classCount, dim, splits, { seed, ...input.options }, input.math);
  const threshold = rate > 0 && foldCount > 0 ? outlierThreshold(fit.outOfFoldScores, rate) : null;
  const openSet = { ...fit.model, threshold, rate: threshold === null ? 0 : rate };
  const scores = fit.outOfFoldScores;
  return {
    openSet,
    metrics: {
      source:
        foldCount > 0
          ? `${foldCount}-fold out-of-fold${splitRepeats > 1 ? `, ${splitRepeats} splits` : ''}`
          : 'training rows (too few for folds: no threshold)',
      method: openSet.method,
      memoryRows: openSet.memoryClasses.length,
      k: openSet.k,
      threshold,
      rate: openSet.rate,
      splits: splitRepeats,
      outOfFoldRejected: threshold === null ? 0 : scores.filter((s) => s > threshold).length / scores.length,
    },
  };
}

/** Logits of the training-time model on (normalized) rows: used by tests and benches that bypass Head. */
export { linearLogits };
