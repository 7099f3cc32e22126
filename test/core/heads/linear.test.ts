import t from 'tap';
import { fitSoftmaxRegression, linearLogits, searchL2, unpackLinear } from '../../../src/core/heads/linear.js';
import { jsDenseMath, gemmSync, gemmNT, transpose } from '../../../src/core/heads/dense-math.js';
import { crossEntropyWithGradient } from '../../../src/core/heads/softmax.js';
import { accuracy } from '../../../src/core/heads/metrics.js';
import { stratifiedFolds, stratifiedSplit } from '../../../src/core/heads/data.js';
import type { LabelledMatrix } from '../../../src/core/heads/data.js';
import { Random } from '../../../src/core/heads/random.js';
import { gaussianClusters } from './synthetic.js';

function matrixOf(data: Float32Array, labels: string[]): LabelledMatrix {
  const classes = [...new Set(labels)].sort();
  return {
    data,
    rows: labels.length,
    dim: data.length / labels.length,
    targets: Int32Array.from(labels, (l) => classes.indexOf(l)),
    classCount: classes.length,
  };
}

t.test('blocked JS gemm equals the naive product for every transposition and odd sizes', async (t) => {
  const random = new Random(3);
  for (const [m, k, n] of [
    [1, 1, 1],
    [5, 7, 3],
    [9, 300, 5],
    [4, 257, 2],
  ]) {
    const a = Float32Array.from({ length: m * k }, () => random.normal());
    const b = Float32Array.from({ length: k * n }, () => random.normal());
    const expected = new Float64Array(m * n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) expected[i * n + j] += a[i * k + p] * b[p * n + j];
    const check = (out: Float32Array, what: string) => {
      let worst = 0;
      out.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected[i]))));
      t.ok(worst < 1e-4 * Math.sqrt(k), `${what} ${m}x${k}x${n} max error ${worst}`);
    };
    check(gemmSync(a, b, m, k, n, false, false), 'NN');
    check(gemmSync(transpose(a, m, k), b, m, k, n, true, false), 'TN');
    check(gemmSync(a, transpose(b, k, n), m, k, n, false, true), 'NT');
    check(gemmSync(transpose(a, m, k), transpose(b, k, n), m, k, n, true, true), 'TT');
    check(gemmNT(a, transpose(b, k, n), m, k, n), 'gemmNT');
  }
});

t.test('cross-entropy gradient matches finite differences (with weights and label smoothing)', async (t) => {
  const random = new Random(7);
  const rows = 5;
  const classes = 4;
  const logits = Float32Array.from({ length: rows * classes }, () => random.normal() * 2);
  const targets = Int32Array.from([0, 3, 1, 1, 2]);
  const weights = Float32Array.from([1, 2, 0.5, 1, 3]);
  for (const smoothing of [0, 0.1]) {
    const gradient = new Float32Array(rows * classes);
    crossEntropyWithGradient(logits, targets, weights, rows, classes, gradient, smoothing);
    for (let i = 0; i < logits.length; i++) {
      const h = 1e-2;
      const plus = Float32Array.from(logits);
      plus[i] += h;
      const minus = Float32Array.from(logits);
      minus[i] -= h;
      const scratch = new Float32Array(rows * classes);
      const numeric =
        (crossEntropyWithGradient(plus, targets, weights, rows, classes, scratch, smoothing) -
          crossEntropyWithGradient(minus, targets, weights, rows, classes, scratch, smoothing)) /
        (2 * h);
      t.ok(
        Math.abs(numeric - gradient[i]) < 1e-3,
        `smoothing ${smoothing} d/dz[${i}]: analytic ${gradient[i]} numeric ${numeric}`,
      );
    }
  }
});

t.test('L-BFGS reaches the regularized optimum: gradient near zero, loss below nearby points', async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [30, 25, 35], dim: 8, separation: 1.5, seed: 2 });
  const matrix = matrixOf(data, labels);
  const l2 = 0.01;
  const fit = await fitSoftmaxRegression(matrix, {
    l2,
    math: jsDenseMath,
    gradientTolerance: 1e-5,
    relativeTolerance: 0,
  });
  t.ok(fit.converged, `converged in ${fit.iterations} iterations`);
  const objective = async (flat: Float64Array) => {
    const p = unpackLinear(flat, 3, 8);
    const logits = await linearLogits(matrix.data, matrix.rows, 8, p, jsDenseMath);
    let value = crossEntropyWithGradient(
      logits,
      matrix.targets,
      undefined,
      matrix.rows,
      3,
      new Float32Array(logits.length),
    );
    for (let i = 0; i < 24; i++) value += 0.5 * l2 * flat[i] * flat[i];
    return value;
  };
  const best = await objective(fit.flat);
  const random = new Random(5);
  for (let trial = 0; trial < 10; trial++) {
    const moved = Float64Array.from(fit.flat, (v) => v + 1e-2 * random.normal());
    t.ok((await objective(moved)) >= best - 1e-9, `perturbation ${trial} does not lower the objective`);
  }
});

