import t, { type Test } from 'tap';
import { DEFAULT_AMBIGUOUS_SHARE, DEFAULT_REJECT_RATE, trainHead } from '../../../src/core/heads/train.js';
import { Head, UNKNOWN_LABEL } from '../../../src/core/heads/head.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { Random } from '../../../src/core/heads/random.js';
import { gaussianClusters } from './synthetic.js';

const backbone = { id: 'test', sha256: '12'.repeat(32), embeddingDim: 10, preprocess: null };

/** Closed-set accuracy: the best known class, whether or not the head calls the row unknown. */
function accuracyOf(head: Head, data: Float32Array, labels: string[]): number {
  return head.predictMany(data).filter((p, i) => p.closest === labels[i]).length / labels.length;
}

async function rejects(t: Test, promise: Promise<unknown>, pattern: RegExp, what: string) {
  try {
    await promise;
    t.fail(`${what}: did not throw`);
  } catch (error) {
    t.ok(error instanceof EdgetlError && pattern.test(error.message), `${what}: ${(error as Error).message}`);
  }
}

t.test('every head type reaches 100% on well-separated clusters, train and fresh rows', async (t) => {
  const train = gaussianClusters({ perClass: [25, 25, 25], dim: 10, separation: 9, seed: 1 });
  const fresh = gaussianClusters({ perClass: [20, 20, 20], dim: 10, separation: 9, seed: 2 });
  for (const type of ['linear', 'mlp', 'prototype'] as const) {
    const head = await trainHead(train.data, train.labels, { type, backbone, seed: 1, mlp: { epochs: 40 } });
    t.equal(accuracyOf(head, train.data, train.labels), 1, `${type}: training rows`);
    t.equal(accuracyOf(head, fresh.data, fresh.labels), 1, `${type}: fresh rows`);
  }
});

t.test('the MLP learns a problem no linear head can (XOR of two dims)', async (t) => {
  const random = new Random(4);
  const make = (rows: number) => {
    const data = new Float32Array(rows * 2);
    const labels: string[] = [];
    for (let r = 0; r < rows; r++) {
      const a = random.next() < 0.5 ? -1 : 1;
      const b = random.next() < 0.5 ? -1 : 1;
      data[r * 2] = a + 0.2 * random.normal();
      data[r * 2 + 1] = b + 0.2 * random.normal();
      labels.push(a * b > 0 ? 'same' : 'different');
    }
    return { data, labels };
  };
  const train = make(400);
  const test = make(200);
  const mlp = await trainHead(train.data, train.labels, {
    type: 'mlp',
    seed: 2,
    mlp: { hidden: [16], epochs: 150, learningRate: 1e-2, dropout: 0, activation: 'gelu' },
  });
  const linear = await trainHead(train.data, train.labels, { type: 'linear', seed: 2 });
  t.ok(accuracyOf(mlp, test.data, test.labels) > 0.95, `mlp: ${accuracyOf(mlp, test.data, test.labels)}`);
  t.ok(accuracyOf(linear, test.data, test.labels) < 0.7, `linear: ${accuracyOf(linear, test.data, test.labels)}`);
});

t.test('seeded: same data and seed give identical weights; another seed changes the MLP', async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [30, 20, 25], dim: 10, separation: 2, seed: 3 });
  for (const type of ['linear', 'mlp', 'prototype'] as const) {
    const options = { type, backbone, seed: 7, mlp: { epochs: 15 }, rejectRate: 0.05 };
    const a = (await trainHead(data, labels, options)).toFileContent();
    const b = (await trainHead(data, labels, options)).toFileContent();
    t.same(a.tensors, b.tensors, `${type}: identical tensors`);
    t.equal(a.calibration.temperature, b.calibration.temperature, `${type}: identical temperature`);
    t.same(a.rejection, b.rejection);
  }
  const first = (await trainHead(data, labels, { type: 'mlp', seed: 1, mlp: { epochs: 5 } })).toFileContent().tensors;
  const second = (await trainHead(data, labels, { type: 'mlp', seed: 2, mlp: { epochs: 5 } })).toFileContent().tensors;
  t.notSame(first, second, 'mlp: another seed, other weights');
});

