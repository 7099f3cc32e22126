import { existsSync, statSync } from 'node:fs';
import { trainHead } from '../train-head.js';
import { saveHead } from '../head-io.js';
import { stratifiedSplit } from '../../core/heads/data.js';
import { type Evaluation, evaluateHead } from '../../core/heads/evaluate.js';
import type { Head } from '../../core/heads/head.js';
import type { HeldOutMetrics } from '../../core/heads/metrics.js';
import type { TrainHeadOptions } from '../../core/heads/train.js';
import type { NormalizationKind } from '../../core/heads/normalization.js';
import type { HeadType, WeightDType } from '../../core/formats/head-file.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, parseCommandLine, parseNumberOption, printJson, ProgressBar } from './common.js';
import { backboneFlagsHelp } from './embed.js';
import {
  LazyBackbone,
  backboneRunOptions,
  formatClassificationReport,
  isEmbeddingSet,
  labelledEmbeddings,
  shortPath,
  type LabelledEmbeddings,
} from './head-shared.js';
import { flippedEmbeddings } from '../embed/augment.js';
import { readEmbeddingSet } from '../embed/embedding-set.js';
import { duplicateRowGroups } from '../../core/heads/duplicates.js';
import { pickBackboneForTraining, type SelectionRecord } from './select.js';
import { fineTuneHead, adaptedBackboneOptions, type FineTuneReport } from '../fine-tune.js';
import { loadOptionsFromFlags } from './embed.js';

const trainOptions = {
  ...backboneRunOptions,
  val: { type: 'string' },
  'val-split': { type: 'string' },
  head: { type: 'string' },
  seed: { type: 'string' },
  l2: { type: 'string' },
  folds: { type: 'string' },
  'l2-criterion': { type: 'string' },
  solver: { type: 'string' },
  'class-weight': { type: 'string' },
  normalize: { type: 'string' },
  'reject-rate': { type: 'string' },
  'ambiguous-share': { type: 'string' },
  'no-calibrate': { type: 'boolean' },
  dtype: { type: 'string' },
  hidden: { type: 'string' },
  activation: { type: 'string' },
  dropout: { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  'weight-decay': { type: 'string' },
  'label-smoothing': { type: 'string' },
  'mlp-batch': { type: 'string' },
  patience: { type: 'string' },
  augment: { type: 'string' },
  // with --backbone best: the selection's candidates, device and budgets (see `edgetl select --help`)
  backbones: { type: 'string' },
  profile: { type: 'string' },
  'max-ms-per-image': { type: 'string' },
  'max-memory-mb': { type: 'string' },
  'fine-tune': { type: 'string' },
  'fine-tune-epochs': { type: 'string' },
  'activation-memory': { type: 'string' },
} as const;

function choice<T extends string>(value: string | undefined, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T))
    throw new EdgetlError('usage', `--${name} must be one of ${choices.join(', ')}, got "${value}"`);
  return value as T;
}

type Values = ReturnType<typeof parseCommandLine<typeof trainOptions>>['values'];

