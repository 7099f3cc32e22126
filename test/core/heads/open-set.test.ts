import t from 'tap';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import { stratifiedFolds } from '../../../src/core/heads/data.js';
import { fitOpenSet, openSetSpace, sphericalKMeans } from '../../../src/core/heads/open-set.js';
import { gaussianClusters } from './synthetic.js';

const dim = 10;
const train = gaussianClusters({ perClass: [120, 80], dim, separation: 3, seed: 3 });
const targets = Int32Array.from(train.labels, (l) => (l === 'c0' ? 0 : 1));

t.test('the open-set fit gives the same memory and scores in plain JS and through a DenseMath backend', async (t) => {
  const folds = stratifiedFolds(targets, 2, 3, 0);
  const sync = await fitOpenSet(train.data, targets, 2, dim, [folds], { seed: 1 });
  // an asynchronous backend computing the same products: the steps must not depend on how a product is run
  const asyncMath = {
    name: 'async-js',
    gemm: async (...args: Parameters<typeof jsDenseMath.gemm>) => jsDenseMath.gemm(...args),
  };
  const viaBackend = await fitOpenSet(train.data, targets, 2, dim, [folds], { seed: 1 }, asyncMath);
  t.same(Array.from(viaBackend.model.memory), Array.from(sync.model.memory), 'same memory');
  t.same(viaBackend.model.memoryWeights, sync.model.memoryWeights, 'same cluster sizes');
  t.same(Array.from(viaBackend.outOfFoldScores), Array.from(sync.outOfFoldScores), 'same out-of-fold scores');
  t.equal(
    sync.model.memoryWeights.reduce((a, b) => a + b, 0),
    200,
    'every training row counts towards one memory row',
  );
});

t.test('several fold splits pool their out-of-fold scores, one per row and split', async (t) => {
  const splits = [0, 1, 2].map((seed) => stratifiedFolds(targets, 2, 3, seed));
  const pooled = await fitOpenSet(train.data, targets, 2, dim, splits, { seed: 1 });
  t.equal(pooled.outOfFoldScores.length, 3 * 200);
  t.ok(
    pooled.outOfFoldScores.every((s) => s > 0),
    'every pooled score comes from a memory that did not see its row',
  );
  t.equal(pooled.model.reference.rows, 600, 'the reference describes all pooled scores');
  const none = await fitOpenSet(train.data, targets, 2, dim, [], { seed: 1 });
  t.equal(none.outOfFoldScores.length, 0, 'no split: no out-of-fold scores');
  t.equal(none.model.reference.rows, 200, 'the reference falls back to the training rows');
});

t.test('k-means with no refinement still assigns every row to a seed', async (t) => {
  const space = openSetSpace(train.data, 120, dim);
  const { centroids, sizes } = sphericalKMeans(space, 120, dim, 8, 5, 0);
  t.equal(
    sizes.reduce((a, b) => a + b, 0),
    120,
  );
  t.equal(centroids.length, sizes.length * dim);
});

t.test('converged k-means centroids are the normalized means of the rows nearest to them', async (t) => {
  const rows = 200;
  const space = openSetSpace(train.data, rows, dim);
  // 8 clusters fit on all 200 rows (no sample), with enough iterations to reach a fixed point: the sums, kept up to
  // date as rows move, must equal fresh sums
  const { centroids, sizes } = sphericalKMeans(space, rows, dim, 8, 2, 100);
  const clusters = sizes.length;
  const sums = new Float64Array(clusters * dim);
  const counts = new Array<number>(clusters).fill(0);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestSimilarity = -Infinity;
    for (let c = 0; c < clusters; c++) {
      let similarity = 0;
      for (let d = 0; d < dim; d++) similarity += space[r * dim + d]! * centroids[c * dim + d]!;
      if (similarity > bestSimilarity) {
        bestSimilarity = similarity;
        best = c;
      }
    }
    counts[best]!++;
    for (let d = 0; d < dim; d++) sums[best * dim + d] += space[r * dim + d]!;
  }
  t.same(counts, sizes, 'each centroid counts the rows nearest to it');
  let worst = 0;
  for (let c = 0; c < clusters; c++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += sums[c * dim + d]! ** 2;
    for (let d = 0; d < dim; d++)
      worst = Math.max(worst, Math.abs(sums[c * dim + d]! / Math.sqrt(norm) - centroids[c * dim + d]!));
  }
  t.ok(worst < 1e-6, `each centroid is its rows' normalized mean (max difference ${worst})`);
});
