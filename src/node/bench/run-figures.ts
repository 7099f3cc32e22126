/**
 * The figures of inference and end-to-end runs, derived from their raw timings. Runtime-neutral: `edgetl bench` in Node and
 * the browser benchmark page derive them with this same code, so their results files mean the same thing.
 */
import type { Measurement } from './measure.js';
import type { DeviceProfile } from './profile.js';
import type { EndToEndRun, InferenceRun } from './results.js';
import {
  bestSessionFigure,
  measureNoise,
  median,
  scaleSummary,
  splitSessions,
  summarize,
} from '../../core/bench/stats.js';

export function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The longest one measurement may take: the profile's cap, or six times its minimum duration (at least a minute). */
export function maxDuration(profile: DeviceProfile): number {
  const m = profile.measurement;
  return m.maxDurationMs ?? Math.max(m.minDurationMs * 6, 60_000);
}

/**
 * The timed samples of one inference run, gathered over several fresh sessions. Each session gets an equal share
 * of the profile's window, so the run as a whole meets the profile's minimums and cap.
 */
export class SessionSamples {
  readonly samplesMs: number[] = [];
  readonly sessionMedians: number[] = [];
  readonly sessionSampleCounts: number[] = [];
  readonly sessionStartSeconds: number[] = [];
  measuredMs = 0;
  private worstStatus: InferenceRun['status'] | undefined;

  constructor(
    private readonly profile: DeviceProfile,
    private readonly sessions: number,
  ) {}

  /** measureRepeated's window for one session. */
  window(): { warmupRuns: number; minRuns: number; minDurationMs: number; maxDurationMs: number } {
    const m = this.profile.measurement;
    return {
      warmupRuns: m.warmupRuns,
      minRuns: Math.ceil(m.minRuns / this.sessions),
      minDurationMs: m.minDurationMs / this.sessions,
      maxDurationMs: maxDuration(this.profile) / this.sessions,
    };
  }

  /**
   * Adds one session's measurement; the first session's cold run is the run's first-run figure. `startSeconds`
   * says when the session began (seconds since the benchmark started), to show how sessions spread over the run.
   */
  add(run: InferenceRun, measurement: Measurement, sessionIndex: number, startSeconds?: number): void {
    if (sessionIndex === 0) {
      run.firstRunMs = round(measurement.firstRunMs, 3);
      run.warmupRuns = measurement.warmupRuns;
    }
    this.samplesMs.push(...measurement.samplesMs);
    this.sessionSampleCounts.push(measurement.samplesMs.length);
    if (startSeconds !== undefined) this.sessionStartSeconds.push(round(startSeconds, 3));
    this.measuredMs += measurement.measuredMs;
    if (measurement.samplesMs.length > 0) this.sessionMedians.push(median(measurement.samplesMs));
    // One short or interrupted session makes the whole run so.
    if (this.worstStatus === undefined || this.worstStatus === 'ok') this.worstStatus = measurement.status;
    run.status = this.worstStatus;
  }

  /** Says why a short run is short, and derives the run's figures from the samples. */
  finish(run: InferenceRun, batch: number, macsPerImage: number | null | undefined): void {
    if (run.status === 'short') {
      run.reason = `maxDurationMs (${maxDuration(this.profile)} ms) passed before minRuns (${this.profile.measurement.minRuns}): ${this.samplesMs.length} runs`;
    }
    recordInferenceFigures(run, {
      samplesMs: this.samplesMs,
      sessionMedians: this.sessionMedians,
      sessionSampleCounts: this.sessionSampleCounts,
      noiseFloor: this.profile.measurement.noiseFloor,
      measuredMs: this.measuredMs,
      batch,
      macsPerImage,
    });
    if (this.sessionStartSeconds.length > 0) run.sessionStartSeconds = [...this.sessionStartSeconds];
  }
}

export interface InferenceSamples {
  /** Per-batch latencies of every timed run, all sessions together. */
  samplesMs: number[];
  /** Median latency of each fresh session: their spread is part of the stated noise. */
  sessionMedians: number[];
  /** Samples of each session, in order (samplesMs is their concatenation); absent: one session. */
  sessionSampleCounts?: number[];
  /** The profile's `measurement.noiseFloor`: no stated noise goes below it. */
  noiseFloor?: number;
  measuredMs: number;
  batch: number;
  macsPerImage: number | null | undefined;
}

