import t from 'tap';
import { fitSoftmaxRegression } from '../../../src/core/heads/linear.js';
import { curvatureAt } from '../../../src/core/heads/curvature.js';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import type { LabelledMatrix } from '../../../src/core/heads/data.js';
import { gaussianClusters } from './synthetic.js';

for (const perClass of [
  [200, 150],
  [100, 100, 100],
]) {
  t.test(
    `${perClass.length} classes: warm starts with their neighbour's curvature reach the same optimum in fewer evaluations`,
    async (t) => {
      const { data, labels } = gaussianClusters({ perClass, dim: 16, separation: 1.5, seed: 13 });
      const classes = [...new Set(labels)].sort();
      const matrix: LabelledMatrix = {
        data,
        rows: labels.length,
        dim: 16,
        targets: Int32Array.from(labels, (l) => classes.indexOf(l)),
        classCount: classes.length,
      };
      const tight = { math: jsDenseMath, gradientTolerance: 1e-5, relativeTolerance: 1e-12 };
      let coldEvaluations = 0;
      let warmEvaluations = 0;
      // the moves of the L2 sweep: a decade or half a decade either way
      for (const [from, to] of [
        [0.1, 0.03],
        [0.1, 0.3],
        [1, 0.316],
        [0.01, 0.00316],
      ] as const) {
        const neighbour = await fitSoftmaxRegression(matrix, { ...tight, l2: from });
        const cold = await fitSoftmaxRegression(matrix, { ...tight, l2: to, start: neighbour.flat });
        const warm = await fitSoftmaxRegression(matrix, {
          ...tight,
          l2: to,
          start: neighbour.flat,
          curvature: neighbour.curvature,
        });
        t.ok(warm.converged && cold.converged, `${from} -> ${to}: both converge`);
        t.ok(
          Math.abs(warm.objective - cold.objective) < 1e-7,
          `${from} -> ${to}: the same optimum (${warm.objective} against ${cold.objective})`,
        );
        coldEvaluations += cold.evaluations;
        warmEvaluations += warm.evaluations;
      }
      t.ok(
        warmEvaluations < 0.8 * coldEvaluations,
        `fewer evaluations with the curvature (${warmEvaluations} against ${coldEvaluations})`,
      );
    },
  );
}

t.test('moving pairs to another strength adds the penalty curvature to the penalized coordinates only', async (t) => {
  const s = Float64Array.from([1, 2, 3]);
  const y = Float64Array.from([0.5, 0.5, 0.5]);
  const moved = curvatureAt({ pairs: { s: [s], y: [y] }, l2: 0.1, penaltyCurvature: 0.5, penalized: 2 }, 0.5);
  t.same(Array.from(moved.y[0]!), [0.5 + 0.2 * 1, 0.5 + 0.2 * 2, 0.5], 'y + (0.5 - 0.1) * 0.5 * s, bias untouched');
  t.equal(moved.s[0], s, 'steps are shared, not copied');
  t.same(Array.from(y), [0.5, 0.5, 0.5], 'the original pairs are unchanged');
});
