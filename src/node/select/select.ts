/**
 * `selectBackbone`: which backbone suits these photos on this device. For each candidate, on the training folder
 * alone: embeddings once (through the cache), held-out accuracy with the protocol `train` uses (its own trainer and
 * cross-validation, via `onHeldOut`), and the cost on the device; against the same head on raw 16x16 pixels with
 * the same folds (negative transfer); then the recommendation rule and the Pareto front (decision.ts).
 */
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { resolveBackbone } from '../models/resolve.js';
import { Backbone, type BackboneLoadOptions } from '../embed/backbone.js';
import { embedFolder } from '../embed/embed-folder.js';
import { scanImageFolder } from '../embed/dataset.js';
import { trainHead } from '../train-head.js';
import type { HeldOutPredictions, TrainHeadOptions } from '../../core/heads/train.js';
import type { HeadType } from '../../core/formats/head-file.js';
import { loadProfile, type DeviceProfile, type LoadedProfile, type ProfileExecution } from '../bench/profile.js';
import { collectHostFacts } from '../bench/host.js';
import { EdgetlError, describeError, isEdgetlError } from '../../core/util/errors.js';
import { localBackbones, namedBackbones, type CandidateRef, type ExcludedBackbone } from './candidates.js';
import {
  committedCost,
  measureCostHere,
  profileDescribesHost,
  UNKNOWN_COST,
  type CostFigures,
  type MemoryProbeResult,
} from './cost.js';
import {
  checkBudgets,
  paretoFront,
  recommend,
  scoreHeldOut,
  transferVerdict,
  type BudgetStatus,
  type Budgets,
  type HeldOutScores,
  type Recommendation,
} from '../../core/select/decision.js';
import { RAW_PIXELS_NAME, RAW_PIXELS_SPEC, rawPixelEmbeddings } from './raw-pixels.js';
import { tensorElementsPerImage } from '../../core/preprocess/tensor.js';

export interface SelectOptions {
  /** Backbones to compare (catalog ids, paths, or bare file names in a model folder). Default: every local one. */
  backbones?: string[];
  /** Device profile (name or file) the cost and budgets are for; default: this machine. */
  profile?: string;
  maxMsPerImage?: number;
  maxMemoryMb?: number;
  /** Head trained on each candidate's embeddings (default linear, as `train`). */
  head?: HeadType;
  /** Folds and seed of the cross-validation (defaults as `train`: 3 folds, seed 0). */
  folds?: number;
  seed?: number;
  /** Use the embedding cache (default true). */
  useCache?: boolean;
  /** Backbone loading and execution options (provider, threads, search path...). */
  load?: BackboneLoadOptions;
  signal?: AbortSignal;
  onProgress?: (event: SelectProgress) => void;
}

export interface SelectProgress {
  /** The candidate (or `baseline`), its 1-based position and the number of candidates. */
  backbone: string;
  index: number;
  count: number;
  stage: 'baseline' | 'embedding' | 'cross-validation' | 'cost' | 'done';
  done?: number;
  total?: number;
  /** With stage `done`: a one-line summary, or why it failed. */
  message?: string;
}

export interface CandidateResult extends Omit<CostFigures, 'source' | 'note'> {
  backbone: string;
  id: string;
  /** The model file it resolved to (what `train --backbone best` trains on). */
  path?: string;
  status: 'ok' | 'failed' | 'interrupted';
  error?: string;
  sha256?: string;
  embeddingDim?: number;
  /** Held-out accuracy and balanced accuracy (fractions) with train's protocol. */
  accuracy: number | null;
  balancedAccuracy: number | null;
  foldAccuracy: number[];
  /** Source model file and the head file `train` would write (float16 weights). */
  modelBytes: number | null;
  headBytes: number | null;
  negativeTransfer: boolean | null;
  negativeTransferReason: string | null;
  /** Accuracy gain over the raw-pixel baseline and its standard error, points. */
  gainOverBaseline: { points: number; standardErrorPoints: number } | null;
  withinBudget: BudgetStatus | null;
  budgetNotes: string[];
  pareto: boolean;
  cost: { source: CostFigures['source']; note: string };
  /** How long this candidate took here: embedding (and how much of it came from the cache), CV, cost. */
  seconds: { embedding: number; crossValidation: number; cost: number };
  embedded: { images: number; computed: number; cacheHits: number; skipped: number };
}

