// The last block's backward pass against finite differences, and the cross-validated fine-tuning protocol.
import t from 'tap';
import {
  type ActivationRows,
  type BlockWeights,
  type StandardizedLinearHead,
  blockForward,
  blockLossAndGradients,
  fineTuneLastBlock,
  headLogits,
} from '../../../src/core/heads/last-block.js';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import type { BlockActivation } from '../../../src/core/models/last-block.js';
import { pseudoRandom } from '../../helpers/onnx-graph.js';

const pixels = 3;
const inputs = 4;
const outputs = 5;
const classes = 3;
const rows = 4;

function problem(activation: BlockActivation) {
  const block: BlockWeights = {
    weight: pseudoRandom(outputs * inputs, 11),
    bias: Float32Array.from(pseudoRandom(outputs, 12), (v) => v * 0.3),
    inputs,
    outputs,
    activation,
  };
  const head: StandardizedLinearHead = {
    mean: Float32Array.from(pseudoRandom(outputs, 13), (v) => v * 0.1),
    std: Float32Array.from(pseudoRandom(outputs, 14), (v) => 0.5 + Math.abs(v)),
    weight: pseudoRandom(classes * outputs, 15),
    bias: pseudoRandom(classes, 16),
  };
  // inputs spread so that some pre-activations fall outside a clip [0, 1] and the kinks are exercised
  const x = Float32Array.from(pseudoRandom(rows * pixels * inputs, 17), (v) => v * 1.5);
  const targets = Int32Array.from([0, 2, 1, 2]);
  return { block, head, x, targets };
}

async function loss(
  block: BlockWeights,
  head: StandardizedLinearHead,
  x: Float32Array,
  targets: Int32Array,
  l2: number,
): Promise<number> {
  return (await blockLossAndGradients(block, head, x, targets, rows, pixels, classes, l2, jsDenseMath)).loss;
}

for (const activation of [{ kind: 'clip', min: 0, max: 1 }, { kind: 'swish' }] as BlockActivation[]) {
  t.test(`${activation.kind}: block and head gradients equal central finite differences`, async (t) => {
    const { block, head, x, targets } = problem(activation);
    const l2 = 0.05;
    const grads = await blockLossAndGradients(block, head, x, targets, rows, pixels, classes, l2, jsDenseMath);
    const h = 1e-3;
    const check = async (name: string, values: Float32Array, analytic: Float32Array) => {
      let worst = 0;
      let checked = 0;
      for (let i = 0; i < values.length; i++) {
        const saved = values[i];
        values[i] = saved + h;
        const up = await loss(block, head, x, targets, l2);
        values[i] = saved - h;
        const down = await loss(block, head, x, targets, l2);
        values[i] = saved;
        const numeric = (up - down) / (2 * h);
        // a finite difference across a clip kink is not a derivative: skip entries whose loss is not smooth here
        const mid = await loss(block, head, x, targets, l2);
        values[i] = saved + h / 2;
        const half = await loss(block, head, x, targets, l2);
        values[i] = saved;
        if (Math.abs((half - mid) / (h / 2) - numeric) > 0.05 * Math.max(1e-3, Math.abs(numeric))) continue;
        worst = Math.max(
          worst,
          Math.abs(numeric - analytic[i]) / Math.max(1e-3, Math.abs(numeric) + Math.abs(analytic[i])),
        );
        checked++;
      }
      t.ok(
        checked >= values.length * 0.7,
        `${name}: ${checked} of ${values.length} entries are smooth enough to check`,
      );
      t.ok(worst < 2e-2, `${name}: worst relative error ${worst.toExponential(2)}`);
    };
    await check('block weight', block.weight, grads.block.weight);
    await check('block bias', block.bias, grads.block.bias);
    await check('head weight', head.weight, grads.head.weight);
    await check('head bias', head.bias, grads.head.bias);
    t.ok(
      grads.block.weight.some((g) => Math.abs(g) > 1e-4),
      'the block gradient is not trivially zero',
    );
  });
}

