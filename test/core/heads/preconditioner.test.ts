import t from 'tap';
import { fitSoftmaxRegression } from '../../../src/core/heads/linear.js';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import { fitSpectralPreconditioner, inverseCurvature } from '../../../src/core/heads/preconditioner.js';
import { fitNormalization, applyNormalization } from '../../../src/core/heads/normalization.js';
import { Random } from '../../../src/core/heads/random.js';
import type { LabelledMatrix } from '../../../src/core/heads/data.js';

/** Rows with a strong shared low-rank part (as CNN embeddings have) plus class offsets, standardized. */
function correlated(rows: number, dim: number, classes: number, seed: number): LabelledMatrix {
  const random = new Random(seed);
  const rank = 4;
  const basis = Float32Array.from({ length: rank * dim }, () => random.normal() * 3);
  const centers = Array.from({ length: classes }, () =>
    Float32Array.from({ length: dim }, () => random.normal() * 0.4),
  );
  const data = new Float32Array(rows * dim);
  const targets = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const c = r % classes;
    targets[r] = c;
    const z = Array.from({ length: rank }, () => random.normal());
    for (let d = 0; d < dim; d++) {
      let v = centers[c]![d]! + 0.5 * random.normal();
      for (let i = 0; i < rank; i++) v += z[i]! * basis[i * dim + d]!;
      data[r * dim + d] = v;
    }
  }
  const normalization = fitNormalization('standardize', data, rows, dim);
  return { data: applyNormalization(normalization, data, rows, dim), rows, dim, targets, classCount: classes };
}

t.test('finds the strong directions: orthonormal basis, variances descending and above the tail', async (t) => {
  const m = correlated(300, 40, 3, 1);
  const p = await fitSpectralPreconditioner(m.data, m.rows, m.dim, jsDenseMath, { rank: 6 });
  t.ok(p, 'a preconditioner for correlated rows');
  if (!p) return;
  for (let i = 0; i < p.rank; i++) {
    for (let j = 0; j <= i; j++) {
      let d = 0;
      for (let k = 0; k < p.dim; k++) d += p.basis[i * p.dim + k]! * p.basis[j * p.dim + k]!;
      t.ok(Math.abs(d - (i === j ? 1 : 0)) < 1e-4, `v${i} . v${j} = ${d.toFixed(6)}`);
    }
  }
  for (let i = 1; i < p.rank; i++) t.ok(p.variances[i - 1]! >= p.variances[i]!, 'descending');
  t.ok(
    p.variances[0]! > 4 * p.tail,
    `top variance ${p.variances[0]!.toFixed(2)} well above the tail ${p.tail.toFixed(2)}`,
  );
  // Uncorrelated rows: nothing to gain, no preconditioner.
  const random = new Random(2);
  const flat = Float32Array.from({ length: 400 * 30 }, () => random.normal());
  t.equal(await fitSpectralPreconditioner(flat, 400, 30, jsDenseMath, { rank: 4 }), undefined, 'flat spectrum: none');
});

t.test('H0 is symmetric positive definite and shrinks only the strong directions', async (t) => {
  const m = correlated(300, 40, 3, 3);
  const p = (await fitSpectralPreconditioner(m.data, m.rows, m.dim, jsDenseMath, { rank: 6 }))!;
  const apply = inverseCurvature(p, 3, 1e-2, jsDenseMath);
  const random = new Random(4);
  const n = 3 * m.dim + 3;
  const a = Float64Array.from({ length: n }, () => random.normal());
  const b = Float64Array.from({ length: n }, () => random.normal());
  const ha = Float64Array.from(a);
  const hb = Float64Array.from(b);
  await apply(ha);
  await apply(hb);
  const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
  t.ok(Math.abs(dot(a, hb) - dot(b, ha)) < 1e-4 * Math.abs(dot(a, hb)) + 1e-6, 'a.Hb = b.Ha');
  t.ok(dot(a, ha) > 0 && dot(a, ha) <= dot(a, a) + 1e-6, 'a.Ha in (0, a.a]');
  t.same(Array.from(ha.subarray(3 * m.dim)), Array.from(a.subarray(3 * m.dim)), 'bias entries untouched');
  // A vector orthogonal to every strong direction is left alone.
  const v = Float64Array.from(a);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < p.rank; i++) {
      let d = 0;
      for (let k = 0; k < m.dim; k++) d += v[c * m.dim + k]! * p.basis[i * m.dim + k]!;
      for (let k = 0; k < m.dim; k++) v[c * m.dim + k]! -= d * p.basis[i * m.dim + k]!;
    }
  }
  const hv = Float64Array.from(v);
  await apply(hv);
  let worst = 0;
  hv.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - v[i]!))));
  t.ok(worst < 1e-5, `orthogonal part unchanged (max change ${worst})`);
});

t.test('the preconditioned fit solves the same problem, in fewer iterations', async (t) => {
  const m = correlated(240, 60, 4, 5);
  const p = (await fitSpectralPreconditioner(m.data, m.rows, m.dim, jsDenseMath, { rank: 8 }))!;
  const tight = { l2: 1e-2, math: jsDenseMath, maxIterations: 2000, gradientTolerance: 1e-5, relativeTolerance: 1e-12 };
  const plain = await fitSoftmaxRegression(m, tight);
  const fast = await fitSoftmaxRegression(m, { ...tight, preconditioner: p });
  t.ok(
    plain.converged && fast.converged,
    `both converge (${plain.iterations} ${plain.converged}, ${fast.iterations} ${fast.converged})`,
  );
  t.ok(
    Math.abs(plain.objective - fast.objective) < 1e-6 * Math.max(1, plain.objective),
    `same optimum: ${plain.objective} vs ${fast.objective}`,
  );
  let worst = 0;
  plain.flat.forEach((w, i) => (worst = Math.max(worst, Math.abs(w - fast.flat[i]!))));
  t.ok(worst < 1e-3, `same weights (max difference ${worst.toExponential(2)})`);
  t.ok(fast.iterations < plain.iterations, `fewer iterations: ${fast.iterations} vs ${plain.iterations}`);
});