export interface SelectResult {
  dir: string;
  classes: string[];
  images: number;
  head: HeadType;
  crossValidation: string;
  candidates: CandidateResult[];
  excluded: ExcludedBackbone[];
  baseline: {
    name: string;
    dim: number;
    accuracy: number | null;
    balancedAccuracy: number | null;
    foldAccuracy: number[];
    seconds: number;
  };
  recommended: string | null;
  mostAccurate: string | null;
  tied: string[];
  rule: string;
  reason: string;
  pareto: string[];
  budgets: Budgets & { sources: string[] };
  device: { profile: string | null; costFrom: 'this machine' | 'committed bench results' | 'unknown'; note: string };
  /** Timing figures were measured while other work may have shared the machine: load average at start and end. */
  host: { cpu: string; logicalCores: number; loadAverageStart: number[]; loadAverageEnd: number[] };
  interrupted: boolean;
  warnings: string[];
  seconds: { total: number; baseline: number; embedding: number; crossValidation: number; cost: number };
}

const round = (v: number, digits = 4) => Number(v.toFixed(digits));

function aborted(signal?: AbortSignal): boolean {
  return signal?.aborted === true;
}

function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return aborted(signal) || (isEdgetlError(error) && error.code === 'aborted');
}

/** Budgets from the flags, else from the profile's budgets that hold for every backbone. */
function budgetsFor(profile: DeviceProfile | undefined, options: SelectOptions): Budgets & { sources: string[] } {
  const sources: string[] = [];
  const budgets: Budgets = {};
  const general = (profile?.budgets ?? []).filter(
    (b) => b.backbone === undefined && (b.batch === undefined || b.batch === 1),
  );
  if (options.maxMsPerImage !== undefined) {
    budgets.maxMsPerImage = options.maxMsPerImage;
    sources.push(`<= ${options.maxMsPerImage} ms per image (given)`);
  } else {
    const b = general.find((x) => x.p95LatencyMsPerImage !== undefined);
    if (b) {
      budgets.maxMsPerImage = b.p95LatencyMsPerImage;
      sources.push(`<= ${b.p95LatencyMsPerImage} ms per image (profile ${profile!.name}: "${b.name}")`);
    }
  }
  if (options.maxMemoryMb !== undefined) {
    budgets.maxMemoryMb = options.maxMemoryMb;
    sources.push(`<= ${options.maxMemoryMb} MB peak memory (given)`);
  } else {
    const b = general.find((x) => x.maxPeakMemoryMb !== undefined);
    if (b) {
      budgets.maxMemoryMb = b.maxPeakMemoryMb;
      sources.push(`<= ${b.maxPeakMemoryMb} MB peak memory (profile ${profile!.name}: "${b.name}")`);
    }
  }
  return { ...budgets, sources };
}

function subsetRows(embeddings: Float32Array, dim: number, positions: readonly number[]): Float32Array {
  const out = new Float32Array(positions.length * dim);
  positions.forEach((p, i) => out.set(embeddings.subarray(p * dim, (p + 1) * dim), i * dim));
  return out;
}

interface Scored {
  scores: HeldOutScores;
  headBytes: number;
}

/** train's trainer on these rows, returning the held-out scores it computed and the size of the head it wrote. */
async function crossValidate(
  embeddings: Float32Array,
  labels: string[],
  classes: string[],
  options: TrainHeadOptions,
): Promise<Scored> {
  let predictions: HeldOutPredictions | undefined;
  const head = await trainHead(embeddings, labels, { ...options, classes, onHeldOut: (p) => (predictions = p) });
  if (!predictions)
    throw new EdgetlError(
      'train-input',
      'the head produced no held-out predictions (each class needs at least 2 images)',
    );
  return { scores: scoreHeldOut(predictions), headBytes: Buffer.byteLength(head.serialize()) };
}

function emptyCandidate(ref: CandidateRef): CandidateResult {
  return {
    backbone: ref.backbone,
    id: ref.id,
    status: 'failed',
    accuracy: null,
    balancedAccuracy: null,
    foldAccuracy: [],
    modelBytes: null,
    headBytes: null,
    negativeTransfer: null,
    negativeTransferReason: null,
    gainOverBaseline: null,
    withinBudget: null,
    budgetNotes: [],
    pareto: false,
    ...UNKNOWN_COST,
    cost: { source: 'unknown', note: 'not measured' },
    seconds: { embedding: 0, crossValidation: 0, cost: 0 },
    embedded: { images: 0, computed: 0, cacheHits: 0, skipped: 0 },
  };
}