export function trainHeadOptionsFromFlags(values: Values): TrainHeadOptions {
  const type = choice<HeadType>(values.head, 'head', ['linear', 'mlp', 'prototype'], 'linear');
  const hidden = values.hidden
    ?.split(',')
    .map((w, i) => parseNumberOption(w.trim(), `hidden (layer ${i + 1})`, 0, { integer: true, min: 1, max: 65536 }));
  if (hidden && (hidden.length < 1 || hidden.length > 2))
    throw new EdgetlError(
      'usage',
      `--hidden takes one or two layer widths, e.g. 256 or 512,128; got "${values.hidden}"`,
    );
  return {
    type,
    seed: parseNumberOption(values.seed, 'seed', 0, { integer: true, min: 0 }),
    l2:
      values.l2 === undefined || values.l2 === 'auto' ? 'auto' : parseNumberOption(values.l2, 'l2', 0, { min: 1e-12 }),
    folds:
      values.folds === undefined
        ? undefined
        : parseNumberOption(values.folds, 'folds', 3, { integer: true, min: 2, max: 20 }),
    l2Criterion: choice(values['l2-criterion'], 'l2-criterion', ['accuracy', 'logLoss'] as const, 'accuracy'),
    solver: choice(values.solver, 'solver', ['lbfgs', 'minibatch'] as const, 'lbfgs'),
    classWeight: choice(values['class-weight'], 'class-weight', ['none', 'balanced'] as const, 'none'),
    normalization:
      values.normalize === undefined
        ? undefined
        : choice<NormalizationKind>(values.normalize, 'normalize', ['standardize', 'l2', 'none'], 'standardize'),
    rejectRate:
      values['reject-rate'] === undefined
        ? undefined
        : parseNumberOption(values['reject-rate'], 'reject-rate', 0, { min: 0, max: 0.5 }),
    ambiguousShare:
      values['ambiguous-share'] === undefined
        ? undefined
        : parseNumberOption(values['ambiguous-share'], 'ambiguous-share', 0, { min: 0, max: 1 }),
    calibrate: values['no-calibrate'] !== true,
    mlp: {
      ...(hidden ? { hidden } : {}),
      ...(values.activation
        ? { activation: choice(values.activation, 'activation', ['relu', 'gelu'] as const, 'relu') }
        : {}),
      ...(values.dropout ? { dropout: parseNumberOption(values.dropout, 'dropout', 0, { min: 0, max: 0.9 }) } : {}),
      ...(values.epochs
        ? { epochs: parseNumberOption(values.epochs, 'epochs', 0, { integer: true, min: 1, max: 100000 }) }
        : {}),
      ...(values.lr ? { learningRate: parseNumberOption(values.lr, 'lr', 0, { min: 1e-8, max: 10 }) } : {}),
      ...(values['weight-decay']
        ? { weightDecay: parseNumberOption(values['weight-decay'], 'weight-decay', 0, { min: 0, max: 10 }) }
        : {}),
      ...(values['label-smoothing']
        ? { labelSmoothing: parseNumberOption(values['label-smoothing'], 'label-smoothing', 0, { min: 0, max: 0.5 }) }
        : {}),
      ...(values['mlp-batch']
        ? { batchSize: parseNumberOption(values['mlp-batch'], 'mlp-batch', 0, { integer: true, min: 1, max: 65536 }) }
        : {}),
      ...(values.patience
        ? { patience: parseNumberOption(values.patience, 'patience', 0, { integer: true, min: 1, max: 100000 }) }
        : {}),
    },
  };
}

function subset(data: LabelledEmbeddings, rows: number[]): LabelledEmbeddings {
  const dim = data.dim;
  const embeddings = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => embeddings.set(data.embeddings.subarray(row * dim, (row + 1) * dim), i * dim));
  return { ...data, embeddings, labels: rows.map((r) => data.labels[r]), paths: rows.map((r) => data.paths[r]) };
}

/** A note when training examples repeat (same image content): cross-validation and held-out figures overstate. */
function duplicateWarning(data: LabelledEmbeddings): string | undefined {
  const groups = duplicateRowGroups(data.embeddings, data.labels.length, data.dim);
  if (groups.length === 0) return undefined;
  const extra = groups.reduce((sum, group) => sum + group.length - 1, 0);
  const conflicting = groups.filter((group) => new Set(group.map((i) => data.labels[i])).size > 1).length;
  const shown = groups
    .slice(0, 3)
    .map((group) => group.map((i) => shortPath(data.paths[i]!)).join(' = '))
    .join('; ');
  return (
    `${extra} training example(s) repeat another's image content (${shown}${groups.length > 3 ? `; ... ${groups.length} groups in all` : ''})` +
    `${conflicting > 0 ? `, ${conflicting} group(s) with different labels` : ''}: cross-validation and held-out figures count copies on both sides and read optimistic; remove the copies`
  );
}

/** The training request as the flags give it, checked before any data is read. */
interface TrainRequest {
  values: Values;
  /** The training folder or embedding set. */
  input: string;
  out: string;
  options: TrainHeadOptions;
  dtype: WeightDType | 'auto';
  augment: 'flip' | undefined;
  /** Share of the training data held out for validation (0: none). */
  valSplit: number;
}

/** Everything one training run produced: what the head file records, `--json` prints and the report shows. */
interface TrainOutcome {
  head: Head;
  train: LabelledEmbeddings;
  val: LabelledEmbeddings | undefined;
  /** Mirrored views added by --augment flip. */
  augmented: number;
  evaluation: Evaluation | undefined;
  fineTuneReport: FineTuneReport | undefined;
  /** The frozen head on the validation data, before fine-tuning. */
  frozenValidation: Evaluation | undefined;
  selection: SelectionRecord | undefined;
  trainSeconds: number;
  headBytes: number;
}

/** Training rows as the head sees them: the originals, then any mirrored views (grouped with their original). */
interface TrainingRows {
  embeddings: Float32Array;
  labels: string[];
  groups: Int32Array | undefined;
  augmented: number;
}