t.test('separable data: the default linear fit classifies every training row', async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [20, 20, 20, 20], dim: 12, separation: 8, seed: 4 });
  const matrix = matrixOf(data, labels);
  const fit = await fitSoftmaxRegression(matrix, { l2: 1e-3, math: jsDenseMath });
  const logits = await linearLogits(matrix.data, matrix.rows, matrix.dim, fit, jsDenseMath);
  t.equal(accuracy(logits, matrix.targets, 4), 1);
});

t.test('cross-validation picks strong regularization for few noisy rows and weak for many clean rows', async (t) => {
  // 60 rows in 100 dims with the signal in 2 of them: fitting the noise dims hurts, so strong L2 must win
  const noisy = gaussianClusters({ perClass: [30, 30], dim: 100, separation: 1.2, seed: 11 });
  const noisyResult = await searchL2(matrixOf(noisy.data, noisy.labels), {
    math: jsDenseMath,
    folds: 3,
    seed: 0,
    criterion: 'logLoss',
  });
  // 600 well-separated rows in 10 dims: little regularization is needed
  const clean = gaussianClusters({ perClass: [300, 300], dim: 10, separation: 4, seed: 12 });
  const cleanResult = await searchL2(matrixOf(clean.data, clean.labels), {
    math: jsDenseMath,
    folds: 3,
    seed: 0,
    criterion: 'logLoss',
  });
  t.ok(noisyResult.l2 >= 0.1, `noisy data: l2 ${noisyResult.l2} >= 0.1`);
  t.ok(cleanResult.l2 <= 0.01, `clean data: l2 ${cleanResult.l2} <= 0.01`);
  for (const result of [noisyResult, cleanResult]) {
    const chosen = result.candidates.find((c) => c.l2 === result.l2)!;
    for (const c of result.candidates)
      t.ok(
        chosen.logLoss <= c.logLoss,
        `chosen l2 ${result.l2} (log loss ${chosen.logLoss}) <= l2 ${c.l2} (${c.logLoss})`,
      );
    t.ok(result.candidates.length >= 4, 'several strengths were tried');
    t.equal(result.outOfFoldLogits.length, (result === noisyResult ? 60 : 600) * 2, 'out-of-fold logits for every row');
  }
  const byAccuracy = await searchL2(matrixOf(noisy.data, noisy.labels), {
    math: jsDenseMath,
    folds: 3,
    seed: 0,
    criterion: 'accuracy',
  });
  const chosen = byAccuracy.candidates.find((c) => c.l2 === byAccuracy.l2)!;
  for (const c of byAccuracy.candidates) {
    t.ok(chosen.accuracy >= c.accuracy, 'accuracy criterion picks the most accurate strength');
    if (c.accuracy === chosen.accuracy && chosen.accuracy < 1)
      t.ok(chosen.logLoss <= c.logLoss, 'and the lowest log loss among equally accurate ones');
    if (c.accuracy === chosen.accuracy && chosen.accuracy === 1)
      t.ok(chosen.l2 >= c.l2, 'and the strongest among perfect ones');
  }
});

t.test('stratified folds and splits keep every class in every part', async (t) => {
  const targets = Int32Array.from({ length: 50 }, (_, i) => (i < 10 ? 0 : i < 20 ? 1 : 2));
  const folds = stratifiedFolds(targets, 3, 5, 1);
  t.same(
    folds.flat().sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i),
    'folds partition the rows',
  );
  for (const fold of folds)
    for (const c of [0, 1, 2])
      t.ok(
        fold.some((i) => targets[i] === c),
        `class ${c} in every fold`,
      );
  const split = stratifiedSplit(targets, 3, 0.2, 1);
  t.equal(split.heldOut.length, 2 + 2 + 6);
  t.same(stratifiedFolds(targets, 3, 5, 1), folds, 'same seed, same folds');
  t.notSame(stratifiedFolds(targets, 3, 5, 2), folds, 'other seed, other folds');
});

t.test('groups keep their rows together in every fold and split', async (t) => {
  const targets = Int32Array.from({ length: 40 }, (_, i) => (i < 20 ? 0 : 1));
  const groups = Int32Array.from({ length: 40 }, (_, i) => Math.floor(i / 2)); // pairs: an image and its flipped view
  const folds = stratifiedFolds(targets, 2, 3, 1, groups);
  t.same(
    folds.flat().sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i),
  );
  for (const fold of folds)
    for (const row of fold) t.ok(fold.includes(row ^ 1), `row ${row} and its twin share a fold`);
  const split = stratifiedSplit(targets, 2, 0.25, 1, groups);
  for (const row of split.heldOut) t.ok(split.heldOut.includes(row ^ 1), `held-out row ${row} brings its twin`);
  t.equal(split.heldOut.length, 2 * (3 + 3), 'round(10 groups * 0.25) = 3 groups of 2 rows per class');
});

