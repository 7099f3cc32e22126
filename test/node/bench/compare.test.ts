import t from 'tap';
import { compareResults } from '../../../src/node/bench/compare.js';
import { evaluateBudgets } from '../../../src/node/bench/budgets.js';
import { parseCpuInfo } from '../../../src/node/bench/host.js';
import { summarize } from '../../../src/core/bench/stats.js';
import { latencySamples, results, run, sessionRun } from './fixtures.js';

const files = { a: 'a.json', b: 'b.json' };

t.test('two runs from the same distribution agree within the stated noise', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const a = results([run('m/cpu/b8', latencySamples(20, 300, seed))]);
    const b = results([run('m/cpu/b8', latencySamples(20, 300, seed + 100))]);
    const report = compareResults(a, b, files);
    const c = report.comparisons[0]!;
    t.equal(
      c.verdict,
      'within-noise',
      `seed ${seed}: ratio ${c.ratio?.toFixed(4)}, threshold ${c.threshold?.toFixed(4)}`,
    );
    t.ok(Math.abs(c.ratio! - 1) <= c.threshold!, 'the ratio sits inside the threshold');
    t.equal(c.metric, 'medianLatencyMsPerBatch', 'files without sessions compare whole-run medians');
  }
});

t.test('a disturbed stretch in one run is not a regression when both runs had an undisturbed session', async (t) => {
  // b's machine was busy for three of its four sessions (+40%, as a neighbour on a shared host does): its whole-run
  // median moves, its fastest session does not.
  const a = results([
    sessionRun(
      'm/cpu/b1',
      [1, 2, 3, 4].map((s) => latencySamples(2, 80, s)),
    ),
  ]);
  const b = results([
    sessionRun('m/cpu/b1', [
      latencySamples(2.8, 80, 11),
      latencySamples(2, 80, 12),
      latencySamples(2.8, 80, 13),
      latencySamples(2.8, 80, 14),
    ]),
  ]);
  const c = compareResults(a, b, files).comparisons[0]!;
  t.equal(c.metric, 'bestSessionMedianMsPerBatch');
  t.ok(c.wholeRunRatio! > 1.3, `the whole-run medians differ by ${c.wholeRunRatio?.toFixed(3)}`);
  t.equal(
    c.verdict,
    'within-noise',
    `best sessions: ratio ${c.ratio?.toFixed(4)}, threshold ${c.threshold?.toFixed(4)}`,
  );
});

t.test(
  "a profile's noise floor sets the least noise every figure states, and widens what counts as a change",
  async (t) => {
    const sessionsAt = (ms: number, seed: number) => [0, 1, 2, 3].map((s) => latencySamples(ms, 80, seed + s));
    const plain = compareResults(
      results([sessionRun('m/cpu/b1', sessionsAt(2, 1))]),
      results([sessionRun('m/cpu/b1', sessionsAt(2.1, 11))]),
      files,
    ).comparisons[0]!;
    t.equal(
      plain.verdict,
      'regression',
      `5% slower in every session, no floor: ratio ${plain.ratio?.toFixed(3)}, threshold ${plain.threshold?.toFixed(3)}`,
    );

    const withFloor = (r: ReturnType<typeof results>) => {
      r.profile.content = { measurement: { noiseFloor: 0.04 } } as never;
      return r;
    };
    const a = withFloor(results([sessionRun('m/cpu/b1', sessionsAt(2, 1), {}, 0.04)]));
    const b = withFloor(results([sessionRun('m/cpu/b1', sessionsAt(2.1, 11), {}, 0.04)]));
    const run = a.runs[0]!;
    t.equal(run.noise!.relative, 0.04, 'the whole-run noise is raised to the floor');
    t.equal(run.noise!.floor, 0.04, 'and says the floor set it');
    t.equal(run.bestSession!.noise.relative, 0.04);
    t.equal(run.bestSession!.noise.floor, 0.04);
    const floored = compareResults(a, b, files).comparisons[0]!;
    t.equal(floored.threshold, 0.08, 'threshold: both floors');
    t.equal(floored.verdict, 'within-noise');

    const e2e = (r: ReturnType<typeof results>, seconds: number[]) => {
      r.endToEnd = [
        {
          id: 'm/cpu/b8',
          backbone: 'm',
          provider: 'cpu',
          batch: 8,
          status: 'ok',
          images: 100,
          repeats: 3,
          passSeconds: seconds,
          speedClaim: true,
        },
      ];
      return r;
    };
    const passes = compareResults(e2e(a, [1, 1.01, 0.99]), e2e(b, [1.05, 1.06, 1.04]), files).comparisons.find(
      (c) => c.id === 'e2e/m/cpu/b8',
    )!;
    t.equal(passes.noiseA, 0.04, 'end-to-end pass noise is floored too');
    t.equal(passes.verdict, 'within-noise');
  },
);