function showProgress(values: Values): boolean {
  return values.json !== true && process.stderr.isTTY === true;
}

function validationName(request: TrainRequest): string {
  return `validation data ${request.values.val ?? `(--val-split ${request.valSplit})`}`;
}

function parseTrainRequest(argv: string[]): TrainRequest {
  const { values, positionals } = parseCommandLine(argv, trainOptions);
  if (positionals.length !== 1) {
    throw new EdgetlError(
      'usage',
      positionals.length === 0
        ? 'missing <dir|embeddings-prefix>: the labelled training data (see --help)'
        : `expected one training folder or embedding set, got ${positionals.length}: ${positionals.join(' ')}`,
    );
  }
  if (!values.out) throw new EdgetlError('usage', 'missing --out <head.json>: where to write the trained head');
  if (values.val && values['val-split'])
    throw new EdgetlError('usage', 'give either --val <dir|prefix> or --val-split F, not both');
  const options = trainHeadOptionsFromFlags(values);
  const dtype = choice<WeightDType | 'auto'>(values.dtype, 'dtype', ['auto', 'float16', 'float32', 'int8'], 'auto');
  const augment =
    values.augment === undefined ? undefined : choice(values.augment, 'augment', ['flip'] as const, 'flip');
  const valSplit =
    values['val-split'] === undefined
      ? 0
      : parseNumberOption(values['val-split'], 'val-split', 0, { min: 0.01, max: 0.9 });
  if (existsSync(values.out) && statSync(values.out).isDirectory()) {
    throw new EdgetlError('usage', `--out ${values.out} is a folder; give a file name such as ${values.out}/head.json`);
  }
  const selectFlags = (['backbones', 'profile', 'max-ms-per-image', 'max-memory-mb'] as const).filter(
    (f) => values[f] !== undefined,
  );
  if (values.backbone !== 'best' && selectFlags.length > 0)
    throw new EdgetlError('usage', `--${selectFlags[0]} chooses among backbones: it needs --backbone best`);
  return { values, input: positionals[0]!, out: values.out, options, dtype, augment, valSplit };
}

/** The backbone to embed with: --backbone best runs the selection first; an embedding set names its own. */
async function chooseBackbone(
  request: TrainRequest,
): Promise<{ backbone: LazyBackbone; selection: SelectionRecord | undefined }> {
  const { values, input, options } = request;
  let selection: SelectionRecord | undefined;
  let backboneValues = values;
  if (values.backbone === 'best') {
    if (isEmbeddingSet(input))
      throw new EdgetlError(
        'usage',
        `--backbone best compares backbones on the photos: give the training folder, not the embedding set ${input}`,
      );
    const picked = await pickBackboneForTraining(
      input,
      { ...values, head: options.type, seed: String(options.seed ?? 0), folds: values.folds },
      showProgress(values),
    );
    selection = picked.record;
    backboneValues = { ...values, backbone: picked.backbone };
  }
  // an embedding set names its backbone: open that one (only if needed) unless --backbone says otherwise
  const fallbackId = isEmbeddingSet(input) ? (await readEmbeddingSet(input)).backbone.id : undefined;
  return { backbone: new LazyBackbone(backboneValues, fallbackId), selection };
}

/** Training data, and validation data from --val (same backbone) or a stratified --val-split of the training data. */
async function trainingAndValidation(
  request: TrainRequest,
  backbone: LazyBackbone,
): Promise<{ train: LabelledEmbeddings; val: LabelledEmbeddings | undefined }> {
  const { values, input, valSplit, options } = request;
  let train = await labelledEmbeddings(input, backbone, values, 'training data');
  const copies = duplicateWarning(train);
  if (copies) train.warnings.push(copies);
  let val: LabelledEmbeddings | undefined;
  if (values.val) {
    val = await labelledEmbeddings(values.val, backbone, values, 'validation data');
    if (val.backbone.sha256 !== train.backbone.sha256) {
      throw new EdgetlError(
        'backbone-mismatch',
        `validation data ${values.val} comes from backbone ${val.backbone.id} but the training data from ${train.backbone.id}: embed both with the same backbone`,
      );
    }
  } else if (valSplit > 0) {
    const targets = train.labels.map((l) => train.classes.indexOf(l));
    const split = stratifiedSplit(targets, train.classes.length, valSplit, options.seed ?? 0);
    val = subset(train, split.heldOut);
    train = subset(train, split.train);
  }
  return { train, val };
}

