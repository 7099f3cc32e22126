import { gemmNT, type DenseMath } from './dense-math.js';
import type { LabelledMatrix } from './data.js';
import { Random } from './random.js';
import { crossEntropyWithGradient } from './softmax.js';
import { logLoss } from './metrics.js';

export type Activation = 'relu' | 'gelu';

/** One fully connected layer: out = weight . in + bias, weight [outputs, inputs]. */
export interface DenseLayer {
  inputs: number;
  outputs: number;
  weight: Float32Array;
  bias: Float32Array;
}

/** Hidden layers apply the activation; the last layer gives the logits. */
export interface MlpParameters {
  activation: Activation;
  layers: DenseLayer[];
}

/** The MLP's hyperparameters, as a user sets them (defaults in train.ts DEFAULT_MLP_OPTIONS). */
export interface MlpOptions {
  /** Hidden layer widths ([] gives a linear model trained by mini-batches). */
  hidden: number[];
  activation: Activation;
  dropout: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** AdamW decoupled weight decay on weight matrices (not biases). */
  weightDecay: number;
  labelSmoothing: number;
  /** Epochs without held-out improvement before stopping (early stopping needs a held-out set). */
  patience: number;
}

export interface NetworkTrainingOptions extends MlpOptions {
  math: DenseMath;
  seed: number;
  /** Coupled L2 added to the loss (the linear head's objective when trained by mini-batches). */
  l2: number;
  sampleWeights?: Float32Array;
  onEpoch?: (epoch: number, epochs: number, heldOutLoss: number | undefined) => void;
}

export interface NetworkTrainingResult {
  params: MlpParameters;
  epochsRun: number;
  bestEpoch: number;
  heldOutLoss: number | undefined;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** The hidden layers' activation (GELU: the tanh approximation, as PyTorch's approximate='tanh'); a new array. */
function activate(z: Float32Array, kind: Activation): Float32Array {
  const out = new Float32Array(z.length);
  if (kind === 'relu') {
    for (let i = 0; i < z.length; i++) out[i] = Math.max(z[i], 0);
  } else {
    for (let i = 0; i < z.length; i++) {
      const x = z[i];
      out[i] = 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    }
  }
  return out;
}

/** Multiplies `gradient` in place by the activation's derivative at `z`. */
function activationBackward(gradient: Float32Array, z: Float32Array, kind: Activation): void {
  if (kind === 'relu') {
    for (let i = 0; i < z.length; i++) if (z[i] <= 0) gradient[i] = 0;
  } else {
    for (let i = 0; i < z.length; i++) {
      const x = z[i];
      const t = Math.tanh(GELU_C * (x + 0.044715 * x * x * x));
      gradient[i] *= 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }
  }
}

/** Adds each layer output's bias to the rows of `out` [rows, outputs], in place. */
function addBias(out: Float32Array, layer: DenseLayer, rows: number): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * layer.outputs;
    for (let c = 0; c < layer.outputs; c++) out[o + c] += layer.bias[c];
  }
  return out;
}

async function denseForward(
  layer: DenseLayer,
  input: Float32Array,
  rows: number,
  math: DenseMath,
): Promise<Float32Array> {
  return addBias(await math.gemm(input, layer.weight, rows, layer.inputs, layer.outputs, false, true), layer, rows);
}

/**
 * The MLP's forward pass for prediction (Head.logits): logits of `rows` normalized embeddings, no dropout. The same
 * layers, bias and activation as training's (mlpLogits, trainNetwork), with the synchronous JS product.
 */
export function mlpForward(params: MlpParameters, data: Float32Array, rows: number): Float32Array {
  let activations = data;
  params.layers.forEach((layer, l) => {
    const z = addBias(gemmNT(activations, layer.weight, rows, layer.inputs, layer.outputs), layer, rows);
    activations = l < params.layers.length - 1 ? activate(z, params.activation) : z;
  });
  return activations;
}

