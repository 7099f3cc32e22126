/**
 * The benchmark harness: for each backbone x provider x batch size of a device profile, session creation, the cold
 * first run and the steady-state latency distribution (MLPerf-style windows, seeded inputs); preprocessing alone on
 * real images; end-to-end throughput through the real embedding pipeline and its efficiency; head training and
 * prediction; memory; budget verdicts. Results fill a live `BenchResults` object so an interrupted run (Ctrl-C)
 * still leaves everything measured so far, marked incomplete.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { prepareBackbone as prepareBackboneParts } from '../models/prepare-backbone.js';
import { createOrtDenseMath } from '../execution/dense-math-ort.js';
import { decodeToRgb } from '../preprocess/node-image.js';
import { tensorElementsPerImage, writePixelsToTensor } from '../../core/preprocess/tensor.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { scanImageFolder } from '../embed/dataset.js';
import { trainHead } from '../../core/heads/train.js';
import { maxDuration, round } from './run-figures.js';
import { EndToEndMeasurement } from './end-to-end.js';
import { InferenceMeasurement, type PreparedBackbone } from './inference.js';
import { describeError } from '../../core/util/errors.js';
import type { ExecutionProviderName } from '../../core/execution/types.js';
import { evaluateBudgets } from './budgets.js';
import { collectHostFacts } from './host.js';
import {
  backboneSettings,
  resolveBackboneReference,
  resolveImageFolder,
  type DeviceProfile,
  type HeadKind,
  type LoadedProfile,
} from './profile.js';
import {
  RESULTS_SCHEMA,
  type BackboneFacts,
  type BenchResults,
  type HeadRun,
  type InferenceRun,
  type PreprocessRun,
} from './results.js';
import { median, seededNormal, summarize } from '../../core/bench/stats.js';
import { syntheticImageFolder } from './synthetic-images.js';

export interface BenchProgress {
  /** `run`: an inference run; `preprocess`, `e2e`, `heads`: the other stages; `note`: a one-off message. */
  stage: 'prepare' | 'run' | 'preprocess' | 'e2e' | 'heads' | 'note';
  /** Finished (true) or in progress (false, with done/total). */
  finished: boolean;
  label: string;
  done?: number;
  total?: number;
  message?: string;
}

export interface BenchOptions {
  /** Stop as soon as possible; the results say what was measured and are marked incomplete. */
  signal?: AbortSignal;
  onProgress?: (event: BenchProgress) => void;
  /** Skip the end-to-end, preprocessing or head stages (inference runs only). */
  inferenceOnly?: boolean;
}

export const METHOD_TEXT = {
  percentiles: 'linear interpolation between closest ranks (Hyndman-Fan type 7, NumPy default) over the timed runs',
  noise:
    'stated per run, relative to its median: the largest of the half-width of the 95% bootstrap interval of the median (1000 seeded resamples), half the spread of the medians of 5 consecutive time blocks, and half the spread of the medians of the fresh sessions the timed window is split over; never below the measurement.noiseFloor of the profile (the drift between runs it measured on its device class), when it has one',
  timing:
    'one cold first run (reported apart), warm-up runs discarded, then timed runs until both the minimum count and the minimum duration are reached, split over fresh sessions (measurement.sessions, default 2, each warmed up); the sessions of all runs take turns (session 1 of every run, then session 2 of every run...), so each run samples the whole inference phase; each sample is one awaited session.run on a seeded input tensor already in memory (preprocessing timed apart); images/s = batch x timed runs / time spent in them',
  bestSession:
    "the median of the run's fastest session, with its own noise: the larger of the 95% bootstrap interval half-width of that median and half the gap to the second-fastest session (never below the profile's noise floor). Other work on the machine only adds time, and comes and goes over tens of seconds; with sessions spread over the whole run, the fastest is the least disturbed and the most repeatable figure (the reasoning of Python's timeit and Julia's BenchmarkTools). `bench compare` and bench/raw-onnxruntime-loop.mjs check it",
  memory:
    'resident set size sampled every 10 ms from session creation to the end of the run (process-wide peak; addedMb is the rise over the RSS before the session existed)',
};

function nowIso(): string {
  return new Date().toISOString();
}