t.test('the forward pass is the mean over pixels of act(x W^T + b)', async (t) => {
  const { block, x } = problem({ kind: 'clip', min: 0, max: 1 });
  const { pooled } = await blockForward(block, x, rows, pixels, jsDenseMath);
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outputs; o++) {
      let mean = 0;
      for (let p = 0; p < pixels; p++) {
        let z = block.bias[o];
        for (let c = 0; c < inputs; c++) z += x[(r * pixels + p) * inputs + c] * block.weight[o * inputs + c];
        mean += Math.min(1, Math.max(0, z)) / pixels;
      }
      worst = Math.max(worst, Math.abs(mean - pooled[r * outputs + o]));
    }
  }
  t.ok(worst < 1e-6, `largest difference ${worst}`);
});

/** Rows whose class shows only in how channels combine per pixel: a frozen block's pooled features hide it. */
function xorStore(count: number): { store: ActivationRows; targets: Int32Array; block: BlockWeights } {
  const px = 4;
  const ch = 2;
  const data = new Float32Array(count * px * ch);
  const targets = new Int32Array(count);
  let seed = 7;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (let r = 0; r < count; r++) {
    const label = r % 2;
    targets[r] = label;
    for (let p = 0; p < px; p++) {
      const a = rand() < 0.5 ? 1 : -1;
      // class 1: the two channels agree in sign; class 0: they disagree
      const b = label === 1 ? a : -a;
      data[(r * px + p) * ch] = a + 0.1 * (rand() - 0.5);
      data[(r * px + p) * ch + 1] = b + 0.1 * (rand() - 0.5);
    }
  }
  const store: ActivationRows = {
    rows: count,
    pixels: px,
    channels: ch,
    async read(indices, out) {
      for (let i = 0; i < indices.length; i++)
        out.set(data.subarray(indices[i] * px * ch, (indices[i] + 1) * px * ch), i * px * ch);
    },
  };
  // a pretrained block that looks at each channel alone: its ReLU means cannot tell agreement from disagreement
  const block: BlockWeights = {
    weight: Float32Array.from([1, 0, 0, 1, -1, 0, 0, -1]),
    bias: new Float32Array(4),
    inputs: 2,
    outputs: 4,
    activation: { kind: 'clip', min: 0, max: Infinity },
  };
  return { store, targets, block };
}

t.test(
  'fine-tuning wins out of fold where the frozen block cannot separate the classes, and the final model is trained',
  async (t) => {
    const { store, targets, block } = xorStore(120);
    const result = await fineTuneLastBlock(store, targets, 2, block, {
      math: jsDenseMath,
      l2: 1e-3,
      epochs: 30,
      patience: 30,
      batchSize: 16,
      blockLearningRate: 3e-2,
      headLearningRate: 3e-2,
      blockDecay: 0,
    });
    t.ok(
      result.epochs[0].accuracy < 0.7,
      `frozen out-of-fold accuracy is near chance (${result.epochs[0].accuracy.toFixed(3)})`,
    );
    t.ok(result.improved, 'fine-tuning is kept');
    t.ok(
      Math.max(...result.epochs.map((e) => e.accuracy)) > 0.9,
      `fine-tuned out-of-fold accuracy ${Math.max(...result.epochs.map((e) => e.accuracy)).toFixed(3)}`,
    );
    t.ok(result.chosenEpochs >= 1);
    const x = new Float32Array(store.rows * store.pixels * store.channels);
    await store.read(
      Int32Array.from({ length: store.rows }, (_, i) => i),
      x,
    );
    const { pooled } = await blockForward(result.block, x, store.rows, store.pixels, jsDenseMath);
    const { logits } = headLogits(result.head, pooled, store.rows, 4, 2);
    let correct = 0;
    for (let r = 0; r < store.rows; r++) if ((logits[r * 2 + 1] > logits[r * 2] ? 1 : 0) === targets[r]) correct++;
    t.ok(correct / store.rows > 0.9, `the final model fits the training rows (${correct}/${store.rows})`);
  },
);

t.test('when fine-tuning cannot help, the frozen head is kept (epoch 0)', async (t) => {
  const { store, targets, block } = xorStore(60);
  // a learning rate of zero leaves the block as it is: no epoch can beat the linear probe
  const result = await fineTuneLastBlock(store, targets, 2, block, {
    math: jsDenseMath,
    l2: 1e-3,
    epochs: 3,
    blockLearningRate: 0,
    headLearningRate: 0,
  });
  t.notOk(result.improved);
  t.equal(result.chosenEpochs, 0);
  t.same(Array.from(result.block.weight), Array.from(block.weight), 'the block keeps its pretrained weights');
});
