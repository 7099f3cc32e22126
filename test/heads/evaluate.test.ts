import t from 'tap';
import { evaluateHead } from '../../src/heads/evaluate.js';
import { trainHead } from '../../src/heads/train.js';
import { gaussianClusters } from './synthetic.js';

t.test('evaluateHead reports metrics, the confusion matrix and rejections of a head on labelled embeddings', async (t) => {
  const train = gaussianClusters({ perClass: [20, 20], dim: 4, separation: 8, seed: 1 });
  const test = gaussianClusters({ perClass: [10, 10], dim: 4, separation: 8, seed: 2 });
  const head = await trainHead(train.data, train.labels, { type: 'linear', seed: 1 });
  const evaluation = evaluateHead(head, { embeddings: test.data, labels: test.labels }, 'test rows');
  t.equal(evaluation.metrics.accuracy, 1);
  t.equal(evaluation.rejected, 0);
  t.same(evaluation.report.confusion, [[10, 0], [0, 10]]);
  t.throws(() => evaluateHead(head, { embeddings: test.data.subarray(0, 4), labels: ['zebra'] }, 'test rows'), {
    code: 'label-mismatch',
    message: /test rows has class "zebra" that the head does not know/,
  });
});
