import {
  ElementType,
  attribute,
  intAttribute,
  intsAttribute,
  opsetVersion,
  readFloatTensor,
  readIntegerTensor,
  stringAttribute,
  tensorAttribute,
  tensorDims,
  toNumber,
  type IGraphProto,
  type IModelProto,
  type INodeProto,
  type ITensorProto,
  type IValueInfoProto,
} from './onnx-model.js';
import { EdgetlError, describeError } from '../util/errors.js';

/**
 * Static shape and type inference over an ONNX graph, enough for the vision backbones edgetl meets: MACs need the
 * output shape of every Conv/Gemm/MatMul, embedding discovery needs the shape of the pooled features.
 *
 * A dimension is a number or a symbol (string): `batch`, `N`, or a product such as `batch*7`. Small integer tensors
 * (shape computations: Shape -> Gather -> Unsqueeze -> Concat -> Reshape) are evaluated, symbols included, so that
 * a dynamic-batch Reshape still resolves to [batch, 1280].
 */
export type Dim = number | string;

export interface TensorInfo {
  /** ONNX TensorProto.DataType; 0 when unknown. */
  elementType: number;
  /** Undefined when the rank is unknown. */
  dims?: Dim[];
}

export interface ShapeInferenceResult {
  tensors: Map<string, TensorInfo>;
  /** Values of small integer tensors (shape arithmetic), symbols allowed. */
  values: Map<string, Dim[]>;
  /**
   * Op types (domain:op) the inference has no rule for: their outputs are unknown (dims undefined) unless the graph
   * declares them in value_info.
   */
  unsupportedOps: Set<string>;
}

export interface ShapeInferenceOptions {
  /** Replace the declared dims of graph inputs (e.g. batch 1 for per-image MACs). */
  inputDims?: Record<string, Dim[]>;
}

const SMALL_VALUE_LIMIT = 64;

// ---------------------------------------------------------------- symbolic products

interface Monomial {
  coefficient: number;
  symbols: string[];
}

function monomialOf(dim: Dim): Monomial {
  if (typeof dim === 'number') return { coefficient: dim, symbols: [] };
  const symbols: string[] = [];
  let coefficient = 1;
  for (const factor of dim.split('*')) {
    if (/^\d+$/.test(factor)) coefficient *= Number(factor);
    else symbols.push(factor);
  }
  return { coefficient, symbols };
}

function dimOf(m: Monomial): Dim {
  if (m.symbols.length === 0) return m.coefficient;
  const symbols = [...m.symbols].sort();
  return m.coefficient === 1 ? symbols.join('*') : `${m.coefficient}*${symbols.join('*')}`;
}

export function multiplyDims(dims: readonly Dim[]): Dim {
  const result: Monomial = { coefficient: 1, symbols: [] };
  for (const d of dims) {
    const m = monomialOf(d);
    result.coefficient *= m.coefficient;
    result.symbols.push(...m.symbols);
  }
  return dimOf(result);
}

/** a / b when it divides exactly (symbols cancel); undefined otherwise. */
function divideDims(a: Dim, b: Dim): Dim | undefined {
  const ma = monomialOf(a);
  const mb = monomialOf(b);
  if (mb.coefficient === 0 || ma.coefficient % mb.coefficient !== 0) return undefined;
  const symbols = [...ma.symbols];
  for (const s of mb.symbols) {
    const index = symbols.indexOf(s);
    if (index < 0) return undefined;
    symbols.splice(index, 1);
  }
  return dimOf({ coefficient: ma.coefficient / mb.coefficient, symbols });
}

function addDims(a: Dim, b: Dim): Dim | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  return undefined;
}

/**
 * Number of elements when all dims are numbers, or symbols (alone or in products such as `batch*7`) that `ones`
 * binds to 1 (e.g. the batch, for a per-image count).
 */
export function staticSize(dims: readonly Dim[] | undefined, ones?: ReadonlySet<string>): number | undefined {
  if (!dims) return undefined;
  let n = 1;
  for (const d of dims) {
    if (typeof d === 'number') {
      n *= d;
      continue;
    }
    const m = monomialOf(d);
    if (!ones || !m.symbols.every((symbol) => ones.has(symbol))) return undefined;
    n *= m.coefficient;
  }
  return n;
}

// ---------------------------------------------------------------- unknown dims

const UNKNOWN_PREFIX = 'unk__';

/** Whether a dim is a symbol the inference made up for something it cannot know (never equal to another). */
export function isUnknownDim(dim: Dim): boolean {
  return typeof dim === 'string' && dim.startsWith(UNKNOWN_PREFIX);
}

/** Fresh symbols for unknown dims, numbered per inference (no state shared between inferences). */
export class UnknownDims {
  private count = 0;

  next(hint?: string): string {
    this.count++;
    return hint === undefined ? `${UNKNOWN_PREFIX}${this.count}` : `${UNKNOWN_PREFIX}${hint}_${this.count}`;
  }
}

// ---------------------------------------------------------------- declared shapes

