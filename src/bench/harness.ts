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
import { resolveBackbone, type ResolvedBackbone } from '../models/resolve.js';
import { backboneSpecFor } from '../models/backbone-spec.js';
import { prepareFeatureExtractor } from '../models/feature-extractor-cache.js';
import type { ModelFacts } from '../models/inspect.js';
import { createSession, type BackboneSession } from '../execution/session.js';
import { createOrtDenseMath } from '../execution/dense-math-ort.js';
import type { ExecutionOptions, ExecutionProviderName } from '../execution/types.js';
import { decodeToRgb } from '../preprocess/node-image.js';
import { tensorDims, tensorElementsPerImage, writePixelsToTensor } from '../preprocess/tensor.js';
import type { PreprocessSpec } from '../preprocess/spec.js';
import { scanImageFolder } from '../embed/dataset.js';
import { Backbone } from '../embed/backbone.js';
import { trainHead } from '../heads/train.js';
import { SessionSamples, maxDuration, recordEndToEndFigures, round } from './run-figures.js';
import { describeError } from '../util/errors.js';
import { evaluateBudgets } from './budgets.js';
import { collectHostFacts } from './host.js';
import { measureRepeated, RssSampler } from './measure.js';
import { backboneSettings, resolveBackboneReference, resolveImageFolder, type DeviceProfile, type HeadKind, type LoadedProfile } from './profile.js';
import {
  RESULTS_SCHEMA,
  type BackboneFacts,
  type BenchResults,
  type EndToEndRun,
  type HeadRun,
  type InferenceRun,
  type PreprocessRun,
  type ProviderFacts,
} from './results.js';
import { median, seededNormal, summarize } from './stats.js';
import { syntheticImageFolder, syntheticTensor } from './synthetic-images.js';

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
    'stated per run, relative to its median: the largest of the half-width of the 95% bootstrap interval of the median (1000 seeded resamples), half the spread of the medians of 5 consecutive time blocks, and half the spread of the medians of the fresh sessions the timed window is split over',
  timing:
    'one cold first run (reported apart), warm-up runs discarded, then timed runs until both the minimum count and the minimum duration are reached, split over fresh sessions (measurement.sessions, default 2, each warmed up); each sample is one awaited session.run on a seeded input tensor already in memory (preprocessing timed apart); images/s = batch x timed runs / time spent in them',
  memory: 'resident set size sampled every 10 ms from session creation to the end of the run (process-wide peak; addedMb is the rise over the RSS before the session existed)',
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


export interface PreparedBackbone {
  reference: string;
  resolved: ResolvedBackbone;
  facts: ModelFacts;
  spec: PreprocessSpec;
  runPath: string;
  dim: number;
  info: BackboneFacts;
}