/** The labelled folder a selection runs on: its images in scan order, with their labels. */
interface SelectionData {
  root: string;
  classes: string[];
  paths: string[];
  labelOf: string[];
  indexOfPath: Map<string, number>;
}

/** Where the cost figures come from: measured here (with the profile's execution settings) or committed results. */
interface CostSource {
  loaded: LoadedProfile | undefined;
  costHere: boolean;
  deviceNote: string;
  execution: ProfileExecution | undefined;
}

/** What every step of one selection shares. */
interface SelectionContext {
  data: SelectionData;
  options: SelectOptions;
  signal: AbortSignal | undefined;
  emit: (event: SelectProgress) => void;
  /** Number of candidates. */
  count: number;
  train: Omit<TrainHeadOptions, 'classes'>;
  baseline: RawPixelBaseline;
  costSource: CostSource;
  /** Preprocessing ms per image by spec: candidates with the same preprocessing share one measurement. */
  preprocessBySpec: Map<string, { msPerImage: number; images: number; from: string }>;
  memory: PendingMemory;
  warnings: string[];
  /** Held-out scores of every candidate that got as far as cross-validation. */
  scoresOf: Map<CandidateResult, HeldOutScores>;
}

/** A candidate's embeddings, rows sorted in scan order (so folds pair with the baseline's). */
interface CandidateEmbeddings {
  rows: number[];
  embeddings: Float32Array;
  dim: number;
  /** The backbone's preprocessing, as a key of `preprocessBySpec`. */
  specKey: string;
}

async function selectionData(root: string, warnings: string[]): Promise<SelectionData> {
  const scan = await scanImageFolder(root);
  if (scan.classes === null)
    throw new EdgetlError(
      'usage',
      `${root} holds images but no class folders: put each class in its own folder (${root}/<class>/*.jpg)`,
      { file: root },
    );
  if (scan.classes.length < 2)
    throw new EdgetlError(
      'usage',
      `${root} has only ${scan.classes.length === 1 ? `one class (${scan.classes[0]})` : 'no class'}: a selection needs at least 2 classes`,
      { file: root },
    );
  warnings.push(...scan.warnings);
  const paths = scan.items.map((i) => i.path);
  return {
    root,
    classes: scan.classes,
    paths,
    labelOf: scan.items.map((i) => i.label!),
    indexOfPath: new Map(paths.map((p, i) => [p, i])),
  };
}

function costSourceFor(loaded: LoadedProfile | undefined, host: ReturnType<typeof collectHostFacts>): CostSource {
  if (!loaded) return { loaded, costHere: true, deviceNote: 'cost measured on this machine', execution: undefined };
  const match = profileDescribesHost(loaded.profile, host);
  return {
    loaded,
    costHere: match.matches,
    execution: match.matches ? loaded.profile.execution : undefined,
    deviceNote: match.matches
      ? `${match.why}: cost measured here with its execution settings`
      : `${match.why}: cost from committed bench results for ${loaded.profile.name} where they exist, else unknown`,
  };
}

/** The backbones named, or every local one (with those left out and why). */
async function candidateRefs(options: SelectOptions): Promise<{ refs: CandidateRef[]; excluded: ExcludedBackbone[] }> {
  if (options.backbones && options.backbones.length > 0)
    return { refs: namedBackbones(options.backbones, { searchPath: options.load?.searchPath }), excluded: [] };
  const local = await localBackbones({ searchPath: options.load?.searchPath });
  if (local.candidates.length === 0)
    throw new EdgetlError(
      'model-missing',
      'no pretrained backbone on this machine: point EDGETL_MODEL_PATH at a folder of .onnx backbones, or name them in the `backbones` option',
    );
  return { refs: local.candidates, excluded: local.excluded };
}

/** The raw 16x16-pixel baseline: embedded once, then scored on any candidate's rows (once per row set). */
class RawPixelBaseline {
  readonly dim = tensorElementsPerImage(RAW_PIXELS_SPEC);
  rows: { embeddings: Float32Array; positions: number[] } | undefined;
  private readonly scored = new Map<string, Scored>();