/** Declared type of a value_info; unnamed unknown dims get a fresh symbol so they never match each other. */
export function declaredTensorInfo(info: IValueInfoProto, unknown = new UnknownDims()): TensorInfo | undefined {
  const tensorType = info.type?.tensorType;
  if (!tensorType) return undefined;
  const elementType = tensorType.elemType ?? 0;
  const shape = tensorType.shape;
  if (!shape) return { elementType };
  const dims = (shape.dim ?? []).map((d): Dim => {
    if (d.dimParam) return d.dimParam;
    if (d.dimValue !== null && d.dimValue !== undefined && Object.hasOwn(d, 'dimValue')) {
      return toNumber(d.dimValue);
    }
    return unknown.next(info.name ?? '');
  });
  return { elementType, dims };
}

// ---------------------------------------------------------------- the inference state

/** What is known so far about the graph's tensors; the rules read it and write their outputs into it. */
class Inference {
  readonly tensors = new Map<string, TensorInfo>();
  readonly values = new Map<string, Dim[]>();
  readonly unsupportedOps = new Set<string>();
  /** Small float constants (Resize scales). */
  readonly floatValues = new Map<string, number[]>();
  readonly unknown = new UnknownDims();
  readonly opset: number;

  constructor(model: IModelProto) {
    this.opset = opsetVersion(model, '');
  }

  info(name: string | undefined | null): TensorInfo | undefined {
    return name ? this.tensors.get(name) : undefined;
  }

  dims(name: string | undefined | null): Dim[] | undefined {
    return this.info(name)?.dims;
  }

  value(name: string | undefined | null): Dim[] | undefined {
    return name ? this.values.get(name) : undefined;
  }

  /** A value made only of numbers (for axes, pads, perms...). */
  numericValue(name: string | undefined | null): number[] | undefined {
    const v = this.value(name);
    if (!v || v.some((d) => typeof d !== 'number')) return undefined;
    return v as number[];
  }

  set(name: string | undefined | null, info: TensorInfo, value?: Dim[]): void {
    if (!name) return;
    this.tensors.set(name, info);
    if (value && value.length <= SMALL_VALUE_LIMIT) this.values.set(name, value);
  }

  addConstant(name: string, tensor: ITensorProto): void {
    const dims = tensorDims(tensor);
    const elementType = tensor.dataType ?? 0;
    let value: Dim[] | undefined;
    const size = dims.reduce((a, b) => a * b, 1);
    if (size <= SMALL_VALUE_LIMIT) {
      if (elementType === ElementType.FLOAT || elementType === ElementType.DOUBLE) {
        const floats = readFloatTensor(tensor);
        if (floats) this.floatValues.set(name, [...floats]);
      } else {
        value = readIntegerTensor(tensor);
      }
    }
    this.set(name, { elementType, dims }, value);
  }
}

// ---------------------------------------------------------------- the rules

/** One node as a rule sees it. */
interface NodeView {
  readonly node: INodeProto;
  readonly opType: string;
  readonly inputs: string[];
  readonly outputs: string[];
  /** The first input, which most ops take their element type (and often their shape) from. */
  readonly first: TensorInfo | undefined;
  readonly firstType: number;
}

/**
 * A per-op shape rule: writes what it can infer about the node's outputs (dims left undefined where it cannot).
 * 'unsupported' says this variant of the op has no rule (e.g. a Constant holding strings); the node is reported.
 */
type ShapeRule = (n: NodeView, g: Inference) => void | 'unsupported';

/** The same rule under several op names. */
function rule(opTypes: readonly string[], shapeRule: ShapeRule): Record<string, ShapeRule> {
  return Object.fromEntries(opTypes.map((op) => [op, shapeRule]));
}

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Output 0 has the first input's shape, with the given element type. */
function sameShape(elementType?: (n: NodeView, g: Inference) => number): ShapeRule {
  return (n, g) => {
    g.set(n.outputs[0], {
      elementType: elementType ? elementType(n, g) : n.firstType,
      dims: n.first?.dims ? [...n.first.dims] : undefined,
    });
  };
}

const UNARY_OPS = [
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Elu',
  'Selu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Softmax',
  'LogSoftmax',
  'Hardmax',
  'Softplus',
  'Softsign',
  'Exp',
  'Log',
  'Sqrt',
  'Neg',
  'Abs',
  'Erf',
  'Reciprocal',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Clip',
  'Mish',
  'Gelu',
  'ThresholdedRelu',
  'Celu',
  'LRN',
  'InstanceNormalization',
  'LayerNormalization',
  'MeanVarianceNormalization',
  'BatchNormalization',
  'Sin',
  'Cos',
  'Shrink',
];
const COMPARISON_OPS = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'];
const ARITHMETIC_OPS = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Sum', 'Max', 'Min', 'Mean', 'BitShift'];
const REDUCE_OPS = [
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
  'ArgMax',
  'ArgMin',
];

/** Broadcasting binary ops; small integer values (shape arithmetic) are evaluated. */
const elementwise: ShapeRule = (n, g) => {
  const dims = broadcast(n.inputs.map((i) => g.dims(i)));
  const elementType = COMPARISON_OPS.includes(n.opType) ? ElementType.BOOL : n.firstType;
  g.set(n.outputs[0], { elementType, dims }, elementwiseValue(n.opType, n.inputs, g));
};

const passValue: ShapeRule = (n, g) => {
  g.set(n.outputs[0], { elementType: n.firstType, dims: n.first?.dims }, g.value(n.inputs[0]));
};