function specKey(spec: PreprocessSpec): string {
  return `${spec.layout} ${spec.width}x${spec.height} ${spec.resize}${spec.resize === 'shorter-side' ? ` ${spec.resizeTo}` : ''} crop ${spec.crop} ${spec.channelOrder} scale ${round(spec.scale, 6)} mean ${spec.mean.join('/')} std ${spec.std.join('/')}`;
}

/** An empty results document for a profile; `runBench` fills it in place. */
export function createResults(loaded: LoadedProfile): BenchResults {
  const { profile } = loaded;
  const m = profile.measurement;
  return {
    schema: RESULTS_SCHEMA,
    complete: false,
    incompleteReason: 'not started',
    startedAt: nowIso(),
    finishedAt: nowIso(),
    durationSeconds: 0,
    profile: {
      name: profile.name,
      file: loaded.file,
      sha256: createHash('sha256').update(loaded.text).digest('hex'),
      deviceClass: profile.deviceClass,
      purpose: profile.purpose,
      content: profile,
    },
    host: collectHostFacts(),
    method: {
      warmupRuns: m.warmupRuns,
      minRuns: m.minRuns,
      minDurationMs: m.minDurationMs,
      maxDurationMs: maxDuration(profile),
      seed: m.seed ?? 42,
      ...METHOD_TEXT,
    },
    imageSource: 'not prepared yet',
    runs: [],
    preprocess: [],
    endToEnd: [],
    heads: [],
    budgets: [],
    loadAverageAtEnd: [],
    warnings: [],
  };
}

export async function prepareBackbone(reference: string): Promise<PreparedBackbone> {
  const { resolved, spec: backboneSpec, extractor } = await prepareBackboneParts(reference, { download: false });
  const imageInput = extractor.facts.inputs[0];
  const spec = backboneSpec.preprocess;
  const [modelInfo, runInfo] = await Promise.all([stat(resolved.path), stat(extractor.path)]);
  const info: BackboneFacts = {
    reference,
    id: resolved.id,
    path: resolved.path,
    sha256: resolved.sha256,
    modelBytes: modelInfo.size,
    runPath: extractor.path,
    runBytes: runInfo.size,
    inputName: imageInput?.name,
    outputName: extractor.facts.outputs[0]?.name,
    inputDims: imageInput?.dims.map((d) => (typeof d === 'number' ? d : -1)),
    embeddingDim: extractor.dim,
    batch: extractor.facts.batch,
    quantization: extractor.facts.quantization,
  };
  if (extractor.facts.macsPerImage !== null) info.macsPerImage = extractor.facts.macsPerImage;
  return { reference, resolved, facts: extractor.facts, spec, runPath: extractor.path, dim: extractor.dim, info };
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await task(item);
    }
  });
  await Promise.all(workers);
}

class Interrupted extends Error {}

interface InterleavedRun {
  measurement: InferenceMeasurement;
  /** `[i/n] backbone provider batch b`, and the same with the session being measured. */
  label: string;
  sessionLabel: string;
  /** Backbone and provider: when a provider cannot start, its other batch sizes are not tried. */
  key: string;
}

/** Whether a measurement with `turns` turns spread evenly over `rounds` rounds takes one in `round`. */
export function takesTurn(round: number, turns: number, rounds: number): boolean {
  for (let i = 0; i < turns; i++) if (Math.floor((i * rounds) / turns) === round) return true;
  return false;
}

/**
 * Every repeated measurement takes turns, round-robin: session 1 of every inference run, then session 2 of each,
 * and so on, with the end-to-end passes spread evenly over the same rounds. Each run's samples then span the whole
 * benchmark instead of one stretch of it, so the spread between its sessions (or passes) shows how much the
 * machine's speed wandered (a neighbour's load on a shared host comes and goes over tens of seconds to minutes),
 * and its fastest session is likely to come from an undisturbed stretch. Throws `Interrupted` after deriving the
 * figures of what was measured.
 */