t.test('MLP early stopping halts on a held-out plateau and keeps the best epoch', async (t) => {
  const random = new Random(9);
  const data = Float32Array.from({ length: 200 * 10 }, () => random.normal());
  const labels = Array.from({ length: 200 }, (_, i) => (i % 2 ? 'a' : 'b')); // pure noise: nothing to learn
  const head = await trainHead(data, labels, { type: 'mlp', seed: 1, mlp: { epochs: 200, patience: 5 } });
  const fit = head.training.metrics.fit as { epochsRun: number; bestEpoch: number };
  t.ok(fit.epochsRun < 200, `stopped after ${fit.epochsRun} epochs`);
  t.equal(fit.epochsRun - fit.bestEpoch, 5, 'ran exactly `patience` epochs past the best');
});

t.test('balanced class weights shift decisions towards the rare class', async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [300, 30], dim: 10, separation: 1.5, seed: 5 });
  const fresh = gaussianClusters({ perClass: [200, 200], dim: 10, separation: 1.5, seed: 6 });
  const recallOfRare = (head: Head) =>
    head.predictMany(fresh.data.subarray(200 * 10)).filter((p) => p.label === 'c1').length / 200;
  const plain = await trainHead(data, labels, { seed: 1, l2: 1e-2 });
  const balanced = await trainHead(data, labels, { seed: 1, l2: 1e-2, classWeight: 'balanced' });
  t.ok(
    recallOfRare(balanced) > recallOfRare(plain) + 0.1,
    `rare-class recall ${recallOfRare(plain)} -> ${recallOfRare(balanced)}`,
  );
  t.equal(balanced.training.options.classWeight, 'balanced');
});

t.test(
  'open-set rejection: a few percent of known rows and most far-away rows become "unknown", by default',
  async (t) => {
    const train = gaussianClusters({ perClass: [150, 150, 150], dim: 10, separation: 3, seed: 7 });
    for (const type of ['linear', 'mlp', 'prototype'] as const) {
      const head = await trainHead(train.data, train.labels, { type, seed: 1, mlp: { epochs: 30 } });
      t.ok(
        head.openSet &&
          Math.abs(head.openSet.rate - DEFAULT_REJECT_RATE * (1 - DEFAULT_AMBIGUOUS_SHARE)) < 1e-12 &&
          head.openSet.threshold !== null,
        `${type}: outlier cut on by default (threshold ${head.openSet?.threshold}, rate ${head.openSet?.rate})`,
      );
      t.ok(
        head.rejection && Math.abs(head.rejection.rate - DEFAULT_REJECT_RATE * DEFAULT_AMBIGUOUS_SHARE) < 1e-12,
        `${type}: the low-confidence cut takes its share of the rate (${head.rejection?.rate})`,
      );
      t.equal(
        head.training.options.rejectRate,
        head.openSet!.rate + head.rejection!.rate,
        'the summary gives the total',
      );
      const fresh = gaussianClusters({ perClass: [300, 300, 300], dim: 10, separation: 3, seed: 8 });
      const predictions = head.predictMany(fresh.data);
      const rejected = predictions.filter((p) => p.rejected).length / 900;
      t.ok(rejected > 0.01 && rejected < 0.1, `${type}: known-class rows rejected: ${rejected}`);
      // rows of a cluster no class lives near (centred on dimensions 6..9)
      const far = gaussianClusters({ perClass: [0, 0, 0, 0, 0, 0, 100], dim: 10, separation: 12, seed: 9 });
      const farPredictions = head.predictMany(far.data);
      const farRejected = farPredictions.filter((p) => p.rejected).length / 100;
      t.ok(farRejected > 0.5, `${type}: most far-away rows rejected: ${farRejected}`);
      const prediction = farPredictions.find((p) => p.rejected)!;
      t.equal(prediction.label, UNKNOWN_LABEL);
      t.equal(prediction.reason, 'outlier');
      t.equal(prediction.closest, head.labels[prediction.index], 'closest names the best known class');
      t.equal(prediction.topK[0].label, prediction.closest, 'top-k still names the best class');
      t.ok(prediction.outlierScore! > head.openSet!.threshold!, 'its outlier score is over the threshold');
      const meanOf = (ps: typeof predictions) => ps.reduce((s, p) => s + p.outlierScore!, 0) / ps.length;
      t.ok(
        meanOf(farPredictions) > meanOf(predictions),
        `${type}: far rows score higher (${meanOf(farPredictions)} > ${meanOf(predictions)})`,
      );
    }
    const off = await trainHead(train.data, train.labels, { seed: 1, rejectRate: 0 });
    const offPredictions = off.predictMany(
      gaussianClusters({ perClass: [0, 0, 0, 0, 0, 0, 50], dim: 10, separation: 12, seed: 9 }).data,
    );
    t.equal(off.openSet!.threshold, null, 'rejectRate 0 turns rejection off');
    t.equal(off.rejection, null, 'rejectRate 0 turns the low-confidence cut off too');
    const outliersOnly = await trainHead(train.data, train.labels, { seed: 1, ambiguousShare: 0 });
    t.equal(outliersOnly.rejection, null, 'ambiguousShare 0: no low-confidence cut');
    t.equal(outliersOnly.openSet!.rate, DEFAULT_REJECT_RATE, 'ambiguousShare 0: the outlier cut takes the whole rate');
    // a row halfway between two class means: like the training data, but the head cannot tell which class
    const means = [0, 1].map((c) => {
      const mean = new Float32Array(10);
      for (let r = 0; r < 150; r++) for (let d = 0; d < 10; d++) mean[d] += train.data[(c * 150 + r) * 10 + d] / 150;
      return mean;
    });
    const between = Float32Array.from(means[0], (v, d) => (v + means[1][d]) / 2);
    const ambiguous = outliersOnly.predict(between);
    const cut = (await trainHead(train.data, train.labels, { seed: 1 })).predict(between);
    t.notOk(
      ambiguous.unknown,
      `outliers only: a row between two classes is answered (${ambiguous.label} ${ambiguous.score})`,
    );
    t.equal(cut.reason, 'low-confidence', `by default it is "unknown" as low-confidence (score ${cut.score})`);
    t.equal(cut.label, UNKNOWN_LABEL);
    t.ok(
      offPredictions.every((p) => !p.rejected && p.outlierScore !== undefined),
      'but predictions still carry outlier scores',
    );
  },
);

