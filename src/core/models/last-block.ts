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

/** Constant tensors of a graph (initializers and Constant nodes), read as they are needed. */
class GraphConstants {
  private readonly initializers = new Map<string, ITensorProto>();

  constructor(
    graph: NonNullable<IModelProto['graph']>,
    private readonly index: GraphIndex,
  ) {
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
  }

  tensor(name: string): ITensorProto | undefined {
    const init = this.initializers.get(name);
    if (init) return init;
    const producer = this.index.producer(name);
    if (producer?.opType === 'Constant') return tensorAttribute(producer, 'value');
    return undefined;
  }

  integers(name: string): number[] | undefined {
    const t = this.tensor(name);
    return t ? readIntegerTensor(t) : undefined;
  }

  floats(name: string): Float32Array | undefined {
    const t = this.tensor(name);
    return t ? readFloatTensor(t) : undefined;
  }
}

/** The block's convolution, as read from its weights: float, or int8 dequantized. */
interface BlockConv {
  weight: Float32Array;
  bias: Float32Array;
  outputChannels: number;
  inputChannels: number;
  activation: BlockActivation;
  cutQuantization?: LastBlock['cutQuantization'];
}

/** embedding <- (flatten/reshape) <- pool: the pool's input, and whether it is channels-last. */
function poolBehind(
  embeddingTensor: string,
  index: GraphIndex,
  constants: GraphConstants,
): { pooled: string; nhwc: boolean } {
  const integers = (name: string) => constants.integers(name);
  let tensor = embeddingTensor;
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
  if (!pool) unsupported(`the embedding "${embeddingTensor}" is not the output of a global average pool`);
  const { input: pooled, nhwc } = poolInput(pool, index, integers)!;
  return { pooled, nhwc };
}

/** pool <- activation: ReLU6/clip, ReLU or swish, and the tensor it applies to (the pooled tensor when none). */
function activationBehind(
  pooled: string,
  index: GraphIndex,
  constants: GraphConstants,
): { activation: BlockActivation | undefined; convOutput: string } {
  const node = index.producer(pooled);
  if (node?.opType === 'Clip') {
    const min = node.input?.[1] ? constants.floats(node.input[1])?.[0] : floatAttribute(node, 'min');
    const max = node.input?.[2] ? constants.floats(node.input[2])?.[0] : floatAttribute(node, 'max');
    return { activation: { kind: 'clip', min: min ?? -Infinity, max: max ?? Infinity }, convOutput: node.input![0] };
  }
  if (node?.opType === 'Relu')
    return { activation: { kind: 'clip', min: 0, max: Infinity }, convOutput: node.input![0] };
  if (node?.opType === 'Mul') {
    const [a, b] = node.input ?? [];
    const sigmoidOf = (name: string) => {
      const s = index.producer(name);
      return s?.opType === 'Sigmoid' ? s.input![0] : undefined;
    };
    const x = sigmoidOf(a) === b ? b : sigmoidOf(b) === a ? a : undefined;
    if (x) return { activation: { kind: 'swish' }, convOutput: x };
  }
  return { activation: undefined, convOutput: pooled };
}

/** activation <- (transpose back from channels-last) <- a 1x1, stride 1, unpadded, ungrouped convolution. */
function convBehind(convOutput: string, nhwc: boolean, index: GraphIndex): INodeProto {
  let node = index.producer(convOutput);
  if (node?.opType === 'Transpose' && nhwc) {
    const perm = intsAttribute(node, 'perm')?.join(',');
    if (perm !== '0,2,3,1') unsupported(`the pooled tensor comes from a Transpose with perm [${perm}]`);
    nhwc = false;
    node = index.producer(node.input![0]);
  }
  if (nhwc) unsupported('the pool averages a channels-last tensor that no Transpose turns back into NCHW');
  if (!node || (node.opType !== 'Conv' && node.opType !== 'QLinearConv')) {
    unsupported(
      `the pooled activation comes from ${node ? nodeLabel(node) : 'a graph input'}, not from a 1x1 convolution`,
    );
  }
  const label = nodeLabel(node);
  const strides = intsAttribute(node, 'strides');
  const pads = intsAttribute(node, 'pads');
  const group = intAttribute(node, 'group') ?? 1;
  if (group !== 1) unsupported(`${label} is a grouped convolution (group ${group})`);
  if (strides?.some((s) => s !== 1)) unsupported(`${label} has strides [${strides}]`);
  if (pads?.some((p) => p !== 0)) unsupported(`${label} has padding [${pads}]`);
  return node;
}