  constructor(
    private readonly data: SelectionData,
    private readonly train: Omit<TrainHeadOptions, 'classes'>,
  ) {}

  /** Embeds every photo (undecodable ones left out with a warning). False when interrupted. */
  async embed(context: Pick<SelectionContext, 'options' | 'signal' | 'emit' | 'count' | 'warnings'>): Promise<boolean> {
    const { options, emit, count } = context;
    try {
      const raw = await rawPixelEmbeddings(this.data.paths, {
        useCache: options.useCache,
        cacheDir: options.load?.cacheDir,
        signal: context.signal,
        onProgress: (done, total) => emit({ backbone: 'baseline', index: 0, count, stage: 'baseline', done, total }),
      });
      this.rows = { embeddings: raw.embeddings, positions: raw.items.map((i) => i.index) };
      if (raw.skipped.length > 0)
        context.warnings.push(
          `${raw.skipped.length} image(s) could not be decoded and are left out (first: ${raw.skipped[0]!.path}: ${raw.skipped[0]!.reason})`,
        );
      return true;
    } catch (error) {
      if (!isAbort(error, context.signal)) throw error;
      return false;
    }
  }

  /** The baseline scored on exactly these rows (the rows a candidate embedded), so folds and rows pair. */
  async on(rows: number[]): Promise<Scored> {
    const key = rows.join(',');
    const hit = this.scored.get(key);
    if (hit) return hit;
    const where = new Map(this.rows!.positions.map((p, i) => [p, i]));
    const positions = rows.map((r) => where.get(r));
    if (positions.some((p) => p === undefined))
      throw new EdgetlError('internal', 'a photo the backbone embedded could not be decoded for the baseline');
    const scored = await crossValidate(
      subsetRows(this.rows!.embeddings, this.dim, positions as number[]),
      rows.map((r) => this.data.labelOf[r]!),
      this.data.classes,
      this.train,
    );
    this.scored.set(key, scored);
    return scored;
  }
}

/** The memory probe of the last candidate measured here: its figure is a peak, so it may overlap the next embedding. */
class PendingMemory {
  private pending: { result: CandidateResult; probe: Promise<MemoryProbeResult> } | undefined;

  start(result: CandidateResult, probe: Promise<MemoryProbeResult>): void {
    this.pending = { result, probe };
  }

  /** Waits for the running probe (never while a timing is measured) and records its figure. */
  async settle(signal: AbortSignal | undefined): Promise<void> {
    if (!this.pending) return;
    const { result, probe } = this.pending;
    this.pending = undefined;
    const memory = await probe;
    if ('peakRssMb' in memory) result.peakRssMb = memory.peakRssMb;
    else if (!aborted(signal)) result.cost.note += `; peak memory not measured: ${memory.error}`;
  }
}

type CandidateProgress = (stage: SelectProgress['stage'], done?: number, total?: number, message?: string) => void;

/** 1. Embeddings, once, through the cache. */
async function embedCandidate(
  context: SelectionContext,
  ref: CandidateRef,
  result: CandidateResult,
  progress: CandidateProgress,
): Promise<CandidateEmbeddings> {
  const { data, options } = context;
  let backbone: Backbone | undefined;
  try {
    progress('embedding', 0, data.paths.length);
    const embedStart = performance.now();
    backbone = await Backbone.load(ref.load, { download: false, ...options.load });
    result.sha256 = backbone.sha256;
    result.embeddingDim = backbone.embeddingDim;
    const specKey = JSON.stringify(backbone.preprocess);
    const embedded = await embedFolder(backbone, data.root, {
      useCache: options.useCache,
      signal: context.signal,
      onProgress: (done, total) => progress('embedding', done, total),
    });
    await backbone.close();
    backbone = undefined;
    result.seconds.embedding = round((performance.now() - embedStart) / 1000, 3);
    result.embedded = {
      images: embedded.items.length,
      computed: embedded.computed,
      cacheHits: embedded.cacheHits,
      skipped: embedded.skipped.length,
    };
    const rows = embedded.items.map((item) => data.indexOfPath.get(item.path)!);
    const order = rows.map((row, position) => ({ row, position })).sort((a, b) => a.row - b.row);
    return {
      rows: order.map((o) => o.row),
      embeddings: subsetRows(
        embedded.embeddings,
        embedded.dim,
        order.map((o) => o.position),
      ),
      dim: embedded.dim,
      specKey,
    };
  } catch (error) {
    await backbone?.close().catch(() => undefined);
    throw error;
  }
}