async function measureInTurns(
  inference: InterleavedRun[],
  endToEnd: EndToEndMeasurement[],
  results: BenchResults,
  options: { started: number; signal?: AbortSignal; emit: (event: BenchProgress) => void; minRuns: number },
): Promise<void> {
  const rounds = Math.max(0, ...inference.map((e) => e.measurement.sessions), ...endToEnd.map((e) => e.repeats));
  const unavailable = new Map<string, string>();
  const finished = new Set<InferenceMeasurement>();
  const finishInference = async (entry: InterleavedRun) => {
    if (finished.has(entry.measurement)) return;
    finished.add(entry.measurement);
    await entry.measurement.finish();
    options.emit({ stage: 'run', finished: true, label: entry.label, message: describeRun(entry.measurement.run) });
  };
  let interrupted = false;
  const aborted = () => {
    if (options.signal?.aborted) interrupted = true;
    return interrupted;
  };
  try {
    for (let round = 0; round < rounds && !interrupted; round++) {
      for (const entry of inference) {
        const { measurement } = entry;
        if (measurement.done || !takesTurn(round, measurement.sessions, rounds)) continue;
        if (aborted()) break;
        const problem = unavailable.get(entry.key);
        if (problem) {
          measurement.markUnavailable(problem);
        } else {
          entry.sessionLabel = `${entry.label} session ${measurement.sessionsMeasured + 1}/${measurement.sessions}`;
          options.emit({ stage: 'run', finished: false, label: entry.sessionLabel, done: 0, total: options.minRuns });
          await measurement.measureSession((performance.now() - options.started) / 1000);
          if (measurement.run.status === 'unavailable')
            unavailable.set(entry.key, measurement.run.reason ?? 'provider unavailable');
          if (measurement.run.status === 'interrupted') interrupted = true;
        }
        if (measurement.done) await finishInference(entry);
        if (interrupted) break;
      }
      for (const entry of endToEnd) {
        if (interrupted) break;
        if (entry.done || !takesTurn(round, entry.repeats, rounds)) continue;
        if (aborted()) break;
        options.emit({
          stage: 'e2e',
          finished: false,
          label: `end-to-end ${entry.run.id} pass ${entry.passes + 1}/${entry.repeats}`,
        });
        await entry.measurePass(options.signal);
        if (entry.run.status === 'interrupted') interrupted = true;
      }
    }
  } finally {
    for (const entry of inference) await finishInference(entry);
    // End-to-end figures last: their efficiency needs the inference runs' figures.
    for (const entry of endToEnd) {
      const run = entry.finish();
      results.endToEnd.push(run);
      options.emit({
        stage: 'e2e',
        finished: true,
        label: `end-to-end ${run.id}`,
        message: run.imagesPerSecond
          ? `${run.imagesPerSecond.toFixed(1)} images/s, efficiency ${run.efficiency?.toFixed(2) ?? '?'}`
          : (run.reason ?? run.status),
      });
    }
  }
  if (interrupted) throw new Interrupted();
}

/** What every step of a bench run shares. */
interface BenchRunContext {
  loaded: LoadedProfile;
  profile: DeviceProfile;
  results: BenchResults;
  emit: (event: BenchProgress) => void;
  signal: AbortSignal | undefined;
  seed: number;
  /** A performance profile: runs off a software provider may claim their figures. */
  speedProfile: boolean;
  /** CPU outputs per backbone and batch, that other providers' outputs are compared with. */
  cpuReference: Map<string, Float32Array>;
  /** Inference runs in the profile, and how many have been laid out so far (for `[i/n]` labels). */
  totalRuns: number;
  runIndex: number;
}

type BackboneSetting = ReturnType<typeof backboneSettings>[number];

interface PreparedSetting {
  setting: BackboneSetting;
  prepared: PreparedBackbone;
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Interrupted();
}

function warnIfLoaded(results: BenchResults): void {
  const load = results.host.loadAverage[0] ?? 0;
  if (load > results.host.logicalCores * 0.5) {
    results.warnings.push(
      `load average ${load} at the start on ${results.host.logicalCores} logical cores: other work competes for the machine, so these figures are pessimistic and noisy`,
    );
  }
}

