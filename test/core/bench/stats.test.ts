import t, { type Test } from 'tap';
import {
  percentile,
  median,
  summarize,
  scaleSummary,
  bootstrapMedianInterval,
  bootstrapMedianRatioInterval,
  blockMedians,
  measureNoise,
  bestSessionFigure,
  splitSessions,
  seededRandom,
  seededNormal,
} from '../../../src/core/bench/stats.js';

const close = (t: Test, actual: number, expected: number, message: string, tolerance = 1e-9) =>
  t.ok(Math.abs(actual - expected) <= tolerance, `${message}: ${actual} vs ${expected}`);

t.test('percentiles interpolate between closest ranks like NumPy', async (t) => {
  close(t, percentile([1, 2, 3, 4], 0.5), 2.5, 'median of 1..4');
  close(
    t,
    percentile(
      Array.from({ length: 10 }, (_, i) => i + 1),
      0.9,
    ),
    9.1,
    'p90 of 1..10',
  );
  close(
    t,
    percentile(
      Array.from({ length: 100 }, (_, i) => i + 1),
      0.99,
    ),
    99.01,
    'p99 of 1..100',
  );
  close(t, percentile([50, 15, 40, 35, 20], 0.4), 29, 'p40 of an unsorted sample');
  close(t, percentile([7], 0.99), 7, 'any percentile of one value');
  close(t, percentile([3, 1, 2], 0), 1, 'p0 is the minimum');
  close(t, percentile([3, 1, 2], 1), 3, 'p100 is the maximum');
  t.throws(() => percentile([], 0.5), RangeError);
  t.throws(() => percentile([1], 1.5), RangeError);
});

t.test('summary of a known sample', async (t) => {
  const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
  t.equal(s.count, 8);
  t.equal(s.min, 2);
  t.equal(s.max, 9);
  close(t, s.mean, 5, 'mean');
  close(t, s.stdev, Math.sqrt(32 / 7), 'sample standard deviation');
  close(t, s.p25, 4, 'first quartile');
  close(t, s.p50, 4.5, 'median');
  close(t, s.p75, 5.5, 'third quartile');
  close(t, s.relativeIqr, 1.5 / 4.5, 'relative IQR');
  close(t, s.p95, 7 + 0.65 * 2, 'p95');
  const perImage = scaleSummary(s, 2);
  close(t, perImage.p50, 2.25, 'scaled median');
  t.equal(perImage.count, 8, 'count is not scaled');
  t.equal(perImage.relativeIqr, s.relativeIqr, 'relative figures are not scaled');
  t.equal(summarize([3]).stdev, 0);
});

t.test('seeded generators repeat exactly', async (t) => {
  const a = seededRandom(5);
  const b = seededRandom(5);
  const first = Array.from({ length: 5 }, () => a());
  t.same(
    first,
    Array.from({ length: 5 }, () => b()),
  );
  t.notSame(first, Array.from({ length: 5 }, seededRandom(6)));
  t.ok(first.every((v) => v >= 0 && v < 1));
  const normal = seededNormal(3);
  const values = Array.from({ length: 20000 }, () => normal());
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  t.ok(Math.abs(mean) < 0.03, `normal mean near 0 (${mean})`);
  t.ok(Math.abs(variance - 1) < 0.05, `normal variance near 1 (${variance})`);
});

t.test('bootstrap interval of the median: covers it, is seeded, narrows with more samples', async (t) => {
  const normal = seededNormal(11);
  const small = Array.from({ length: 30 }, () => 10 + normal());
  const large = Array.from({ length: 3000 }, () => 10 + normal());
  const ci = bootstrapMedianInterval(small, { seed: 1 });
  t.ok(ci.low <= median(small) && median(small) <= ci.high, 'contains the sample median');
  t.same(bootstrapMedianInterval(small, { seed: 1 }), ci, 'same seed, same interval');
  const wide = ci.high - ci.low;
  const ciLarge = bootstrapMedianInterval(large, { seed: 1 });
  t.ok(
    ciLarge.high - ciLarge.low < wide / 4,
    `3000 samples give a much narrower interval (${ciLarge.high - ciLarge.low} vs ${wide})`,
  );
  t.ok(ciLarge.low < 10.1 && ciLarge.high > 9.9, 'and it sits around the true median 10');
  t.same(bootstrapMedianInterval([4, 4, 4]), { low: 4, high: 4, level: 0.95 });
});

