import t from 'tap';
import {
  checkBudgets,
  pairedDifference,
  paretoFront,
  recommend,
  scoreHeldOut,
  spearman,
  transferVerdict,
  type HeldOutScores,
  type RankedCandidate,
} from '../../../src/core/select/decision.js';

/** Held-out scores of `rows` rows over `folds` round-robin folds, right where `isRight(row)`. */
function scores(rows: number, folds: number, isRight: (row: number) => boolean): HeldOutScores {
  const classCount = 2;
  const logits = new Float32Array(rows * classCount);
  const targets = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    targets[r] = r % 2;
    const predicted = isRight(r) ? targets[r]! : 1 - targets[r]!;
    logits[r * classCount + predicted] = 1;
  }
  const foldRows = Array.from({ length: folds }, (_, f) =>
    Array.from({ length: rows }, (_, r) => r).filter((r) => r % folds === f),
  );
  return scoreHeldOut({
    logits,
    targets,
    classCount,
    folds: foldRows,
    rows: Array.from({ length: rows }, (_, r) => r),
    source: `${folds}-fold out-of-fold`,
  });
}

t.test('held-out scores: overall and per-fold accuracy, rows mapped back to training order', async (t) => {
  const s = scores(12, 3, (r) => r !== 0 && r !== 3);
  t.equal(s.accuracy, 10 / 12);
  t.same(s.foldAccuracy, [2 / 4, 1, 1], 'rows 0 and 3 are both in fold 0');
  t.same(
    s.rows,
    Array.from({ length: 12 }, (_, r) => r),
  );
  t.equal(s.correct[0], 0);
  t.equal(s.correct[1], 1);

  // logits given for a held-out split in another order: re-indexed by training row
  const logits = new Float32Array([0, 1, 1, 0]);
  const mapped = scoreHeldOut({
    logits,
    targets: new Int32Array([1, 1]),
    classCount: 2,
    folds: [[0, 1]],
    rows: [7, 3],
    source: 'held-out 2 rows',
  });
  t.same(mapped.rows, [3, 7]);
  t.same(Array.from(mapped.correct), [0, 1], 'row 3 (second logits row) is wrong, row 7 right');
  t.same(mapped.folds, [[3, 7]]);
});

t.test(
  'paired difference: per fold with its standard error, per row for a single split; refuses other rows',
  async (t) => {
    const a = scores(12, 3, () => true);
    const b = scores(12, 3, (r) => r !== 0);
    const d = pairedDifference(a, b);
    t.equal(d.basis, 'folds');
    t.same(d.perFold, [0.25, 0, 0]);
    t.ok(Math.abs(d.mean - 0.25 / 3) < 1e-12);
    t.ok(
      Math.abs(d.standardError - Math.sqrt(((0.25 - 0.25 / 3) ** 2 + 2 * (0.25 / 3) ** 2) / 2) / Math.sqrt(3)) < 1e-12,
    );
    const single = pairedDifference(
      scores(10, 1, () => true),
      scores(10, 1, (r) => r >= 2),
    );
    t.equal(single.basis, 'rows');
    t.ok(Math.abs(single.mean - 0.2) < 1e-12);
    t.ok(single.standardError > 0);
    t.throws(
      () =>
        pairedDifference(
          scores(12, 3, () => true),
          scores(10, 3, () => true),
        ),
      /different rows/,
    );
  },
);