/** With --augment flip, the training images embedded again mirrored (through the cache); adds to train.embedSeconds. */
async function trainingRows(
  request: TrainRequest,
  train: LabelledEmbeddings,
  backbone: LazyBackbone,
): Promise<TrainingRows> {
  const { values } = request;
  if (request.augment !== 'flip')
    return { embeddings: train.embeddings, labels: train.labels, groups: undefined, augmented: 0 };
  const opened = await backbone.open();
  if (opened.sha256 !== train.backbone.sha256) {
    throw new EdgetlError(
      'backbone-mismatch',
      `--augment flip embeds the training images again with ${opened.id}, but the training embeddings come from ${train.backbone.id}`,
    );
  }
  const flipBar = new ProgressBar('embedding flipped views', showProgress(values));
  const flipStarted = performance.now();
  const flipped = await flippedEmbeddings(opened, train.paths, {
    useCache: values['no-cache'] !== true,
    onProgress: (d, t) => flipBar.update(d, t),
  });
  flipBar.finish();
  train.embedSeconds += (performance.now() - flipStarted) / 1000;
  const rows = train.labels.length;
  const kept = flipped.ok.map((ok, i) => (ok ? i : -1)).filter((i) => i >= 0);
  const embeddings = new Float32Array((rows + kept.length) * train.dim);
  embeddings.set(train.embeddings);
  kept.forEach((row, i) =>
    embeddings.set(flipped.embeddings.subarray(row * train.dim, (row + 1) * train.dim), (rows + i) * train.dim),
  );
  return {
    embeddings,
    labels: [...train.labels, ...kept.map((row) => train.labels[row])],
    // a view and its original form one group: no fold ever trains on one and scores the other
    groups: Int32Array.from([...Array.from({ length: rows }, (_, i) => i), ...kept]),
    augmented: kept.length,
  };
}

/** Refuses data a head cannot be trained on, and a --fine-tune the data or head type rules out. */
function checkTrainable(request: TrainRequest, train: LabelledEmbeddings): 'last-block' | undefined {
  const { values, input, options } = request;
  if (train.classes.length < 2) {
    throw new EdgetlError(
      'usage',
      `training data ${shortPath(input)} has only one class (${train.classes[0]}): a head needs at least 2 classes to tell apart`,
    );
  }
  const fineTune =
    values['fine-tune'] === undefined
      ? undefined
      : choice(values['fine-tune'], 'fine-tune', ['last-block'] as const, 'last-block');
  if (fineTune && train.source !== 'folder')
    throw new EdgetlError(
      'usage',
      `--fine-tune last-block needs the training images (a folder of class folders), not the embedding set ${shortPath(input)}`,
    );
  if (fineTune && (options.type ?? 'linear') !== 'linear')
    throw new EdgetlError('usage', `--fine-tune last-block trains a linear head; drop --head ${options.type}`);
  return fineTune;
}

async function trainFrozenHead(request: TrainRequest, train: LabelledEmbeddings, rows: TrainingRows): Promise<Head> {
  const bar = new ProgressBar('training', showProgress(request.values));
  const head = await trainHead(rows.embeddings, rows.labels, {
    ...request.options,
    groups: rows.groups,
    classes: train.classes,
    backbone: train.backbone,
    onProgress: (stage, done, total) => bar.update(done, total, stage),
  });
  bar.finish();
  return head;
}

/**
 * --fine-tune last-block: the frozen head scored on the validation data, the block fine-tuned (or the frozen head
 * kept), and the validation data embedded again through the adapted graph when the block was kept.
 */