const conv: ShapeRule = (n, g) => {
  const quantized = n.opType === 'QLinearConv';
  const dims = convOutput(n.node, g.dims(n.inputs[0]), g.dims(quantized ? n.inputs[3] : n.inputs[1]), g.unknown);
  const elementType =
    n.opType === 'ConvInteger'
      ? ElementType.INT32
      : quantized
        ? g.info(n.inputs[7])?.elementType || n.firstType
        : n.firstType;
  g.set(n.outputs[0], { elementType, dims });
};

const pool: ShapeRule = (n, g) => {
  const dims = poolOutput(n.node, g.dims(n.inputs[0]), g.unknown);
  g.set(n.outputs[0], { elementType: n.firstType, dims });
  if (n.outputs[1]) g.set(n.outputs[1], { elementType: ElementType.INT64, dims });
};

const globalPool: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  g.set(n.outputs[0], { elementType: n.firstType, dims: d ? [d[0], d[1], ...d.slice(2).map(() => 1)] : undefined });
};

function gemmOutput(node: INodeProto, a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  const transA = intAttribute(node, 'transA') ?? 0;
  const transB = intAttribute(node, 'transB') ?? 0;
  return a && b && a.length === 2 && b.length === 2 ? [transA ? a[1] : a[0], transB ? b[0] : b[1]] : undefined;
}

const matmul: ShapeRule = (n, g) => {
  const quantized = n.opType === 'QLinearMatMul';
  const dims = matmulOutput(g.dims(n.inputs[0]), g.dims(quantized ? n.inputs[3] : n.inputs[1]));
  const elementType =
    n.opType === 'MatMulInteger'
      ? ElementType.INT32
      : quantized
        ? g.info(n.inputs[7])?.elementType || n.firstType
        : n.firstType;
  g.set(n.outputs[0], { elementType, dims });
};

/** Concatenated dims along `axis`; undefined when a rank is unknown. */
function concatDims(
  node: INodeProto,
  all: (Dim[] | undefined)[],
  unknownTotal: (known: Dim[][], axis: number) => Dim,
): Dim[] | undefined {
  const known = all.filter((d): d is Dim[] => d !== undefined);
  if (known.length !== all.length || known.length === 0) return undefined;
  const axis = normalizeAxis(intAttribute(node, 'axis') ?? 0, known[0].length);
  const dims = [...known[0]];
  let total: Dim | undefined = 0;
  for (const d of known) total = total === undefined ? undefined : addDims(total, d[axis]);
  dims[axis] = total ?? unknownTotal(known, axis);
  return dims;
}

const concat: ShapeRule = (n, g) => {
  const dims = concatDims(
    n.node,
    n.inputs.map((i) => g.dims(i)),
    (known, axis) => `concat(${known.map((d) => d[axis]).join('+')})`,
  );
  const values = n.inputs.map((i) => g.value(i));
  const value = values.every((v) => v !== undefined) ? values.flatMap((v) => v as Dim[]) : undefined;
  g.set(n.outputs[0], { elementType: n.firstType, dims }, value);
};

/** Squeeze/Unsqueeze axes: an input from opset 13, an attribute before. */
function squeezeAxes(n: NodeView, g: Inference): number[] | undefined {
  return g.opset >= 13 && n.inputs[1] ? g.numericValue(n.inputs[1]) : intsAttribute(n.node, 'axes');
}

const squeeze: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const axes = squeezeAxes(n, g);
  let dims: Dim[] | undefined;
  if (d) {
    if (axes) {
      const normalized = axes.map((a) => normalizeAxis(a, d.length));
      dims = d.filter((_, i) => !normalized.includes(i));
    } else if ((g.opset < 13 || !n.inputs[1]) && d.every((x) => typeof x === 'number')) {
      dims = d.filter((x) => x !== 1);
    }
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims }, g.value(n.inputs[0]));
};

const unsqueeze: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const axes = squeezeAxes(n, g);
  let dims: Dim[] | undefined;
  if (d && axes) {
    const rank = d.length + axes.length;
    const normalized = axes.map((a) => normalizeAxis(a, rank));
    dims = [];
    let source = 0;
    for (let i = 0; i < rank; i++) dims.push(normalized.includes(i) ? 1 : d[source++]);
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims }, g.value(n.inputs[0]));
};

/** Reduce axes: an input for ReduceSum from opset 13 and every reduction from 18, an attribute before. */
function reduceAxes(n: NodeView, g: Inference): number[] | undefined {
  if (n.opType === 'ArgMax' || n.opType === 'ArgMin') return [intAttribute(n.node, 'axis') ?? 0];
  const axesFromInput = (n.opType === 'ReduceSum' && g.opset >= 13) || g.opset >= 18;
  if (axesFromInput) return n.inputs[1] ? g.numericValue(n.inputs[1]) : [];
  return intsAttribute(n.node, 'axes') ?? [];
}

const reduce: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  let axes = reduceAxes(n, g);
  const keepDims = (intAttribute(n.node, 'keepdims') ?? 1) === 1;
  let dims: Dim[] | undefined;
  if (d && axes) {
    if (axes.length === 0) axes = (intAttribute(n.node, 'noop_with_empty_axes') ?? 0) === 1 ? [] : d.map((_, i) => i);
    const normalized = axes.map((a) => normalizeAxis(a, d.length));
    dims = keepDims ? d.map((x, i) => (normalized.includes(i) ? 1 : x)) : d.filter((_, i) => !normalized.includes(i));
  }
  const elementType = n.opType === 'ArgMax' || n.opType === 'ArgMin' ? ElementType.INT64 : n.firstType;
  g.set(n.outputs[0], { elementType, dims });
};