t.test('a slowdown in every session is a regression on the best-session figure', async (t) => {
  const a = results([
    sessionRun(
      'm/cpu/b1',
      [1, 2, 3, 4].map((s) => latencySamples(2, 80, s)),
    ),
  ]);
  const b = results([
    sessionRun(
      'm/cpu/b1',
      [5, 6, 7, 8].map((s) => latencySamples(2.3, 80, s)),
    ),
  ]);
  const c = compareResults(a, b, files).comparisons[0]!;
  t.equal(c.metric, 'bestSessionMedianMsPerBatch');
  t.equal(c.verdict, 'regression');
  t.ok(
    c.ratio! > 1.1 && c.ratioInterval!.low > 1,
    `ratio ${c.ratio?.toFixed(3)}, interval from ${c.ratioInterval?.low.toFixed(3)}`,
  );
});

t.test('a real slowdown is flagged as a regression, a speed-up as an improvement', async (t) => {
  const a = results([run('m/cpu/b8', latencySamples(20, 300, 1)), run('n/cpu/b8', latencySamples(5, 300, 2))]);
  const b = results([
    run('m/cpu/b8', latencySamples(20 * 1.15, 300, 3)),
    run('n/cpu/b8', latencySamples(5 * 0.8, 300, 4)),
  ]);
  const report = compareResults(a, b, files);
  const byId = new Map(report.comparisons.map((c) => [c.id, c]));
  t.equal(byId.get('m/cpu/b8')!.verdict, 'regression');
  t.ok(byId.get('m/cpu/b8')!.ratio! > 1.1);
  t.ok(byId.get('m/cpu/b8')!.ratioInterval!.low > 1, 'its bootstrap interval excludes 1');
  t.equal(byId.get('n/cpu/b8')!.verdict, 'improvement');
  t.equal(report.regressions, 1);
  t.equal(report.improvements, 1);
});

t.test("a change smaller than the runs' own noise is not flagged", async (t) => {
  // Noisy runs (drift within each run) hide a 4% change: the threshold is the sum of the two stated noises.
  const drifting = (median: number, seed: number) =>
    latencySamples(median, 300, seed).map((v, i) => v * (i < 150 ? 0.94 : 1.06));
  const a = results([run('m/cpu/b8', drifting(20, 1))]);
  const b = results([run('m/cpu/b8', drifting(20 * 1.04, 2))]);
  const c = compareResults(a, b, files).comparisons[0]!;
  t.ok(c.noiseA! > 0.04, `run a states its drift as noise (${c.noiseA})`);
  t.equal(c.verdict, 'within-noise');
});

t.test('runs only in one file, and runs without a speed claim, are not compared', async (t) => {
  const a = results([
    run('m/cpu/b8', latencySamples(20, 100, 1)),
    run('sw/webgpu/b1', latencySamples(900, 20, 2), { speedClaim: false }),
  ]);
  const b = results([
    run('sw/webgpu/b1', latencySamples(300, 20, 3), { speedClaim: false }),
    run('z/cpu/b1', latencySamples(3, 100, 4)),
  ]);
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
  const software = run('m/webgpu/b8', latencySamples(800, 20, 2), {
    providerRequested: 'webgpu',
    speedClaim: false,
    correctness: { reference: 'cpu', minCosine: 0.9995, maxAbsDifference: 0.001, rows: 8 },
  });
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
  const x86 = parseCpuInfo(
    [
      'processor\t: 0',
      'model name\t: AMD EPYC 7B13',
      'cpu MHz\t\t: 2450.000',
      'physical id\t: 0',
      'core id\t\t: 0',
      'flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni hypervisor',
      '',
      'processor\t: 1',
      'model name\t: AMD EPYC 7B13',
      'physical id\t: 0',
      'core id\t\t: 1',
      'flags\t\t: fpu',
    ].join('\n'),
  );
  t.equal(x86.model, 'AMD EPYC 7B13');
  t.equal(x86.physicalCores, 2);
  t.equal(x86.mhz, 2450);
  t.ok(x86.flags.includes('avx512_vnni'));
  t.equal(x86.hypervisor, true);
  const pi = parseCpuInfo(
    [
      'processor\t: 0',
      'BogoMIPS\t: 108.00',
      'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp',
      'CPU part\t: 0xd0b',
      '',
      'Model\t\t: Raspberry Pi 5 Model B Rev 1.0',
    ].join('\n'),
  );
  t.equal(pi.model, 'Raspberry Pi 5 Model B Rev 1.0 (Cortex-A76)');
  t.ok(pi.flags.includes('asimddp'));
});
