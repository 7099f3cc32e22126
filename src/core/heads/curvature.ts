/**
 * Curvature pairs of a linear head's L-BFGS run, carried to a neighbouring fit: the next strength of the L2 sweep,
 * or the final fit from the sweep's chosen strength.
 *
 * Why: a warm start lies near its optimum, and L-BFGS without pairs makes its first step a unit-length move along
 * the gradient, which took 5-10 halvings there (on 2,000 x 1,280 rows and 2 classes, 30-40% of the sweep's
 * products). With the pairs the first step has a scale, and the sweep and the final fit need about half the
 * products (bench/results/2026-12-01/throughput).
 */
import type { CurvaturePairs } from './lbfgs.js';

/** An L-BFGS run's curvature pairs, the L2 strength they were taken at, and how that strength enters them. */
export interface LinearCurvature {
  pairs: CurvaturePairs;
  l2: number;
  /** The penalty's curvature per unit of l2: 1 for l2/2 |W|^2, 1/2 for the two-class l2/4 |v|^2. */
  penaltyCurvature: number;
  /** The penalized coordinates come first, this many (the biases after them are not penalized). */
  penalized: number;
}

/**
 * The pairs moved to another L2 strength (for LbfgsOptions.initialPairs): the penalty adds penaltyCurvature * l2 * s
 * to the penalized coordinates of y, so y + (l2 - from.l2) * penaltyCurvature * s is exact for the penalty, and the
 * data term's curvature is about the same where the solutions are near (neighbouring strengths, folds of one set).
 * The steps are shared, the moved gradient changes are new arrays: nothing of `from` is written.
 */
export function curvatureAt(from: LinearCurvature, l2: number): CurvaturePairs {
  const shift = (l2 - from.l2) * from.penaltyCurvature;
  if (shift === 0) return from.pairs;
  const { penalized } = from;
  return {
    s: from.pairs.s,
    y: from.pairs.y.map((change, i) => {
      const step = from.pairs.s[i]!;
      const moved = new Float64Array(change.length);
      for (let j = 0; j < penalized; j++) moved[j] = change[j]! + shift * step[j]!;
      for (let j = penalized; j < change.length; j++) moved[j] = change[j]!;
      return moved;
    }),
  };
}
