import type { BenchResults, InferenceRun } from './results.js';
import {
  bootstrapMedianRatioInterval,
  median,
  measureNoise,
  splitSessions,
  type ConfidenceInterval,
} from '../../core/bench/stats.js';

export type ComparisonVerdict = 'regression' | 'improvement' | 'within-noise' | 'not-comparable';

export interface RunComparison {
  /** Run id (inference runs) or `e2e/<id>`. */
  id: string;
  /** bestSessionMedianMsPerBatch: the fastest session's median (both files have sessions); else the whole run's. */
  metric: 'bestSessionMedianMsPerBatch' | 'medianLatencyMsPerBatch' | 'endToEndSecondsPerPass';
  a?: number;
  b?: number;
  /** b / a. Above 1 means b is slower. */
  ratio?: number;
  /** b / a of the whole run's median latency: it mixes undisturbed and disturbed stretches of the machine. */
  wholeRunRatio?: number;
  /** max(minEffect, the two runs' stated whole-run noise): with interleaved sessions it includes the machine's drift. */
  wholeRunThreshold?: number;
  /** 95% bootstrap interval of the ratio of medians, when both files hold the raw samples. */
  ratioInterval?: ConfidenceInterval;
  /** Stated noise of each side (fraction of its median). */
  noiseA?: number;
  noiseB?: number;
  /** A change must exceed this fraction to be flagged: max(minEffect, noiseA + noiseB). */
  threshold?: number;
  verdict: ComparisonVerdict;
  note?: string;
}

export interface ComparisonReport {
  a: { file: string; profile: string; host: string; startedAt: string; complete: boolean };
  b: { file: string; profile: string; host: string; startedAt: string; complete: boolean };
  minEffect: number;
  method: string;
  comparisons: RunComparison[];
  regressions: number;
  improvements: number;
  warnings: string[];
}

export const COMPARE_METHOD =
  "Per run, b/a of the median latency of each side's fastest session (its sessions are spread over the whole run, so the fastest is the least disturbed by other work on the machine). Each side states the noise of that figure: the larger of the 95% bootstrap interval half-width of its median and half the gap to the second-fastest session. " +
  "A change is flagged only when the whole runs' medians move the same way beyond their own stated noise too (which, with sessions spread over the run, includes how much the machine's speed wandered): a machine whose speed shifts for minutes can move one run's fastest session without any change in the software. " +
  'Files without sessions compare the whole-run medians alone. ' +
  'A change is flagged only when |ratio - 1| exceeds max(minimum effect, noise a + noise b) AND the 95% bootstrap interval of the ratio excludes 1. ' +
  "End-to-end passes: noise is half the spread of the pass times relative to their median. No stated noise goes below the profile's noise floor (measurement.noiseFloor), if it has one.";

/** The least noise a results file's profile lets any figure state (its `measurement.noiseFloor`). */
function noiseFloor(results: BenchResults): number {
  return results.profile.content?.measurement?.noiseFloor ?? 0;
}

function passNoise(seconds: number[]): number {
  if (seconds.length < 2) return 0;
  const center = median(seconds);
  return center > 0 ? (Math.max(...seconds) - Math.min(...seconds)) / 2 / center : 0;
}

function judge(ratio: number, threshold: number, interval?: ConfidenceInterval): ComparisonVerdict {
  const excludesOne = interval === undefined || interval.low > 1 || interval.high < 1;
  if (ratio > 1 + threshold && excludesOne) return 'regression';
  if (ratio < 1 / (1 + threshold) && excludesOne) return 'improvement';
  return 'within-noise';
}

/** The samples of a run's fastest session, or undefined for a file written before sessions were recorded. */
function bestSessionSamples(run: InferenceRun): number[] | undefined {
  if (!run.bestSession || !run.sessionSampleCounts || !run.samplesMs) return undefined;
  try {
    return splitSessions(run.samplesMs, run.sessionSampleCounts)[run.bestSession.session];
  } catch {
    return undefined;
  }
}

