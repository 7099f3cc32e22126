import t from 'tap';
import { fitMultinomialRegression, fitSoftmaxRegression } from '../../../src/core/heads/linear.js';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import { productColumns, solvesAsTwoClass } from '../../../src/core/heads/two-class.js';
import type { LabelledMatrix } from '../../../src/core/heads/data.js';
import { Random } from '../../../src/core/heads/random.js';
import { gaussianClusters } from './synthetic.js';

function twoClassMatrix(seed: number): LabelledMatrix {
  const { data, labels } = gaussianClusters({ perClass: [45, 30], dim: 12, separation: 1.2, seed });
  return {
    data,
    rows: labels.length,
    dim: 12,
    targets: Int32Array.from(labels, (l) => (l === labels[0] ? 0 : 1)),
    classCount: 2,
  };
}

t.test('two classes are solved as one logistic regression, at the softmax optimum', async (t) => {
  const matrix = twoClassMatrix(6);
  const random = new Random(3);
  const sampleWeights = Float32Array.from({ length: matrix.rows }, (_, i) => (i % 7 === 0 ? 0 : 0.5 + random.next()));
  const options = { l2: 0.05, math: jsDenseMath, sampleWeights, gradientTolerance: 1e-6, relativeTolerance: 1e-12 };
  const twoClass = await fitSoftmaxRegression(matrix, options);
  const general = await fitMultinomialRegression(matrix, options);
  t.ok(twoClass.converged && general.converged, 'both converge');
  t.ok(
    Math.abs(twoClass.objective - general.objective) < 1e-7 * Math.abs(general.objective),
    `the same objective (${twoClass.objective} against ${general.objective})`,
  );
  const dim = matrix.dim;
  let worst = 0;
  for (let i = 0; i < dim; i++) {
    t.equal(twoClass.weight[i], -twoClass.weight[dim + i], 'weight rows are opposite');
    // the general path's symmetric part is free of the loss, and L2 drives it to 0: compare the differences
    const v = twoClass.weight[dim + i]! - twoClass.weight[i]!;
    const w = general.weight[dim + i]! - general.weight[i]!;
    worst = Math.max(worst, Math.abs(v - w));
  }
  t.ok(worst < 1e-3, `the same weights (max difference ${worst})`);
  let logitWorst = 0;
  for (let r = 0; r < matrix.rows; r++) {
    const z = twoClass.logits[2 * r + 1]! - twoClass.logits[2 * r]!;
    const y = general.logits[2 * r + 1]! - general.logits[2 * r]!;
    logitWorst = Math.max(logitWorst, Math.abs(z - y));
  }
  t.ok(logitWorst < 1e-3, `the same logits for every row (max difference ${logitWorst})`);
});

t.test('a two-class warm start in the softmax layout is taken as its weight difference', async (t) => {
  const matrix = twoClassMatrix(9);
  const first = await fitSoftmaxRegression(matrix, { l2: 0.1, math: jsDenseMath });
  // shift both rows by the same vector: the softmax model, and so the logistic one, is unchanged
  const shifted = Float64Array.from(first.flat);
  for (let i = 0; i < matrix.dim; i++) {
    shifted[i] += 3;
    shifted[matrix.dim + i] += 3;
  }
  const again = await fitSoftmaxRegression(matrix, { l2: 0.1, math: jsDenseMath, start: shifted });
  t.ok(again.iterations <= 1, `already at the optimum (${again.iterations} iterations)`);
  t.ok(Math.abs(again.objective - first.objective) < 1e-9, 'the same objective');
});

t.test('the two-class solve is used for two classes without a preconditioner only', async (t) => {
  t.ok(solvesAsTwoClass(2, {}));
  t.notOk(solvesAsTwoClass(3, {}));
  const preconditioner = {
    dim: 2,
    rank: 1,
    basis: new Float32Array([1, 0]),
    variances: new Float64Array([1, 0.5]),
    tail: 0.5,
  };
  t.notOk(solvesAsTwoClass(2, { preconditioner }), 'the preconditioner is shaped for the softmax layout');
  t.equal(productColumns(2, {}), 1, 'one product column per two-class model');
  t.equal(productColumns(5, {}), 5, 'one per class otherwise');
});