const shape: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  let value: Dim[] | undefined;
  if (d) {
    const rank = d.length;
    const clamp = (x: number) => Math.min(Math.max(normalizeAxis(x, rank), 0), rank);
    const start = clamp(intAttribute(n.node, 'start') ?? 0);
    const endAttr = attribute(n.node, 'end');
    const end = endAttr ? clamp(toNumber(endAttr.i)) : rank;
    value = d.slice(start, end);
  }
  g.set(n.outputs[0], { elementType: ElementType.INT64, dims: value ? [value.length] : [g.unknown.next()] }, value);
};

const constant: ShapeRule = (n, g) => {
  const out = n.outputs[0];
  const t = tensorAttribute(n.node, 'value');
  if (t) return g.addConstant(out, t);
  const ints = intsAttribute(n.node, 'value_ints');
  if (ints) return g.set(out, { elementType: ElementType.INT64, dims: [ints.length] }, ints);
  const int = attribute(n.node, 'value_int');
  if (int) return g.set(out, { elementType: ElementType.INT64, dims: [] }, [toNumber(int.i)]);
  if (attribute(n.node, 'value_float')) return g.set(out, { elementType: ElementType.FLOAT, dims: [] });
  const floats = attribute(n.node, 'value_floats');
  if (floats) return g.set(out, { elementType: ElementType.FLOAT, dims: [floats.floats?.length ?? 0] });
  return 'unsupported'; // strings, sparse tensors
};

const pad: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const pads = g.opset >= 11 ? g.numericValue(n.inputs[1]) : intsAttribute(n.node, 'pads');
  let dims: Dim[] | undefined;
  if (d && pads && pads.length === d.length * 2) {
    dims = d.map((x, i) => {
      const added = pads[i] + pads[i + d.length];
      if (typeof x === 'number') return x + added;
      return added === 0 ? x : g.unknown.next();
    });
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims });
};

const resize: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  let dims: Dim[] | undefined;
  const isResize = n.opType === 'Resize';
  const sizes = isResize && n.inputs[3] ? g.value(n.inputs[3]) : undefined;
  const scalesName = isResize && g.opset >= 11 ? n.inputs[2] : n.inputs[1];
  const scales = attribute(n.node, 'scales')?.floats ?? g.floatValues.get(scalesName ?? '');
  if (sizes && sizes.length > 0) dims = [...sizes];
  else if (d && scales && scales.length === d.length) {
    dims = d.map((x, i) =>
      typeof x === 'number' ? Math.floor(x * scales[i]) : scales[i] === 1 ? x : g.unknown.next(),
    );
  } else if (d) dims = d.map(() => g.unknown.next());
  g.set(n.outputs[0], { elementType: n.firstType, dims });
};

const topK: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const k = g.numericValue(n.inputs[1]);
  let dims: Dim[] | undefined;
  if (d) {
    dims = [...d];
    dims[normalizeAxis(intAttribute(n.node, 'axis') ?? -1, d.length)] = k ? k[0] : g.unknown.next();
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims });
  g.set(n.outputs[1], { elementType: ElementType.INT64, dims });
};

const depthSpace: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const b = intAttribute(n.node, 'blocksize') ?? 1;
  const divide = (x: Dim, by: number) => divideDims(x, by) ?? g.unknown.next();
  let dims: Dim[] | undefined;
  if (d && d.length === 4) {
    dims =
      n.opType === 'DepthToSpace'
        ? [d[0], divide(d[1], b * b), multiplyDims([d[2], b]), multiplyDims([d[3], b])]
        : [d[0], multiplyDims([d[1], b * b]), divide(d[2], b), divide(d[3], b)];
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims });
};

const split: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  let sizes: Dim[] | undefined =
    g.opset >= 13 && n.inputs[1] ? g.numericValue(n.inputs[1]) : intsAttribute(n.node, 'split');
  const axis = d ? normalizeAxis(intAttribute(n.node, 'axis') ?? 0, d.length) : 0;
  if (d && !sizes) {
    const total = d[axis];
    const parts = n.outputs.length;
    if (typeof total === 'number') {
      const chunk = Math.ceil(total / parts);
      sizes = n.outputs.map((_, i) => Math.max(0, Math.min(chunk, total - chunk * i)));
    } else {
      const each = divideDims(total, parts);
      sizes = n.outputs.map(() => each ?? g.unknown.next());
    }
  }
  n.outputs.forEach((output, i) => {
    let dims: Dim[] | undefined;
    if (d && sizes) {
      dims = [...d];
      dims[axis] = sizes[i];
    }
    g.set(output, { elementType: n.firstType, dims });
  });
};

const gather: ShapeRule = (n, g) => {
  const data = n.first;
  const indices = g.dims(n.inputs[1]);
  let axis = intAttribute(n.node, 'axis') ?? 0;
  let dims: Dim[] | undefined;
  if (data?.dims && indices) {
    axis = normalizeAxis(axis, data.dims.length);
    dims = [...data.dims.slice(0, axis), ...indices, ...data.dims.slice(axis + 1)];
  }
  let value: Dim[] | undefined;
  const dataValue = g.value(n.inputs[0]);
  const indexValue = g.numericValue(n.inputs[1]);
  if (dataValue && indexValue && axis === 0) {
    value = indexValue.map((i) => dataValue[i < 0 ? i + dataValue.length : i]);
    if (value.some((v) => v === undefined)) value = undefined;
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims }, value);
};