/** A backbone that cannot be prepared: each of its runs recorded as unavailable, with the reason. */
function recordUnavailableBackbone(context: BenchRunContext, setting: BackboneSetting, error: unknown): void {
  for (const provider of context.profile.execution.providers) {
    for (const batch of setting.batchSizes) {
      context.runIndex++;
      context.results.runs.push({
        id: `${setting.id}/${provider}/b${batch}`,
        backbone: {
          reference: setting.id,
          id: setting.id,
          path: '',
          sha256: '',
          modelBytes: 0,
          runPath: '',
          runBytes: 0,
          batch: 'dynamic',
        },
        providerRequested: provider,
        batch,
        status: 'unavailable',
        reason: `backbone not available: ${describeError(error)}`,
        speedClaim: false,
      });
    }
  }
  context.emit({ stage: 'note', finished: true, label: setting.id, message: `skipped: ${describeError(error)}` });
}

/** One inference run recorded in the results; its measurement, unless the graph's fixed batch rules it out. */
function layOutInferenceRun(
  context: BenchRunContext,
  { setting, prepared }: PreparedSetting,
  provider: ExecutionProviderName,
  batch: number,
): InterleavedRun | undefined {
  const { profile, emit } = context;
  context.runIndex++;
  const label = `[${context.runIndex}/${context.totalRuns}] ${prepared.info.id} ${provider} batch ${batch}`;
  const run: InferenceRun = {
    id: `${prepared.info.id}/${provider}/b${batch}`,
    backbone: prepared.info,
    providerRequested: provider,
    batch,
    status: 'failed',
    speedClaim: false,
  };
  context.results.runs.push(run);
  if (typeof prepared.facts.batch === 'number' && prepared.facts.batch !== batch) {
    run.status = 'skipped';
    run.reason = `the graph's batch size is fixed at ${prepared.facts.batch}`;
    emit({ stage: 'run', finished: true, label, message: `skipped: ${run.reason}` });
    return undefined;
  }
  const threads = { intra: setting.intraOpThreads, inter: setting.interOpThreads };
  const entry: InterleavedRun = {
    label,
    sessionLabel: label,
    key: `${prepared.info.id}|${provider}`,
    measurement: new InferenceMeasurement(run, prepared, provider, batch, threads, profile, context.seed, {
      signal: context.signal,
      speedProfile: context.speedProfile,
      cpuReference: context.cpuReference,
      // Called during a session, once `entry` exists; the scheduler names the session in sessionLabel.
      onProgress: (done, elapsedMs) =>
        emit({
          stage: 'run',
          finished: false,
          label: entry.sessionLabel,
          done,
          total: profile.measurement.minRuns,
          message: `${(elapsedMs / 1000).toFixed(1)} s measured`,
        }),
    }),
  };
  return entry;
}

/**
 * Every backbone prepared and every inference run laid out first, so their sessions can take turns. Backbones that
 * cannot be prepared are recorded (their runs unavailable) and left out of the list returned.
 */
async function layOutInference(
  context: BenchRunContext,
  settings: BackboneSetting[],
): Promise<{ backbones: PreparedSetting[]; measurements: InterleavedRun[] }> {
  const backbones: PreparedSetting[] = [];
  const measurements: InterleavedRun[] = [];
  for (const setting of settings) {
    checkAbort(context.signal);
    const reference = resolveBackboneReference(setting.id, context.loaded.file);
    let prepared: PreparedBackbone;
    try {
      context.emit({ stage: 'prepare', finished: false, label: setting.id });
      prepared = await prepareBackbone(reference);
    } catch (error) {
      recordUnavailableBackbone(context, setting, error);
      continue;
    }
    backbones.push({ setting, prepared });
    for (const provider of context.profile.execution.providers) {
      for (const batch of setting.batchSizes) {
        const entry = layOutInferenceRun(context, { setting, prepared }, provider, batch);
        if (entry) measurements.push(entry);
      }
    }
  }
  return { backbones, measurements };
}

/** Preprocessing alone, measured once per distinct preprocessing spec (a backbone sharing one gets a copy). */
async function preprocessRunFor(
  context: BenchRunContext,
  prepared: PreparedBackbone,
  images: string[],
  preprocessBySpec: Map<string, PreprocessRun>,
): Promise<PreprocessRun> {
  const { results, emit } = context;
  const key = specKey(prepared.spec);
  const measured = preprocessBySpec.get(key);
  if (measured) {
    results.preprocess.push({ ...measured, backbone: prepared.info.id });
    return measured;
  }
  checkAbort(context.signal);
  emit({ stage: 'preprocess', finished: false, label: `preprocess ${key}` });
  const preprocess = await measurePreprocess(prepared, images, context.profile, results.imageSource, context.signal);
  preprocessBySpec.set(key, preprocess);
  results.preprocess.push(preprocess);
  emit({
    stage: 'preprocess',
    finished: true,
    label: `preprocess (${prepared.info.id})`,
    message: preprocess.msPerImage
      ? `${preprocess.msPerImage.p50.toFixed(2)} ms/image alone, ${preprocess.imagesPerSecond?.toFixed(1)} images/s on ${preprocess.concurrency} in flight`
      : preprocess.reason,
  });
  return preprocess;
}