async function fineTuneLastBlock(
  request: TrainRequest,
  backbone: LazyBackbone,
  train: LabelledEmbeddings,
  val: LabelledEmbeddings | undefined,
  frozen: Head,
): Promise<{
  head: Head;
  report: FineTuneReport;
  frozenValidation: Evaluation | undefined;
  val: LabelledEmbeddings | undefined;
}> {
  const { values, options } = request;
  const frozenValidation =
    val && val.labels.length > 0 ? evaluateHead(frozen, val, validationName(request)) : undefined;
  const ftBar = new ProgressBar('fine-tuning', showProgress(values));
  const ftStarted = performance.now();
  const tuned = await fineTuneHead({
    backbone: await backbone.open(),
    loadOptions: loadOptionsFromFlags(values),
    paths: train.paths,
    labels: train.labels,
    frozen,
    flip: request.augment === 'flip',
    dtype: request.dtype,
    seed: options.seed,
    useCache: values['no-cache'] !== true,
    ...(values['fine-tune-epochs']
      ? {
          epochs: parseNumberOption(values['fine-tune-epochs'], 'fine-tune-epochs', 8, {
            integer: true,
            min: 1,
            max: 1000,
          }),
        }
      : {}),
    ...(values['activation-memory']
      ? {
          memoryBytes:
            parseNumberOption(values['activation-memory'], 'activation-memory', 512, { min: 0 }) * 1024 * 1024,
        }
      : {}),
    onProgress: (stage, done, total) => {
      const elapsed = (performance.now() - ftStarted) / 1000;
      const eta = done > 0 && done < total ? ` ETA ${Math.ceil((elapsed / done) * (total - done))} s` : '';
      ftBar.update(done, total, `${stage}${eta}`);
    },
  });
  ftBar.finish();
  const head = tuned.head;
  if (head.adaptedBlock && val && val.labels.length > 0) {
    // validation through the adapted graph, as `edgetl eval` and prediction run it
    const adapted = new LazyBackbone(
      { ...values, backbone: (await backbone.open()).modelPath },
      train.backbone.id,
      adaptedBackboneOptions(head),
    );
    try {
      const opened = await adapted.open();
      const embedded = await opened.embedMany(val.paths, { strict: true, useCache: values['no-cache'] !== true });
      val = { ...val, embeddings: embedded.embeddings };
    } finally {
      await adapted.close();
    }
  }
  return { head, report: tuned.report, frozenValidation, val };
}

/** The head file's training summary: the data it came from, the timings, the selection and the validation figures. */
function recordTraining(request: TrainRequest, outcome: Omit<TrainOutcome, 'headBytes'>): void {
  const { values, augment, valSplit } = request;
  const { head, train, evaluation, selection } = outcome;
  const originalCounts = Object.fromEntries(
    head.labels.map((label) => [label, train.labels.filter((l) => l === label).length]),
  );
  head.training = {
    ...head.training,
    counts: originalCounts,
    data: {
      source: train.source,
      path: train.path,
      rows: train.labels.length,
      skipped: train.skipped.length,
      augment: augment ?? 'none',
      augmentedRows: outcome.augmented,
    },
    executionProvider: train.executionProvider,
    embedSeconds: train.embedSeconds,
    trainSeconds: outcome.trainSeconds,
    ...(selection ? { selection } : {}),
    metrics: {
      ...head.training.metrics,
      ...(evaluation
        ? {
            validation: {
              source: values.val ?? `val-split ${valSplit}`,
              ...evaluation.metrics,
              rejected: evaluation.rejected,
              closedSetAccuracy: evaluation.closedSetAccuracy,
              rejectedRate: evaluation.openSet.rejectedRate,
              acceptedAccuracy: evaluation.openSet.acceptedAccuracy,
            },
          }
        : {}),
    },
  };
}

/** The object `--json` prints (documented in the help). */
function trainSummary(request: TrainRequest, outcome: TrainOutcome) {
  const { values, augment } = request;
  const { head, train, val, evaluation, fineTuneReport, frozenValidation, selection } = outcome;
  const heldOut = head.training.metrics.heldOut as (HeldOutMetrics & { source: string }) | undefined;
  return {
    head: request.out,
    type: head.type,
    classes: head.labels,
    trainCount: train.labels.length,
    ...(augment ? { augmentedCount: outcome.augmented } : {}),
    valCount: val?.labels.length ?? 0,
    val: evaluation
      ? {
          accuracy: evaluation.metrics.accuracy,
          balancedAccuracy: evaluation.metrics.balancedAccuracy,
          logLoss: evaluation.metrics.logLoss,
          ece: evaluation.metrics.ece,
          rejected: evaluation.rejected,
          closedSetAccuracy: evaluation.closedSetAccuracy,
          rejectedRate: evaluation.openSet.rejectedRate,
          acceptedAccuracy: evaluation.openSet.acceptedAccuracy,
        }
      : null,
    embedSeconds:
      Number(train.embedSeconds.toFixed(3)) +
      (val && val !== train && values.val ? Number(val.embedSeconds.toFixed(3)) : 0),
    trainSeconds: Number(outcome.trainSeconds.toFixed(3)),
    headBytes: outcome.headBytes,
    ...(fineTuneReport
      ? {
          fineTune: {
            ...fineTuneReport,
            frozenVal: frozenValidation
              ? { accuracy: frozenValidation.metrics.accuracy, logLoss: frozenValidation.metrics.logLoss }
              : null,
          },
        }
      : {}),
    backbone: { id: head.backbone.id, sha256: head.backbone.sha256, embeddingDim: head.embeddingDim },
    executionProvider: train.executionProvider,
    options: head.training.options,
    heldOut: heldOut ?? null,
    temperature: head.temperature,
    rejectionThreshold: head.rejection?.threshold ?? null,
    outlierThreshold: head.openSet?.threshold ?? null,
    rejectRate: (head.openSet?.rate ?? 0) + (head.rejection?.rate ?? 0),
    openSetMemoryRows: head.openSet?.memoryClasses.length ?? 0,
    skipped: [...train.skipped, ...(val && values.val ? val.skipped : [])],
    warnings: [...train.warnings, ...(val && values.val ? val.warnings : [])],
    ...(selection ? { selection } : {}),
  };
}