const slice: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const fromInputs = g.opset >= 10;
  const starts = fromInputs ? g.numericValue(n.inputs[1]) : intsAttribute(n.node, 'starts');
  const ends = fromInputs ? g.numericValue(n.inputs[2]) : intsAttribute(n.node, 'ends');
  const axes = fromInputs ? (n.inputs[3] ? g.numericValue(n.inputs[3]) : undefined) : intsAttribute(n.node, 'axes');
  const steps = fromInputs && n.inputs[4] ? g.numericValue(n.inputs[4]) : undefined;
  let dims: Dim[] | undefined;
  let value: Dim[] | undefined;
  if (d && starts && ends) {
    const out = [...d];
    const dataValue = g.value(n.inputs[0]);
    (axes ?? starts.map((_, i) => i)).forEach((axisRaw, i) => {
      const axis = normalizeAxis(axisRaw, d.length);
      const step = steps?.[i] ?? 1;
      const size = d[axis];
      if (typeof size !== 'number') {
        // Slicing a symbolic dim: only the full range keeps it.
        if (!(starts[i] === 0 && ends[i] >= 2 ** 31 - 1 && step === 1)) out[axis] = g.unknown.next();
        return;
      }
      const { start, count } = sliceRange(starts[i], ends[i], step, size);
      out[axis] = count;
      if (dataValue && d.length === 1) {
        value = [];
        for (let k = 0; k < count; k++) value.push(dataValue[start + k * step]);
      }
    });
    dims = out;
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims }, value);
};

/** ONNX Slice's clamping of one axis: the first index and how many elements the slice takes. */
function sliceRange(startRaw: number, endRaw: number, step: number, size: number): { start: number; count: number } {
  const clamp = (x: number, low: number, high: number) => Math.min(Math.max(x, low), high);
  let start = startRaw < 0 ? startRaw + size : startRaw;
  let end = endRaw < 0 ? endRaw + size : endRaw;
  if (step > 0) {
    start = clamp(start, 0, size);
    end = clamp(end, 0, size);
  } else {
    start = clamp(start, 0, size - 1);
    end = clamp(end, -1, size - 1);
  }
  return { start, count: Math.max(0, Math.ceil((end - start) / step)) };
}

const ONNX_RULES: Record<string, ShapeRule> = {
  ...rule(UNARY_OPS, sameShape()),
  Dropout: (n, g) => {
    if (n.outputs[1]) g.set(n.outputs[1], { elementType: ElementType.BOOL, dims: n.first?.dims });
    return sameShape()(n, g);
  },
  Identity: passValue,
  Not: sameShape(() => ElementType.BOOL),
  Cast: (n, g) => {
    g.set(n.outputs[0], { elementType: intAttribute(n.node, 'to') ?? 0, dims: n.first?.dims }, g.value(n.inputs[0]));
  },
  ...rule([...ARITHMETIC_OPS, ...COMPARISON_OPS], elementwise),
  Where: (n, g) => {
    g.set(n.outputs[0], {
      elementType: g.info(n.inputs[1])?.elementType ?? 0,
      dims: broadcast(n.inputs.map((i) => g.dims(i))),
    });
  },
  ...rule(['Conv', 'ConvInteger', 'QLinearConv'], conv),
  ConvTranspose: (n, g) => {
    g.set(n.outputs[0], {
      elementType: n.firstType,
      dims: convTransposeOutput(n.node, g.dims(n.inputs[0]), g.dims(n.inputs[1]), g.unknown),
    });
  },
  ...rule(['MaxPool', 'AveragePool', 'LpPool'], pool),
  ...rule(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool'], globalPool),
  Gemm: (n, g) => {
    g.set(n.outputs[0], {
      elementType: n.firstType,
      dims: gemmOutput(n.node, g.dims(n.inputs[0]), g.dims(n.inputs[1])),
    });
  },
  ...rule(['MatMul', 'MatMulInteger', 'QLinearMatMul'], matmul),
  QuantizeLinear: sameShape((n, g) => g.info(n.inputs[2])?.elementType || ElementType.UINT8),
  DequantizeLinear: sameShape((n, g) => g.info(n.inputs[1])?.elementType || ElementType.FLOAT),
  DynamicQuantizeLinear: (n, g) => {
    sameShape(() => ElementType.UINT8)(n, g);
    g.set(n.outputs[1], { elementType: ElementType.FLOAT, dims: [] });
    g.set(n.outputs[2], { elementType: ElementType.UINT8, dims: [] });
  },
  Flatten: (n, g) => {
    const d = n.first?.dims;
    const axis = d ? normalizeAxis(intAttribute(n.node, 'axis') ?? 1, d.length) : 0;
    const dims = d ? [multiplyDims(d.slice(0, axis)), multiplyDims(d.slice(axis))] : undefined;
    g.set(n.outputs[0], { elementType: n.firstType, dims });
  },
  Reshape: (n, g) => {
    const target = g.value(n.inputs[1]);
    const allowZero = (intAttribute(n.node, 'allowzero') ?? 0) === 1;
    const dims = target ? reshapeOutput(n.first?.dims, target, allowZero, g.unknown) : undefined;
    g.set(n.outputs[0], { elementType: n.firstType, dims }, g.value(n.inputs[0]));
  },
  Transpose: (n, g) => {
    const d = n.first?.dims;
    const perm = intsAttribute(n.node, 'perm') ?? (d ? d.map((_, i) => d.length - 1 - i) : undefined);
    g.set(n.outputs[0], { elementType: n.firstType, dims: d && perm ? perm.map((p) => d[p]) : undefined });
  },
  Concat: concat,
  Split: split,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  ...rule(REDUCE_OPS, reduce),
  Shape: shape,
  Size: (n, g) => {
    const d = n.first?.dims;
    g.set(n.outputs[0], { elementType: ElementType.INT64, dims: [] }, d ? [multiplyDims(d)] : undefined);
  },
  Gather: gather,
  Slice: slice,
  Constant: constant,
  ConstantOfShape: (n, g) => {
    const target = g.value(n.inputs[0]);
    const t = tensorAttribute(n.node, 'value');
    g.set(n.outputs[0], { elementType: t?.dataType ?? ElementType.FLOAT, dims: target ? [...target] : undefined });
  },
  Expand: (n, g) => {
    const target = g.value(n.inputs[1]);
    g.set(n.outputs[0], { elementType: n.firstType, dims: target ? broadcast([n.first?.dims, target]) : undefined });
  },
  Tile: (n, g) => {
    const repeats = g.value(n.inputs[1]);
    const d = n.first?.dims;
    g.set(n.outputs[0], {
      elementType: n.firstType,
      dims: d && repeats ? d.map((x, i) => multiplyDims([x, repeats[i]])) : undefined,
    });
  },
  Pad: pad,
  ...rule(['Resize', 'Upsample'], resize),
  Range: (n, g) => {
    g.set(n.outputs[0], { elementType: n.firstType, dims: [g.unknown.next()] });
  },
  TopK: topK,
  ...rule(['DepthToSpace', 'SpaceToDepth'], depthSpace),
};

// com.microsoft contrib ops met in quantized (QOperator) and fused (ORT-optimized) exports.

const qLinearAveragePool: ShapeRule = (n, g) => {
  const channelsLast = (intAttribute(n.node, 'channels_last') ?? 0) === 1;
  const d = n.first?.dims;
  let dims: Dim[] | undefined;
  if (d && channelsLast) {
    const out = poolOutput(n.node, [d[0], d[d.length - 1], ...d.slice(1, -1)], g.unknown);
    dims = out ? [out[0], ...out.slice(2), out[1]] : undefined;
  } else {
    dims = poolOutput(n.node, d, g.unknown);
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims });
};