t.test('prototype add-class and remove-class keep the open-set memory right', async (t) => {
  const all = gaussianClusters({ perClass: [60, 60, 60, 60], dim: 10, separation: 6, seed: 12 });
  const fresh = gaussianClusters({ perClass: [60, 60, 60, 60], dim: 10, separation: 6, seed: 13 });
  const rowsOf = (set: typeof all, c: number) => set.data.subarray(c * 60 * 10, (c + 1) * 60 * 10);
  const rejectedShare = (head: Head, rows: Float32Array) =>
    head.predictMany(rows).filter((p) => p.rejected).length / (rows.length / 10);
  const head = await trainHead(all.data.subarray(0, 180 * 10), all.labels.slice(0, 180), {
    type: 'prototype',
    backbone,
    seed: 1,
  });
  t.ok(
    rejectedShare(head, rowsOf(fresh, 3)) > 0.9,
    `before it is added, class c3 is unknown (${rejectedShare(head, rowsOf(fresh, 3))})`,
  );
  head.addClass('c3', rowsOf(all, 3));
  t.ok(
    rejectedShare(head, rowsOf(fresh, 3)) < 0.15,
    `after add-class, fresh c3 rows are known (${rejectedShare(head, rowsOf(fresh, 3))} rejected)`,
  );
  t.ok(head.openSet!.memoryClasses.includes(3), 'the memory holds rows of the new class');
  const reloaded = Head.parse(head.serialize());
  t.same(reloaded.openSet!.memoryClasses, head.openSet!.memoryClasses, 'and survives saving');
  head.removeClass('c1');
  t.notOk(head.openSet!.memoryClasses.includes(3), 'class indices after the removed one shift down');
  t.same([...new Set(head.openSet!.memoryClasses)].sort(), [0, 1, 2], 'every memory row belongs to a remaining class');
  t.ok(
    rejectedShare(head, rowsOf(fresh, 1)) > 0.9,
    `after remove-class, the removed class is unknown (${rejectedShare(head, rowsOf(fresh, 1))})`,
  );
  t.ok(rejectedShare(head, rowsOf(fresh, 3)) < 0.15, 'the others stay known');
  const closest = head.predictMany(rowsOf(fresh, 3)).map((p) => p.closest);
  t.ok(
    closest.every((c) => c === 'c3'),
    'c3 rows are still closest to c3',
  );
});