type TrainSummary = ReturnType<typeof trainSummary>;

/** The head line: the type's own settings (C and l2, the hidden layers, or the prototype rule). */
function headDetail(head: Head, options: TrainHeadOptions): string {
  const o = head.training.options;
  const detail =
    head.type === 'linear'
      ? `C ${(o.C as number | undefined)?.toPrecision(3) ?? '-'} (l2 ${(o.l2 as number).toPrecision(3)}${options.l2 === 'auto' ? `, chosen by ${o.folds}-fold cross-validation` : ''})`
      : head.type === 'mlp'
        ? `hidden ${JSON.stringify((o.mlp as { hidden: number[] }).hidden)}`
        : 'nearest class mean (cosine)';
  return `  head       ${detail}; normalization ${o.normalization}; class weights ${o.classWeight}; seed ${head.training.seed}`;
}

function fineTuneLines(
  report: FineTuneReport,
  frozenValidation: Evaluation | undefined,
  evaluation?: Evaluation,
): string[] {
  const lines: string[] = [];
  const cv = report.crossValidation;
  lines.push(
    `  fine-tune  ${report.outcome === 'fine-tuned' ? 'last block fine-tuned' : 'frozen head kept'}: ${report.reason}`,
  );
  if (report.block) lines.push(`             block ${report.block}`);
  if (cv)
    lines.push(
      `             out of fold: frozen ${(100 * cv.frozenAccuracy).toFixed(2)}%, fine-tuned ${(100 * cv.fineTunedAccuracy).toFixed(2)}%`,
    );
  if (frozenValidation && report.outcome === 'fine-tuned')
    lines.push(
      `             validation: frozen ${(100 * frozenValidation.metrics.accuracy).toFixed(1)}% -> fine-tuned ${(100 * evaluation!.metrics.accuracy).toFixed(1)}%`,
    );
  const m = report.memory;
  lines.push(
    `             ${report.rows} activation rows; activations ${report.activationSeconds.toFixed(1)} s, training ${report.trainSeconds.toFixed(1)} s${m ? `; memory: activations ${(m.memoryBytes / 2 ** 20).toFixed(0)} MiB in RAM, ${(m.spilledBytes / 2 ** 20).toFixed(0)} MiB spilled, peak RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB` : ''}`,
  );
  return lines;
}

