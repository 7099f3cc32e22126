import t from 'tap';
import { evaluateHead } from '../../../src/core/heads/evaluate.js';
import { trainHead } from '../../../src/core/heads/train.js';
import { gaussianClusters } from './synthetic.js';

t.test(
  'evaluateHead reports metrics, the confusion matrix and rejections of a head on labelled embeddings',
  async (t) => {
    const train = gaussianClusters({ perClass: [20, 20], dim: 4, separation: 8, seed: 1 });
    const test = gaussianClusters({ perClass: [10, 10], dim: 4, separation: 8, seed: 2 });
    const head = await trainHead(train.data, train.labels, { type: 'linear', seed: 1, rejectRate: 0 });
    const evaluation = evaluateHead(head, { embeddings: test.data, labels: test.labels }, 'test rows');
    t.equal(evaluation.metrics.accuracy, 1);
    t.equal(evaluation.rejected, 0);
    t.same(evaluation.report.confusion, [
      [10, 0],
      [0, 10],
    ]);
    t.equal(evaluation.openSet.acceptedAccuracy, 1);

    // With open-set rejection on, a rejected row counts as wrong in accuracy and is left out of accepted accuracy.
    const strict = await trainHead(train.data, train.labels, { type: 'linear', seed: 1, rejectRate: 0.5 });
    const judged = evaluateHead(strict, { embeddings: test.data, labels: test.labels }, 'test rows');
    const rejected = strict.predictMany(test.data, 20).filter((p) => p.unknown).length;
    t.ok(rejected > 0, `some test rows are rejected at a 50% rate (${rejected})`);
    t.equal(judged.rejected, rejected);
    t.equal(judged.openSet.rejectedRate, rejected / 20);
    t.equal(
      judged.metrics.accuracy,
      (20 - rejected) / 20,
      'every accepted row is right here, every rejected one counts wrong',
    );
    t.equal(judged.closedSetAccuracy, 1);
    t.throws(() => evaluateHead(head, { embeddings: test.data.subarray(0, 4), labels: ['zebra'] }, 'test rows'), {
      code: 'label-mismatch',
      message: /test rows has class "zebra" that the head does not know/,
    });
  },
);
