/**
 * `edgetl bench --autotune`: for each backbone, on the profile's first (preferred) provider, measure every
 * intra-op thread count x batch size of the profile's search space, keep the settings whose p95 latency meets the
 * profile's p95 budgets, and pick the highest throughput. The result is a new profile with those settings.
 */
import { availableParallelism } from 'node:os';
import { describeError } from '../../core/util/errors.js';
import { describeHost, type HostFacts } from './host.js';
import { prepareBackbone, type BenchProgress } from './harness.js';
import { measureInference } from './inference.js';
import {
  backboneSettings,
  resolveBackboneReference,
  validateProfile,
  type Budget,
  type DeviceProfile,
  type LoadedProfile,
  type TunedChoice,
} from './profile.js';
import type { InferenceRun } from './results.js';

export interface AutotuneTrial {
  backbone: string;
  intraOpThreads: number;
  batch: number;
  run: InferenceRun;
  withinBudget: boolean;
  /** Which p95 limits the trial missed. */
  missed: string[];
}

export interface AutotuneResult {
  profile: DeviceProfile;
  choices: TunedChoice[];
  trials: AutotuneTrial[];
  complete: boolean;
}

/** p95 limits that bound a trial: budgets naming its backbone (or none) and provider (or none), any batch filter. */
function p95Limits(
  budgets: Budget[],
  backbone: { reference: string; id: string },
  provider: string,
): Array<{ name: string; perImage?: number; perBatch?: number }> {
  return budgets
    .filter(
      (b) =>
        (b.backbone === undefined || b.backbone === backbone.reference || b.backbone === backbone.id) &&
        (b.provider === undefined || b.provider === provider),
    )
    .filter((b) => b.p95LatencyMsPerImage !== undefined || b.p95LatencyMsPerBatch !== undefined)
    .map((b) => ({ name: b.name, perImage: b.p95LatencyMsPerImage, perBatch: b.p95LatencyMsPerBatch }));
}

type P95Limit = ReturnType<typeof p95Limits>[number];
type PreparedBackbone = Awaited<ReturnType<typeof prepareBackbone>>;
type BackboneSetting = ReturnType<typeof backboneSettings>[number];

/** What every trial of one autotune shares. */
interface AutotuneContext {
  profile: DeviceProfile;
  /** The profile with the search's shorter measurement windows. */
  trialProfile: DeviceProfile;
  provider: DeviceProfile['execution']['providers'][number];
  threads: number[];
  signal: AbortSignal | undefined;
  emit: (event: BenchProgress) => void;
}

/** Shorter windows than a full bench (at most 30 runs and 3 s unless the search space says otherwise). */
function trialProfileFor(profile: DeviceProfile): DeviceProfile {
  const space = profile.autotune ?? {};
  return {
    ...profile,
    measurement: {
      ...profile.measurement,
      minRuns: space.minRuns ?? Math.min(profile.measurement.minRuns, 30),
      minDurationMs: space.minDurationMs ?? Math.min(profile.measurement.minDurationMs, 3000),
      maxDurationMs: Math.max(space.minDurationMs ?? 3000, profile.measurement.maxDurationMs ?? 60_000),
    },
  };
}

/** The p95 limits a measured run goes over, each as a sentence. */
function missedLimits(run: InferenceRun, limits: P95Limit[]): string[] {
  const missed: string[] = [];
  if (run.latencyMsPerBatch && run.latencyMsPerImage) {
    for (const limit of limits) {
      if (limit.perBatch !== undefined && run.latencyMsPerBatch.p95 > limit.perBatch)
        missed.push(`${limit.name}: p95 ${run.latencyMsPerBatch.p95.toFixed(2)} ms per batch > ${limit.perBatch}`);
      if (limit.perImage !== undefined && run.latencyMsPerImage.p95 > limit.perImage)
        missed.push(`${limit.name}: p95 ${run.latencyMsPerImage.p95.toFixed(2)} ms per image > ${limit.perImage}`);
    }
  }
  return missed;
}

/** One setting (threads x batch) measured, and judged against the limits. */
async function runTrial(
  context: AutotuneContext,
  setting: BackboneSetting,
  prepared: PreparedBackbone,
  limits: P95Limit[],
  intra: number,
  batch: number,
  label: string,
): Promise<AutotuneTrial> {
  const { provider, trialProfile, emit } = context;
  const run: InferenceRun = {
    id: `${prepared.info.id}/${provider}/b${batch}/t${intra}`,
    backbone: prepared.info,
    providerRequested: provider,
    batch,
    status: 'failed',
    speedClaim: false,
  };
  await measureInference(
    run,
    prepared,
    provider,
    batch,
    { intra, inter: setting.interOpThreads },
    trialProfile,
    context.profile.measurement.seed ?? 42,
    {
      signal: context.signal,
      speedProfile: true,
      cpuReference: new Map(),
      onProgress: (done) =>
        emit({ stage: 'run', finished: false, label, done, total: trialProfile.measurement.minRuns }),
    },
  );
  const missed = missedLimits(run, limits);
  const trial = {
    backbone: setting.id,
    intraOpThreads: intra,
    batch,
    run,
    withinBudget: run.imagesPerSecond !== undefined && missed.length === 0,
    missed,
  };
  emit({
    stage: 'run',
    finished: true,
    label,
    message: run.imagesPerSecond
      ? `${run.imagesPerSecond.toFixed(1)} images/s, p95 ${run.latencyMsPerBatch?.p95.toFixed(2)} ms per batch${missed.length ? ' (over budget)' : ''}`
      : `${run.status}${run.reason ? `: ${run.reason}` : ''}`,
  });
  return trial;
}