/** The readable report (without --json). */
function formatTrainReport(request: TrainRequest, outcome: TrainOutcome, summary: TrainSummary): string {
  const { head, train, val, evaluation, fineTuneReport, selection } = outcome;
  const lines: string[] = [];
  const counts = head.training.counts;
  lines.push(
    `Trained a ${head.type} head on ${train.labels.length} ${train.source === 'folder' ? 'images' : 'embeddings'} from ${shortPath(train.path)}: ${head.labels.length} classes (${head.labels.map((l) => `${l} ${counts[l]}`).join(', ')})`,
  );
  if (selection) lines.push(`  selected   ${selection.picked}: ${selection.reason}`);
  lines.push(
    `  backbone   ${head.backbone.id}  ${head.embeddingDim}-d  sha256 ${head.backbone.sha256.slice(0, 12)}...  (${train.executionProvider})`,
  );
  lines.push(headDetail(head, request.options));
  lines.push(
    `  time       embedding ${summary.embedSeconds.toFixed(2)} s, training ${outcome.trainSeconds.toFixed(2)} s`,
  );
  const heldOut = summary.heldOut;
  if (heldOut)
    lines.push(
      `  held-out   ${heldOut.source}: accuracy ${(100 * heldOut.accuracy).toFixed(1)}%, log loss ${heldOut.logLoss.toFixed(3)}, ECE ${heldOut.ece.toFixed(3)} (temperature ${head.temperature.toFixed(3)})`,
    );
  if (head.openSet) {
    lines.push(
      head.openSet.threshold === null
        ? `  open set   outlier scores from ${head.openSet.memoryClasses.length} memory rows; rejection off`
        : `  open set   outlier score above ${head.openSet.threshold.toFixed(3)} -> "unknown" (about ${(100 * head.openSet.rate).toFixed(1)}% of the training photos, out of fold; ${head.openSet.memoryClasses.length} memory rows)`,
    );
  }
  if (head.rejection)
    lines.push(
      `  ambiguous  top probability below ${head.rejection.threshold.toFixed(3)} -> "unknown" (about ${(100 * head.rejection.rate).toFixed(1)}% of the training photos, out of fold)`,
    );
  if (evaluation) {
    lines.push(
      `  validation ${val!.labels.length} examples: closed-set accuracy ${(100 * evaluation.closedSetAccuracy).toFixed(1)}%, log loss ${evaluation.metrics.logLoss.toFixed(3)}, ECE ${evaluation.metrics.ece.toFixed(3)}`,
    );
    lines.push(
      `             open set: ${evaluation.rejected} rejected as unknown (${(100 * evaluation.openSet.rejectedRate).toFixed(1)}%), accuracy on the accepted ${(100 * evaluation.openSet.acceptedAccuracy).toFixed(1)}%, counting unknown as wrong ${(100 * evaluation.metrics.accuracy).toFixed(1)}%`,
    );
    lines.push('');
    lines.push(formatClassificationReport(evaluation.report, head.labels));
    lines.push('');
  }
  if (fineTuneReport) lines.push(...fineTuneLines(fineTuneReport, outcome.frozenValidation, evaluation));
  for (const w of summary.warnings) lines.push(`  note       ${w}`);
  if (summary.skipped.length > 0)
    lines.push(`  skipped    ${summary.skipped.length} unusable image(s) (listed with --json)`);
  lines.push(
    `  wrote      ${shortPath(request.out)} (${(outcome.headBytes / 1024).toFixed(1)} KiB, ${request.dtype} weights)`,
  );
  return lines.join('\n') + '\n';
}