export async function prepareBackbone(reference: string): Promise<PreparedBackbone> {
  const resolved = await resolveBackbone(reference, { download: false });
  const stated = backboneSpecFor(resolved);
  const extractor = await prepareFeatureExtractor(resolved.path, { embeddingTensor: stated.embeddingTensor });
  const imageInput = extractor.facts.inputs[0];
  const spec = backboneSpecFor(resolved, {}, { inputDims: imageInput?.dims }).preprocess;
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

function executionOptions(profile: DeviceProfile, provider: ExecutionProviderName, threads: { intra?: number; inter?: number }): ExecutionOptions {
  const e = profile.execution;
  const options: ExecutionOptions = { ep: provider, strictEp: true };
  const intra = threads.intra ?? e.intraOpThreads;
  const inter = threads.inter ?? e.interOpThreads;
  if (intra) options.intraOpThreads = intra;
  if (inter) options.interOpThreads = inter;
  if (e.graphOptimizationLevel) options.graphOptimizationLevel = e.graphOptimizationLevel;
  if (e.cudaDeviceId !== undefined) options.cudaDeviceId = e.cudaDeviceId;
  return options;
}

function providerFacts(session: BackboneSession, options: ExecutionOptions, profile: DeviceProfile): ProviderFacts {
  const report = session.provider;
  const software = report.adapter?.software === true || (report.used === 'webgpu' && profile.execution.webgpuSoftwareAdapter === true);
  const facts: ProviderFacts = {
    requested: report.requested,
    used: report.used,
    fallbacks: report.fallbacks,
    software,
  };
  if (report.adapter) facts.adapter = report.adapter;
  const intra = report.intraOpThreads ?? options.intraOpThreads;
  const inter = report.interOpThreads ?? options.interOpThreads;
  if (intra !== undefined) facts.intraOpThreads = intra;
  if (inter !== undefined) facts.interOpThreads = inter;
  if (options.graphOptimizationLevel) facts.graphOptimizationLevel = options.graphOptimizationLevel;
  if (report.notes?.length) facts.notes = [...report.notes];
  return facts;
}

function cosine(a: Float32Array, b: Float32Array, offset: number, length: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = offset; i < offset + length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 && nb === 0) return 1;
  return dot / Math.sqrt(na * nb);
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

/**
 * Measures everything the profile asks for, filling `results` as it goes. Returns `results` (complete or not).
 * Never throws for a backbone or provider that cannot run: that run is recorded as `unavailable`/`failed`.
 */
export async function runBench(loaded: LoadedProfile, results: BenchResults = createResults(loaded), options: BenchOptions = {}): Promise<BenchResults> {
  const { profile } = loaded;
  const started = performance.now();
  const emit = options.onProgress ?? (() => undefined);
  const signal = options.signal;
  const checkAbort = () => {
    if (signal?.aborted) throw new Interrupted();
  };
  const seed = profile.measurement.seed ?? 42;
  const speedProfile = profile.purpose === 'performance';
  results.complete = false;
  results.incompleteReason = 'in progress';
  const load = results.host.loadAverage[0] ?? 0;
  if (load > results.host.logicalCores * 0.5) {
    results.warnings.push(`load average ${load} at the start on ${results.host.logicalCores} logical cores: other work competes for the machine, so these figures are pessimistic and noisy`);
  }

  try {
    // Images for preprocessing and end-to-end runs.
    let images: string[] = [];
    if (!options.inferenceOnly) {
      emit({ stage: 'prepare', finished: false, label: 'images' });
      images = await prepareImages(profile, loaded.file, results);
    }

    const settings = backboneSettings(profile);
    const totalRuns = settings.reduce((n, s) => n + s.batchSizes.length * profile.execution.providers.length, 0);
    let runIndex = 0;
    const preprocessBySpec = new Map<string, PreprocessRun>();
    const cpuReference = new Map<string, Float32Array>();

    for (const setting of settings) {
      checkAbort();
      const reference = resolveBackboneReference(setting.id, loaded.file);
      let prepared: PreparedBackbone;
      try {
        emit({ stage: 'prepare', finished: false, label: setting.id });
        prepared = await prepareBackbone(reference);
      } catch (error) {
        for (const provider of profile.execution.providers) {
          for (const batch of setting.batchSizes) {
            runIndex++;
            results.runs.push({
              id: `${setting.id}/${provider}/b${batch}`,
              backbone: { reference: setting.id, id: setting.id, path: '', sha256: '', modelBytes: 0, runPath: '', runBytes: 0, batch: 'dynamic' },
              providerRequested: provider,
              batch,
              status: 'unavailable',
              reason: `backbone not available: ${describeError(error)}`,
              speedClaim: false,
            });
          }
        }
        emit({ stage: 'note', finished: true, label: setting.id, message: `skipped: ${describeError(error)}` });
        continue;
      }

      for (const provider of profile.execution.providers) {
        let providerProblem: string | undefined;
        for (const batch of setting.batchSizes) {
          checkAbort();
          runIndex++;
          const label = `[${runIndex}/${totalRuns}] ${prepared.info.id} ${provider} batch ${batch}`;
          const run: InferenceRun = {
            id: `${prepared.info.id}/${provider}/b${batch}`,
            backbone: prepared.info,
            providerRequested: provider,
            batch,
            status: 'failed',
            speedClaim: false,
          };
          results.runs.push(run);
          if (typeof prepared.facts.batch === 'number' && prepared.facts.batch !== batch) {
            run.status = 'skipped';
            run.reason = `the graph's batch size is fixed at ${prepared.facts.batch}`;
            emit({ stage: 'run', finished: true, label, message: `skipped: ${run.reason}` });
            continue;
          }
          if (providerProblem) {
            run.status = 'unavailable';
            run.reason = providerProblem;
            continue;
          }
          emit({ stage: 'run', finished: false, label, done: 0, total: profile.measurement.minRuns });
          await measureInference(run, prepared, provider, batch, { intra: setting.intraOpThreads, inter: setting.interOpThreads }, profile, seed, {
            signal,
            speedProfile,
            cpuReference,
            onProgress: (done, elapsedMs) => emit({ stage: 'run', finished: false, label, done, total: profile.measurement.minRuns, message: `${(elapsedMs / 1000).toFixed(1)} s` }),
          });
          if (run.status === 'unavailable') providerProblem = run.reason;
          emit({ stage: 'run', finished: true, label, message: describeRun(run) });
          if (run.status === 'interrupted') throw new Interrupted();
        }
      }

      if (options.inferenceOnly || images.length === 0) continue;

      // Preprocessing alone, once per distinct preprocessing spec.
      const key = specKey(prepared.spec);
      let preprocess = preprocessBySpec.get(key);
      if (!preprocess) {
        checkAbort();
        emit({ stage: 'preprocess', finished: false, label: `preprocess ${key}` });
        preprocess = await measurePreprocess(prepared, images, profile, results.imageSource, signal);
        preprocessBySpec.set(key, preprocess);
        results.preprocess.push(preprocess);
        emit({ stage: 'preprocess', finished: true, label: `preprocess (${prepared.info.id})`, message: preprocess.msPerImage ? `${preprocess.msPerImage.p50.toFixed(2)} ms/image alone, ${preprocess.imagesPerSecond?.toFixed(1)} images/s on ${preprocess.concurrency} in flight` : preprocess.reason });
      } else {
        results.preprocess.push({ ...preprocess, backbone: prepared.info.id });
      }

      // End to end through the real pipeline.
      if (profile.endToEnd?.enabled === false) continue;
      const e2eBatches = profile.endToEnd?.batchSizes ?? setting.batchSizes;
      for (const provider of profile.execution.providers) {
        const done = new Set<number>();
        for (const requested of e2eBatches) {
          const batch = typeof prepared.facts.batch === 'number' ? prepared.facts.batch : requested;
          if (done.has(batch)) continue;
          done.add(batch);
          checkAbort();
          const label = `end-to-end ${prepared.info.id} ${provider} batch ${batch}`;
          emit({ stage: 'e2e', finished: false, label });
          const e2e = await measureEndToEnd(prepared, provider, batch, { intra: setting.intraOpThreads, inter: setting.interOpThreads }, profile, images, results, preprocess, signal, speedProfile);
          results.endToEnd.push(e2e);
          emit({ stage: 'e2e', finished: true, label, message: e2e.imagesPerSecond ? `${e2e.imagesPerSecond.toFixed(1)} images/s, efficiency ${e2e.efficiency?.toFixed(2) ?? '?'}` : e2e.reason });
          if (e2e.status === 'interrupted') throw new Interrupted();
        }
      }
    }

    if (!options.inferenceOnly && profile.heads) {
      for (const type of profile.heads.types) {
        checkAbort();
        emit({ stage: 'heads', finished: false, label: `head ${type}` });
        const head = await measureHead(type, profile, signal);
        results.heads.push(head);
        emit({ stage: 'heads', finished: true, label: `head ${type}`, message: head.trainSecondsMedian !== undefined ? `train ${head.trainSecondsMedian.toFixed(2)} s, predict p50 ${head.predictMsPerEmbedding?.p50.toFixed(4)} ms` : head.reason });
      }
    }
    checkAbort();
    results.complete = true;
    delete results.incompleteReason;
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error;
    results.complete = false;
    results.incompleteReason = 'interrupted (Ctrl-C or an abort signal): the file holds what was measured before the interruption';
  } finally {
    finishResults(results, profile, started);
  }
  return results;
}

/** Budget verdicts, end time and load: called at the end and on interruption. */
export function finishResults(results: BenchResults, profile: DeviceProfile, startedPerfMs?: number): void {
  results.budgets = evaluateBudgets(profile.budgets ?? [], results);
  results.finishedAt = nowIso();
  results.durationSeconds = startedPerfMs !== undefined ? round((performance.now() - startedPerfMs) / 1000, 3) : round((Date.parse(results.finishedAt) - Date.parse(results.startedAt)) / 1000, 3);
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
        results.warnings.push(`image folder ${folder} not usable (${describeError(error)})${spec.synthetic ? '; using synthetic images' : ''}`);
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
    const files = await syntheticImageFolder({ count: s.count, width: s.width, height: s.height, seed: s.seed ?? profile.measurement.seed ?? 42 });
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

export interface InferenceContext {
  signal?: AbortSignal;
  speedProfile: boolean;
  cpuReference: Map<string, Float32Array>;
  onProgress(done: number, elapsedMs: number): void;
}

export async function measureInference(
  run: InferenceRun,
  prepared: PreparedBackbone,
  provider: ExecutionProviderName,
  batch: number,
  threads: { intra?: number; inter?: number },
  profile: DeviceProfile,
  seed: number,
  context: InferenceContext,
): Promise<void> {
  const options = executionOptions(profile, provider, threads);
  const dims = tensorDims(prepared.spec, batch);
  const input = syntheticTensor(tensorElementsPerImage(prepared.spec) * batch, seed + batch);
  const m = profile.measurement;
  // The timed window is split over fresh sessions: how much one session differs from the next (memory layout,
  // thread placement) is part of the noise a second run of the benchmark will see.
  const sessions = Math.max(1, m.sessions ?? 2);
  const sampler = new RssSampler().start();
  let session: BackboneSession | undefined;
  const timed = new SessionSamples(profile, sessions);
  let output: Float32Array | undefined;
  try {
    for (let s = 0; s < sessions; s++) {
      const createStart = performance.now();
      try {
        session = await createSession(prepared.runPath, options);
      } catch (error) {
        if (s > 0) throw error;
        run.status = 'unavailable';
        run.reason = `${provider} provider cannot run here: ${describeError(error)}`;
        return;
      }
      if (s === 0) {
        run.sessionCreateMs = round(performance.now() - createStart, 3);
        run.provider = providerFacts(session, options, profile);
        run.speedClaim = context.speedProfile && !run.provider.software;
      }
      const active = session;
      const before = timed.samplesMs.length;
      const measurement = await measureRepeated(
        async () => {
          const result = await active.run(input, dims);
          output ??= result.data;
        },
        {
          ...timed.window(),
          signal: context.signal,
          onProgress: (done, elapsedMs) => context.onProgress(before + done, timed.measuredMs + elapsedMs),
        },
      );
      timed.add(run, measurement, s);
      await session.release();
      session = undefined;
      if (measurement.status !== 'ok') break;
    }
    timed.finish(run, batch, prepared.info.macsPerImage);
    if (provider !== 'cpu' && output) {
      run.correctness = await compareWithCpu(prepared, batch, input, dims, output, profile, context.cpuReference);
    }
  } catch (error) {
    run.status = 'failed';
    run.reason = describeError(error);
  } finally {
    await session?.release().catch(() => undefined);
    const memory = sampler.stop();
    run.memory = { rssBeforeMb: round(memory.startMb, 1), peakRssMb: round(memory.peakMb, 1), addedMb: round(memory.peakMb - memory.startMb, 1) };
  }
}

async function compareWithCpu(
  prepared: PreparedBackbone,
  batch: number,
  input: Float32Array,
  dims: number[],
  output: Float32Array,
  profile: DeviceProfile,
  cache: Map<string, Float32Array>,
): Promise<InferenceRun['correctness']> {
  const key = `${prepared.runPath}|${batch}`;
  const reference = cache.get(key) ?? (await cpuOutput(prepared.runPath, input, dims, profile));
  cache.set(key, reference);
  const rows = batch;
  const width = Math.floor(output.length / rows);
  let minCosine = 1;
  let maxAbsDifference = 0;
  for (let r = 0; r < rows; r++) minCosine = Math.min(minCosine, cosine(output, reference, r * width, width));
  for (let i = 0; i < output.length; i++) maxAbsDifference = Math.max(maxAbsDifference, Math.abs(output[i]! - reference[i]!));
  return { reference: 'cpu', minCosine: round(minCosine, 7), maxAbsDifference: round(maxAbsDifference, 7), rows };
}

async function cpuOutput(modelPath: string, input: Float32Array, dims: number[], profile: DeviceProfile): Promise<Float32Array> {
  const session = await createSession(modelPath, executionOptions(profile, 'cpu', {}));
  try {
    const result = await session.run(input, dims);
    return result.data;
  } finally {
    await session.release();
  }
}

async function measurePreprocess(prepared: PreparedBackbone, images: string[], profile: DeviceProfile, source: string, signal?: AbortSignal): Promise<PreprocessRun> {
  const spec = prepared.spec;
  const count = Math.min(profile.measurement.preprocessImages ?? 64, images.length);
  const minDuration = profile.measurement.preprocessMinDurationMs ?? 2000;
  const run: PreprocessRun = { backbone: prepared.info.id, spec: specKey(spec), images: count, source, status: 'failed' };
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

async function measureEndToEnd(
  prepared: PreparedBackbone,
  provider: ExecutionProviderName,
  batch: number,
  threads: { intra?: number; inter?: number },
  profile: DeviceProfile,
  images: string[],
  results: BenchResults,
  preprocess: PreprocessRun,
  signal: AbortSignal | undefined,
  speedProfile: boolean,
): Promise<EndToEndRun> {
  const id = `${prepared.info.id}/${provider}/b${batch}`;
  const run: EndToEndRun = { id, backbone: prepared.info.id, provider, batch, status: 'failed', speedClaim: false };
  const total = profile.endToEnd?.images ?? 128;
  const repeats = profile.endToEnd?.repeats ?? 3;
  const list = Array.from({ length: total }, (_, i) => images[i % images.length]!);
  let backbone: Backbone | undefined;
  try {
    try {
      backbone = await Backbone.load(prepared.reference, { ...executionOptions(profile, provider, threads), cache: false, download: false });
    } catch (error) {
      run.status = 'unavailable';
      run.reason = `${provider} provider cannot run here: ${describeError(error)}`;
      return run;
    }
    const software = backbone.provider.adapter?.software === true || (provider === 'webgpu' && profile.execution.webgpuSoftwareAdapter === true);
    run.speedClaim = speedProfile && !software;
    // Warm-up pass over one batch: session arenas and the decoder, not timed.
    await backbone.embedMany(list.slice(0, Math.max(batch, 2)), { batchSize: batch, useCache: false, signal });
    const passSeconds: number[] = [];
    for (let r = 0; r < repeats; r++) {
      if (signal?.aborted) {
        run.status = 'interrupted';
        break;
      }
      const t0 = performance.now();
      const result = await backbone.embedMany(list, { batchSize: batch, useCache: false, signal });
      const seconds = (performance.now() - t0) / 1000;
      if (result.skipped.length > 0) results.warnings.push(`end-to-end ${id}: ${result.skipped.length} images skipped (${result.skipped[0]!.path}: ${result.skipped[0]!.reason})`);
      passSeconds.push(round(seconds, 4));
    }
    if (passSeconds.length > 0) {
      recordEndToEndFigures(run, {
        images: total,
        passSeconds,
        preprocessImagesPerSecond: preprocess.imagesPerSecond,
        inferenceImagesPerSecond: results.runs.find((r) => r.backbone.id === prepared.info.id && r.providerRequested === provider && r.batch === batch && r.imagesPerSecond)?.imagesPerSecond,
      });
    }
    if (run.status !== 'interrupted') run.status = 'ok';
  } catch (error) {
    if (signal?.aborted) {
      run.status = 'interrupted';
    } else {
      run.status = 'failed';
      run.reason = describeError(error);
    }
  } finally {
    await backbone?.close().catch(() => undefined);
  }
  return run;
}

/** Seeded Gaussian classes: class centres N(0, 1), rows = centre + N(0, 2^2) per value. */
export function syntheticEmbeddings(samples: number, dim: number, classes: number, seed: number): { data: Float32Array; labels: string[] } {
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
