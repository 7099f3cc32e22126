import t from 'tap';
import { compareResults } from '../../src/bench/compare.js';
import { evaluateBudgets } from '../../src/bench/budgets.js';
import { parseCpuInfo } from '../../src/bench/host.js';
import { measureNoise, seededNormal, summarize } from '../../src/bench/stats.js';
import type { BenchResults, InferenceRun } from '../../src/bench/results.js';

/** Latency samples like a real run: a floor, Gaussian jitter and a few slow outliers. Seeded. */
function latencySamples(medianMs: number, count: number, seed: number): number[] {
  const normal = seededNormal(seed);
  return Array.from({ length: count }, (_, i) => {
    const jitter = medianMs * (1 + 0.03 * normal());
    return i % 50 === 7 ? jitter * 1.8 : jitter;
  });
}

function run(id: string, samples: number[], overrides: Partial<InferenceRun> = {}): InferenceRun {
  const batch = 8;
  const summary = summarize(samples);
  return {
    id,
    backbone: { reference: id.split('/')[0]!, id: id.split('/')[0]!, path: '/m.onnx', sha256: 'a'.repeat(64), modelBytes: 1, runPath: '/m.onnx', runBytes: 1, batch: 'dynamic' },
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

function results(runs: InferenceRun[]): BenchResults {
  return {
    schema: 'edgetl-bench/1',
    complete: true,
    startedAt: '2026-11-23T00:00:00Z',
    finishedAt: '2026-11-23T00:01:00Z',
    durationSeconds: 60,
    profile: { name: 'p', file: '/p.json', sha256: 'b'.repeat(64), deviceClass: 'x', purpose: 'performance', content: {} as never },
    host: {
      cpuModel: 'Test CPU',
      logicalCores: 2,
      arch: 'x64',
      isa: { sse4_2: true, avx: true, avx2: true, fma: true, avx512f: false, avx512vnni: false, avxVnni: false, amx: false, neon: false, dotprod: false, sve: false },
      cpuFlags: [],
      memoryMb: 1024,
      os: { platform: 'linux', release: '6' },
      loadAverage: [0, 0, 0],
      node: 'v20',
      onnxruntime: { node: '1.30.0' },
      edgetl: '0.1.0',
      hostname: 'h',
    },
    method: { warmupRuns: 1, minRuns: 1, minDurationMs: 0, maxDurationMs: 1, seed: 1, percentiles: '', noise: '', timing: '', memory: '' },
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

const files = { a: 'a.json', b: 'b.json' };

t.test('two runs from the same distribution agree within the stated noise', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const a = results([run('m/cpu/b8', latencySamples(20, 300, seed))]);
    const b = results([run('m/cpu/b8', latencySamples(20, 300, seed + 100))]);
    const report = compareResults(a, b, files);
    const c = report.comparisons[0]!;
    t.equal(c.verdict, 'within-noise', `seed ${seed}: ratio ${c.ratio?.toFixed(4)}, threshold ${c.threshold?.toFixed(4)}`);
    t.ok(Math.abs(c.ratio! - 1) <= c.threshold!, 'the ratio sits inside the threshold');
  }
});

t.test('a real slowdown is flagged as a regression, a speed-up as an improvement', async (t) => {
  const a = results([run('m/cpu/b8', latencySamples(20, 300, 1)), run('n/cpu/b8', latencySamples(5, 300, 2))]);
  const b = results([run('m/cpu/b8', latencySamples(20 * 1.15, 300, 3)), run('n/cpu/b8', latencySamples(5 * 0.8, 300, 4))]);
  const report = compareResults(a, b, files);
  const byId = new Map(report.comparisons.map((c) => [c.id, c]));
  t.equal(byId.get('m/cpu/b8')!.verdict, 'regression');
  t.ok(byId.get('m/cpu/b8')!.ratio! > 1.1);
  t.ok(byId.get('m/cpu/b8')!.ratioInterval!.low > 1, 'its bootstrap interval excludes 1');
  t.equal(byId.get('n/cpu/b8')!.verdict, 'improvement');
  t.equal(report.regressions, 1);
  t.equal(report.improvements, 1);
});

t.test('a change smaller than the runs\' own noise is not flagged', async (t) => {
  // Noisy runs (drift within each run) hide a 4% change: the threshold is the sum of the two stated noises.
  const drifting = (median: number, seed: number) => latencySamples(median, 300, seed).map((v, i) => v * (i < 150 ? 0.94 : 1.06));
  const a = results([run('m/cpu/b8', drifting(20, 1))]);
  const b = results([run('m/cpu/b8', drifting(20 * 1.04, 2))]);
  const c = compareResults(a, b, files).comparisons[0]!;
  t.ok(c.noiseA! > 0.04, `run a states its drift as noise (${c.noiseA})`);
  t.equal(c.verdict, 'within-noise');
});

t.test('runs only in one file, and runs without a speed claim, are not compared', async (t) => {
  const a = results([run('m/cpu/b8', latencySamples(20, 100, 1)), run('sw/webgpu/b1', latencySamples(900, 20, 2), { speedClaim: false })]);
  const b = results([run('sw/webgpu/b1', latencySamples(300, 20, 3), { speedClaim: false }), run('z/cpu/b1', latencySamples(3, 100, 4))]);
  a.host.cpuModel = 'Other CPU';
  const report = compareResults(a, b, files);
  const byId = new Map(report.comparisons.map((c) => [c.id, c]));
  t.match(byId.get('m/cpu/b8')!.note, /only in a\.json/);
  t.match(byId.get('z/cpu/b1')!.note, /only in b\.json/);
  t.match(byId.get('sw/webgpu/b1')!.note, /no speed claim/);
  t.equal(report.regressions, 0);
  t.match(report.warnings.join(' '), /different machines/);
});

t.test('budget verdicts: pass, fail, not measured, not applicable on a software adapter', async (t) => {
  const fast = run('m/cpu/b8', latencySamples(8, 50, 1));
  fast.latencyMsPerImage = summarize(fast.samplesMs!.map((v) => v / 8));
  const software = run('m/webgpu/b8', latencySamples(800, 20, 2), { providerRequested: 'webgpu', speedClaim: false, correctness: { reference: 'cpu', minCosine: 0.9995, maxAbsDifference: 0.001, rows: 8 } });
  software.latencyMsPerImage = summarize(software.samplesMs!.map((v) => v / 8));
  const verdicts = evaluateBudgets(
    [
      { name: 'fast enough', backbone: 'm', p95LatencyMsPerImage: 2 },
      { name: 'too greedy', backbone: 'm', provider: 'cpu', minImagesPerSecond: 5000 },
      { name: 'other backbone', backbone: 'q', maxPeakMemoryMb: 10 },
      { name: 'webgpu agrees', provider: 'webgpu', minOutputCosine: 0.999 },
    ],
    { runs: [fast, software], endToEnd: [], heads: [] },
  );
  const find = (budget: string, run?: string) => verdicts.find((v) => v.budget === budget && v.run === run)!;
  t.equal(find('fast enough', 'm/cpu/b8').status, 'pass');
  t.equal(find('fast enough', 'm/webgpu/b8').status, 'not-applicable', 'no speed verdict on a software adapter');
  t.equal(find('too greedy', 'm/cpu/b8').status, 'fail');
  t.ok(find('too greedy', 'm/cpu/b8').value! < 5000);
  t.equal(find('other backbone').status, 'not-measured');
  t.equal(find('webgpu agrees', 'm/webgpu/b8').status, 'pass', 'correctness is judged on a software adapter');
});

t.test('host facts from /proc/cpuinfo: x86 flags and Arm features', async (t) => {
  const x86 = parseCpuInfo(['processor\t: 0', 'model name\t: AMD EPYC 7B13', 'cpu MHz\t\t: 2450.000', 'physical id\t: 0', 'core id\t\t: 0', 'flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni hypervisor', '', 'processor\t: 1', 'model name\t: AMD EPYC 7B13', 'physical id\t: 0', 'core id\t\t: 1', 'flags\t\t: fpu'].join('\n'));
  t.equal(x86.model, 'AMD EPYC 7B13');
  t.equal(x86.physicalCores, 2);
  t.equal(x86.mhz, 2450);
  t.ok(x86.flags.includes('avx512_vnni'));
  t.equal(x86.hypervisor, true);
  const pi = parseCpuInfo(['processor\t: 0', 'BogoMIPS\t: 108.00', 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp', 'CPU part\t: 0xd0b', '', 'Model\t\t: Raspberry Pi 5 Model B Rev 1.0'].join('\n'));
  t.equal(pi.model, 'Raspberry Pi 5 Model B Rev 1.0 (Cortex-A76)');
  t.ok(pi.flags.includes('asimddp'));
});