/** End-to-end runs through the real pipeline, one per provider and distinct batch: laid out, measured later. */
function layOutEndToEnd(
  context: BenchRunContext,
  { setting, prepared }: PreparedSetting,
  images: string[],
  preprocess: PreprocessRun,
): EndToEndMeasurement[] {
  const { profile } = context;
  const endToEnd: EndToEndMeasurement[] = [];
  const e2eBatches = profile.endToEnd?.batchSizes ?? setting.batchSizes;
  for (const provider of profile.execution.providers) {
    const done = new Set<number>();
    for (const requested of e2eBatches) {
      const batch = typeof prepared.facts.batch === 'number' ? prepared.facts.batch : requested;
      if (done.has(batch)) continue;
      done.add(batch);
      endToEnd.push(
        new EndToEndMeasurement(
          prepared,
          provider,
          batch,
          { intra: setting.intraOpThreads, inter: setting.interOpThreads },
          profile,
          images,
          context.results,
          preprocess,
          context.speedProfile,
        ),
      );
    }
  }
  return endToEnd;
}

/** Head training and prediction, one head type after another. */
async function measureHeads(context: BenchRunContext, heads: NonNullable<DeviceProfile['heads']>): Promise<void> {
  const { emit } = context;
  for (const type of heads.types) {
    checkAbort(context.signal);
    emit({ stage: 'heads', finished: false, label: `head ${type}` });
    const head = await measureHead(type, context.profile, context.signal);
    context.results.heads.push(head);
    emit({
      stage: 'heads',
      finished: true,
      label: `head ${type}`,
      message:
        head.trainSecondsMedian !== undefined
          ? `train ${head.trainSecondsMedian.toFixed(2)} s, predict p50 ${head.predictMsPerEmbedding?.p50.toFixed(4)} ms`
          : head.reason,
    });
  }
}

/**
 * Measures everything the profile asks for, filling `results` as it goes. Returns `results` (complete or not).
 * Never throws for a backbone or provider that cannot run: that run is recorded as `unavailable`/`failed`.
 */
export async function runBench(
  loaded: LoadedProfile,
  results: BenchResults = createResults(loaded),
  options: BenchOptions = {},
): Promise<BenchResults> {
  const { profile } = loaded;
  const started = performance.now();
  const emit = options.onProgress ?? (() => undefined);
  const signal = options.signal;
  results.complete = false;
  results.incompleteReason = 'in progress';
  warnIfLoaded(results);

  try {
    // Images for preprocessing and end-to-end runs.
    let images: string[] = [];
    if (!options.inferenceOnly) {
      emit({ stage: 'prepare', finished: false, label: 'images' });
      images = await prepareImages(profile, loaded.file, results);
    }

    const settings = backboneSettings(profile);
    const context: BenchRunContext = {
      loaded,
      profile,
      results,
      emit,
      signal,
      seed: profile.measurement.seed ?? 42,
      speedProfile: profile.purpose === 'performance',
      cpuReference: new Map(),
      totalRuns: settings.reduce((n, s) => n + s.batchSizes.length * profile.execution.providers.length, 0),
      runIndex: 0,
    };
    const { backbones, measurements } = await layOutInference(context, settings);

    const preprocessBySpec = new Map<string, PreprocessRun>();
    const endToEnd: EndToEndMeasurement[] = [];
    for (const backbone of backbones) {
      if (options.inferenceOnly || images.length === 0) continue;
      const preprocess = await preprocessRunFor(context, backbone.prepared, images, preprocessBySpec);
      if (profile.endToEnd?.enabled === false) continue;
      endToEnd.push(...layOutEndToEnd(context, backbone, images, preprocess));
    }

    await measureInTurns(measurements, endToEnd, results, {
      started,
      signal,
      emit,
      minRuns: profile.measurement.minRuns,
    });

    if (!options.inferenceOnly && profile.heads) await measureHeads(context, profile.heads);
    checkAbort(signal);
    results.complete = true;
    delete results.incompleteReason;
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error;
    results.complete = false;
    results.incompleteReason =
      'interrupted (Ctrl-C or an abort signal): the file holds what was measured before the interruption';
  } finally {
    finishResults(results, profile, started);
  }
  return results;
}