function compareInferenceRuns(runA: InferenceRun, runB: InferenceRun, minEffect: number): RunComparison {
  const samplesA = runA.samplesMs!;
  const samplesB = runB.samplesMs!;
  const wholeRunRatio = median(samplesB) / median(samplesA);
  const bestA = bestSessionSamples(runA);
  const bestB = bestSessionSamples(runB);
  if (bestA?.length && bestB?.length) {
    const a = median(bestA);
    const b = median(bestB);
    const noiseA = runA.bestSession!.noise.relative;
    const noiseB = runB.bestSession!.noise.relative;
    const ratio = b / a;
    const ratioInterval = bootstrapMedianRatioInterval(bestA, bestB, { resamples: 500 });
    const threshold = Math.max(minEffect, noiseA + noiseB);
    const wholeRunThreshold = Math.max(
      minEffect,
      (runA.noise?.relative ?? measureNoise(samplesA).relative) +
        (runB.noise?.relative ?? measureNoise(samplesB).relative),
    );
    const bestVerdict = judge(ratio, threshold, ratioInterval);
    const wholeRunVerdict = judge(wholeRunRatio, wholeRunThreshold);
    const comparison: RunComparison = {
      id: runA.id,
      metric: 'bestSessionMedianMsPerBatch',
      a,
      b,
      ratio,
      wholeRunRatio,
      wholeRunThreshold,
      ratioInterval,
      noiseA,
      noiseB,
      threshold,
      verdict: bestVerdict,
    };
    if (bestVerdict !== 'within-noise' && wholeRunVerdict !== bestVerdict) {
      comparison.verdict = 'within-noise';
      comparison.note = `best sessions ${((ratio - 1) * 100).toFixed(1)}% apart, but the whole runs agree within their stated noise (±${(wholeRunThreshold * 100).toFixed(1)}%): the machine's speed wandered`;
    }
    return comparison;
  }
  const medianA = median(samplesA);
  const medianB = median(samplesB);
  const noiseA = runA.noise?.relative ?? measureNoise(samplesA).relative;
  const noiseB = runB.noise?.relative ?? measureNoise(samplesB).relative;
  const ratio = medianB / medianA;
  const ratioInterval = bootstrapMedianRatioInterval(samplesA, samplesB, { resamples: 500 });
  const threshold = Math.max(minEffect, noiseA + noiseB);
  return {
    id: runA.id,
    metric: 'medianLatencyMsPerBatch',
    a: medianA,
    b: medianB,
    ratio,
    wholeRunRatio,
    ratioInterval,
    noiseA,
    noiseB,
    threshold,
    verdict: judge(ratio, threshold, ratioInterval),
  };
}

/** What makes two results files hard to compare: other machines or versions, incomplete or loaded runs. */
function comparisonWarnings(a: BenchResults, b: BenchResults, files: { a: string; b: string }): string[] {
  const warnings: string[] = [];
  if (a.host.cpuModel !== b.host.cpuModel || a.host.logicalCores !== b.host.logicalCores) {
    warnings.push(
      `different machines: "${a.host.cpuModel}" (${a.host.logicalCores} cores) vs "${b.host.cpuModel}" (${b.host.logicalCores} cores)`,
    );
  }
  if (a.host.onnxruntime.node !== b.host.onnxruntime.node)
    warnings.push(`different onnxruntime-node versions: ${a.host.onnxruntime.node} vs ${b.host.onnxruntime.node}`);
  if (!a.complete) warnings.push(`${files.a} is incomplete (${a.incompleteReason ?? 'interrupted'})`);
  if (!b.complete) warnings.push(`${files.b} is incomplete (${b.incompleteReason ?? 'interrupted'})`);
  const loaded = (r: BenchResults) => Math.max(0, (r.host.loadAverage[0] ?? 0) - 0.5) > r.host.logicalCores * 0.25;
  if (loaded(a) || loaded(b))
    warnings.push(
      'a load average above a quarter of the cores at the start of a run: its figures may be inflated by other work',
    );
  return warnings;
}