function oneByOneChannels(weight: ITensorProto, label: string): [number, number] {
  const dims = tensorDims(weight);
  if (dims.length !== 4 || dims[2] !== 1 || dims[3] !== 1)
    unsupported(`${label} has weight shape [${dims}], not a 1x1 kernel`);
  return [dims[0], dims[1]];
}

function floatConv(
  conv: INodeProto,
  constants: GraphConstants,
  activation: BlockActivation | undefined,
  label: string,
): BlockConv {
  const inputs = conv.input ?? [];
  const w = constants.tensor(inputs[1]);
  const values = w ? readFloatTensor(w) : undefined;
  if (!w || !values) unsupported(`${label} has no constant float weight`);
  const [outputChannels, inputChannels] = oneByOneChannels(w, label);
  const bias = inputs[2]
    ? (constants.floats(inputs[2]) ?? unsupported(`${label} has a bias that is not a constant`))
    : new Float32Array(outputChannels);
  if (!activation) unsupported(`${label} feeds the pool without a ReLU6/clip/ReLU/swish activation`);
  return { weight: values, bias, outputChannels, inputChannels, activation };
}

/** QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B), dequantized. */
function quantizedConv(
  conv: INodeProto,
  constants: GraphConstants,
  activation: BlockActivation | undefined,
  label: string,
): BlockConv {
  const inputs = conv.input ?? [];
  const w = constants.tensor(inputs[3]);
  const q = w ? readIntegerTensor(w) : undefined;
  const wScale = constants.floats(inputs[4]);
  const wZero = inputs[5] ? constants.integers(inputs[5]) : [0];
  const xScale = constants.floats(inputs[1]);
  const yScale = constants.floats(inputs[6]);
  const yZero = inputs[7] ? constants.integers(inputs[7]) : [0];
  if (!w || !q || !wScale || !wZero || !xScale || !yScale || !yZero)
    unsupported(`${label} has quantization parameters that are not constants`);
  const [outputChannels, inputChannels] = oneByOneChannels(w, label);
  const weight = new Float32Array(outputChannels * inputChannels);
  for (let o = 0; o < outputChannels; o++) {
    const s = wScale.length === 1 ? wScale[0] : wScale[o];
    const z = wZero.length === 1 ? wZero[0] : wZero[o];
    for (let c = 0; c < inputChannels; c++) weight[o * inputChannels + c] = (q[o * inputChannels + c] - z) * s;
  }
  const b = inputs[8] ? constants.integers(inputs[8]) : undefined;
  const bias = new Float32Array(outputChannels);
  if (b)
    for (let o = 0; o < outputChannels; o++) bias[o] = b[o] * xScale[0] * (wScale.length === 1 ? wScale[0] : wScale[o]);
  const cutQuantization = { scale: inputs[1], ...(inputs[2] ? { zeroPoint: inputs[2] } : {}) };
  // The output's quantization range is the activation the int8 graph applies (ReLU6 is fused into it).
  const outputType = (inputs[7] ? constants.tensor(inputs[7])?.dataType : undefined) ?? ElementType.UINT8;
  const [qmin, qmax] = outputType === ElementType.INT8 ? [-128, 127] : [0, 255];
  const range: BlockActivation = {
    kind: 'clip',
    min: (qmin - yZero[0]) * yScale[0],
    max: (qmax - yZero[0]) * yScale[0],
  };
  const fused: BlockActivation =
    activation?.kind === 'clip'
      ? { kind: 'clip', min: Math.max(activation.min, range.min), max: Math.min(activation.max, range.max) }
      : (activation ?? range);
  return { weight, bias, outputChannels, inputChannels, activation: fused, cutQuantization };
}

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
  const constants = new GraphConstants(graph, index);

  const { pooled, nhwc } = poolBehind(embedding.tensor, index, constants);
  const { activation: found, convOutput } = activationBehind(pooled, index, constants);
  const conv = convBehind(convOutput, nhwc, index);
  const label = nodeLabel(conv);
  const { weight, bias, outputChannels, inputChannels, activation, cutQuantization } =
    conv.opType === 'Conv' ? floatConv(conv, constants, found, label) : quantizedConv(conv, constants, found, label);
  const inputs = conv.input ?? [];
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
