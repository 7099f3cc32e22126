/**
 * Statistics for benchmark samples. Percentiles use linear interpolation between closest ranks
 * (Hyndman & Fan type 7, the default of NumPy and R), so figures can be re-derived from the raw samples
 * in results.json with any standard tool.
 */

/** A seeded 32-bit PRNG (mulberry32): same seed, same stream, on every platform. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviates from a seeded uniform stream (Box-Muller). */
export function seededNormal(seed: number): () => number {
  const uniform = seededRandom(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const v = uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
}

/** The p-quantile (0..1) of values already sorted ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('percentile of an empty sample');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile must be within 0..1, got ${p}`);
  const position = (n - 1) * p;
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, n - 1);
  const fraction = position - lower;
  return sorted[lower]! + fraction * (sorted[upper]! - sorted[lower]!);
}

export function percentile(values: ArrayLike<number>, p: number): number {
  return percentileOfSorted(sortedCopy(values), p);
}

export function median(values: ArrayLike<number>): number {
  return percentile(values, 0.5);
}

function sortedCopy(values: ArrayLike<number>): Float64Array {
  const copy = Float64Array.from(values as ArrayLike<number>);
  copy.sort();
  return copy;
}

/** Distribution summary of a sample, in the sample's unit. */
export interface SampleSummary {
  count: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n - 1). 0 for a single value. */
  stdev: number;
  p25: number;
  p50: number;
  p75: number;
  p90: number;
  p95: number;
  p99: number;
  /** Interquartile range divided by the median: a dispersion measure that ignores outliers. */
  relativeIqr: number;
}

export function summarize(values: ArrayLike<number>): SampleSummary {
  const sorted = sortedCopy(values);
  const n = sorted.length;
  if (n === 0) throw new RangeError('summary of an empty sample');
  let sum = 0;
  for (const v of sorted) sum += v;
  const mean = sum / n;
  let squares = 0;
  for (const v of sorted) squares += (v - mean) ** 2;
  const p25 = percentileOfSorted(sorted, 0.25);
  const p50 = percentileOfSorted(sorted, 0.5);
  const p75 = percentileOfSorted(sorted, 0.75);
  return {
    count: n,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    mean,
    stdev: n > 1 ? Math.sqrt(squares / (n - 1)) : 0,
    p25,
    p50,
    p75,
    p90: percentileOfSorted(sorted, 0.9),
    p95: percentileOfSorted(sorted, 0.95),
    p99: percentileOfSorted(sorted, 0.99),
    relativeIqr: p50 > 0 ? (p75 - p25) / p50 : 0,
  };
}

/** Every value of a summary divided by `divisor` (e.g. per-batch latency to per-image latency). */
export function scaleSummary(summary: SampleSummary, divisor: number): SampleSummary {
  const scaled = { ...summary };
  for (const key of ['min', 'max', 'mean', 'stdev', 'p25', 'p50', 'p75', 'p90', 'p95', 'p99'] as const) {
    scaled[key] = summary[key] / divisor;
  }
  return scaled;
}

export interface ConfidenceInterval {
  low: number;
  high: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
}

/**
 * Percentile-bootstrap confidence interval of the median. Seeded, so the same samples give the same interval.
 * Resampling uses counting on the sorted sample, O(resamples * n).
 */
export function bootstrapMedianInterval(
  values: ArrayLike<number>,
  options: { resamples?: number; level?: number; seed?: number } = {},
): ConfidenceInterval {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  const sorted = sortedCopy(values);
  const n = sorted.length;
  if (n === 0) throw new RangeError('bootstrap of an empty sample');
  const random = seededRandom(options.seed ?? 1);
  const medians = new Float64Array(resamples);
  const resample = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) resample[i] = sorted[Math.floor(random() * n)]!;
    resample.sort();
    medians[r] = percentileOfSorted(resample, 0.5);
  }
  medians.sort();
  const tail = (1 - level) / 2;
  return { low: percentileOfSorted(medians, tail), high: percentileOfSorted(medians, 1 - tail), level };
}

/**
 * Bootstrap interval of median(b) / median(a) from two independent samples: the basis of `bench compare`.
 */
export function bootstrapMedianRatioInterval(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: { resamples?: number; level?: number; seed?: number } = {},
): ConfidenceInterval {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  const sortedA = sortedCopy(a);
  const sortedB = sortedCopy(b);
  if (sortedA.length === 0 || sortedB.length === 0) throw new RangeError('bootstrap of an empty sample');
  const random = seededRandom(options.seed ?? 1);
  const ratios = new Float64Array(resamples);
  const resampleA = new Float64Array(sortedA.length);
  const resampleB = new Float64Array(sortedB.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < resampleA.length; i++) resampleA[i] = sortedA[Math.floor(random() * sortedA.length)]!;
    for (let i = 0; i < resampleB.length; i++) resampleB[i] = sortedB[Math.floor(random() * sortedB.length)]!;
    resampleA.sort();
    resampleB.sort();
    ratios[r] = percentileOfSorted(resampleB, 0.5) / percentileOfSorted(resampleA, 0.5);
  }
  ratios.sort();
  const tail = (1 - level) / 2;
  return { low: percentileOfSorted(ratios, tail), high: percentileOfSorted(ratios, 1 - tail), level };
}

/**
 * Medians of `blocks` consecutive, equal slices of a time-ordered sample. Slow drift during a run (thermal
 * throttling, a neighbour's load) shows up as spread between block medians even when each block is tight.
 */