t.test('bootstrap interval of a ratio of medians', async (t) => {
  const normal = seededNormal(12);
  const a = Array.from({ length: 400 }, () => 10 + normal() * 0.5);
  const b = a.map((v) => v * 1.2);
  const ci = bootstrapMedianRatioInterval(a, b, { resamples: 400 });
  t.ok(ci.low > 1.1 && ci.high < 1.3, `ratio near 1.2: [${ci.low}, ${ci.high}]`);
  const same = bootstrapMedianRatioInterval(a, a.slice().reverse(), { resamples: 400 });
  t.ok(same.low < 1 && same.high > 1, 'a sample against itself straddles 1');
});

t.test('noise: sampling error, and drift within the run', async (t) => {
  t.same(blockMedians([1, 1, 2, 2, 3, 3, 4, 4, 5, 5], 5), [1, 2, 3, 4, 5]);
  const steady = measureNoise(new Array(100).fill(5));
  t.equal(steady.relative, 0, 'constant samples have no noise');
  const normal = seededNormal(13);
  const drifting = Array.from({ length: 200 }, (_, i) => (i < 100 ? 10 : 12) + normal() * 0.05);
  const noise = measureNoise(drifting);
  t.ok(noise.driftHalfWidth > 0.05, `a 20% step halfway through shows as drift (${noise.driftHalfWidth})`);
  t.equal(noise.relative, Math.max(noise.intervalHalfWidth, noise.driftHalfWidth));
  const flat = measureNoise(Array.from({ length: 200 }, () => 10 + normal() * 0.05));
  t.ok(flat.relative < 0.005, `tight samples without drift state a small noise (${flat.relative})`);
  const sessions = measureNoise(
    Array.from({ length: 200 }, () => 10 + normal() * 0.05),
    [9.7, 10.3],
  );
  t.ok(
    Math.abs(sessions.sessionHalfWidth! - 0.03) < 0.002,
    `two sessions 6% apart state ±3% (${sessions.sessionHalfWidth})`,
  );
  t.equal(sessions.relative, sessions.sessionHalfWidth);
  t.equal(flat.sessionHalfWidth, undefined, 'no session term with one session');
});

t.test("the best-session figure is the fastest session's median, its noise the gap to the runner-up", async (t) => {
  const normal = seededNormal(5);
  const session = (center: number) => Array.from({ length: 200 }, () => center * (1 + 0.01 * normal()));
  const sessions = [session(12), session(10), session(10.4), session(14)];
  const figure = bestSessionFigure(
    sessions.flat(),
    sessions.map((s) => s.length),
  );
  t.equal(figure.session, 1, 'the second session is the fastest');
  t.equal(figure.sessions, 4);
  t.ok(Math.abs(figure.medianMs - 10) < 0.05, `median ${figure.medianMs}`);
  t.ok(Math.abs(figure.gapHalfWidth - 0.02) < 0.004, `half the 4% gap to the runner-up (${figure.gapHalfWidth})`);
  t.equal(figure.relative, Math.max(figure.gapHalfWidth, figure.intervalHalfWidth));

  const alone = bestSessionFigure(session(10), [200]);
  t.equal(alone.gapHalfWidth, 0, 'one session: no gap');
  t.equal(alone.relative, alone.intervalHalfWidth, 'one session states its sampling error');

  const withEmpty = bestSessionFigure([...session(11), ...session(10)], [200, 0, 200]);
  t.equal(withEmpty.session, 2, 'indices count sessions that timed nothing');
  t.equal(withEmpty.sessions, 2);
});

t.test('sessions are split by their sample counts, and the counts must add up', async (t) => {
  t.same(splitSessions([1, 2, 3, 4, 5], [2, 0, 3]), [[1, 2], [], [3, 4, 5]]);
  t.throws(() => splitSessions([1, 2, 3], [1, 1]), RangeError);
  t.throws(() => bestSessionFigure([], []), RangeError);
});
