import { performance } from 'node:perf_hooks';

export interface MeasureOptions {
  warmupRuns: number;
  minRuns: number;
  minDurationMs: number;
  /** Stop even if minRuns is not reached (the measurement is then `short`). */
  maxDurationMs: number;
  signal?: AbortSignal;
  /** Called after each timed run. */
  onProgress?: (timedRuns: number, elapsedMs: number) => void;
}

export interface Measurement {
  /** The very first call, cold (allocations, kernel selection, caches). */
  firstRunMs: number;
  warmupRuns: number;
  /** Timed calls in time order, ms. */
  samplesMs: number[];
  /** Wall time of the timed phase (sum of samples plus the loop's own overhead), ms. */
  measuredMs: number;
  /** ok: both minimums met; short: maxDurationMs came first; interrupted: aborted (Ctrl-C). */
  status: 'ok' | 'short' | 'interrupted';
}

/**
 * The MLPerf-style loop: one cold run (reported apart), `warmupRuns` discarded, then timed runs until BOTH
 * `minRuns` and `minDurationMs` are reached. Each sample times one awaited call with performance.now().
 */
export async function measureRepeated(runOnce: () => Promise<unknown>, options: MeasureOptions): Promise<Measurement> {
  const startCold = performance.now();
  await runOnce();
  const firstRunMs = performance.now() - startCold;
  let warmups = 0;
  for (; warmups < options.warmupRuns; warmups++) {
    if (options.signal?.aborted)
      return { firstRunMs, warmupRuns: warmups, samplesMs: [], measuredMs: 0, status: 'interrupted' };
    await runOnce();
  }
  const samplesMs: number[] = [];
  const phaseStart = performance.now();
  let status: Measurement['status'] = 'ok';
  for (;;) {
    const elapsed = performance.now() - phaseStart;
    if (samplesMs.length >= options.minRuns && elapsed >= options.minDurationMs) break;
    if (elapsed >= options.maxDurationMs) {
      status = samplesMs.length >= options.minRuns ? 'ok' : 'short';
      break;
    }
    if (options.signal?.aborted) {
      status = 'interrupted';
      break;
    }
    const start = performance.now();
    await runOnce();
    samplesMs.push(performance.now() - start);
    options.onProgress?.(samplesMs.length, performance.now() - phaseStart);
  }
  return { firstRunMs, warmupRuns: warmups, samplesMs, measuredMs: performance.now() - phaseStart, status };
}

/**
 * Samples the process's resident set size every `intervalMs` (the event loop is free while onnxruntime
 * computes on its own threads) and remembers the highest value.
 */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peakBytes = 0;
  readonly startBytes: number;

  constructor(private readonly intervalMs = 10) {
    this.startBytes = process.memoryUsage.rss();
    this.peakBytes = this.startBytes;
  }

  start(): this {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peakBytes) this.peakBytes = rss;
  }

  stop(): { startMb: number; peakMb: number } {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return { startMb: this.startBytes / 2 ** 20, peakMb: this.peakBytes / 2 ** 20 };
  }
}