/** Logits of `rows` (already normalized) embeddings during training (held-out loss): mlpForward on `math`. */
export async function mlpLogits(
  params: MlpParameters,
  data: Float32Array,
  rows: number,
  math: DenseMath,
): Promise<Float32Array> {
  let activations = data;
  for (let l = 0; l < params.layers.length; l++) {
    const z = await denseForward(params.layers[l], activations, rows, math);
    activations = l < params.layers.length - 1 ? activate(z, params.activation) : z;
  }
  return activations;
}

function initialLayers(dim: number, hidden: number[], classes: number, random: Random): DenseLayer[] {
  const widths = [dim, ...hidden, classes];
  const layers: DenseLayer[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const inputs = widths[l];
    const outputs = widths[l + 1];
    const isOutput = l + 1 === widths.length - 1;
    // He-uniform for ReLU-family hidden layers; PyTorch's 1/sqrt(fan_in) for the output layer
    const bound = isOutput ? 1 / Math.sqrt(inputs) : Math.sqrt(6 / inputs);
    const weight = new Float32Array(inputs * outputs);
    for (let i = 0; i < weight.length; i++) weight[i] = (2 * random.next() - 1) * bound;
    layers.push({ inputs, outputs, weight, bias: new Float32Array(outputs) });
  }
  return layers;
}

function cloneLayers(layers: DenseLayer[]): DenseLayer[] {
  return layers.map((l) => ({ ...l, weight: Float32Array.from(l.weight), bias: Float32Array.from(l.bias) }));
}

/**
 * Mini-batch training of a small fully connected network with AdamW, linear warm-up then cosine decay of the
 * learning rate, dropout on hidden activations, label smoothing, class weights, and early stopping on the
 * held-out rows (the best epoch's weights are kept). Seeded: initial weights, batch order and dropout masks all
 * come from `seed`.
 */