const qLinearGlobalAveragePool: ShapeRule = (n, g) => {
  const d = n.first?.dims;
  const channelsLast = (intAttribute(n.node, 'channels_last') ?? 0) === 1;
  let dims: Dim[] | undefined;
  if (d) {
    dims = channelsLast
      ? [d[0], ...d.slice(1, -1).map(() => 1), d[d.length - 1]]
      : [d[0], d[1], ...d.slice(2).map(() => 1)];
  }
  g.set(n.outputs[0], { elementType: n.firstType, dims });
};

const qLinearConcat: ShapeRule = (n, g) => {
  // Inputs: output scale, output zero point, then (tensor, scale, zero point) per input.
  const tensors: string[] = [];
  for (let i = 2; i < n.inputs.length; i += 3) tensors.push(n.inputs[i]);
  const dims = concatDims(
    n.node,
    tensors.map((t) => g.dims(t)),
    () => g.unknown.next(),
  );
  g.set(n.outputs[0], { elementType: g.info(tensors[0])?.elementType ?? 0, dims });
};

const MICROSOFT_RULES: Record<string, ShapeRule> = {
  ...rule(['QLinearAdd', 'QLinearMul'], (n, g) => {
    g.set(n.outputs[0], { elementType: n.firstType, dims: broadcast([g.dims(n.inputs[0]), g.dims(n.inputs[3])]) });
  }),
  ...rule(
    ['QLinearSigmoid', 'QLinearLeakyRelu', 'QLinearSoftmax', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu'],
    (n, g) => {
      g.set(n.outputs[0], { elementType: n.firstType, dims: n.first?.dims });
    },
  ),
  QLinearGlobalAveragePool: qLinearGlobalAveragePool,
  QLinearAveragePool: qLinearAveragePool,
  QLinearConcat: qLinearConcat,
  FusedConv: (n, g) => {
    g.set(n.outputs[0], {
      elementType: n.firstType,
      dims: convOutput(n.node, g.dims(n.inputs[0]), g.dims(n.inputs[1]), g.unknown),
    });
  },
  FusedGemm: (n, g) => {
    g.set(n.outputs[0], {
      elementType: n.firstType,
      dims: gemmOutput(n.node, g.dims(n.inputs[0]), g.dims(n.inputs[1])),
    });
  },
  QGemm: (n, g) => {
    // Input 8 is the optional output zero point: quantized output when present, float otherwise.
    const elementType = n.inputs[8] ? (g.info(n.inputs[8])?.elementType ?? 0) : ElementType.FLOAT;
    g.set(n.outputs[0], { elementType, dims: gemmOutput(n.node, g.dims(n.inputs[0]), g.dims(n.inputs[3])) });
  },
  FusedMatMul: (n, g) => {
    g.set(n.outputs[0], { elementType: n.firstType, dims: matmulOutput(g.dims(n.inputs[0]), g.dims(n.inputs[1])) });
  },
  ...rule(['MatMulIntegerToFloat', 'DynamicQuantizeMatMul'], (n, g) => {
    g.set(n.outputs[0], {
      elementType: ElementType.FLOAT,
      dims: matmulOutput(g.dims(n.inputs[0]), g.dims(n.inputs[1])),
    });
  }),
};

/** Rules by op domain ('' is the default ONNX domain). */
const RULES: Record<string, Record<string, ShapeRule>> = { '': ONNX_RULES, 'com.microsoft': MICROSOFT_RULES };

function ruleFor(node: INodeProto): ShapeRule | undefined {
  const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
  const rules = RULES[domain];
  const opType = node.opType ?? '';
  return rules && Object.hasOwn(rules, opType) ? rules[opType] : undefined;
}

// ---------------------------------------------------------------- small values and geometry

function elementwiseValue(op: string, inputs: string[], g: Inference): Dim[] | undefined {
  if (inputs.length !== 2) return undefined;
  const a = g.value(inputs[0]);
  const b = g.value(inputs[1]);
  if (!a || !b) return undefined;
  const n = Math.max(a.length, b.length);
  if (a.length !== n && a.length !== 1) return undefined;
  if (b.length !== n && b.length !== 1) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i];
    const y = b[b.length === 1 ? 0 : i];
    let r: Dim | undefined;
    if (op === 'Mul') r = multiplyDims([x, y]);
    else if (op === 'Div') r = typeof x === 'number' && typeof y === 'number' ? Math.trunc(x / y) : divideDims(x, y);
    else if (op === 'Add') r = addDims(x, y);
    else if (op === 'Sub' && typeof x === 'number' && typeof y === 'number') r = x - y;
    if (r === undefined) return undefined;
    out.push(r);
  }
  return out;
}

