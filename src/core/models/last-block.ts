/**
 * The last block of a backbone, for fine-tuning on the device: the 1x1 convolution (plus its activation) that feeds
 * the global average pool whose output is the embedding. MobileNetV2 (float or int8 QOperator: the final
 * 320 -> 1280 conv + ReLU6) and EfficientNet-B0 (head conv 320 -> 1280 with its batch norm folded in, + swish) have
 * this shape. Int8 weights are dequantized to float. Anything else is refused with the reason, so the caller can
 * train a frozen head instead.
 *
 * Runtime-neutral: reads the decoded model, never modifies it. Graph building lives in models/last-block-graph.ts.
 */
import { EdgetlError } from '../util/errors.js';
import { findEmbedding } from './embedding.js';
import { GraphIndex, nodeLabel } from './graph.js';
import {
  ElementType,
  floatAttribute,
  intAttribute,
  intsAttribute,
  readFloatTensor,
  readIntegerTensor,
  tensorAttribute,
  tensorDims,
  type IModelProto,
  type INodeProto,
  type ITensorProto,
} from './onnx-model.js';
import { inferShapes, type ShapeInferenceResult } from './shapes.js';

/** The nonlinearity after the block's convolution. */
export type BlockActivation = { kind: 'clip'; min: number; max: number } | { kind: 'swish' };

export interface LastBlock {
  /** Input tensor of the block's convolution in the source graph (NCHW): where the backbone is cut. */
  cutTensor: string;
  /** The cut tensor is int8/uint8: DequantizeLinear with these tensors gives its float value. */
  cutQuantization?: { scale: string; zeroPoint?: string };
  inputChannels: number;
  outputChannels: number;
  activation: BlockActivation;
  /** Pretrained float weights [outputChannels, inputChannels] (dequantized for int8 graphs). */
  weight: Float32Array;
  bias: Float32Array;
  /** What was found, for reports: e.g. `QLinearConv "x" 320->1280 (1x1, int8 dequantized) + clip [0, 6]`. */
  description: string;
}

function unsupported(reason: string): never {
  throw new EdgetlError('last-block-unsupported', `the last block is not supported for fine-tuning: ${reason}`);
}

/** Pooling ops whose output is the per-channel spatial mean of an NCHW (or NHWC, via axes) input. */
function poolInput(
  node: INodeProto,
  index: GraphIndex,
  constant: (name: string) => number[] | undefined,
): { input: string; nhwc: boolean } | undefined {
  const op = node.opType;
  if (op === 'GlobalAveragePool') return { input: node.input![0], nhwc: false };
  if (op === 'QLinearGlobalAveragePool' && node.domain === 'com.microsoft') {
    return { input: node.input![0], nhwc: (intAttribute(node, 'channels_last') ?? 0) === 1 };
  }
  if (op === 'ReduceMean') {
    const axes = intsAttribute(node, 'axes') ?? (node.input?.[1] ? constant(node.input[1]) : undefined);
    const sorted = axes ? [...axes].sort().join(',') : '';
    if (sorted === '2,3' || sorted === '-2,-1') return { input: node.input![0], nhwc: false };
    if (sorted === '1,2' || sorted === '-3,-2') return { input: node.input![0], nhwc: true };
  }
  void index;
  return undefined;
}

const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity']);

/**
 * Find the last block of `model`. Throws `last-block-unsupported` (naming what was found instead) when the graph
 * does not end in [1x1 conv -> ReLU6/clip/ReLU/swish -> global average pool -> classifier].
 */