export async function trainNetwork(
  train: LabelledMatrix,
  heldOut: LabelledMatrix | undefined,
  options: NetworkTrainingOptions,
): Promise<NetworkTrainingResult> {
  const { math, activation } = options;
  const random = new Random(options.seed);
  const classes = train.classCount;
  let layers = initialLayers(train.dim, options.hidden, classes, random);
  const moments = layers.map((l) => ({
    mw: new Float32Array(l.weight.length),
    vw: new Float32Array(l.weight.length),
    mb: new Float32Array(l.bias.length),
    vb: new Float32Array(l.bias.length),
  }));
  const beta1 = 0.9;
  const beta2 = 0.999;
  const epsilon = 1e-8;
  const batchSize = Math.min(options.batchSize, train.rows);
  const batchesPerEpoch = Math.ceil(train.rows / batchSize);
  const totalSteps = options.epochs * batchesPerEpoch;
  const warmupSteps = Math.max(1, Math.round(0.05 * totalSteps));
  const order = Int32Array.from({ length: train.rows }, (_, i) => i);
  let step = 0;
  let best: { layers: DenseLayer[]; loss: number; epoch: number } | undefined;
  let sinceBest = 0;
  let epochsRun = 0;

  for (let epoch = 0; epoch < options.epochs; epoch++) {
    random.shuffle(order);
    for (let start = 0; start < train.rows; start += batchSize) {
      const rows = Math.min(batchSize, train.rows - start);
      const input = new Float32Array(rows * train.dim);
      const targets = new Int32Array(rows);
      const weights = options.sampleWeights ? new Float32Array(rows) : undefined;
      for (let r = 0; r < rows; r++) {
        const source = order[start + r];
        input.set(train.data.subarray(source * train.dim, (source + 1) * train.dim), r * train.dim);
        targets[r] = train.targets[source];
        if (weights) weights[r] = options.sampleWeights![source];
      }
      // forward, keeping what backward needs
      const layerInputs: Float32Array[] = [];
      const preActivations: Float32Array[] = [];
      const masks: (Float32Array | undefined)[] = [];
      let activations: Float32Array = input;
      for (let l = 0; l < layers.length; l++) {
        layerInputs.push(activations);
        const z = await denseForward(layers[l], activations, rows, math);
        preActivations.push(z);
        if (l === layers.length - 1) {
          activations = z;
          masks.push(undefined);
          continue;
        }
        const a = activate(z, activation);
        let mask: Float32Array | undefined;
        if (options.dropout > 0) {
          mask = new Float32Array(a.length);
          const keep = 1 - options.dropout;
          for (let i = 0; i < a.length; i++) {
            mask[i] = random.next() < keep ? 1 / keep : 0;
            a[i] *= mask[i];
          }
        }
        masks.push(mask);
        activations = a;
      }
      let delta: Float32Array = new Float32Array(rows * classes);
      crossEntropyWithGradient(activations, targets, weights, rows, classes, delta, options.labelSmoothing);

      step++;
      const lr =
        step <= warmupSteps
          ? (options.learningRate * step) / warmupSteps
          : 0.5 *
            options.learningRate *
            (1 + Math.cos((Math.PI * (step - warmupSteps)) / Math.max(1, totalSteps - warmupSteps)));
      const correction1 = 1 - beta1 ** step;
      const correction2 = 1 - beta2 ** step;
      for (let l = layers.length - 1; l >= 0; l--) {
        const layer = layers[l];
        const gradWeight = await math.gemm(delta, layerInputs[l], layer.outputs, rows, layer.inputs, true, false);
        const gradBias = new Float32Array(layer.outputs);
        for (let r = 0; r < rows; r++)
          for (let c = 0; c < layer.outputs; c++) gradBias[c] += delta[r * layer.outputs + c];
        if (l > 0) {
          const below = await math.gemm(delta, layer.weight, rows, layer.outputs, layer.inputs, false, false);
          const mask = masks[l - 1];
          if (mask) for (let i = 0; i < below.length; i++) below[i] *= mask[i];
          activationBackward(below, preActivations[l - 1], activation);
          delta = below;
        }
        const m = moments[l];
        const decay = lr * options.weightDecay;
        for (let i = 0; i < layer.weight.length; i++) {
          const g = gradWeight[i] + options.l2 * layer.weight[i];
          m.mw[i] = beta1 * m.mw[i] + (1 - beta1) * g;
          m.vw[i] = beta2 * m.vw[i] + (1 - beta2) * g * g;
          layer.weight[i] -=
            (lr * (m.mw[i] / correction1)) / (Math.sqrt(m.vw[i] / correction2) + epsilon) + decay * layer.weight[i];
        }
        for (let i = 0; i < layer.bias.length; i++) {
          const g = gradBias[i];
          m.mb[i] = beta1 * m.mb[i] + (1 - beta1) * g;
          m.vb[i] = beta2 * m.vb[i] + (1 - beta2) * g * g;
          layer.bias[i] -= (lr * (m.mb[i] / correction1)) / (Math.sqrt(m.vb[i] / correction2) + epsilon);
        }
      }
    }
    epochsRun = epoch + 1;
    let heldOutLoss: number | undefined;
    if (heldOut && heldOut.rows > 0) {
      const logits = await mlpLogits({ activation, layers }, heldOut.data, heldOut.rows, math);
      heldOutLoss = logLoss(logits, heldOut.targets, classes);
      if (!best || heldOutLoss < best.loss - 1e-4) {
        best = { layers: cloneLayers(layers), loss: heldOutLoss, epoch: epochsRun };
        sinceBest = 0;
      } else if (++sinceBest >= options.patience) {
        options.onEpoch?.(epochsRun, options.epochs, heldOutLoss);
        break;
      }
    }
    options.onEpoch?.(epochsRun, options.epochs, heldOutLoss);
  }
  if (best) layers = best.layers;
  return { params: { activation, layers }, epochsRun, bestEpoch: best?.epoch ?? epochsRun, heldOutLoss: best?.loss };
}