t.test('prototype heads add and remove classes without retraining the others', async (t) => {
  const all = gaussianClusters({ perClass: [30, 30, 30, 30], dim: 10, separation: 6, seed: 11 });
  const firstThree = { data: all.data.subarray(0, 90 * 10), labels: all.labels.slice(0, 90) };
  const head = await trainHead(firstThree.data, firstThree.labels, { type: 'prototype', backbone, seed: 1 });
  const before = head.toFileContent().tensors[0].data.slice();
  head.addClass('c3', all.data.subarray(90 * 10));
  t.same(head.labels, ['c0', 'c1', 'c2', 'c3']);
  t.same(
    Array.from(head.toFileContent().tensors[0].data.subarray(0, 30)),
    Array.from(before.subarray(0, 30)),
    'existing class sums untouched',
  );
  t.equal(accuracyOf(head, all.data, all.labels), 1, 'the new class is recognized');
  t.same(head.training.counts, { c0: 30, c1: 30, c2: 30, c3: 30 });
  head.addClass('c3', all.data.subarray(90 * 10, 95 * 10));
  t.equal(head.training.counts.c3, 35, 'more examples of an existing class are merged');
  head.removeClass('c1');
  t.same(head.labels, ['c0', 'c2', 'c3']);
  const loaded = Head.parse(head.serialize());
  t.same(loaded.labels, ['c0', 'c2', 'c3']);
  t.same((loaded.toFileContent().parameters as { counts: number[] }).counts, [30, 30, 35]);
  const linear = await trainHead(firstThree.data, firstThree.labels, { seed: 1 });
  t.throws(() => linear.addClass('c3', all.data.subarray(90 * 10)), /cannot add a class to a linear head/);
  t.throws(() => head.removeClass('nope'), /no class "nope"/);
});

t.test('refusals: one class, an empty class, bad rows, reserved label', async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [5, 5], dim: 10, separation: 3, seed: 1 });
  await rejects(t, trainHead(data.subarray(0, 50), labels.slice(0, 5)), /only one class \(c0\)/, 'one class');
  await rejects(
    t,
    trainHead(data, labels, { classes: ['c0', 'c1', 'c2'] }),
    /class "c2" has no examples/,
    'empty class',
  );
  await rejects(t, trainHead(data, labels.slice(0, 9)), /cannot be split into 9 rows/, 'label count mismatch');
  const broken = Float32Array.from(data);
  broken[13] = NaN;
  await rejects(t, trainHead(broken, labels), /embedding 1 .*non-finite/, 'NaN');
  // standardization's column sums stand in for the scan: infinities, and opposite ones that cancel, must still fail
  const infinite = Float32Array.from(data);
  infinite[27] = Infinity;
  await rejects(t, trainHead(infinite, labels), /embedding 2 \(label "c0"\) holds a non-finite/, 'Infinity');
  const opposite = Float32Array.from(data);
  opposite[33] = Infinity;
  opposite[73] = -Infinity;
  await rejects(t, trainHead(opposite, labels), /embedding 3 .*non-finite/, '+Infinity and -Infinity in one column');
  await rejects(
    t,
    trainHead(broken, labels, { type: 'prototype' }),
    /embedding 1 .*non-finite/,
    'NaN without standardization',
  );
  await rejects(
    t,
    trainHead(
      data,
      labels.map((l) => (l === 'c1' ? 'unknown' : l)),
    ),
    /"unknown" is reserved/,
    'reserved label',
  );
  await rejects(
    t,
    trainHead(data, labels, { backbone: { ...backbone, embeddingDim: 12 } }),
    /backbone test produces 12/,
    'dim mismatch',
  );
  await rejects(t, trainHead(data.subarray(0, 60), labels.slice(0, 6)), /class "c1" has 1/, 'CV needs two per class');
  await rejects(
    t,
    trainHead(data.subarray(0, 60), labels.slice(0, 6), { type: 'prototype', rejectRate: 0.05 }),
    /rejection threshold needs out-of-fold rows/,
    'a threshold needs two per class',
  );
});

t.test("the mini-batch linear solver reaches the L-BFGS solution's accuracy", async (t) => {
  const train = gaussianClusters({ perClass: [80, 80, 80], dim: 10, separation: 2.5, seed: 21 });
  const fresh = gaussianClusters({ perClass: [100, 100, 100], dim: 10, separation: 2.5, seed: 22 });
  const lbfgs = await trainHead(train.data, train.labels, { seed: 1, l2: 1e-3 });
  const minibatch = await trainHead(train.data, train.labels, {
    seed: 1,
    l2: 1e-3,
    solver: 'minibatch',
    mlp: { epochs: 60, learningRate: 1e-2 },
  });
  t.equal(minibatch.type, 'linear');
  t.equal(minibatch.training.options.solver, 'minibatch');
  const a = accuracyOf(lbfgs, fresh.data, fresh.labels);
  const b = accuracyOf(minibatch, fresh.data, fresh.labels);
  t.ok(b > a - 0.03, `mini-batch ${b} vs L-BFGS ${a}`);
});