/** 2. Held-out accuracy with train's own protocol, and the baseline on the same rows. */
async function scoreCandidate(
  context: SelectionContext,
  ref: CandidateRef,
  result: CandidateResult,
  embedded: CandidateEmbeddings,
): Promise<void> {
  const cvStart = performance.now();
  const scored = await crossValidate(
    embedded.embeddings,
    embedded.rows.map((r) => context.data.labelOf[r]!),
    context.data.classes,
    {
      ...context.train,
      backbone: { id: ref.id, sha256: result.sha256!, embeddingDim: embedded.dim, preprocess: null },
    },
  );
  result.seconds.crossValidation = round((performance.now() - cvStart) / 1000, 3);
  result.accuracy = round(scored.scores.accuracy, 6);
  result.balancedAccuracy = round(scored.scores.balancedAccuracy, 6);
  result.foldAccuracy = scored.scores.foldAccuracy.map((v) => round(v, 6));
  result.headBytes = scored.headBytes;
  context.scoresOf.set(result, scored.scores);
  if (context.baseline.rows) {
    const base = await context.baseline.on(embedded.rows);
    const verdict = transferVerdict(scored.scores, base.scores, RAW_PIXELS_NAME);
    result.negativeTransfer = verdict.negativeTransfer;
    result.negativeTransferReason = verdict.reason;
    result.gainOverBaseline = {
      points: round(verdict.gainPoints, 2),
      standardErrorPoints: round(verdict.standardErrorPoints, 2),
    };
  }
}

/** 3. Cost on the device: measured here (the memory probe left running), or from committed bench results. */
async function costCandidate(
  context: SelectionContext,
  ref: CandidateRef,
  result: CandidateResult,
  embedded: CandidateEmbeddings,
): Promise<void> {
  const { options, signal, costSource, preprocessBySpec } = context;
  const costStart = performance.now();
  const resolved = await resolveBackbone(ref.load, {
    download: false,
    ...(options.load?.searchPath ? { searchPath: options.load.searchPath } : {}),
  });
  result.path = resolved.path;
  result.modelBytes = statSync(resolved.path).size;
  let cost: CostFigures;
  await context.memory.settle(signal);
  if (costSource.costHere) {
    const measured = await measureCostHere(resolved.path, context.data.root, {
      execution: costSource.execution,
      signal,
      image: context.data.paths[embedded.rows[0]!],
      preprocess: preprocessBySpec.get(embedded.specKey),
    });
    cost = measured.figures;
    if (cost.preprocessMsPerImage !== null && !preprocessBySpec.has(embedded.specKey)) {
      preprocessBySpec.set(embedded.specKey, {
        msPerImage: cost.preprocessMsPerImage,
        images: measured.results.preprocess[0]?.images ?? 0,
        from: ref.id,
      });
    }
    context.warnings.push(
      ...measured.results.warnings.filter((w) => !w.startsWith('load average')).map((w) => `${ref.id}: ${w}`),
    );
    // The probe's figure is a peak, which the next candidate's embedding does not change: let them overlap.
    context.memory.start(result, measured.probeMemory(signal));
  } else {
    cost = committedCost(costSource.loaded!.profile.name, result.sha256!);
  }
  result.seconds.cost = round((performance.now() - costStart) / 1000, 3);
  const { source, note, ...figures } = cost;
  Object.assign(result, figures);
  result.cost = { source, note };
}

/**
 * One candidate, embedded, scored and costed. Never throws for a candidate that cannot run (it is recorded as
 * failed); returns true when an abort interrupted it.
 */
