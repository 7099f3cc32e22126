import t from 'tap';
import { trainHead } from '../../../src/core/heads/train.js';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import { mlpForward, mlpLogits, type MlpParameters } from '../../../src/core/heads/mlp.js';
import { applyNormalization } from '../../../src/core/heads/normalization.js';
import { gaussianClusters } from './synthetic.js';

// PyTorch's GELU(approximate='tanh') and ReLU at a few points: an oracle outside the code under test.
const GELU_TANH = new Map([
  [1, 0.8411919906082768],
  [-0.5, -0.15428599017485606],
  [2, 1.954597694087775],
]);

/** One input per hidden unit (identity weights), then a sum: logit = bias + sum of activation(x_i). */
function probe(activation: MlpParameters['activation']): MlpParameters {
  return {
    activation,
    layers: [
      { inputs: 3, outputs: 3, weight: Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), bias: new Float32Array(3) },
      { inputs: 3, outputs: 1, weight: Float32Array.from([1, 1, 1]), bias: Float32Array.from([0.25]) },
    ],
  };
}

t.test(
  'the MLP forward pass applies GELU (tanh approximation) and ReLU as PyTorch does, in training and prediction',
  async (t) => {
    const input = Float32Array.from([...GELU_TANH.keys()]);
    const gelu = 0.25 + [...GELU_TANH.values()].reduce((a, b) => a + b, 0);
    t.ok(Math.abs(mlpForward(probe('gelu'), input, 1)[0] - gelu) < 1e-6, 'prediction, gelu');
    t.ok(Math.abs((await mlpLogits(probe('gelu'), input, 1, jsDenseMath))[0] - gelu) < 1e-6, 'training, gelu');
    const relu = 0.25 + 1 + 0 + 2;
    t.ok(Math.abs(mlpForward(probe('relu'), input, 1)[0] - relu) < 1e-6, 'prediction, relu');
    t.ok(Math.abs((await mlpLogits(probe('relu'), input, 1, jsDenseMath))[0] - relu) < 1e-6, 'training, relu');
  },
);

t.test("a trained MLP head's logits are those of training's forward pass on the normalized embeddings", async (t) => {
  const { data, labels } = gaussianClusters({ perClass: [15, 15, 15], dim: 6, separation: 3, seed: 4 });
  const rows = labels.length;
  for (const activation of ['gelu', 'relu'] as const) {
    const head = await trainHead(data, labels, {
      type: 'mlp',
      seed: 3,
      mlp: { hidden: [8, 5], epochs: 10, activation },
    });
    if (head.weights.type !== 'mlp') throw new Error('trainHead did not return an MLP head');
    const normalized = applyNormalization(head.normalization, data, rows, 6);
    const training = await mlpLogits(head.weights, normalized, rows, jsDenseMath);
    const prediction = head.logits(data, rows);
    t.equal(prediction.length, training.length);
    const worst = prediction.reduce((m, v, i) => Math.max(m, Math.abs(v - training[i])), 0);
    t.ok(worst < 1e-5, `${activation}: largest difference ${worst}`);
  }
});
