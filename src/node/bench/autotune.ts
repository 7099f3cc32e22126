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

export async function autotune(
  loaded: LoadedProfile,
  host: HostFacts,
  options: { signal?: AbortSignal; onProgress?: (event: BenchProgress) => void } = {},
): Promise<AutotuneResult> {
  const { profile } = loaded;
  const emit = options.onProgress ?? (() => undefined);
  const provider = profile.execution.providers[0]!;
  const space = profile.autotune ?? {};
  const threads = space.intraOpThreads ?? Array.from({ length: availableParallelism() }, (_, i) => i + 1);
  const trialProfile: DeviceProfile = {
    ...profile,
    measurement: {
      ...profile.measurement,
      minRuns: space.minRuns ?? Math.min(profile.measurement.minRuns, 30),
      minDurationMs: space.minDurationMs ?? Math.min(profile.measurement.minDurationMs, 3000),
      maxDurationMs: Math.max(space.minDurationMs ?? 3000, profile.measurement.maxDurationMs ?? 60_000),
    },
  };
  const settings = backboneSettings(profile);
  const trials: AutotuneTrial[] = [];
  const choices: TunedChoice[] = [];
  let complete = true;

  outer: for (const setting of settings) {
    const reference = resolveBackboneReference(setting.id, loaded.file);
    let prepared: Awaited<ReturnType<typeof prepareBackbone>>;
    try {
      prepared = await prepareBackbone(reference);
    } catch (error) {
      emit({ stage: 'note', finished: true, label: setting.id, message: `skipped: ${describeError(error)}` });
      continue;
    }
    const batches = (space.batchSizes ?? setting.batchSizes).filter(
      (b) => typeof prepared.facts.batch !== 'number' || b === prepared.facts.batch,
    );
    const limits = p95Limits(profile.budgets ?? [], prepared.info, provider);
    const mine: AutotuneTrial[] = [];
    const total = threads.length * batches.length;
    let index = 0;
    for (const intra of threads) {
      for (const batch of batches) {
        if (options.signal?.aborted) {
          complete = false;
          break outer;
        }
        index++;
        const label = `${prepared.info.id} [${index}/${total}] ${provider} threads ${intra || 'default'} batch ${batch}`;
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
          profile.measurement.seed ?? 42,
          {
            signal: options.signal,
            speedProfile: true,
            cpuReference: new Map(),
            onProgress: (done) =>
              emit({ stage: 'run', finished: false, label, done, total: trialProfile.measurement.minRuns }),
          },
        );
        const missed: string[] = [];
        if (run.latencyMsPerBatch && run.latencyMsPerImage) {
          for (const limit of limits) {
            if (limit.perBatch !== undefined && run.latencyMsPerBatch.p95 > limit.perBatch)
              missed.push(
                `${limit.name}: p95 ${run.latencyMsPerBatch.p95.toFixed(2)} ms per batch > ${limit.perBatch}`,
              );
            if (limit.perImage !== undefined && run.latencyMsPerImage.p95 > limit.perImage)
              missed.push(
                `${limit.name}: p95 ${run.latencyMsPerImage.p95.toFixed(2)} ms per image > ${limit.perImage}`,
              );
          }
        }
        const trial = {
          backbone: setting.id,
          intraOpThreads: intra,
          batch,
          run,
          withinBudget: run.imagesPerSecond !== undefined && missed.length === 0,
          missed,
        };
        trials.push(trial);
        mine.push(trial);
        emit({
          stage: 'run',
          finished: true,
          label,
          message: run.imagesPerSecond
            ? `${run.imagesPerSecond.toFixed(1)} images/s, p95 ${run.latencyMsPerBatch?.p95.toFixed(2)} ms per batch${missed.length ? ' (over budget)' : ''}`
            : `${run.status}${run.reason ? `: ${run.reason}` : ''}`,
        });
        if (run.status === 'interrupted') {
          complete = false;
          break outer;
        }
      }
    }
    const measured = mine.filter((t) => t.run.imagesPerSecond !== undefined);
    if (measured.length === 0) continue;
    const within = measured.filter((t) => t.withinBudget);
    // Nothing meets the budget: the lowest p95 is the closest the device gets, and the choice says it is over.
    const best =
      within.length > 0
        ? within.reduce((a, b) => (b.run.imagesPerSecond! > a.run.imagesPerSecond! ? b : a))
        : measured.reduce((a, b) => (b.run.latencyMsPerBatch!.p95 < a.run.latencyMsPerBatch!.p95 ? b : a));
    choices.push({
      backbone: setting.id,
      provider,
      intraOpThreads: best.intraOpThreads,
      batch: best.batch,
      imagesPerSecond: best.run.imagesPerSecond!,
      p95LatencyMsPerBatch: best.run.latencyMsPerBatch!.p95,
      p95LatencyMsPerImage: best.run.latencyMsPerImage!.p95,
      withinBudget: best.withinBudget,
    });
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