/** Budget verdicts, end time and load: called at the end and on interruption. */
export function finishResults(results: BenchResults, profile: DeviceProfile, startedPerfMs?: number): void {
  results.budgets = evaluateBudgets(profile.budgets ?? [], results);
  results.finishedAt = nowIso();
  results.durationSeconds =
    startedPerfMs !== undefined
      ? round((performance.now() - startedPerfMs) / 1000, 3)
      : round((Date.parse(results.finishedAt) - Date.parse(results.startedAt)) / 1000, 3);
  results.loadAverageAtEnd = collectHostFacts().loadAverage;
}

function describeRun(run: InferenceRun): string {
  if (!run.latencyMsPerBatch) return `${run.status}${run.reason ? `: ${run.reason}` : ''}`;
  const l = run.latencyMsPerBatch;
  const claim = run.speedClaim ? '' : ' (no speed claim)';
  return `p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms per batch, ${run.imagesPerSecond?.toFixed(1)} images/s, noise ±${((run.noise?.relative ?? 0) * 100).toFixed(1)}%${run.correctness ? `, cosine vs cpu ${run.correctness.minCosine.toFixed(5)}` : ''}${claim}`;
}

async function prepareImages(profile: DeviceProfile, profileFile: string, results: BenchResults): Promise<string[]> {
  const spec = profile.images;
  if (spec.folder) {
    const folder = resolveImageFolder(spec.folder, profileFile);
    const found = await scanImageFolder(folder).then(
      (scan) => scan.items.map((item) => item.path),
      (error: unknown) => {
        results.warnings.push(
          `image folder ${folder} not usable (${describeError(error)})${spec.synthetic ? '; using synthetic images' : ''}`,
        );
        return [] as string[];
      },
    );
    if (found.length > 0) {
      const limited = spec.limit ? evenlySpaced(found, spec.limit) : found;
      results.imageSource = `${limited.length} images from ${folder}`;
      return limited;
    }
  }
  if (spec.synthetic) {
    const s = spec.synthetic;
    const files = await syntheticImageFolder({
      count: s.count,
      width: s.width,
      height: s.height,
      seed: s.seed ?? profile.measurement.seed ?? 42,
    });
    results.imageSource = `${files.length} synthetic ${s.width}x${s.height} PNG images (seed ${s.seed ?? profile.measurement.seed ?? 42})`;
    return files;
  }
  results.imageSource = 'none: no usable image folder and no synthetic images';
  results.warnings.push('no images: preprocessing and end-to-end stages skipped');
  return [];
}

/** `count` items spread over the sorted list (every class of a class-folder dataset is represented). */
function evenlySpaced<T>(items: T[], count: number): T[] {
  if (items.length <= count) return items;
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]!);
}

