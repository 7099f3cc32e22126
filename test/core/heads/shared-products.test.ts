import t from 'tap';
import { SharedMatrixProducts, directProducts } from '../../../src/core/heads/shared-products.js';
import { jsDenseMath, type DenseMath } from '../../../src/core/heads/dense-math.js';
import { Random } from '../../../src/core/heads/random.js';

const rows = 37;
const dim = 11;
const classes = 3;
const random = new Random(5);
const data = Float32Array.from({ length: rows * dim }, () => random.normal());
const weights = [0, 1, 2].map(() => Float32Array.from({ length: classes * dim }, () => random.normal()));
const grads = [0, 1, 2].map(() => Float32Array.from({ length: rows * classes }, () => random.normal()));

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = a.length === b.length ? 0 : Infinity;
  a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[i]!))));
  return worst;
}

/** jsDenseMath, counting its products. */
function countingMath(): DenseMath & { calls: number } {
  const math = {
    name: 'counting',
    calls: 0,
    gemm(...args: Parameters<DenseMath['gemm']>) {
      math.calls++;
      return jsDenseMath.gemm(...args);
    },
  };
  return math;
}

t.test('stacked products equal each model computed on its own, in one product per kind and round', async (t) => {
  const math = countingMath();
  const shared = new SharedMatrixProducts(math, data, rows, dim, classes);
  const direct = directProducts(jsDenseMath, data, rows, dim, classes);
  const lanes = weights.map(() => shared.join());
  const results = await Promise.all(
    lanes.map(async (lane, i) => {
      const logits = await lane.logits(weights[i]!);
      const gradient = await lane.weightGradient(grads[i]!);
      lane.leave();
      return { logits, gradient };
    }),
  );
  t.equal(math.calls, 2, 'three models, two rounds: one stacked product each');
  for (let i = 0; i < 3; i++) {
    t.ok(maxDifference(results[i]!.logits, await direct.logits(weights[i]!)) < 1e-5, `model ${i} logits`);
    t.ok(maxDifference(results[i]!.gradient, await direct.weightGradient(grads[i]!)) < 1e-5, `model ${i} gradient`);
  }
});

t.test('a round waits for every lane still in, and runs as soon as the last one asks or leaves', async (t) => {
  const shared = new SharedMatrixProducts(jsDenseMath, data, rows, dim, classes);
  const a = shared.join();
  const b = shared.join();
  let settled = false;
  const pending = a.logits(weights[0]!).then((out) => {
    settled = true;
    return out;
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.notOk(settled, 'lane a waits while lane b may still ask');
  b.leave();
  const logits = await pending;
  t.ok(settled, 'lane b leaving lets the round run');
  t.equal(logits.length, rows * classes);
  // lanes that ask at different kinds of product in one round still get their own answers
  const c = shared.join();
  const [forward, backward] = await Promise.all([a.logits(weights[1]!), c.weightGradient(grads[2]!)]);
  const direct = directProducts(jsDenseMath, data, rows, dim, classes);
  t.ok(maxDifference(forward, await direct.logits(weights[1]!)) < 1e-5, 'logits in a mixed round');
  t.ok(maxDifference(backward, await direct.weightGradient(grads[2]!)) < 1e-5, 'gradient in a mixed round');
});

t.test('a failed product fails every model of its round instead of leaving them waiting', async (t) => {
  const failing: DenseMath = {
    name: 'failing',
    gemm: async () => {
      throw new Error('backend gone');
    },
  };
  const shared = new SharedMatrixProducts(failing, data, rows, dim, classes);
  const lanes = [shared.join(), shared.join()];
  const outcomes = await Promise.allSettled(lanes.map((lane, i) => lane.logits(weights[i]!)));
  t.same(
    outcomes.map((o) => o.status),
    ['rejected', 'rejected'],
  );
});