/** Fills latency summaries, images/s, achieved GFLOP/s and noise; leaves the run alone when nothing was timed. */
export function recordInferenceFigures(run: InferenceRun, measured: InferenceSamples): void {
  const { samplesMs: samples, batch } = measured;
  if (samples.length === 0) return;
  run.samplesMs = samples.map((v) => round(v, 4));
  run.measuredMs = round(measured.measuredMs, 3);
  run.latencyMsPerBatch = summarize(samples);
  run.latencyMsPerImage = scaleSummary(run.latencyMsPerBatch, batch);
  const busyMs = samples.reduce((sum, v) => sum + v, 0);
  run.imagesPerSecond = round((batch * samples.length) / (busyMs / 1000), 3);
  // A multiply-accumulate is two floating-point operations.
  if (measured.macsPerImage) run.achievedGflops = round((2 * measured.macsPerImage * run.imagesPerSecond) / 1e9, 3);
  run.noise = measureNoise(samples, measured.sessionMedians);
  const floor = measured.noiseFloor ?? 0;
  if (floor > run.noise.relative) {
    run.noise.floor = floor;
    run.noise.relative = floor;
  }
  const counts = measured.sessionSampleCounts ?? [samples.length];
  run.sessionSampleCounts = [...counts];
  const best = bestSessionFigure(samples, counts);
  const bestSamples = splitSessions(samples, counts)[best.session]!;
  const bestBusyMs = bestSamples.reduce((sum, v) => sum + v, 0);
  const bestImagesPerSecond = round((batch * bestSamples.length) / (bestBusyMs / 1000), 3);
  run.bestSession = {
    session: best.session,
    sessions: best.sessions,
    samples: best.samples,
    medianMsPerBatch: round(best.medianMs, 4),
    medianMsPerImage: round(best.medianMs / batch, 4),
    imagesPerSecond: bestImagesPerSecond,
    ...(measured.macsPerImage
      ? { achievedGflops: round((2 * measured.macsPerImage * bestImagesPerSecond) / 1e9, 3) }
      : {}),
    noise: {
      intervalHalfWidth: round(best.intervalHalfWidth, 5),
      gapHalfWidth: round(best.gapHalfWidth, 5),
      ...(floor > best.relative ? { floor } : {}),
      relative: round(Math.max(best.relative, floor), 5),
    },
  };
}

/**
 * The inference-only throughput an end-to-end run is held against: the fastest session's images/s of the same
 * backbone, provider and batch (the undisturbed machine, so the pipeline efficiency errs low), else the whole run's.
 */
export function inferenceImagesPerSecondFor(
  runs: readonly InferenceRun[],
  backboneId: string,
  provider: string,
  batch: number,
): number | undefined {
  const run = runs.find(
    (r) => r.backbone.id === backboneId && r.providerRequested === provider && r.batch === batch && r.imagesPerSecond,
  );
  return run?.bestSession?.imagesPerSecond ?? run?.imagesPerSecond;
}

/**
 * Fills an end-to-end run from its pass times, and its pipeline efficiency: end-to-end images/s over the ideal
 * 1 / (1/preprocess + 1/inference), each stage measured alone with the whole machine.
 */
export function recordEndToEndFigures(
  run: EndToEndRun,
  measured: {
    images: number;
    passSeconds: number[];
    preprocessImagesPerSecond?: number;
    inferenceImagesPerSecond?: number;
  },
): void {
  run.images = measured.images;
  run.repeats = measured.passSeconds.length;
  run.passSeconds = measured.passSeconds;
  run.imagesPerSecond = round(measured.images / median(measured.passSeconds), 3);
  run.preprocessImagesPerSecond = measured.preprocessImagesPerSecond;
  run.inferenceImagesPerSecond = measured.inferenceImagesPerSecond;
  if (run.preprocessImagesPerSecond && run.inferenceImagesPerSecond) {
    run.idealImagesPerSecond = round(1 / (1 / run.preprocessImagesPerSecond + 1 / run.inferenceImagesPerSecond), 3);
    run.efficiency = round(run.imagesPerSecond / run.idealImagesPerSecond, 4);
  } else {
    run.reason =
      'no inference-only figure at this batch size (add it to batchSizes) or no preprocessing figure: efficiency not computed';
  }
}