function kernelGeometry(node: INodeProto, spatialRank: number, kernelFromWeight?: Dim[]) {
  const kernel =
    intsAttribute(node, 'kernel_shape') ??
    (kernelFromWeight?.every((k) => typeof k === 'number') ? (kernelFromWeight as number[]) : undefined);
  const strides = intsAttribute(node, 'strides') ?? new Array<number>(spatialRank).fill(1);
  const dilations = intsAttribute(node, 'dilations') ?? new Array<number>(spatialRank).fill(1);
  const pads = intsAttribute(node, 'pads') ?? new Array<number>(spatialRank * 2).fill(0);
  const autoPad = stringAttribute(node, 'auto_pad') ?? 'NOTSET';
  const ceilMode = (intAttribute(node, 'ceil_mode') ?? 0) === 1;
  return { kernel, strides, dilations, pads, autoPad, ceilMode };
}

function spatialOutput(
  input: Dim[],
  node: INodeProto,
  unknown: UnknownDims,
  kernelFromWeight?: Dim[],
): Dim[] | undefined {
  const spatial = input.slice(2);
  const g = kernelGeometry(node, spatial.length, kernelFromWeight);
  const kernel = g.kernel;
  if (!kernel) return undefined;
  return spatial.map((size, i) => {
    if (typeof size !== 'number') return unknown.next();
    const stride = g.strides[i] ?? 1;
    const effectiveKernel = (g.dilations[i] ?? 1) * ((kernel[i] ?? 1) - 1) + 1;
    if (g.autoPad === 'SAME_UPPER' || g.autoPad === 'SAME_LOWER') return Math.ceil(size / stride);
    if (g.autoPad === 'VALID') return Math.floor((size - effectiveKernel) / stride) + 1;
    const padded = size + (g.pads[i] ?? 0) + (g.pads[i + spatial.length] ?? 0) - effectiveKernel;
    let out = (g.ceilMode ? Math.ceil(padded / stride) : Math.floor(padded / stride)) + 1;
    // ceil_mode: the last window must start inside the (left-padded) input.
    if (g.ceilMode && (out - 1) * stride >= size + (g.pads[i] ?? 0)) out--;
    return out;
  });
}

function convOutput(
  node: INodeProto,
  input: Dim[] | undefined,
  weight: Dim[] | undefined,
  unknown: UnknownDims,
): Dim[] | undefined {
  if (!input || !weight || input.length < 3) return undefined;
  const spatial = spatialOutput(input, node, unknown, weight.slice(2));
  return spatial ? [input[0], weight[0], ...spatial] : undefined;
}

function convTransposeOutput(
  node: INodeProto,
  input: Dim[] | undefined,
  weight: Dim[] | undefined,
  unknown: UnknownDims,
): Dim[] | undefined {
  if (!input || !weight || input.length < 3) return undefined;
  const group = intAttribute(node, 'group') ?? 1;
  const outputShape = intsAttribute(node, 'output_shape');
  const channels = multiplyDims([weight[1], group]);
  if (outputShape) return [input[0], channels, ...outputShape];
  const spatial = input.slice(2);
  const g = kernelGeometry(node, spatial.length, weight.slice(2));
  const kernel = g.kernel;
  const outputPadding = intsAttribute(node, 'output_padding') ?? new Array<number>(spatial.length).fill(0);
  if (!kernel) return undefined;
  return [
    input[0],
    channels,
    ...spatial.map((size, i) => {
      if (typeof size !== 'number') return unknown.next();
      const effectiveKernel = (g.dilations[i] ?? 1) * (kernel[i] - 1) + 1;
      if (g.autoPad === 'SAME_UPPER' || g.autoPad === 'SAME_LOWER') return size * (g.strides[i] ?? 1);
      return (
        (g.strides[i] ?? 1) * (size - 1) +
        (outputPadding[i] ?? 0) +
        effectiveKernel -
        (g.pads[i] ?? 0) -
        (g.pads[i + spatial.length] ?? 0)
      );
    }),
  ];
}

