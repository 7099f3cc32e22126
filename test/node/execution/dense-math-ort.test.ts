import t from 'tap';
import { createOrtDenseMath } from '../../../src/node/execution/dense-math-ort.js';
import { gemmSync, transpose } from '../../../src/core/heads/dense-math.js';
import { Random } from '../../../src/core/heads/random.js';
import { trainHead } from '../../../src/core/heads/train.js';
import { gaussianClusters } from '../../core/heads/synthetic.js';

t.test('onnxruntime gemm matches the JS kernel for every transposition, small and large', async (t) => {
  const math = await createOrtDenseMath({ intraOpThreads: 1 });
  t.teardown(() => math.dispose?.());
  const random = new Random(1);
  for (const [m, k, n] of [
    [3, 4, 5],
    [70, 300, 33],
    [257, 129, 65],
  ]) {
    const a = Float32Array.from({ length: m * k }, () => random.normal());
    const b = Float32Array.from({ length: k * n }, () => random.normal());
    const expected = gemmSync(a, b, m, k, n, false, false);
    for (const [transA, transB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const left = transA ? transpose(a, m, k) : a;
      const right = transB ? transpose(b, k, n) : b;
      const got = await math.gemm(left, right, m, k, n, transA, transB);
      let worst = 0;
      got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected[i]))));
      t.ok(worst < 1e-3, `${m}x${k}x${n} transA=${transA} transB=${transB}: max difference ${worst}`);
      t.equal(got.length, m * n);
    }
  }
});

t.test('training on onnxruntime is seeded too, and agrees with JS training', async (t) => {
  const math = await createOrtDenseMath();
  t.teardown(() => math.dispose?.());
  const { data, labels } = gaussianClusters({
    perClass: Array.from({ length: 6 }, () => 40),
    dim: 64,
    separation: 2,
    seed: 3,
  });
  const first = await trainHead(data, labels, { math, seed: 2 });
  const second = await trainHead(data, labels, { math, seed: 2 });
  t.same(first.toFileContent().tensors, second.toFileContent().tensors, 'identical weights from identical runs');
  const js = await trainHead(data, labels, { seed: 2 });
  t.equal(first.training.options.l2, js.training.options.l2, 'the sweep chooses the same strength');
  const agree =
    first.predictMany(data).filter((p, i) => p.label === js.predictMany(data)[i].label).length / labels.length;
  t.ok(agree > 0.98, `predictions agree on ${(100 * agree).toFixed(1)}% of rows`);
});