async function evaluateCandidate(
  context: SelectionContext,
  result: CandidateResult,
  ref: CandidateRef,
  i: number,
): Promise<boolean> {
  const { signal } = context;
  const progress: CandidateProgress = (stage, done, total, message) =>
    context.emit({ backbone: ref.id, index: i + 1, count: context.count, stage, done, total, message });
  try {
    const embedded = await embedCandidate(context, ref, result, progress);
    if (aborted(signal)) throw new EdgetlError('aborted', 'interrupted');
    progress('cross-validation');
    await scoreCandidate(context, ref, result, embedded);
    if (aborted(signal)) throw new EdgetlError('aborted', 'interrupted');
    progress('cost');
    await costCandidate(context, ref, result, embedded);
    if (aborted(signal)) throw new EdgetlError('aborted', 'interrupted');
    result.status = 'ok';
    progress(
      'done',
      undefined,
      undefined,
      `accuracy ${(100 * result.accuracy!).toFixed(1)}%${result.msPerImage !== null ? `, ${result.msPerImage.toFixed(2)} ms/image` : ''}${result.negativeTransfer ? ', negative transfer' : ''}`,
    );
    return false;
  } catch (error) {
    if (isAbort(error, signal)) {
      result.status = 'interrupted';
      result.error = 'interrupted before this candidate finished';
      return true;
    }
    result.status = 'failed';
    result.error = describeError(error);
    progress('done', undefined, undefined, `failed: ${result.error}`);
    return false;
  }
}

/**
 * The decision over the candidates that were scored (an interrupted one keeps its accuracy if it got one): budget
 * verdicts and the Pareto front on each, the recommendation when their rows pair.
 */
function decide(
  context: SelectionContext,
  results: CandidateResult[],
  budgets: Budgets,
): { decision: Recommendation; front: string[] } {
  const { scoresOf, warnings } = context;
  const ranked = results
    .filter((r) => scoresOf.has(r))
    .map((r) => ({
      result: r,
      ranked: {
        backbone: r.backbone,
        label: r.id,
        scores: scoresOf.get(r)!,
        msPerImage: r.msPerImage,
        peakRssMb: r.peakRssMb,
      },
    }));
  // Paired comparisons need the same rows: rank on the rows every scored candidate embedded.
  const rowSets = new Set(ranked.map((r) => r.ranked.scores.rows.join(',')));
  if (rowSets.size > 1)
    warnings.push(
      'the candidates embedded different subsets of the photos (some failed for one backbone only): their accuracies are not paired row for row, and ties are judged on the rows each one has',
    );
  for (const { result, ranked: r } of ranked) {
    const check = checkBudgets(r, budgets);
    result.withinBudget = check.status;
    result.budgetNotes = check.notes;
  }
  const comparable = rowSets.size <= 1 ? ranked.map((r) => r.ranked) : [];
  const decision = comparable.length > 0 ? recommend(comparable, budgets) : recommend([], budgets);
  const front = paretoFront(ranked.map((r) => r.ranked));
  for (const { result } of ranked) result.pareto = front.includes(result.backbone);
  if (decision.recommended && results.find((r) => r.backbone === decision.recommended)?.negativeTransfer) {
    warnings.push(
      `the recommended ${results.find((r) => r.backbone === decision.recommended)!.id} does not clearly beat raw pixels either: no candidate's features clearly help on these photos`,
    );
  }
  return { decision, front };
}

/** What one selection found, as `selectBackbone` returns it. */
interface SelectionOutcome {
  headType: HeadType;
  hostStart: ReturnType<typeof collectHostFacts>;
  /** performance.now() at the start. */
  started: number;
  results: CandidateResult[];
  excluded: ExcludedBackbone[];
  budgets: Budgets & { sources: string[] };
  baselineScores: Scored | undefined;
  baselineSeconds: number;
  decision: Recommendation;
  front: string[];
  interrupted: boolean;
}