t.test('folds on the whole matrix with stacked products choose as folds on their own rows do', async (t) => {
  for (const perClass of [
    [40, 50],
    [30, 25, 35, 30],
  ]) {
    const { data, labels } = gaussianClusters({ perClass, dim: 24, separation: 1.5, seed: 21 });
    const matrix = matrixOf(data, labels);
    const options = { math: jsDenseMath, folds: 3, seed: 1 };
    const stacked = await searchL2(matrix, { ...options, stackFolds: true });
    const own = await searchL2(matrix, { ...options, stackFolds: false });
    t.equal(stacked.l2, own.l2, `${perClass.length} classes: the same strength`);
    t.same(
      stacked.candidates.map((c) => [c.l2, c.accuracy]),
      own.candidates.map((c) => [c.l2, c.accuracy]),
      'the same candidates, scored alike',
    );
    let worst = 0;
    stacked.outOfFoldLogits.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - own.outOfFoldLogits[i]!))));
    t.ok(worst < 1e-3, `out-of-fold logits agree (max difference ${worst})`);
  }
});

t.test('a weight of 0 takes a row out of the loss and its gradient, as if it were not there', async (t) => {
  const random = new Random(8);
  const rows = 9;
  const classes = 3;
  const logits = Float32Array.from({ length: rows * classes }, () => random.normal() * 3);
  const targets = Int32Array.from({ length: rows }, (_, i) => i % classes);
  const weights = Float32Array.from({ length: rows }, (_, i) => (i % 4 === 1 ? 0 : 0.5 + (i % 3)));
  const kept = [...Array(rows).keys()].filter((i) => weights[i] !== 0);
  const gradient = new Float32Array(rows * classes).fill(7);
  const loss = crossEntropyWithGradient(logits, targets, weights, rows, classes, gradient);
  const subGradient = new Float32Array(kept.length * classes);
  const subLoss = crossEntropyWithGradient(
    Float32Array.from(kept.flatMap((i) => Array.from(logits.subarray(i * classes, (i + 1) * classes)))),
    Int32Array.from(kept, (i) => targets[i]!),
    Float32Array.from(kept, (i) => weights[i]!),
    kept.length,
    classes,
    subGradient,
  );
  t.ok(Math.abs(loss - subLoss) < 1e-12, 'the same loss');
  kept.forEach((row, r) => {
    for (let c = 0; c < classes; c++) t.equal(gradient[row * classes + c], subGradient[r * classes + c]);
  });
  for (let row = 0; row < rows; row++)
    if (weights[row] === 0) for (let c = 0; c < classes; c++) t.equal(gradient[row * classes + c], 0, 'zero gradient');
});

t.test('a strength that scores every held-out row right is never followed by weaker ones', async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [40, 40], dim: 10, separation: 10, seed: 3 });
  const result = await searchL2(matrixOf(data, labels), { math: jsDenseMath, folds: 3, seed: 0, start: 1 });
  const first = result.candidates[0]!;
  t.equal(first.accuracy, 1, 'separable: the start already scores every held-out row right');
  t.ok(
    result.candidates.every((c) => c.l2 >= first.l2),
    `no weaker candidate was fitted (${result.candidates.map((c) => c.l2).join(', ')})`,
  );
  t.ok(result.l2 >= first.l2, 'the strongest of the equally accurate ones is chosen');
});

t.test(
  'the stronger first step, fitted beside the weaker one, counts only where the walk would have taken it',
  async (t) => {
    // clean rows: the weaker walk finds a better strength, so the walk never goes stronger than its start
    const clean = gaussianClusters({ perClass: [150, 150], dim: 10, separation: 4, seed: 12 });
    const walkedDown = await searchL2(matrixOf(clean.data, clean.labels), {
      math: jsDenseMath,
      folds: 3,
      seed: 0,
      start: 1,
    });
    t.ok(walkedDown.l2 < 1, `a weaker strength than the start is chosen (${walkedDown.l2})`);
    t.notOk(
      walkedDown.candidates.some((c) => c.l2 === 10),
      `the speculative stronger step is not listed (${walkedDown.candidates.map((c) => c.l2).join(', ')})`,
    );
    // few noisy rows: nothing weaker beats the start, so the stronger step is taken as the walk's own
    const noisy = gaussianClusters({ perClass: [20, 20], dim: 30, separation: 0.6, seed: 5 });
    const walkedUp = await searchL2(matrixOf(noisy.data, noisy.labels), {
      math: jsDenseMath,
      folds: 3,
      seed: 0,
      start: 1e-2,
      criterion: 'logLoss',
    });
    const first = walkedUp.candidates[0]!;
    const tried = walkedUp.candidates.map((c) => c.l2);
    t.ok(walkedUp.l2 >= first.l2, `the start or a stronger strength is chosen (${walkedUp.l2})`);
    t.ok(tried.includes(0.1), `the stronger step is listed (${tried.join(', ')})`);
  },
);
