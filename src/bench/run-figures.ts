/**
 * The figures of inference and end-to-end runs, derived from their raw timings. Runtime-neutral: `edgetl bench` in Node and
 * the browser benchmark page derive them with this same code, so their results files mean the same thing.
 */
import type { EndToEndRun, InferenceRun } from './results.js';
import { measureNoise, median, scaleSummary, summarize } from './stats.js';

export function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export interface InferenceSamples {
  /** Per-batch latencies of every timed run, all sessions together. */
  samplesMs: number[];
  /** Median latency of each fresh session: their spread is part of the stated noise. */
  sessionMedians: number[];
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
}

/**
 * Fills an end-to-end run from its pass times, and its pipeline efficiency: end-to-end images/s over the ideal
 * 1 / (1/preprocess + 1/inference), each stage measured alone with the whole machine.
 */
export function recordEndToEndFigures(
  run: EndToEndRun,
  measured: { images: number; passSeconds: number[]; preprocessImagesPerSecond?: number; inferenceImagesPerSecond?: number },
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
    run.reason = 'no inference-only figure at this batch size (add it to batchSizes) or no preprocessing figure: efficiency not computed';
  }
}