async function measurePreprocess(
  prepared: PreparedBackbone,
  images: string[],
  profile: DeviceProfile,
  source: string,
  signal?: AbortSignal,
): Promise<PreprocessRun> {
  const spec = prepared.spec;
  const count = Math.min(profile.measurement.preprocessImages ?? 64, images.length);
  const minDuration = profile.measurement.preprocessMinDurationMs ?? 2000;
  const run: PreprocessRun = {
    backbone: prepared.info.id,
    spec: specKey(spec),
    images: count,
    source,
    status: 'failed',
  };
  const perImage = tensorElementsPerImage(spec);
  const subset = images.slice(0, count);
  try {
    // Page cache and sharp warm: one pass not timed.
    const buffer = new Float32Array(perImage);
    const once = async (path: string) => {
      const decoded = await decodeToRgb(path, spec);
      writePixelsToTensor(decoded.pixels, decoded.width, decoded.height, 3, spec, buffer, 0);
    };
    await once(subset[0]!);
    const samples: number[] = [];
    const phaseStart = performance.now();
    for (let i = 0; samples.length < count || performance.now() - phaseStart < minDuration; i++) {
      if (signal?.aborted) {
        run.status = 'interrupted';
        break;
      }
      const t0 = performance.now();
      await once(subset[i % subset.length]!);
      samples.push(performance.now() - t0);
      if (performance.now() - phaseStart > maxDuration(profile)) break;
    }
    if (samples.length > 0) run.msPerImage = summarize(samples);

    // The whole machine: as many images in flight as the pipeline decodes at once (one per core).
    const concurrency = availableParallelism();
    const buffers = Array.from({ length: concurrency }, () => new Float32Array(perImage));
    let decoded = 0;
    const parallelStart = performance.now();
    while (!signal?.aborted && (decoded < count || performance.now() - parallelStart < minDuration)) {
      let slot = 0;
      await pool(subset, concurrency, async (path) => {
        const mine = buffers[slot++ % concurrency]!;
        const image = await decodeToRgb(path, spec);
        writePixelsToTensor(image.pixels, image.width, image.height, 3, spec, mine, 0);
        decoded++;
      });
      if (performance.now() - parallelStart > maxDuration(profile)) break;
    }
    const seconds = (performance.now() - parallelStart) / 1000;
    if (decoded > 0) {
      run.imagesPerSecond = round(decoded / seconds, 3);
      run.concurrency = concurrency;
    }
    if (run.status !== 'interrupted') run.status = 'ok';
  } catch (error) {
    run.status = 'failed';
    run.reason = describeError(error);
  }
  return run;
}

/** Seeded Gaussian classes: class centres N(0, 1), rows = centre + N(0, 2^2) per value. */
export function syntheticEmbeddings(
  samples: number,
  dim: number,
  classes: number,
  seed: number,
): { data: Float32Array; labels: string[] } {
  const normal = seededNormal(seed);
  const centres = new Float32Array(classes * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = normal();
  const data = new Float32Array(samples * dim);
  const labels: string[] = [];
  for (let r = 0; r < samples; r++) {
    const c = r % classes;
    labels.push(`class-${String(c).padStart(3, '0')}`);
    for (let d = 0; d < dim; d++) data[r * dim + d] = centres[c * dim + d]! + 2 * normal();
  }
  return { data, labels };
}

async function measureHead(type: HeadKind, profile: DeviceProfile, signal?: AbortSignal): Promise<HeadRun> {
  const spec = profile.heads!;
  const run: HeadRun = { type, samples: spec.samples, dim: spec.dim, classes: spec.classes, status: 'failed' };
  try {
    const { data, labels } = syntheticEmbeddings(spec.samples, spec.dim, spec.classes, spec.seed ?? 7);
    const math = await createOrtDenseMath();
    const trainSeconds: number[] = [];
    let head: Awaited<ReturnType<typeof trainHead>> | undefined;
    for (let r = 0; r < (spec.repeats ?? 1); r++) {
      if (signal?.aborted) break;
      const t0 = performance.now();
      head = await trainHead(data, labels, { type, seed: spec.seed ?? 7, math });
      trainSeconds.push(round((performance.now() - t0) / 1000, 4));
    }
    if (!head) {
      run.status = 'interrupted';
      return run;
    }
    run.trainSeconds = trainSeconds;
    run.trainSecondsMedian = median(trainSeconds);
    let correct = 0;
    const predictions = spec.predictions ?? 2000;
    const samples: number[] = [];
    for (let i = 0; i < predictions; i++) {
      const row = i % spec.samples;
      const embedding = data.subarray(row * spec.dim, (row + 1) * spec.dim);
      const t0 = performance.now();
      const prediction = head.predict(embedding);
      samples.push(performance.now() - t0);
      if (i < spec.samples && prediction.label === labels[row]) correct++;
    }
    run.predictMsPerEmbedding = summarize(samples);
    run.trainAccuracy = round(correct / Math.min(predictions, spec.samples), 4);
    run.status = 'ok';
  } catch (error) {
    run.status = 'failed';
    run.reason = describeError(error);
  }
  return run;
}