/** Data, training, optional fine-tuning, validation, and the head file written. */
async function trainAndSave(
  request: TrainRequest,
  backbone: LazyBackbone,
  selection: SelectionRecord | undefined,
): Promise<TrainOutcome> {
  const loaded = await trainingAndValidation(request, backbone);
  const { train } = loaded;
  let { val } = loaded;
  const rows = await trainingRows(request, train, backbone);
  const fineTune = checkTrainable(request, train);
  const started = performance.now();
  let head = await trainFrozenHead(request, train, rows);
  let fineTuneReport: FineTuneReport | undefined;
  let frozenValidation: Evaluation | undefined;
  if (fineTune) {
    const tuned = await fineTuneLastBlock(request, backbone, train, val, head);
    ({ head, frozenValidation, val } = tuned);
    fineTuneReport = tuned.report;
  }
  const trainSeconds = (performance.now() - started) / 1000;
  const evaluation = val && val.labels.length > 0 ? evaluateHead(head, val, validationName(request)) : undefined;
  const outcome = {
    head,
    train,
    val,
    augmented: rows.augmented,
    evaluation,
    fineTuneReport,
    frozenValidation,
    selection,
    trainSeconds,
  };
  recordTraining(request, outcome);
  const headBytes = await saveHead(head, request.out, { dtype: request.dtype });
  return { ...outcome, headBytes };
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a head (linear, mlp, prototype) on a labelled folder or embedding set; writes head.json',
  help: `Usage: edgetl train <dir|embeddings-prefix> --out head.json [--backbone <id|path>] [options]

Trains a small head on frozen-backbone embeddings and writes it as an edgetl-head v2 JSON file (weights in
float16 by default). <dir> holds class folders (<dir>/<class>/*.jpg); it is embedded first, through the embedding
cache. An embedding set written by \`edgetl embed <dir> --out <prefix>\` trains directly, without the backbone.

Validation (optional; figures in the report and the head's training summary):
  --val <dir|prefix>         a separate labelled folder or embedding set
  --val-split F              hold out a stratified share F of the training data (e.g. 0.2)
Head:
  --head linear|mlp|prototype  (default linear: multinomial logistic regression, L-BFGS)
  --seed N                   the same data and seed give identical weights (default 0)
  --normalize standardize|l2|none   feature normalization stored in the head (default standardize; l2 for prototype)
  --class-weight none|balanced      weight classes by inverse frequency (default none)
  --reject-rate R            about R of the training photos, scored out of fold, become "unknown" (default 0.05):
                             60% of R by the outlier score (unlike the training data), 40% by the lowest confidence
                             (between classes; --ambiguous-share sets the split); 0: scores only, never reject
  --ambiguous-share S        part of the reject rate given to the low-confidence cut, 0..1 (default 0.4; 0: only
                             photos unlike the training data are rejected)
  --no-calibrate             skip temperature scaling (default: fitted on out-of-fold / held-out rows)
  --dtype auto|float16|float32|int8  weight storage (default auto: float16, and int8 with per-row scales for large
                             weight matrices, an MLP's hidden layers, which keeps a 2-class MLP head under 1 MB)
  --augment flip             also train on mirrored views of the training images (embedded through the cache;
                             a view and its original always share a cross-validation fold)
  --fine-tune last-block     also train the backbone's last block (MobileNetV2: the final 1x1 conv 320->1280 +
                             ReLU6, int8 weights dequantized; EfficientNet-B0: the head conv + BN + swish) with a
                             linear head. Activations at the block's input are computed once (through the cache;
                             flipped views too with --augment flip). 3-fold cross-validation decides: when the
                             fine-tuned block does not beat the frozen head out of fold, the frozen head is kept and
                             the report says so. Other backbones: reported as unsupported, frozen head kept.
                             The head file then carries the adapted block (float16) and runs it as an ONNX graph.
  --fine-tune-epochs N       upper bound on fine-tuning epochs (default 8; early stopping on out-of-fold data)
  --activation-memory MB     in-memory budget for cached activations (default 512; the rest spills to disk)
Linear head:
  --l2 auto|X                L2 strength on the mean loss (C = 1/(X*N)); auto (default) picks it by stratified
                             k-fold cross-validation on the training data (log-spaced sweep, warm starts)
  --folds K                  folds for the sweep and for calibration (default 3)
  --l2-criterion accuracy|logLoss   how the sweep ranks strengths (default accuracy, ties to the stronger)
  --solver lbfgs|minibatch   full-batch L-BFGS (default) or mini-batch Adam for very large sets
MLP head:
  --hidden W[,W2]  --activation relu|gelu  --dropout P  --epochs N  --lr X  --weight-decay X
  --label-smoothing X  --mlp-batch N  --patience N   (defaults 256, relu, 0.2, 100, 1e-3, 1e-2, 0.1, 64, 10;
                             early stopping on a held-out 15% of the training data)

${backboneFlagsHelp}
Backbone selection:
  --backbone best            run \`edgetl select\` on the training folder first (same head, folds and seed) and
                             train on its pick; the head file records the selection (training.selection: the pick,
                             the rule, every candidate's held-out accuracy and cost)
  --backbones a,b,...  --profile P  --max-ms-per-image X  --max-memory-mb M   passed to the selection

With --json, stdout is one object:
  {"head","classes","trainCount","valCount","val":{"accuracy","balancedAccuracy","logLoss","ece","rejected",
   "closedSetAccuracy","rejectedRate","acceptedAccuracy"} | null, "outlierThreshold","rejectRate",
   "embedSeconds","trainSeconds","headBytes", ...}
("accuracy" counts "unknown" as wrong; "closedSetAccuracy" ignores rejection; "acceptedAccuracy" is on the rest.)

Refuses: a single class, a class folder without images, a flat folder, embeddings of another backbone than
--backbone, a validation set with classes the training data lacks.

Examples:
  edgetl train photos/train --val photos/val --out head.json
  edgetl embed photos/train --out train && edgetl train train --val-split 0.2 --head mlp --out head.json --json
  edgetl train photos/train --backbone best --max-ms-per-image 10 --out head.json
`,
  async run(argv) {
    const request = parseTrainRequest(argv);
    const { backbone, selection } = await chooseBackbone(request);
    try {
      const outcome = await trainAndSave(request, backbone, selection);
      const summary = trainSummary(request, outcome);
      if (request.values.json) {
        printJson(summary);
        return 0;
      }
      process.stdout.write(formatTrainReport(request, outcome, summary));
      return 0;
    } finally {
      await backbone.close();
    }
  },
};