export function findLastBlock(
  model: IModelProto,
  options: { shapes?: ShapeInferenceResult; embeddingTensor?: string } = {},
): LastBlock {
  const graph = model.graph;
  if (!graph) throw new EdgetlError('onnx-parse', 'model has no graph');
  const shapes = options.shapes ?? inferShapes(model);
  const embedding = findEmbedding(model, { shapes, embeddingTensor: options.embeddingTensor });
  const index = new GraphIndex(graph);
  const initializers = new Map<string, ITensorProto>();
  for (const t of graph.initializer ?? []) if (t.name) initializers.set(t.name, t);
  const constantTensor = (name: string): ITensorProto | undefined => {
    const init = initializers.get(name);
    if (init) return init;
    const producer = index.producer(name);
    if (producer?.opType === 'Constant') return tensorAttribute(producer, 'value');
    return undefined;
  };
  const integers = (name: string) => {
    const t = constantTensor(name);
    return t ? readIntegerTensor(t) : undefined;
  };
  const floats = (name: string) => {
    const t = constantTensor(name);
    return t ? readFloatTensor(t) : undefined;
  };

  // embedding <- (flatten/reshape) <- pool
  let tensor = embedding.tensor;
  let pool: INodeProto | undefined;
  for (let depth = 0; depth < 6; depth++) {
    const node = index.producer(tensor);
    if (!node) break;
    if (poolInput(node, index, integers)) {
      pool = node;
      break;
    }
    if (!PASS_THROUGH.has(node.opType ?? '') && node.opType !== 'DequantizeLinear') break;
    tensor = node.input![0];
  }
  if (!pool) unsupported(`the embedding "${embedding.tensor}" is not the output of a global average pool`);
  let { input: pooled, nhwc } = poolInput(pool, index, integers)!;

  // pool <- activation <- (transpose) <- conv
  let activation: BlockActivation | undefined;
  let convOutput = pooled;
  const producerOf = (name: string) => index.producer(name);
  let node = producerOf(pooled);
  if (node?.opType === 'Clip') {
    const min = node.input?.[1] ? floats(node.input[1])?.[0] : floatAttribute(node, 'min');
    const max = node.input?.[2] ? floats(node.input[2])?.[0] : floatAttribute(node, 'max');
    activation = { kind: 'clip', min: min ?? -Infinity, max: max ?? Infinity };
    convOutput = node.input![0];
  } else if (node?.opType === 'Relu') {
    activation = { kind: 'clip', min: 0, max: Infinity };
    convOutput = node.input![0];
  } else if (node?.opType === 'Mul') {
    const [a, b] = node.input ?? [];
    const sigmoidOf = (name: string) => {
      const s = producerOf(name);
      return s?.opType === 'Sigmoid' ? s.input![0] : undefined;
    };
    const x = sigmoidOf(a) === b ? b : sigmoidOf(b) === a ? a : undefined;
    if (x) {
      activation = { kind: 'swish' };
      convOutput = x;
    }
  }
  node = producerOf(convOutput);
  if (node?.opType === 'Transpose' && nhwc) {
    const perm = intsAttribute(node, 'perm')?.join(',');
    if (perm !== '0,2,3,1') unsupported(`the pooled tensor comes from a Transpose with perm [${perm}]`);
    nhwc = false;
    node = producerOf(node.input![0]);
  }
  if (nhwc) unsupported('the pool averages a channels-last tensor that no Transpose turns back into NCHW');
  if (!node || (node.opType !== 'Conv' && node.opType !== 'QLinearConv')) {
    unsupported(
      `the pooled activation comes from ${node ? nodeLabel(node) : 'a graph input'}, not from a 1x1 convolution`,
    );
  }
  const conv = node;
  const label = nodeLabel(conv);
  const _kernel = intsAttribute(conv, 'kernel_shape');
  const strides = intsAttribute(conv, 'strides');
  const pads = intsAttribute(conv, 'pads');
  const group = intAttribute(conv, 'group') ?? 1;
  if (group !== 1) unsupported(`${label} is a grouped convolution (group ${group})`);
  if (strides?.some((s) => s !== 1)) unsupported(`${label} has strides [${strides}]`);
  if (pads?.some((p) => p !== 0)) unsupported(`${label} has padding [${pads}]`);

  let weight: Float32Array;
  let bias: Float32Array;
  let outputChannels: number;
  let inputChannels: number;
  let cutQuantization: LastBlock['cutQuantization'];
  const inputs = conv.input ?? [];
  if (conv.opType === 'Conv') {
    const w = constantTensor(inputs[1]);
    const values = w ? readFloatTensor(w) : undefined;
    if (!w || !values) unsupported(`${label} has no constant float weight`);
    const dims = tensorDims(w);
    if (dims.length !== 4 || dims[2] !== 1 || dims[3] !== 1)
      unsupported(`${label} has weight shape [${dims}], not a 1x1 kernel`);
    [outputChannels, inputChannels] = dims;
    weight = values;
    bias = inputs[2]
      ? (floats(inputs[2]) ?? unsupported(`${label} has a bias that is not a constant`))
      : new Float32Array(outputChannels);
    if (!activation) unsupported(`${label} feeds the pool without a ReLU6/clip/ReLU/swish activation`);
  } else {
    // QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B)
    const w = constantTensor(inputs[3]);
    const q = w ? readIntegerTensor(w) : undefined;
    const wScale = floats(inputs[4]);
    const wZero = inputs[5] ? integers(inputs[5]) : [0];
    const xScale = floats(inputs[1]);
    const yScale = floats(inputs[6]);
    const yZero = inputs[7] ? integers(inputs[7]) : [0];
    if (!w || !q || !wScale || !wZero || !xScale || !yScale || !yZero)
      unsupported(`${label} has quantization parameters that are not constants`);
    const dims = tensorDims(w);
    if (dims.length !== 4 || dims[2] !== 1 || dims[3] !== 1)
      unsupported(`${label} has weight shape [${dims}], not a 1x1 kernel`);
    [outputChannels, inputChannels] = dims;
    weight = new Float32Array(outputChannels * inputChannels);
    for (let o = 0; o < outputChannels; o++) {
      const s = wScale.length === 1 ? wScale[0] : wScale[o];
      const z = wZero.length === 1 ? wZero[0] : wZero[o];
      for (let c = 0; c < inputChannels; c++) weight[o * inputChannels + c] = (q[o * inputChannels + c] - z) * s;
    }
    const b = inputs[8] ? integers(inputs[8]) : undefined;
    bias = new Float32Array(outputChannels);
    if (b)
      for (let o = 0; o < outputChannels; o++)
        bias[o] = b[o] * xScale[0] * (wScale.length === 1 ? wScale[0] : wScale[o]);
    cutQuantization = { scale: inputs[1], ...(inputs[2] ? { zeroPoint: inputs[2] } : {}) };
    // The output's quantization range is the activation the int8 graph applies (ReLU6 is fused into it).
    const outputType = (inputs[7] ? constantTensor(inputs[7])?.dataType : undefined) ?? ElementType.UINT8;
    const [qmin, qmax] = outputType === ElementType.INT8 ? [-128, 127] : [0, 255];
    const range: BlockActivation = {
      kind: 'clip',
      min: (qmin - yZero[0]) * yScale[0],
      max: (qmax - yZero[0]) * yScale[0],
    };
    if (activation?.kind === 'clip')
      activation = { kind: 'clip', min: Math.max(activation.min, range.min), max: Math.min(activation.max, range.max) };
    else activation ??= range;
  }
  const info = shapes.tensors.get(inputs[0]);
  if (info?.dims && info.dims.length === 4 && typeof info.dims[1] === 'number' && info.dims[1] !== inputChannels) {
    unsupported(`${label} reads ${info.dims[1]} channels but its weight has ${inputChannels}`);
  }
  if (bias.length !== outputChannels)
    unsupported(`${label} has ${bias.length} bias values for ${outputChannels} output channels`);
  if (outputChannels !== embedding.dim)
    unsupported(`${label} has ${outputChannels} output channels but the embedding has ${embedding.dim} values`);
  const act = activation.kind === 'swish' ? 'swish' : `clip [${activation.min}, ${activation.max}]`;
  return {
    cutTensor: inputs[0],
    ...(cutQuantization ? { cutQuantization } : {}),
    inputChannels,
    outputChannels,
    activation,
    weight,
    bias,
    description: `${label} ${inputChannels}->${outputChannels} (1x1${conv.opType === 'QLinearConv' ? ', int8 dequantized' : ''}) + ${act} -> mean pool`,
  };
}