/**
 * Every threads x batch trial of one backbone, in order, into `trials`. Returns false when an abort (or an
 * interrupted run) stopped the search.
 */
async function tuneBackbone(
  context: AutotuneContext,
  setting: BackboneSetting,
  prepared: PreparedBackbone,
  trials: AutotuneTrial[],
): Promise<boolean> {
  const { profile, provider, threads } = context;
  const space = profile.autotune ?? {};
  const batches = (space.batchSizes ?? setting.batchSizes).filter(
    (b) => typeof prepared.facts.batch !== 'number' || b === prepared.facts.batch,
  );
  const limits = p95Limits(profile.budgets ?? [], prepared.info, provider);
  const total = threads.length * batches.length;
  let index = 0;
  for (const intra of threads) {
    for (const batch of batches) {
      if (context.signal?.aborted) return false;
      index++;
      const label = `${prepared.info.id} [${index}/${total}] ${provider} threads ${intra || 'default'} batch ${batch}`;
      const trial = await runTrial(context, setting, prepared, limits, intra, batch, label);
      trials.push(trial);
      if (trial.run.status === 'interrupted') return false;
    }
  }
  return true;
}

/**
 * The highest throughput within the limits; when nothing meets them, the lowest p95 (the closest the device gets,
 * and the choice says it is over). Undefined when nothing was measured.
 */
function bestChoice(
  setting: BackboneSetting,
  provider: AutotuneContext['provider'],
  mine: AutotuneTrial[],
): TunedChoice | undefined {
  const measured = mine.filter((t) => t.run.imagesPerSecond !== undefined);
  if (measured.length === 0) return undefined;
  const within = measured.filter((t) => t.withinBudget);
  const best =
    within.length > 0
      ? within.reduce((a, b) => (b.run.imagesPerSecond! > a.run.imagesPerSecond! ? b : a))
      : measured.reduce((a, b) => (b.run.latencyMsPerBatch!.p95 < a.run.latencyMsPerBatch!.p95 ? b : a));
  return {
    backbone: setting.id,
    provider,
    intraOpThreads: best.intraOpThreads,
    batch: best.batch,
    imagesPerSecond: best.run.imagesPerSecond!,
    p95LatencyMsPerBatch: best.run.latencyMsPerBatch!.p95,
    p95LatencyMsPerImage: best.run.latencyMsPerImage!.p95,
    withinBudget: best.withinBudget,
  };
}

export async function autotune(
  loaded: LoadedProfile,
  host: HostFacts,
  options: { signal?: AbortSignal; onProgress?: (event: BenchProgress) => void } = {},
): Promise<AutotuneResult> {
  const { profile } = loaded;
  const emit = options.onProgress ?? (() => undefined);
  const provider = profile.execution.providers[0]!;
  const space = profile.autotune ?? {};
  const context: AutotuneContext = {
    profile,
    trialProfile: trialProfileFor(profile),
    provider,
    threads: space.intraOpThreads ?? Array.from({ length: availableParallelism() }, (_, i) => i + 1),
    signal: options.signal,
    emit,
  };
  const trials: AutotuneTrial[] = [];
  const choices: TunedChoice[] = [];
  let complete = true;
  for (const setting of backboneSettings(profile)) {
    const reference = resolveBackboneReference(setting.id, loaded.file);
    let prepared: PreparedBackbone;
    try {
      prepared = await prepareBackbone(reference);
    } catch (error) {
      emit({ stage: 'note', finished: true, label: setting.id, message: `skipped: ${describeError(error)}` });
      continue;
    }
    const mine: AutotuneTrial[] = [];
    complete = await tuneBackbone(context, setting, prepared, mine);
    trials.push(...mine);
    if (!complete) break;
    const choice = bestChoice(setting, provider, mine);
    if (choice) choices.push(choice);
  }
  return { profile: tunedProfile(loaded, choices, host), choices, trials, complete };
}

/** The profile with each tuned backbone's threads and batch size (plus the batch sizes its budgets name). */
export function tunedProfile(loaded: LoadedProfile, choices: TunedChoice[], host: HostFacts): DeviceProfile {
  const { profile } = loaded;
  const byId = new Map(choices.map((c) => [c.backbone, c]));
  const budgetBatches = (id: string) =>
    (profile.budgets ?? [])
      .filter((b) => b.batch !== undefined && (b.backbone === undefined || b.backbone === id))
      .map((b) => b.batch!);
  const backbones = backboneSettings(profile).map((setting, i) => {
    const choice = byId.get(setting.id);
    if (!choice) return profile.backbones[i]!;
    const batchSizes = [...new Set([choice.batch, ...budgetBatches(setting.id)])].sort((a, b) => a - b);
    return {
      id: setting.id,
      batchSizes,
      intraOpThreads: choice.intraOpThreads,
      notes: `autotuned: ${choice.intraOpThreads || 'default'} threads, batch ${choice.batch}: ${choice.imagesPerSecond.toFixed(1)} images/s, p95 ${choice.p95LatencyMsPerBatch.toFixed(2)} ms per batch${choice.withinBudget ? '' : ' (no setting met the p95 budget: lowest p95 chosen)'}`,
    };
  });
  const tuned: DeviceProfile = {
    ...profile,
    name: `${profile.name}-tuned`.replace(/(-tuned)+$/, '-tuned'),
    description: `${profile.description} Tuned by edgetl bench --autotune.`,
    backbones,
    tuned: { at: new Date().toISOString(), from: loaded.file, host: describeHost(host), choices },
  };
  return validateProfile(JSON.parse(JSON.stringify(tuned)), `${tuned.name} (tuned profile)`);
}