function poolOutput(node: INodeProto, input: Dim[] | undefined, unknown: UnknownDims): Dim[] | undefined {
  if (!input || input.length < 3) return undefined;
  const spatial = spatialOutput(input, node, unknown);
  return spatial ? [input[0], input[1], ...spatial] : undefined;
}

/** Numpy broadcasting of several shapes; undefined when a rank is unknown. */
function broadcast(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const known = shapes as Dim[][];
  const rank = Math.max(...known.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of known) {
      const d = s[s.length - rank + i];
      if (d === undefined || d === 1) continue;
      if (dim === 1) dim = d;
      else if (typeof dim === 'string' && typeof d === 'number') dim = d; // a symbol broadcast against n must be n (or 1)
    }
    out.push(dim);
  }
  return out;
}

function matmulOutput(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b || a.length === 0 || b.length === 0) return undefined;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)]) ?? [];
  const out: Dim[] = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

function reshapeOutput(
  input: Dim[] | undefined,
  target: Dim[],
  allowZero: boolean,
  unknown: UnknownDims,
): Dim[] | undefined {
  const out: Dim[] = target.map((s, i) => (s === 0 && !allowZero ? (input?.[i] ?? unknown.next()) : s));
  const inferIndex = out.indexOf(-1);
  if (inferIndex >= 0) {
    if (!input) {
      out[inferIndex] = unknown.next();
    } else {
      const known = out.filter((_, i) => i !== inferIndex);
      out[inferIndex] = divideDims(multiplyDims(input), multiplyDims(known)) ?? unknown.next();
    }
  }
  return out;
}

// ---------------------------------------------------------------- the walk

function seedGraphInputs(g: Inference, graph: IGraphProto, options: ShapeInferenceOptions): void {
  for (const init of graph.initializer ?? []) if (init.name) g.addConstant(init.name, init);
  for (const input of graph.input ?? []) {
    if (!input.name || g.tensors.has(input.name)) continue; // IR < 4: initializers are listed as inputs too
    const declared = declaredTensorInfo(input, g.unknown) ?? { elementType: 0 };
    const override = options.inputDims?.[input.name];
    g.set(input.name, override ? { ...declared, dims: [...override] } : declared);
  }
}

function declaredShapes(g: Inference, graph: IGraphProto): Map<string, TensorInfo> {
  const declared = new Map<string, TensorInfo>();
  for (const vi of [...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
    const info = vi.name ? declaredTensorInfo(vi, g.unknown) : undefined;
    if (info && vi.name) declared.set(vi.name, info);
  }
  return declared;
}

/** Runs the node's rule; a node without one gets explicitly unknown outputs and is reported. */
function inferNode(g: Inference, node: INodeProto): void {
  const inputs = node.input ?? [];
  const outputs = node.output ?? [];
  const shapeRule = ruleFor(node);
  const first = g.info(inputs[0]);
  const view: NodeView = {
    node,
    opType: node.opType ?? '',
    inputs,
    outputs,
    first,
    firstType: first?.elementType ?? 0,
  };
  let outcome: void | 'unsupported';
  try {
    outcome = shapeRule ? shapeRule(view, g) : 'unsupported';
  } catch (error) {
    // A malformed node (e.g. a Constant whose raw data is shorter than its dims): say which one.
    const where = `node ${node.name || outputs[0] || '?'} (${node.opType})`;
    throw new EdgetlError('onnx-parse', `shape inference failed at ${where}: ${describeError(error)}`, {
      cause: error,
    });
  }
  if (outcome === 'unsupported') {
    g.unsupportedOps.add(`${node.domain || 'ai.onnx'}:${node.opType}`);
    for (const output of outputs) g.set(output, { elementType: 0, dims: undefined });
  }
}

/** Where a rule could not tell, the declared value_info fills in. */
function fillFromDeclared(g: Inference, outputs: string[], declared: Map<string, TensorInfo>): void {
  for (const output of outputs) {
    if (!output) continue;
    const current = g.tensors.get(output);
    const fallback = declared.get(output);
    if (fallback && (!current?.dims || !current.elementType)) {
      g.tensors.set(output, {
        elementType: current?.elementType || fallback.elementType,
        dims: current?.dims ?? fallback.dims,
      });
    }
  }
}

/** Infer shapes and element types of every tensor in the model's main graph. */
export function inferShapes(model: IModelProto, options: ShapeInferenceOptions = {}): ShapeInferenceResult {
  const g = new Inference(model);
  const graph = model.graph;
  if (graph) {
    seedGraphInputs(g, graph, options);
    const declared = declaredShapes(g, graph);
    for (const node of graph.node ?? []) {
      inferNode(g, node);
      fillFromDeclared(g, node.output ?? [], declared);
    }
  }
  return { tensors: g.tensors, values: g.values, unsupportedOps: g.unsupportedOps };
}