t.test(
  'negative transfer: a clear gain passes; no gain, a loss, or a gain within twice its standard error does not',
  async (t) => {
    const baseline = scores(300, 3, (r) => r % 10 < 6);
    const strong = transferVerdict(
      scores(300, 3, (r) => r % 10 < 9),
      baseline,
      'raw pixels',
    );
    t.equal(strong.negativeTransfer, false);
    t.match(strong.reason, /30\.0 points better/);
    const same = transferVerdict(
      scores(300, 3, (r) => r % 10 < 6),
      baseline,
      'raw pixels',
    );
    t.equal(same.negativeTransfer, true);
    t.match(same.reason, /no better than raw pixels \(0\.0 points\)/);
    const worse = transferVerdict(
      scores(300, 3, (r) => r % 10 < 3),
      baseline,
      'raw pixels',
    );
    t.equal(worse.negativeTransfer, true);
    t.match(worse.reason, /-30\.0 points/);
    // better in one fold only: a positive mean gain, but noisy across folds
    const lucky = transferVerdict(
      scores(300, 3, (r) => r % 10 < 6 || (r % 3 === 0 && r % 10 === 7)),
      baseline,
      'raw pixels',
    );
    t.ok(lucky.gainPoints > 0);
    t.equal(lucky.negativeTransfer, true);
    t.match(lucky.reason, /within 2 x the fold-to-fold standard error/);
  },
);

function candidate(
  backbone: string,
  right: (r: number) => boolean,
  msPerImage: number | null,
  peakRssMb: number | null = 100,
): RankedCandidate {
  return { backbone, scores: scores(300, 3, right), msPerImage, peakRssMb };
}

t.test(
  'recommendation: most accurate within budgets, one-standard-error ties to the fastest, unknown cost never within a budget',
  async (t) => {
    const best = candidate('big', (r) => r % 10 < 9, 20);
    const close = candidate('small', (r) => r % 10 < 9 && r !== 5, 2); // one photo worse: tied
    const far = candidate('tiny', (r) => r % 10 < 6, 1);
    let rec = recommend([best, close, far], {});
    t.equal(rec.mostAccurate, 'big');
    t.same(rec.tied.sort(), ['big', 'small']);
    t.equal(rec.recommended, 'small', 'tied and faster');
    t.match(rec.rule, /one-standard-error rule/);
    t.match(rec.reason, /small .* within 1 standard error of the most accurate, big/);

    rec = recommend([best, far], {});
    t.equal(rec.recommended, 'big', 'a clear accuracy gap is not a tie');

    rec = recommend([best, close, far], { maxMsPerImage: 1.5 });
    t.equal(rec.recommended, 'tiny', 'only tiny is within 1.5 ms');
    t.match(rec.rule, /<= 1\.5 ms per image/);

    rec = recommend([candidate('unknown', () => true, null), far], { maxMsPerImage: 5 });
    t.equal(rec.recommended, 'tiny', 'a cost unknown on the device cannot be shown within the budget');
    rec = recommend([best], { maxMsPerImage: 5 });
    t.equal(rec.recommended, null);
    t.match(rec.reason, /No candidate is known to be within the budgets/);

    rec = recommend([candidate('heavy', () => true, 1, 900), far], { maxMemoryMb: 500 });
    t.equal(rec.recommended, 'tiny');
  },
);

t.test('budget checks and the Pareto front', async (t) => {
  t.same(checkBudgets({ msPerImage: 3, peakRssMb: 200 }, { maxMsPerImage: 5, maxMemoryMb: 300 }), {
    status: 'within',
    notes: [],
  });
  const over = checkBudgets({ msPerImage: 7, peakRssMb: 200 }, { maxMsPerImage: 5 });
  t.equal(over.status, 'over');
  t.match(over.notes[0], /ms per image 7\.00 ms > 5 ms/);
  t.equal(checkBudgets({ msPerImage: null, peakRssMb: 200 }, { maxMsPerImage: 5 }).status, 'unknown');
  t.equal(checkBudgets({ msPerImage: null, peakRssMb: null }, {}).status, 'within', 'no budget: nothing to check');

  const front = paretoFront([
    candidate('fast-weak', (r) => r % 10 < 6, 1),
    candidate('slow-strong', (r) => r % 10 < 9, 10),
    candidate('dominated', (r) => r % 10 < 5, 5),
    candidate('unknown', () => true, null),
  ]);
  t.same(front, ['fast-weak', 'slow-strong']);
});

t.test('spearman with ties', async (t) => {
  t.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  t.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  t.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-12);
  t.ok(Number.isNaN(spearman([1, 1], [1, 2])));
});
