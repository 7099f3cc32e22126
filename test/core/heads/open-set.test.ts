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
