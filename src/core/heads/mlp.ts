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

/** One mini-batch: its rows gathered from the shuffled order, with their targets and weights. */
function gatherBatch(
  train: LabelledMatrix,
  order: Int32Array,
  start: number,
  rows: number,
  sampleWeights: ArrayLike<number> | undefined,
): { input: Float32Array; targets: Int32Array; weights: Float32Array | undefined } {
  const input = new Float32Array(rows * train.dim);
  const targets = new Int32Array(rows);
  const weights = sampleWeights ? new Float32Array(rows) : undefined;
  for (let r = 0; r < rows; r++) {
    const source = order[start + r];
    input.set(train.data.subarray(source * train.dim, (source + 1) * train.dim), r * train.dim);
    targets[r] = train.targets[source];
    if (weights) weights[r] = sampleWeights![source];
  }
  return { input, targets, weights };
}

/** The forward pass of a training step, keeping what backward needs; dropout masks drawn from `random` in order. */
async function trainingForward(
  layers: DenseLayer[],
  input: Float32Array,
  rows: number,
  options: NetworkTrainingOptions,
  random: Random,
): Promise<{
  logits: Float32Array;
  layerInputs: Float32Array[];
  preActivations: Float32Array[];
  masks: (Float32Array | undefined)[];
}> {
  const layerInputs: Float32Array[] = [];
  const preActivations: Float32Array[] = [];
  const masks: (Float32Array | undefined)[] = [];
  let activations: Float32Array = input;
  for (let l = 0; l < layers.length; l++) {
    layerInputs.push(activations);
    const z = await denseForward(layers[l], activations, rows, options.math);
    preActivations.push(z);
    if (l === layers.length - 1) {
      activations = z;
      masks.push(undefined);
      continue;
    }
    const a = activate(z, options.activation);
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
  return { logits: activations, layerInputs, preActivations, masks };
}

/** Linear warm-up over the first `warmupSteps`, then cosine decay to zero at `totalSteps`. */
function learningRateAt(step: number, warmupSteps: number, totalSteps: number, base: number): number {
  return step <= warmupSteps
    ? (base * step) / warmupSteps
    : 0.5 * base * (1 + Math.cos((Math.PI * (step - warmupSteps)) / Math.max(1, totalSteps - warmupSteps)));
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-8;

/** AdamW's moments per layer; the L2 term joins the gradient, weight decay is applied apart (decoupled). */
class AdamW {
  private readonly moments: { mw: Float32Array; vw: Float32Array; mb: Float32Array; vb: Float32Array }[];

  constructor(
    layers: DenseLayer[],
    private readonly options: Pick<NetworkTrainingOptions, 'l2' | 'weightDecay'>,
  ) {
    this.moments = layers.map((l) => ({
      mw: new Float32Array(l.weight.length),
      vw: new Float32Array(l.weight.length),
      mb: new Float32Array(l.bias.length),
      vb: new Float32Array(l.bias.length),
    }));
  }

  update(l: number, layer: DenseLayer, gradWeight: Float32Array, gradBias: Float32Array, lr: number, step: number) {
    const correction1 = 1 - BETA1 ** step;
    const correction2 = 1 - BETA2 ** step;
    const m = this.moments[l];
    const decay = lr * this.options.weightDecay;
    for (let i = 0; i < layer.weight.length; i++) {
      const g = gradWeight[i] + this.options.l2 * layer.weight[i];
      m.mw[i] = BETA1 * m.mw[i] + (1 - BETA1) * g;
      m.vw[i] = BETA2 * m.vw[i] + (1 - BETA2) * g * g;
      layer.weight[i] -=
        (lr * (m.mw[i] / correction1)) / (Math.sqrt(m.vw[i] / correction2) + EPSILON) + decay * layer.weight[i];
    }
    for (let i = 0; i < layer.bias.length; i++) {
      const g = gradBias[i];
      m.mb[i] = BETA1 * m.mb[i] + (1 - BETA1) * g;
      m.vb[i] = BETA2 * m.vb[i] + (1 - BETA2) * g * g;
      layer.bias[i] -= (lr * (m.mb[i] / correction1)) / (Math.sqrt(m.vb[i] / correction2) + EPSILON);
    }
  }
}

/** Backpropagates `delta` (the loss gradient at the logits) from the last layer down, updating each as it goes. */
async function backwardAndUpdate(
  layers: DenseLayer[],
  forward: Awaited<ReturnType<typeof trainingForward>>,
  delta: Float32Array,
  rows: number,
  update: (l: number, layer: DenseLayer, gradWeight: Float32Array, gradBias: Float32Array) => void,
  options: NetworkTrainingOptions,
): Promise<void> {
  const { math, activation } = options;
  for (let l = layers.length - 1; l >= 0; l--) {
    const layer = layers[l];
    const gradWeight = await math.gemm(delta, forward.layerInputs[l], layer.outputs, rows, layer.inputs, true, false);
    const gradBias = new Float32Array(layer.outputs);
    for (let r = 0; r < rows; r++) for (let c = 0; c < layer.outputs; c++) gradBias[c] += delta[r * layer.outputs + c];
    if (l > 0) {
      const below = await math.gemm(delta, layer.weight, rows, layer.outputs, layer.inputs, false, false);
      const mask = forward.masks[l - 1];
      if (mask) for (let i = 0; i < below.length; i++) below[i] *= mask[i];
      activationBackward(below, forward.preActivations[l - 1], activation);
      delta = below;
    }
    update(l, layer, gradWeight, gradBias);
  }
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
  const optimizer = new AdamW(layers, options);
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
      const { input, targets, weights } = gatherBatch(train, order, start, rows, options.sampleWeights);
      const forward = await trainingForward(layers, input, rows, options, random);
      const delta = new Float32Array(rows * classes);
      crossEntropyWithGradient(forward.logits, targets, weights, rows, classes, delta, options.labelSmoothing);
      step++;
      const lr = learningRateAt(step, warmupSteps, totalSteps, options.learningRate);
      await backwardAndUpdate(
        layers,
        forward,
        delta,
        rows,
        (l, layer, gradWeight, gradBias) => optimizer.update(l, layer, gradWeight, gradBias, lr, step),
        options,
      );
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