export function blockMedians(timeOrdered: ArrayLike<number>, blocks: number): number[] {
  const n = timeOrdered.length;
  const count = Math.max(1, Math.min(blocks, n));
  const result: number[] = [];
  for (let b = 0; b < count; b++) {
    const start = Math.floor((b * n) / count);
    const end = Math.floor(((b + 1) * n) / count);
    const slice: number[] = [];
    for (let i = start; i < end; i++) slice.push(timeOrdered[i]!);
    result.push(median(slice));
  }
  return result;
}

/** How much a run's median can be trusted; see `measureNoise`. */
export interface NoiseEstimate {
  /** 95% bootstrap interval of the median. */
  medianInterval: ConfidenceInterval;
  /** Half-width of that interval relative to the median. */
  intervalHalfWidth: number;
  /** (max - min) / 2 of the medians of 5 consecutive time blocks, relative to the median. */
  driftHalfWidth: number;
  /** (max - min) / 2 of the medians of each fresh session, relative to the median (absent with one session). */
  sessionHalfWidth?: number;
  /** The profile's noise floor, when it set the stated noise higher than the above. */
  floor?: number;
  /** The stated noise: the largest of the above, as a fraction of the median (0.02 = ±2%). */
  relative: number;
}

export const NOISE_BLOCKS = 5;

/**
 * The noise a run states: the largest of (a) the half-width of the 95% bootstrap interval of the median,
 * (b) half the spread between the medians of 5 consecutive time blocks and (c) half the spread between the
 * medians of the separate sessions the samples came from. (a) covers sampling error, (b) drift within the run,
 * (c) what changes from one session to the next; sampling error alone would hide (b) and (c).
 */
export function measureNoise(timeOrdered: ArrayLike<number>, sessionMedians: number[] = [], seed = 1): NoiseEstimate {
  const center = median(timeOrdered);
  const interval = bootstrapMedianInterval(timeOrdered, { seed });
  const intervalHalfWidth = center > 0 ? (interval.high - interval.low) / 2 / center : 0;
  const blocks = timeOrdered.length >= NOISE_BLOCKS * 4 ? blockMedians(timeOrdered, NOISE_BLOCKS) : [center];
  const driftHalfWidth = center > 0 ? (Math.max(...blocks) - Math.min(...blocks)) / 2 / center : 0;
  const estimate: NoiseEstimate = {
    medianInterval: interval,
    intervalHalfWidth,
    driftHalfWidth,
    relative: Math.max(intervalHalfWidth, driftHalfWidth),
  };
  if (sessionMedians.length > 1 && center > 0) {
    estimate.sessionHalfWidth = (Math.max(...sessionMedians) - Math.min(...sessionMedians)) / 2 / center;
    estimate.relative = Math.max(estimate.relative, estimate.sessionHalfWidth);
  }
  return estimate;
}

/**
 * The run's most repeatable figure: the median of its fastest session. On a shared or virtual machine a neighbour's
 * work only ever adds time, and it comes and goes over tens of seconds; sessions spread over the whole run make it
 * likely that at least one ran undisturbed. Taking the fastest is the reasoning behind Python's `timeit` ("the
 * lowest value gives a lower bound for how fast your machine can run the snippet") and Julia's BenchmarkTools
 * (Chen and Revels, "Robust benchmarking in noisy environments", 2016).
 */
export interface BestSessionFigure {
  /** Index of the fastest session among the run's sessions (in the order they ran). */
  session: number;
  sessions: number;
  /** Median of that session's samples. */
  medianMs: number;
  samples: number;
  /** Half-width of the 95% bootstrap interval of that median, relative to it. */
  intervalHalfWidth: number;
  /**
   * Half the gap to the second-fastest session's median, relative: if only one session ran undisturbed, the
   * figure rests on it alone and the gap says so. 0 with one session.
   */
  gapHalfWidth: number;
  /** The stated noise of this figure: the larger of the two (0.02 = ±2%). */
  relative: number;
}

/** Splits time-ordered samples into consecutive sessions of the given sizes. */
export function splitSessions(samples: ArrayLike<number>, sampleCounts: readonly number[]): number[][] {
  const sessions: number[][] = [];
  let offset = 0;
  for (const count of sampleCounts) {
    sessions.push(Array.from({ length: count }, (_, i) => samples[offset + i]!));
    offset += count;
  }
  if (offset !== samples.length)
    throw new RangeError(`session sizes add up to ${offset}, but there are ${samples.length} samples`);
  return sessions;
}

export function bestSessionFigure(
  samples: ArrayLike<number>,
  sampleCounts: readonly number[],
  seed = 1,
): BestSessionFigure {
  const sessions = splitSessions(samples, sampleCounts).filter((s) => s.length > 0);
  if (sessions.length === 0) throw new RangeError('no session has samples');
  const medians = sessions.map((s) => median(s));
  let best = 0;
  for (let i = 1; i < medians.length; i++) if (medians[i]! < medians[best]!) best = i;
  const center = medians[best]!;
  const interval = bootstrapMedianInterval(sessions[best]!, { seed });
  const intervalHalfWidth = center > 0 ? (interval.high - interval.low) / 2 / center : 0;
  const others = medians.filter((_, i) => i !== best);
  const gapHalfWidth = others.length > 0 && center > 0 ? (Math.min(...others) - center) / 2 / center : 0;
  const nonEmptyIndex = sampleCounts.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0)[best]!;
  return {
    session: nonEmptyIndex,
    sessions: sessions.length,
    medianMs: center,
    samples: sessions[best]!.length,
    intervalHalfWidth,
    gapHalfWidth,
    relative: Math.max(intervalHalfWidth, gapHalfWidth),
  };
}