function selectionResult(context: SelectionContext, outcome: SelectionOutcome): SelectResult {
  const { data, train, costSource, warnings } = context;
  const { headType, hostStart, started, results, excluded, budgets, baselineScores, baselineSeconds } = outcome;
  const { decision, front, interrupted } = outcome;
  const root = data.root;
  const loaded = costSource.loaded;
  const sum = (f: (r: CandidateResult) => number) =>
    round(
      results.reduce((s, r) => s + f(r), 0),
      3,
    );
  return {
    dir: root,
    classes: data.classes,
    images: data.paths.length,
    head: headType,
    crossValidation: `${baselineScores?.scores.source ?? [...context.scoresOf.values()][0]?.source ?? 'not run'} predictions of the ${headType} head, as \`edgetl train\` reports them (seed ${train.seed})`,
    candidates: results,
    excluded,
    baseline: {
      name: RAW_PIXELS_NAME,
      dim: context.baseline.dim,
      accuracy: baselineScores ? round(baselineScores.scores.accuracy, 6) : null,
      balancedAccuracy: baselineScores ? round(baselineScores.scores.balancedAccuracy, 6) : null,
      foldAccuracy: baselineScores?.scores.foldAccuracy.map((v) => round(v, 6)) ?? [],
      seconds: round(baselineSeconds, 3),
    },
    recommended: decision.recommended,
    mostAccurate: decision.mostAccurate,
    tied: decision.tied,
    rule: decision.rule,
    reason: interrupted
      ? `Interrupted: ${decision.reason} (only the candidates finished before the interruption were compared)`
      : decision.reason,
    pareto: front,
    budgets,
    device: {
      profile: loaded?.profile.name ?? null,
      costFrom: costSource.costHere
        ? 'this machine'
        : results.some((r) => r.cost.source === 'committed bench results')
          ? 'committed bench results'
          : 'unknown',
      note: costSource.deviceNote,
    },
    host: {
      cpu: hostStart.cpuModel,
      logicalCores: hostStart.logicalCores,
      loadAverageStart: hostStart.loadAverage,
      loadAverageEnd: collectHostFacts().loadAverage,
    },
    interrupted,
    warnings,
    seconds: {
      total: round((performance.now() - started) / 1000, 3),
      baseline: round(baselineSeconds, 3),
      embedding: sum((r) => r.seconds.embedding),
      crossValidation: sum((r) => r.seconds.crossValidation),
      cost: sum((r) => r.seconds.cost),
    },
  };
}

/**
 * Compare backbones on a labelled folder (`<dir>/<class>/*.jpg`, the training data only) and recommend one. Never
 * throws for one candidate that cannot run: it is reported as failed. An abort (`signal`) stops after the current
 * step and returns what was done, with `interrupted: true`.
 */
export async function selectBackbone(dir: string, options: SelectOptions = {}): Promise<SelectResult> {
  const started = performance.now();
  const root = resolve(dir);
  const signal = options.signal;
  const emit = options.onProgress ?? (() => undefined);
  const headType: HeadType = options.head ?? 'linear';
  const hostStart = collectHostFacts();
  const warnings: string[] = [];

  const data = await selectionData(root, warnings);
  const loaded = options.profile ? loadProfile(options.profile) : undefined;
  const budgets = budgetsFor(loaded?.profile, options);
  const costSource = costSourceFor(loaded, hostStart);
  const { refs, excluded } = await candidateRefs(options);
  const train: Omit<TrainHeadOptions, 'classes'> = {
    type: headType,
    seed: options.seed ?? 0,
    ...(options.folds ? { folds: options.folds } : {}),
  };
  const context: SelectionContext = {
    data,
    options,
    signal,
    emit,
    count: refs.length,
    train,
    baseline: new RawPixelBaseline(data, train),
    costSource,
    preprocessBySpec: new Map(),
    memory: new PendingMemory(),
    warnings,
    scoresOf: new Map(),
  };

  // Baseline first: cheap, and every candidate's verdict can then be given as soon as it is scored.
  const baselineStart = performance.now();
  emit({ backbone: 'baseline', index: 0, count: refs.length, stage: 'baseline', done: 0, total: data.paths.length });
  let interrupted = !(await context.baseline.embed(context));
  let baselineScores: Scored | undefined;
  if (context.baseline.rows && !interrupted) {
    baselineScores = await context.baseline.on(context.baseline.rows.positions);
  }
  const baselineSeconds = (performance.now() - baselineStart) / 1000;

  const results: CandidateResult[] = [];
  for (let i = 0; i < refs.length && !interrupted; i++) {
    if (aborted(signal)) {
      interrupted = true;
      break;
    }
    const result = emptyCandidate(refs[i]!);
    results.push(result);
    interrupted = await evaluateCandidate(context, result, refs[i]!, i);
  }
  await context.memory.settle(signal);
  const { decision, front } = decide(context, results, budgets);
  if (hostStart.loadAverage[0]! > hostStart.logicalCores * 0.5) {
    warnings.push(
      `load average ${hostStart.loadAverage[0]} on ${hostStart.logicalCores} logical cores at the start: other work shared the machine, so the times are pessimistic and noisy`,
    );
  }
  return selectionResult(context, {
    headType,
    hostStart,
    started,
    results,
    excluded,
    budgets,
    baselineScores,
    baselineSeconds,
    decision,
    front,
    interrupted,
  });
}
