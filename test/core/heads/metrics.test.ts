import t from 'tap';
import {
  accuracy,
  classificationReport,
  expectedCalibrationError,
  logLoss,
  outlierAuroc,
} from '../../../src/core/heads/metrics.js';

t.test('classification report: confusion, precision, recall, F1, balanced accuracy', async (t) => {
  // truth:      0 0 0 0 1 1 2 2 2 2
  // predicted:  0 0 1 2 1 1 2 2 -1 0   (-1 = rejected as unknown)
  const report = classificationReport([0, 0, 1, 2, 1, 1, 2, 2, -1, 0], [0, 0, 0, 0, 1, 1, 2, 2, 2, 2], 3);
  t.same(report.confusion, [
    [2, 1, 1, 0],
    [0, 2, 0, 0],
    [1, 0, 2, 1],
  ]);
  t.equal(report.accuracy, 0.6);
  t.equal(report.rejected, 1);
  t.same(report.perClass[0], { precision: 2 / 3, recall: 0.5, f1: (2 * (2 / 3) * 0.5) / (2 / 3 + 0.5), support: 4 });
  t.same(report.perClass[1], { precision: 2 / 3, recall: 1, f1: 0.8, support: 2 });
  t.equal(report.balancedAccuracy, (0.5 + 1 + 0.5) / 3);
  const none = classificationReport([0, 0], [0, 1], 2);
  t.equal(none.perClass[1].precision, 0, 'a never-predicted class has precision 0');
  t.equal(none.confusion[0].length, 2, 'no unknown column without rejections');
});

t.test('accuracy, log loss and ECE on hand-computed cases', async (t) => {
  const logits = Float32Array.from([2, 0, 0, 2, 1, 1]);
  t.equal(accuracy(logits, [0, 1, 0], 2), 1, 'ties go to the first class');
  t.ok(Math.abs(logLoss(Float32Array.from([0, 0]), [1], 2) - Math.log(2)) < 1e-12);
  t.ok(
    Math.abs(logLoss(Float32Array.from([2, 0]), [0], 2, 2) - Math.log(1 + Math.exp(-1))) < 1e-7,
    'temperature divides logits',
  );
  // two rows at confidence 0.9: one right, one wrong -> |0.5 - 0.9| = 0.4
  t.ok(Math.abs(expectedCalibrationError(Float32Array.from([0.9, 0.1, 0.9, 0.1]), [0, 1], 2) - 0.4) < 1e-6);
});

t.test('outlier AUROC: the share of (outlier, inlier) pairs ranked right, ties counting half', async (t) => {
  t.equal(outlierAuroc([0.1, 0.2], [0.3, 0.4]), 1, 'every outlier above every inlier');
  t.equal(outlierAuroc([0.3, 0.4], [0.1, 0.2]), 0, 'every outlier below');
  t.equal(outlierAuroc([0.1, 0.3], [0.2]), 0.5, 'one pair of two right');
  t.equal(outlierAuroc([0.2, 0.2], [0.2]), 0.5, 'ties count half');
  t.equal(
    outlierAuroc([0.1, 0.2, 0.2, 0.5], [0.2, 0.6]),
    (1 + 2 * 0.5 + 4) / 8,
    'mixed: 0.2 beats one inlier and ties two, 0.6 beats all four',
  );
  t.ok(Number.isNaN(outlierAuroc([], [1])), 'undefined without inliers');
});
