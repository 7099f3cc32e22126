/**
 * One inference run (backbone x provider x batch size), measured one fresh session at a time so the harness can
 * interleave the sessions of every run: on a shared machine the speed drifts over tens of seconds, and a run whose
 * samples all come from one stretch of time would state a noise that a second run of the benchmark never sees.
 */
import { performance } from 'node:perf_hooks';
import { createSession, type BackboneSession } from '../execution/session.js';
import type { ExecutionOptions, ExecutionProviderName } from '../../core/execution/types.js';
import { tensorDims, tensorElementsPerImage } from '../../core/preprocess/tensor.js';
import { describeError } from '../../core/util/errors.js';
import type { ModelFacts } from '../../core/models/inspect.js';
import type { ResolvedBackbone } from '../models/resolve.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { measureRepeated, RssSampler } from './measure.js';
import type { DeviceProfile } from './profile.js';
import type { BackboneFacts, InferenceRun, MemoryFacts, ProviderFacts } from './results.js';
import { SessionSamples, round } from './run-figures.js';
import { syntheticTensor } from './synthetic-images.js';

export interface PreparedBackbone {
  reference: string;
  resolved: ResolvedBackbone;
  facts: ModelFacts;
  spec: PreprocessSpec;
  runPath: string;
  dim: number;
  info: BackboneFacts;
}

export interface ThreadSetting {
  intra?: number;
  inter?: number;
}

export interface InferenceContext {
  signal?: AbortSignal;
  speedProfile: boolean;
  /** CPU outputs already computed, by model and batch: the reference other providers are checked against. */
  cpuReference: Map<string, Float32Array>;
  onProgress(done: number, elapsedMs: number): void;
}