/** Inference runs matched by id (either side's extra runs listed as not comparable), a's order first. */
function compareInferenceRunsById(
  a: BenchResults,
  b: BenchResults,
  files: { a: string; b: string },
  minEffect: number,
): RunComparison[] {
  const comparisons: RunComparison[] = [];
  const runsB = new Map(b.runs.map((run) => [run.id, run]));
  const seen = new Set<string>();
  for (const runA of a.runs) {
    seen.add(runA.id);
    const runB = runsB.get(runA.id);
    const metric = 'bestSessionMedianMsPerBatch' as const;
    if (!runB) {
      comparisons.push({ id: runA.id, metric, verdict: 'not-comparable', note: `only in ${files.a}` });
      continue;
    }
    const samplesA = runA.samplesMs ?? [];
    const samplesB = runB.samplesMs ?? [];
    if (samplesA.length === 0 || samplesB.length === 0) {
      comparisons.push({
        id: runA.id,
        metric,
        verdict: 'not-comparable',
        note: `no timed samples (${runA.status} / ${runB.status})`,
      });
      continue;
    }
    if (!runA.speedClaim || !runB.speedClaim) {
      comparisons.push({
        id: runA.id,
        metric,
        verdict: 'not-comparable',
        note: 'software adapter or correctness-only run: no speed claim',
      });
      continue;
    }
    comparisons.push(compareInferenceRuns(runA, runB, minEffect));
  }
  for (const runB of b.runs) {
    if (!seen.has(runB.id))
      comparisons.push({
        id: runB.id,
        metric: 'bestSessionMedianMsPerBatch',
        verdict: 'not-comparable',
        note: `only in ${files.b}`,
      });
  }
  return comparisons;
}

/** End-to-end runs matched by id: the median seconds per pass, over the pass-to-pass noise (or the floor). */
function compareEndToEndRunsById(
  a: BenchResults,
  b: BenchResults,
  files: { a: string; b: string },
  minEffect: number,
): RunComparison[] {
  const comparisons: RunComparison[] = [];
  const e2eB = new Map(b.endToEnd.map((run) => [run.id, run]));
  for (const runA of a.endToEnd) {
    const runB = e2eB.get(runA.id);
    const id = `e2e/${runA.id}`;
    const metric = 'endToEndSecondsPerPass' as const;
    if (
      !runB ||
      !runA.passSeconds?.length ||
      !runB.passSeconds?.length ||
      !runA.images ||
      runA.images !== runB.images
    ) {
      comparisons.push({
        id,
        metric,
        verdict: 'not-comparable',
        note: !runB ? `only in ${files.a}` : 'different image counts or no passes',
      });
      continue;
    }
    if (!runA.speedClaim || !runB.speedClaim) {
      comparisons.push({ id, metric, verdict: 'not-comparable', note: 'no speed claim' });
      continue;
    }
    const medianA = median(runA.passSeconds);
    const medianB = median(runB.passSeconds);
    const noiseA = Math.max(passNoise(runA.passSeconds), noiseFloor(a));
    const noiseB = Math.max(passNoise(runB.passSeconds), noiseFloor(b));
    const ratio = medianB / medianA;
    const threshold = Math.max(minEffect, noiseA + noiseB);
    comparisons.push({
      id,
      metric,
      a: medianA,
      b: medianB,
      ratio,
      noiseA,
      noiseB,
      threshold,
      verdict: judge(ratio, threshold),
    });
  }
  return comparisons;
}

/** Compares every run present in both results, matched by id. `minEffect` is the smallest change ever flagged. */
export function compareResults(
  a: BenchResults,
  b: BenchResults,
  files: { a: string; b: string },
  minEffect = 0.02,
): ComparisonReport {
  const warnings = comparisonWarnings(a, b, files);
  const comparisons = [
    ...compareInferenceRunsById(a, b, files, minEffect),
    ...compareEndToEndRunsById(a, b, files, minEffect),
  ];
  const describe = (r: BenchResults) => `${r.host.cpuModel}, ${r.host.logicalCores} cores (${r.host.hostname})`;
  return {
    a: { file: files.a, profile: a.profile.name, host: describe(a), startedAt: a.startedAt, complete: a.complete },
    b: { file: files.b, profile: b.profile.name, host: describe(b), startedAt: b.startedAt, complete: b.complete },
    minEffect,
    method: COMPARE_METHOD,
    comparisons,
    regressions: comparisons.filter((c) => c.verdict === 'regression').length,
    improvements: comparisons.filter((c) => c.verdict === 'improvement').length,
    warnings,
  };
}
