// Hand-built bench results for tests that need no measurement (compare, budgets, reports).
import { measureNoise, median, seededNormal, summarize } from '../../../src/core/bench/stats.js';
import { recordInferenceFigures } from '../../../src/node/bench/run-figures.js';
import type { BenchResults, InferenceRun } from '../../../src/node/bench/results.js';

/** Latency samples like a real run: a floor, Gaussian jitter and a few slow outliers. Seeded. */
export function latencySamples(medianMs: number, count: number, seed: number): number[] {
  const normal = seededNormal(seed);
  return Array.from({ length: count }, (_, i) => {
    const jitter = medianMs * (1 + 0.03 * normal());
    return i % 50 === 7 ? jitter * 1.8 : jitter;
  });
}

export function run(id: string, samples: number[], overrides: Partial<InferenceRun> = {}): InferenceRun {
  const batch = 8;
  const summary = summarize(samples);
  return {
    id,
    backbone: {
      reference: id.split('/')[0]!,
      id: id.split('/')[0]!,
      path: '/m.onnx',
      sha256: 'a'.repeat(64),
      modelBytes: 1,
      runPath: '/m.onnx',
      runBytes: 1,
      batch: 'dynamic',
    },
    providerRequested: 'cpu',
    provider: { requested: 'cpu', used: 'cpu', fallbacks: [], software: false },
    batch,
    status: 'ok',
    samplesMs: samples,
    latencyMsPerBatch: summary,
    imagesPerSecond: (batch * samples.length) / (samples.reduce((s, v) => s + v, 0) / 1000),
    noise: measureNoise(samples),
    memory: { rssBeforeMb: 100, peakRssMb: 300, addedMb: 200 },
    speedClaim: true,
    ...overrides,
  };
}

export function results(runs: InferenceRun[]): BenchResults {
  return {
    schema: 'edgetl-bench/1',
    complete: true,
    startedAt: '2026-11-23T00:00:00Z',
    finishedAt: '2026-11-23T00:01:00Z',
    durationSeconds: 60,
    profile: {
      name: 'p',
      file: '/p.json',
      sha256: 'b'.repeat(64),
      deviceClass: 'x',
      purpose: 'performance',
      content: {} as never,
    },
    host: {
      cpuModel: 'Test CPU',
      logicalCores: 2,
      arch: 'x64',
      isa: {
        sse4_2: true,
        avx: true,
        avx2: true,
        fma: true,
        avx512f: false,
        avx512vnni: false,
        avxVnni: false,
        amx: false,
        neon: false,
        dotprod: false,
        sve: false,
      },
      cpuFlags: [],
      memoryMb: 1024,
      os: { platform: 'linux', release: '6' },
      loadAverage: [0, 0, 0],
      node: 'v20',
      onnxruntime: { node: '1.30.0' },
      edgetl: '0.1.0',
      hostname: 'h',
    },
    method: {
      warmupRuns: 1,
      minRuns: 1,
      minDurationMs: 0,
      maxDurationMs: 1,
      seed: 1,
      percentiles: '',
      noise: '',
      timing: '',
      memory: '',
    },
    imageSource: 'none',
    runs,
    preprocess: [],
    endToEnd: [],
    heads: [],
    budgets: [],
    loadAverageAtEnd: [0, 0, 0],
    warnings: [],
  };
}

/** A run whose samples come from separate sessions, with the figures the harness derives (best session included). */
export function sessionRun(
  id: string,
  sessions: number[][],
  overrides: Partial<InferenceRun> = {},
  noiseFloor?: number,
): InferenceRun {
  const samples = sessions.flat();
  const built = run(id, samples, overrides);
  recordInferenceFigures(built, {
    samplesMs: samples,
    sessionMedians: sessions.map((s) => median(s)),
    sessionSampleCounts: sessions.map((s) => s.length),
    noiseFloor,
    measuredMs: samples.reduce((a, b) => a + b, 0),
    batch: built.batch,
    macsPerImage: undefined,
  });
  return built;
}