/** The profile's session options for one provider, with a run's own thread counts when it has them. */
export function executionOptions(
  profile: DeviceProfile,
  provider: ExecutionProviderName,
  threads: ThreadSetting,
): ExecutionOptions {
  const e = profile.execution;
  // Inference runs alone here, as in the plain onnxruntime loop it is held against: let pool threads spin between
  // runs, as onnxruntime does by default (batch 1 on 2 threads: 1.26 ms against 1.57 ms sleeping).
  const options: ExecutionOptions = { ep: provider, strictEp: true, allowSpinning: true };
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
  const software =
    report.adapter?.software === true || (report.used === 'webgpu' && profile.execution.webgpuSoftwareAdapter === true);
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

/**
 * The sessions of one run. `measureSession` opens a fresh session, warms it up, times its share of the window and
 * releases it; `finish` derives the figures once every session ran (or the run stopped early).
 */
export class InferenceMeasurement {
  readonly sessions: number;
  private readonly timed: SessionSamples;
  private readonly options: ExecutionOptions;
  private readonly dims: number[];
  private readonly input: Float32Array;
  private output: Float32Array | undefined;
  private sessionsRun = 0;
  private stopped = false;
  private memory: MemoryFacts | undefined;

  constructor(
    readonly run: InferenceRun,
    private readonly prepared: PreparedBackbone,
    private readonly provider: ExecutionProviderName,
    private readonly batch: number,
    threads: ThreadSetting,
    private readonly profile: DeviceProfile,
    seed: number,
    private readonly context: InferenceContext,
  ) {
    this.options = executionOptions(profile, provider, threads);
    this.dims = tensorDims(prepared.spec, batch);
    this.input = syntheticTensor(tensorElementsPerImage(prepared.spec) * batch, seed + batch);
    // How much one fresh session differs from the next (memory layout, thread placement, the machine's state at
    // the time) is part of the noise a second run of the benchmark will see.
    this.sessions = Math.max(1, profile.measurement.sessions ?? 2);
    this.timed = new SessionSamples(profile, this.sessions);
  }

  /** Sessions measured so far. */
  get sessionsMeasured(): number {
    return this.sessionsRun;
  }

  /** True once every session ran, or the run cannot go on (provider unavailable, failure, interruption). */
  get done(): boolean {
    return this.stopped || this.sessionsRun >= this.sessions;
  }

  /** Ends the run before its first session: its provider already failed to start for a sibling run. */
  markUnavailable(reason: string): void {
    this.run.status = 'unavailable';
    this.run.reason = reason;
    this.stopped = true;
  }

  /** One fresh session: create, cold run, warm-up, timed share of the window, release. */
  async measureSession(startSeconds?: number): Promise<void> {
    if (this.done) return;
    const index = this.sessionsRun++;
    const run = this.run;
    const sampler = new RssSampler().start();
    let session: BackboneSession | undefined;
    try {
      const createStart = performance.now();
      try {
        session = await createSession(this.prepared.runPath, this.options);
      } catch (error) {
        if (index > 0) throw error;
        run.status = 'unavailable';
        run.reason = `${this.provider} provider cannot run here: ${describeError(error)}`;
        this.stopped = true;
        return;
      }
      if (index === 0) {
        run.sessionCreateMs = round(performance.now() - createStart, 3);
        run.provider = providerFacts(session, this.options, this.profile);
        run.speedClaim = this.context.speedProfile && !run.provider.software;
      }
      const active = session;
      const before = this.timed.samplesMs.length;
      const measuredBefore = this.timed.measuredMs;
      const measurement = await measureRepeated(
        async () => {
          const result = await active.run(this.input, this.dims);
          this.output ??= result.data;
        },
        {
          ...this.timed.window(),
          signal: this.context.signal,
          onProgress: (done, elapsedMs) => this.context.onProgress(before + done, measuredBefore + elapsedMs),
        },
      );
      this.timed.add(run, measurement, index, startSeconds);
      if (measurement.status === 'interrupted') this.stopped = true;
    } catch (error) {
      run.status = 'failed';
      run.reason = describeError(error);
      this.stopped = true;
    } finally {
      await session?.close().catch(() => undefined);
      const memory = sampler.stop();
      // Each session's rise over the RSS just before it: other runs' sessions come and go in between.
      const added = memory.peakMb - memory.startMb;
      this.memory = {
        rssBeforeMb: this.memory?.rssBeforeMb ?? round(memory.startMb, 1),
        peakRssMb: round(Math.max(this.memory?.peakRssMb ?? 0, memory.peakMb), 1),
        addedMb: round(Math.max(this.memory?.addedMb ?? 0, added), 1),
      };
    }
  }

  /** Figures from every session's samples, the correctness check of a non-CPU provider, and memory. */
  async finish(): Promise<void> {
    const run = this.run;
    if (this.memory) run.memory = this.memory;
    if (this.sessionsRun === 0 && !this.stopped) {
      run.status = 'interrupted';
      run.reason = 'interrupted before its first session';
      return;
    }
    if (run.status === 'unavailable' || run.status === 'failed') return;
    if (!this.stopped && this.sessionsRun < this.sessions) run.status = 'interrupted';
    try {
      this.timed.finish(run, this.batch, this.prepared.info.macsPerImage);
      if (this.provider !== 'cpu' && this.output) {
        run.correctness = await this.compareWithCpu(this.output);
      }
    } catch (error) {
      run.status = 'failed';
      run.reason = describeError(error);
    }
  }

  private async compareWithCpu(output: Float32Array): Promise<InferenceRun['correctness']> {
    const key = `${this.prepared.runPath}|${this.batch}`;
    const reference = this.context.cpuReference.get(key) ?? (await this.cpuOutput());
    this.context.cpuReference.set(key, reference);
    const rows = this.batch;
    const width = Math.floor(output.length / rows);
    let minCosine = 1;
    let maxAbsDifference = 0;
    for (let r = 0; r < rows; r++) minCosine = Math.min(minCosine, cosine(output, reference, r * width, width));
    for (let i = 0; i < output.length; i++)
      maxAbsDifference = Math.max(maxAbsDifference, Math.abs(output[i]! - reference[i]!));
    return { reference: 'cpu', minCosine: round(minCosine, 7), maxAbsDifference: round(maxAbsDifference, 7), rows };
  }

  private async cpuOutput(): Promise<Float32Array> {
    const session = await createSession(this.prepared.runPath, executionOptions(this.profile, 'cpu', {}));
    try {
      const result = await session.run(this.input, this.dims);
      return result.data;
    } finally {
      await session.close();
    }
  }
}

/** One run with its sessions back to back (autotune's trials, which compare settings measured close in time). */
export async function measureInference(
  run: InferenceRun,
  prepared: PreparedBackbone,
  provider: ExecutionProviderName,
  batch: number,
  threads: ThreadSetting,
  profile: DeviceProfile,
  seed: number,
  context: InferenceContext,
): Promise<void> {
  const measurement = new InferenceMeasurement(run, prepared, provider, batch, threads, profile, seed, context);
  while (!measurement.done) await measurement.measureSession();
  await measurement.finish();
}
