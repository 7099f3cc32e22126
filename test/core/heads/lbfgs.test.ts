import t from 'tap';
import { minimizeLbfgs } from '../../../src/core/heads/lbfgs.js';

/** A convex quadratic sum_i c_i (x_i - 1)^2 / 2 whose value is rounded to `quantum`, as float32 products round. */
function roundedQuadratic(curvatures: number[], quantum: number) {
  return async (x: Float64Array) => {
    let value = 0;
    const gradient = new Float64Array(x.length);
    curvatures.forEach((c, i) => {
      value += (c * (x[i]! - 1) ** 2) / 2;
      gradient[i] = c * (x[i]! - 1);
    });
    return { value: 1 + (quantum > 0 ? Math.round(value / quantum) * quantum : value), gradient };
  };
}

t.test('a line search that can gain less than the relative tolerance ends the run as converged', async (t) => {
  const curvatures = Array.from({ length: 20 }, (_, i) => 1 + i);
  const result = await minimizeLbfgs(roundedQuadratic(curvatures, 1e-7), new Float64Array(20), {
    maxIterations: 200,
    gradientTolerance: 0,
    relativeTolerance: 1e-9,
  });
  t.ok(result.converged, 'converged');
  // without the cut-off, the trials in the rounding noise cost 39 evaluations for these 20 iterations
  t.ok(
    result.evaluations <= result.iterations + 10,
    `${result.evaluations} evaluations for ${result.iterations} iterations`,
  );
  const worst = Math.max(...Array.from(result.x, (v) => Math.abs(v - 1)));
  t.ok(worst < 1e-2, `at the minimum (max distance ${worst})`);
});

t.test('curvature pairs given at the start make the first step a scaled one', async (t) => {
  const curvatures = Array.from({ length: 30 }, (_, i) => 1 + 0.5 * i);
  const objective = roundedQuadratic(curvatures, 0);
  const options = { maxIterations: 200, gradientTolerance: 1e-8, relativeTolerance: 1e-15 };
  const first = await minimizeLbfgs(objective, new Float64Array(30), options);
  // a start near the optimum, as a warm start from a neighbouring problem
  const near = Float64Array.from(first.x, (v, i) => v + 1e-3 * Math.sin(i));
  const without = await minimizeLbfgs(objective, near, options);
  const before = first.pairs.s.concat(first.pairs.y).map((v) => Array.from(v));
  const withPairs = await minimizeLbfgs(objective, near, { ...options, initialPairs: first.pairs });
  t.same(
    first.pairs.s.concat(first.pairs.y).map((v) => Array.from(v)),
    before,
    'the pairs given are read, never written',
  );
  t.ok(withPairs.converged && without.converged, 'both converge');
  t.ok(
    withPairs.evaluations < without.evaluations,
    `${withPairs.evaluations} evaluations with the pairs, ${without.evaluations} without`,
  );
  t.ok(first.pairs.s.length > 0 && first.pairs.s.length === first.pairs.y.length, 'a run hands back its pairs');
});
