import {
  ElementType,
  attribute,
  intAttribute,
  intsAttribute,
  opsetVersion,
  readFloatTensor,
  readIntegerTensor,
  tensorAttribute,
  tensorDims,
  toNumber,
  type IGraphProto,
  type IModelProto,
  type INodeProto,
  type ITensorProto,
  type IValueInfoProto,
} from './onnx-model.js';

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
  /** Op types (domain:op) the inference has no rule for; their outputs fall back to declared value_info. */
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

/** Number of elements when all dims are numbers. */
export function staticSize(dims: readonly Dim[] | undefined): number | undefined {
  if (!dims) return undefined;
  let n = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

// ---------------------------------------------------------------- declared shapes

let anonymousCounter = 0;

/** Declared type of a value_info; unnamed unknown dims get a unique symbol so they never match each other. */
export function declaredTensorInfo(info: IValueInfoProto): TensorInfo | undefined {
  const tensorType = info.type?.tensorType;
  if (!tensorType) return undefined;
  const elementType = tensorType.elemType ?? 0;
  const shape = tensorType.shape;
  if (!shape) return { elementType };
  const dims = (shape.dim ?? []).map((d): Dim => {
    if (d.dimParam) return d.dimParam;
    if (d.dimValue !== null && d.dimValue !== undefined && Object.prototype.hasOwnProperty.call(d, 'dimValue')) {
      return toNumber(d.dimValue);
    }
    anonymousCounter++;
    return `unk__${info.name ?? ''}_${anonymousCounter}`;
  });
  return { elementType, dims };
}

// ---------------------------------------------------------------- the inference

class Inference {
  readonly tensors = new Map<string, TensorInfo>();
  readonly values = new Map<string, Dim[]>();
  readonly unsupportedOps = new Set<string>();
  /** Small float constants (Resize scales). */
  readonly floatValues = new Map<string, number[]>();
  private readonly opset: number;

  constructor(readonly model: IModelProto) {
    this.opset = opsetVersion(model, '');
  }

  info(name: string | undefined | null): TensorInfo | undefined {
    if (!name) return undefined;
    return this.tensors.get(name);
  }

  dims(name: string | undefined | null): Dim[] | undefined {
    return this.info(name)?.dims;
  }

  value(name: string | undefined | null): Dim[] | undefined {
    if (!name) return undefined;
    return this.values.get(name);
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

  run(graph: IGraphProto, options: ShapeInferenceOptions): void {
    for (const init of graph.initializer ?? []) if (init.name) this.addConstant(init.name, init);
    for (const input of graph.input ?? []) {
      if (!input.name || this.tensors.has(input.name)) continue; // IR < 4: initializers are listed as inputs too
      const declared = declaredTensorInfo(input) ?? { elementType: 0 };
      const override = options.inputDims?.[input.name];
      this.set(input.name, override ? { ...declared, dims: [...override] } : declared);
    }
    const declared = new Map<string, TensorInfo>();
    for (const vi of [...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
      const info = vi.name ? declaredTensorInfo(vi) : undefined;
      if (info && vi.name) declared.set(vi.name, info);
    }
    for (const node of graph.node ?? []) {
      let handled = false;
      try {
        handled = this.inferNode(node);
      } catch {
        handled = false;
      }
      if (!handled) this.unsupportedOps.add(`${node.domain || 'ai.onnx'}:${node.opType}`);
      for (const output of node.output ?? []) {
        if (!output) continue;
        const current = this.tensors.get(output);
        const fallback = declared.get(output);
        if (fallback && (!current || !current.dims || !current.elementType)) {
          this.tensors.set(output, {
            elementType: current?.elementType || fallback.elementType,
            dims: current?.dims ?? fallback.dims,
          });
        }
      }
    }
  }

  /** Returns false when the op has no rule (outputs stay unknown). */
  private inferNode(node: INodeProto): boolean {
    const op = node.opType ?? '';
    const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
    const inputs = node.input ?? [];
    const outputs = node.output ?? [];
    const first = this.info(inputs[0]);
    const sameAsFirst = (elementType = first?.elementType ?? 0): boolean => {
      this.set(outputs[0], { elementType, dims: first?.dims ? [...first.dims] : undefined });
      return true;
    };

    if (domain === 'com.microsoft') return this.inferMicrosoft(node, op, inputs, outputs);
    if (domain !== '') return false;

    switch (op) {
      case 'Relu': case 'LeakyRelu': case 'PRelu': case 'Elu': case 'Selu': case 'Sigmoid': case 'HardSigmoid':
      case 'HardSwish': case 'Tanh': case 'Softmax': case 'LogSoftmax': case 'Hardmax': case 'Softplus': case 'Softsign':
      case 'Exp': case 'Log': case 'Sqrt': case 'Neg': case 'Abs': case 'Erf': case 'Reciprocal': case 'Floor':
      case 'Ceil': case 'Round': case 'Sign': case 'Clip': case 'Mish': case 'Gelu': case 'ThresholdedRelu':
      case 'Celu': case 'LRN': case 'InstanceNormalization': case 'LayerNormalization': case 'MeanVarianceNormalization':
      case 'BatchNormalization': case 'Dropout': case 'Sin': case 'Cos': case 'Shrink':
        if (op === 'Dropout' && outputs[1]) this.set(outputs[1], { elementType: ElementType.BOOL, dims: first?.dims });
        return sameAsFirst();
      case 'Identity': {
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: first?.dims }, this.value(inputs[0]));
        return true;
      }
      case 'Not':
        return sameAsFirst(ElementType.BOOL);
      case 'Cast': {
        const to = intAttribute(node, 'to') ?? 0;
        this.set(outputs[0], { elementType: to, dims: first?.dims }, this.value(inputs[0]));
        return true;
      }
      case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow': case 'Mod': case 'Sum': case 'Max': case 'Min':
      case 'Mean': case 'And': case 'Or': case 'Xor': case 'Equal': case 'Less': case 'Greater': case 'LessOrEqual':
      case 'GreaterOrEqual': case 'BitShift': {
        const dims = broadcast(inputs.map((i) => this.dims(i)));
        const comparison = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'].includes(op);
        const elementType = comparison ? ElementType.BOOL : first?.elementType ?? 0;
        this.set(outputs[0], { elementType, dims }, this.elementwiseValue(op, inputs));
        return true;
      }
      case 'Where': {
        const dims = broadcast(inputs.map((i) => this.dims(i)));
        this.set(outputs[0], { elementType: this.info(inputs[1])?.elementType ?? 0, dims });
        return true;
      }
      case 'Conv': case 'ConvInteger': case 'QLinearConv': {
        const weight = op === 'QLinearConv' ? inputs[3] : inputs[1];
        const dims = this.convOutput(node, this.dims(inputs[0]), this.dims(weight));
        const elementType = op === 'ConvInteger' ? ElementType.INT32
          : op === 'QLinearConv' ? this.info(inputs[7])?.elementType || first?.elementType || 0
          : first?.elementType ?? 0;
        this.set(outputs[0], { elementType, dims });
        return true;
      }
      case 'ConvTranspose': {
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: this.convTransposeOutput(node, this.dims(inputs[0]), this.dims(inputs[1])) });
        return true;
      }
      case 'MaxPool': case 'AveragePool': case 'LpPool': {
        const dims = this.poolOutput(node, this.dims(inputs[0]));
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        if (outputs[1]) this.set(outputs[1], { elementType: ElementType.INT64, dims });
        return true;
      }
      case 'GlobalAveragePool': case 'GlobalMaxPool': case 'GlobalLpPool': {
        const d = first?.dims;
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: d ? [d[0], d[1], ...d.slice(2).map(() => 1)] : undefined });
        return true;
      }
      case 'Gemm': {
        const a = this.dims(inputs[0]);
        const b = this.dims(inputs[1]);
        const transA = intAttribute(node, 'transA') ?? 0;
        const transB = intAttribute(node, 'transB') ?? 0;
        const dims = a && b && a.length === 2 && b.length === 2 ? [transA ? a[1] : a[0], transB ? b[0] : b[1]] : undefined;
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'MatMul': case 'MatMulInteger': case 'QLinearMatMul': {
        const b = op === 'QLinearMatMul' ? inputs[3] : inputs[1];
        const dims = matmulOutput(this.dims(inputs[0]), this.dims(b));
        const elementType = op === 'MatMulInteger' ? ElementType.INT32
          : op === 'QLinearMatMul' ? this.info(inputs[7])?.elementType || first?.elementType || 0
          : first?.elementType ?? 0;
        this.set(outputs[0], { elementType, dims });
        return true;
      }
      case 'QuantizeLinear': {
        const elementType = this.info(inputs[2])?.elementType || ElementType.UINT8;
        return sameAsFirst(elementType);
      }
      case 'DequantizeLinear':
        return sameAsFirst(this.info(inputs[1])?.elementType || ElementType.FLOAT);
      case 'DynamicQuantizeLinear': {
        sameAsFirst(ElementType.UINT8);
        this.set(outputs[1], { elementType: ElementType.FLOAT, dims: [] });
        this.set(outputs[2], { elementType: ElementType.UINT8, dims: [] });
        return true;
      }
      case 'Flatten': {
        const d = first?.dims;
        let dims: Dim[] | undefined;
        if (d) {
          let axis = intAttribute(node, 'axis') ?? 1;
          if (axis < 0) axis += d.length;
          dims = [multiplyDims(d.slice(0, axis)), multiplyDims(d.slice(axis))];
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'Reshape': {
        const shape = this.value(inputs[1]);
        const allowZero = (intAttribute(node, 'allowzero') ?? 0) === 1;
        const dims = shape ? reshapeOutput(first?.dims, shape, allowZero) : undefined;
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims }, this.value(inputs[0]));
        return true;
      }
      case 'Transpose': {
        const d = first?.dims;
        const perm = intsAttribute(node, 'perm') ?? (d ? d.map((_, i) => d.length - 1 - i) : undefined);
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: d && perm ? perm.map((p) => d[p]) : undefined });
        return true;
      }
      case 'Concat': {
        const all = inputs.map((i) => this.dims(i));
        let dims: Dim[] | undefined;
        const known = all.filter((d): d is Dim[] => d !== undefined);
        if (known.length === all.length && known.length > 0) {
          const rank = known[0].length;
          let axis = intAttribute(node, 'axis') ?? 0;
          if (axis < 0) axis += rank;
          dims = [...known[0]];
          let total: Dim | undefined = 0;
          for (const d of known) total = total === undefined ? undefined : addDims(total, d[axis]);
          dims[axis] = total ?? `concat(${known.map((d) => d[axis]).join('+')})`;
        }
        const values = inputs.map((i) => this.value(i));
        const value = values.every((v) => v !== undefined) ? values.flatMap((v) => v as Dim[]) : undefined;
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims }, value);
        return true;
      }
      case 'Split':
        return this.inferSplit(node, inputs, outputs);
      case 'Squeeze': {
        const d = first?.dims;
        const axes = this.opset >= 13 && inputs[1] ? this.numericValue(inputs[1]) : intsAttribute(node, 'axes');
        let dims: Dim[] | undefined;
        if (d) {
          if (axes) {
            const normalized = axes.map((a) => (a < 0 ? a + d.length : a));
            dims = d.filter((_, i) => !normalized.includes(i));
          } else if ((this.opset < 13 || !inputs[1]) && d.every((x) => typeof x === 'number')) {
            dims = d.filter((x) => x !== 1);
          }
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims }, this.value(inputs[0]));
        return true;
      }
      case 'Unsqueeze': {
        const d = first?.dims;
        const axes = this.opset >= 13 && inputs[1] ? this.numericValue(inputs[1]) : intsAttribute(node, 'axes');
        let dims: Dim[] | undefined;
        if (d && axes) {
          const rank = d.length + axes.length;
          const normalized = axes.map((a) => (a < 0 ? a + rank : a));
          dims = [];
          let source = 0;
          for (let i = 0; i < rank; i++) dims.push(normalized.includes(i) ? 1 : d[source++]);
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims }, this.value(inputs[0]));
        return true;
      }
      case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd': case 'ReduceL1':
      case 'ReduceL2': case 'ReduceLogSum': case 'ReduceLogSumExp': case 'ReduceSumSquare': case 'ArgMax': case 'ArgMin': {
        const d = first?.dims;
        const axesFromInput = (op === 'ReduceSum' && this.opset >= 13) || this.opset >= 18;
        let axes: number[] | undefined = op === 'ArgMax' || op === 'ArgMin'
          ? [intAttribute(node, 'axis') ?? 0]
          : axesFromInput ? (inputs[1] ? this.numericValue(inputs[1]) : []) : intsAttribute(node, 'axes') ?? [];
        const keepDims = (intAttribute(node, 'keepdims') ?? 1) === 1;
        let dims: Dim[] | undefined;
        if (d && axes) {
          if (axes.length === 0) axes = (intAttribute(node, 'noop_with_empty_axes') ?? 0) === 1 ? [] : d.map((_, i) => i);
          const normalized = axes.map((a) => (a < 0 ? a + d.length : a));
          dims = keepDims ? d.map((x, i) => (normalized.includes(i) ? 1 : x)) : d.filter((_, i) => !normalized.includes(i));
        }
        const elementType = op === 'ArgMax' || op === 'ArgMin' ? ElementType.INT64 : first?.elementType ?? 0;
        this.set(outputs[0], { elementType, dims });
        return true;
      }
      case 'Shape': {
        const d = first?.dims;
        let value: Dim[] | undefined;
        if (d) {
          const rank = d.length;
          const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + rank : x, 0), rank);
          const start = clamp(intAttribute(node, 'start') ?? 0);
          const endAttr = attribute(node, 'end');
          const end = endAttr ? clamp(toNumber(endAttr.i)) : rank;
          value = d.slice(start, end);
        }
        this.set(outputs[0], { elementType: ElementType.INT64, dims: value ? [value.length] : [undefinedDim()] }, value);
        return true;
      }
      case 'Size': {
        const d = first?.dims;
        this.set(outputs[0], { elementType: ElementType.INT64, dims: [] }, d ? [multiplyDims(d)] : undefined);
        return true;
      }
      case 'Gather':
        return this.inferGather(node, inputs, outputs);
      case 'Slice':
        return this.inferSlice(node, inputs, outputs);
      case 'Constant': {
        const t = tensorAttribute(node, 'value');
        if (t) {
          this.addConstant(outputs[0], t);
          return true;
        }
        const ints = intsAttribute(node, 'value_ints');
        if (ints) {
          this.set(outputs[0], { elementType: ElementType.INT64, dims: [ints.length] }, ints);
          return true;
        }
        const int = attribute(node, 'value_int');
        if (int) {
          this.set(outputs[0], { elementType: ElementType.INT64, dims: [] }, [toNumber(int.i)]);
          return true;
        }
        const float = attribute(node, 'value_float');
        if (float) {
          this.set(outputs[0], { elementType: ElementType.FLOAT, dims: [] });
          return true;
        }
        const floats = attribute(node, 'value_floats');
        if (floats) {
          this.set(outputs[0], { elementType: ElementType.FLOAT, dims: [floats.floats?.length ?? 0] });
          return true;
        }
        return false;
      }
      case 'ConstantOfShape': {
        const shape = this.value(inputs[0]);
        const t = tensorAttribute(node, 'value');
        this.set(outputs[0], { elementType: t?.dataType ?? ElementType.FLOAT, dims: shape ? [...shape] : undefined });
        return true;
      }
      case 'Expand': {
        const shape = this.value(inputs[1]);
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: shape ? broadcast([first?.dims, shape]) : undefined });
        return true;
      }
      case 'Tile': {
        const repeats = this.value(inputs[1]);
        const d = first?.dims;
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: d && repeats ? d.map((x, i) => multiplyDims([x, repeats[i]])) : undefined });
        return true;
      }
      case 'Pad': {
        const d = first?.dims;
        const pads = this.opset >= 11 ? this.numericValue(inputs[1]) : intsAttribute(node, 'pads');
        let dims: Dim[] | undefined;
        if (d && pads && pads.length === d.length * 2) {
          dims = d.map((x, i) => (typeof x === 'number' ? x + pads[i] + pads[i + d.length] : pads[i] + pads[i + d.length] === 0 ? x : undefinedDim()));
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'Resize': case 'Upsample': {
        const d = first?.dims;
        let dims: Dim[] | undefined;
        const sizes = op === 'Resize' && inputs[3] ? this.value(inputs[3]) : undefined;
        const scalesName = op === 'Resize' ? (this.opset >= 11 ? inputs[2] : inputs[1]) : inputs[1];
        const scales = attribute(node, 'scales')?.floats ?? this.floatValues.get(scalesName ?? '');
        if (sizes && sizes.length > 0) dims = [...sizes];
        else if (d && scales && scales.length === d.length) {
          dims = d.map((x, i) => (typeof x === 'number' ? Math.floor(x * scales[i]) : scales[i] === 1 ? x : undefinedDim()));
        } else if (d) dims = d.map(() => undefinedDim());
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'Range': {
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: [undefinedDim()] });
        return true;
      }
      case 'TopK': {
        const d = first?.dims;
        const k = this.numericValue(inputs[1]);
        let axis = intAttribute(node, 'axis') ?? -1;
        let dims: Dim[] | undefined;
        if (d) {
          if (axis < 0) axis += d.length;
          dims = [...d];
          dims[axis] = k ? k[0] : undefinedDim();
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        this.set(outputs[1], { elementType: ElementType.INT64, dims });
        return true;
      }
      case 'DepthToSpace': case 'SpaceToDepth': {
        const d = first?.dims;
        const b = intAttribute(node, 'blocksize') ?? 1;
        let dims: Dim[] | undefined;
        if (d && d.length === 4) {
          dims = op === 'DepthToSpace'
            ? [d[0], divideDims(d[1], b * b) ?? undefinedDim(), multiplyDims([d[2], b]), multiplyDims([d[3], b])]
            : [d[0], multiplyDims([d[1], b * b]), divideDims(d[2], b) ?? undefinedDim(), divideDims(d[3], b) ?? undefinedDim()];
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      default:
        return false;
    }
  }

  private inferMicrosoft(node: INodeProto, op: string, inputs: string[], outputs: string[]): boolean {
    const first = this.info(inputs[0]);
    switch (op) {
      case 'QLinearAdd': case 'QLinearMul': {
        const dims = broadcast([this.dims(inputs[0]), this.dims(inputs[3])]);
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'QLinearSigmoid': case 'QLinearLeakyRelu': case 'QLinearSoftmax': case 'Gelu': case 'FastGelu': case 'BiasGelu':
      case 'QuickGelu':
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: first?.dims });
        return true;
      case 'QLinearGlobalAveragePool': {
        const d = first?.dims;
        const channelsLast = (intAttribute(node, 'channels_last') ?? 0) === 1;
        let dims: Dim[] | undefined;
        if (d) {
          dims = channelsLast
            ? [d[0], ...d.slice(1, -1).map(() => 1), d[d.length - 1]]
            : [d[0], d[1], ...d.slice(2).map(() => 1)];
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'QLinearAveragePool': {
        const channelsLast = (intAttribute(node, 'channels_last') ?? 0) === 1;
        const d = first?.dims;
        let dims: Dim[] | undefined;
        if (d && channelsLast) {
          const nchw = [d[0], d[d.length - 1], ...d.slice(1, -1)];
          const out = this.poolOutput(node, nchw);
          dims = out ? [out[0], ...out.slice(2), out[1]] : undefined;
        } else {
          dims = this.poolOutput(node, d);
        }
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims });
        return true;
      }
      case 'QLinearConcat': {
        const tensors: string[] = [];
        for (let i = 2; i < inputs.length; i += 3) tensors.push(inputs[i]);
        const all = tensors.map((t) => this.dims(t));
        const firstInfo = this.info(tensors[0]);
        let dims: Dim[] | undefined;
        if (all.every((d) => d !== undefined) && all.length > 0) {
          const known = all as Dim[][];
          let axis = intAttribute(node, 'axis') ?? 0;
          if (axis < 0) axis += known[0].length;
          dims = [...known[0]];
          let total: Dim | undefined = 0;
          for (const d of known) total = total === undefined ? undefined : addDims(total, d[axis]);
          dims[axis] = total ?? undefinedDim();
        }
        this.set(outputs[0], { elementType: firstInfo?.elementType ?? 0, dims });
        return true;
      }
      case 'FusedConv':
        this.set(outputs[0], { elementType: first?.elementType ?? 0, dims: this.convOutput(node, this.dims(inputs[0]), this.dims(inputs[1])) });
        return true;
      case 'FusedGemm': case 'QGemm': {
        const a = this.dims(inputs[0]);
        const b = this.dims(op === 'QGemm' ? inputs[3] : inputs[1]);
        const transA = intAttribute(node, 'transA') ?? 0;
        const transB = intAttribute(node, 'transB') ?? 0;
        const dims = a && b && a.length === 2 && b.length === 2 ? [transA ? a[1] : a[0], transB ? b[0] : b[1]] : undefined;
        const elementType = op === 'QGemm' && inputs[8] ? this.info(inputs[8])?.elementType ?? 0 : op === 'QGemm' ? ElementType.FLOAT : first?.elementType ?? 0;
        this.set(outputs[0], { elementType, dims });
        return true;
      }
      case 'FusedMatMul': case 'MatMulIntegerToFloat': case 'DynamicQuantizeMatMul': {
        const elementType = op === 'FusedMatMul' ? first?.elementType ?? 0 : ElementType.FLOAT;
        this.set(outputs[0], { elementType, dims: matmulOutput(this.dims(inputs[0]), this.dims(inputs[1])) });
        return true;
      }
      default:
        return false;
    }
  }

  private inferSplit(node: INodeProto, inputs: string[], outputs: string[]): boolean {
    const first = this.info(inputs[0]);
    const d = first?.dims;
    let axis = intAttribute(node, 'axis') ?? 0;
    let sizes: Dim[] | undefined = this.opset >= 13 && inputs[1] ? this.numericValue(inputs[1]) : intsAttribute(node, 'split');
    if (d) {
      if (axis < 0) axis += d.length;
      if (!sizes) {
        const total = d[axis];
        const parts = outputs.length;
        if (typeof total === 'number') {
          const chunk = Math.ceil(total / parts);
          sizes = outputs.map((_, i) => Math.max(0, Math.min(chunk, total - chunk * i)));
        } else {
          const each = divideDims(total, parts);
          sizes = outputs.map(() => each ?? undefinedDim());
        }
      }
    }
    outputs.forEach((output, i) => {
      let dims: Dim[] | undefined;
      if (d && sizes) {
        dims = [...d];
        dims[axis] = sizes[i];
      }
      this.set(output, { elementType: first?.elementType ?? 0, dims });
    });
    return true;
  }

  private inferGather(node: INodeProto, inputs: string[], outputs: string[]): boolean {
    const data = this.info(inputs[0]);
    const indices = this.dims(inputs[1]);
    let axis = intAttribute(node, 'axis') ?? 0;
    let dims: Dim[] | undefined;
    if (data?.dims && indices) {
      if (axis < 0) axis += data.dims.length;
      dims = [...data.dims.slice(0, axis), ...indices, ...data.dims.slice(axis + 1)];
    }
    let value: Dim[] | undefined;
    const dataValue = this.value(inputs[0]);
    const indexValue = this.numericValue(inputs[1]);
    if (dataValue && indexValue && axis === 0) {
      value = indexValue.map((i) => dataValue[i < 0 ? i + dataValue.length : i]);
      if (value.some((v) => v === undefined)) value = undefined;
    }
    this.set(outputs[0], { elementType: data?.elementType ?? 0, dims }, value);
    return true;
  }

  private inferSlice(node: INodeProto, inputs: string[], outputs: string[]): boolean {
    const first = this.info(inputs[0]);
    const d = first?.dims;
    const starts = this.opset >= 10 ? this.numericValue(inputs[1]) : intsAttribute(node, 'starts');
    const ends = this.opset >= 10 ? this.numericValue(inputs[2]) : intsAttribute(node, 'ends');
    const axes = this.opset >= 10 ? (inputs[3] ? this.numericValue(inputs[3]) : undefined) : intsAttribute(node, 'axes');
    const steps = this.opset >= 10 && inputs[4] ? this.numericValue(inputs[4]) : undefined;
    let dims: Dim[] | undefined;
    let value: Dim[] | undefined;
    if (d && starts && ends) {
      dims = [...d];
      const axisList = axes ?? starts.map((_, i) => i);
      const dataValue = this.value(inputs[0]);
      axisList.forEach((axisRaw, i) => {
        const axis = axisRaw < 0 ? axisRaw + d.length : axisRaw;
        const step = steps?.[i] ?? 1;
        const size = d[axis];
        if (typeof size !== 'number') {
          // Slicing a symbolic dim: only the full range keeps it.
          if (starts[i] === 0 && ends[i] >= 2 ** 31 - 1 && step === 1) return;
          dims![axis] = undefinedDim();
          return;
        }
        const clamp = (x: number, low: number, high: number) => Math.min(Math.max(x, low), high);
        let start = starts[i] < 0 ? starts[i] + size : starts[i];
        let end = ends[i] < 0 ? ends[i] + size : ends[i];
        if (step > 0) {
          start = clamp(start, 0, size);
          end = clamp(end, 0, size);
        } else {
          start = clamp(start, 0, size - 1);
          end = clamp(end, -1, size - 1);
        }
        const count = Math.max(0, Math.ceil((end - start) / step));
        dims![axis] = count;
        if (dataValue && d.length === 1) {
          value = [];
          for (let k = 0; k < count; k++) value.push(dataValue[start + k * step]);
        }
      });
    }
    this.set(outputs[0], { elementType: first?.elementType ?? 0, dims }, value);
    return true;
  }

  private elementwiseValue(op: string, inputs: string[]): Dim[] | undefined {
    if (inputs.length !== 2) return undefined;
    const a = this.value(inputs[0]);
    const b = this.value(inputs[1]);
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

  private kernelGeometry(node: INodeProto, spatialRank: number, kernelFromWeight?: Dim[]) {
    const kernel = intsAttribute(node, 'kernel_shape') ?? (kernelFromWeight?.every((k) => typeof k === 'number') ? (kernelFromWeight as number[]) : undefined);
    const strides = intsAttribute(node, 'strides') ?? new Array<number>(spatialRank).fill(1);
    const dilations = intsAttribute(node, 'dilations') ?? new Array<number>(spatialRank).fill(1);
    const pads = intsAttribute(node, 'pads') ?? new Array<number>(spatialRank * 2).fill(0);
    const autoPadAttr = attribute(node, 'auto_pad');
    const autoPad = autoPadAttr?.s ? new TextDecoder().decode(autoPadAttr.s) : 'NOTSET';
    const ceilMode = (intAttribute(node, 'ceil_mode') ?? 0) === 1;
    return { kernel, strides, dilations, pads, autoPad, ceilMode };
  }

  private spatialOutput(input: Dim[], node: INodeProto, kernelFromWeight?: Dim[]): Dim[] | undefined {
    const spatial = input.slice(2);
    const g = this.kernelGeometry(node, spatial.length, kernelFromWeight);
    if (!g.kernel) return undefined;
    return spatial.map((size, i) => {
      if (typeof size !== 'number') return undefinedDim();
      const stride = g.strides[i] ?? 1;
      const effectiveKernel = ((g.dilations[i] ?? 1) * ((g.kernel![i] ?? 1) - 1)) + 1;
      if (g.autoPad === 'SAME_UPPER' || g.autoPad === 'SAME_LOWER') return Math.ceil(size / stride);
      if (g.autoPad === 'VALID') return Math.floor((size - effectiveKernel) / stride) + 1;
      const padded = size + (g.pads[i] ?? 0) + (g.pads[i + spatial.length] ?? 0) - effectiveKernel;
      let out = (g.ceilMode ? Math.ceil(padded / stride) : Math.floor(padded / stride)) + 1;
      // ceil_mode: the last window must start inside the (left-padded) input.
      if (g.ceilMode && (out - 1) * stride >= size + (g.pads[i] ?? 0)) out--;
      return out;
    });
  }

  private convOutput(node: INodeProto, input: Dim[] | undefined, weight: Dim[] | undefined): Dim[] | undefined {
    if (!input || !weight || input.length < 3) return undefined;
    const spatial = this.spatialOutput(input, node, weight.slice(2));
    return spatial ? [input[0], weight[0], ...spatial] : undefined;
  }

  private convTransposeOutput(node: INodeProto, input: Dim[] | undefined, weight: Dim[] | undefined): Dim[] | undefined {
    if (!input || !weight || input.length < 3) return undefined;
    const group = intAttribute(node, 'group') ?? 1;
    const outputShape = intsAttribute(node, 'output_shape');
    const channels = multiplyDims([weight[1], group]);
    if (outputShape) return [input[0], channels, ...outputShape];
    const spatial = input.slice(2);
    const g = this.kernelGeometry(node, spatial.length, weight.slice(2));
    const outputPadding = intsAttribute(node, 'output_padding') ?? new Array<number>(spatial.length).fill(0);
    if (!g.kernel) return undefined;
    return [input[0], channels, ...spatial.map((size, i) => {
      if (typeof size !== 'number') return undefinedDim();
      const effectiveKernel = ((g.dilations[i] ?? 1) * (g.kernel![i] - 1)) + 1;
      if (g.autoPad === 'SAME_UPPER' || g.autoPad === 'SAME_LOWER') return size * (g.strides[i] ?? 1);
      return (g.strides[i] ?? 1) * (size - 1) + (outputPadding[i] ?? 0) + effectiveKernel - (g.pads[i] ?? 0) - (g.pads[i + spatial.length] ?? 0);
    })];
  }

  private poolOutput(node: INodeProto, input: Dim[] | undefined): Dim[] | undefined {
    if (!input || input.length < 3) return undefined;
    const spatial = this.spatialOutput(input, node);
    return spatial ? [input[0], input[1], ...spatial] : undefined;
  }
}

let undefinedCounter = 0;
/** A fresh symbol for a dim the inference cannot know; never equal to another. */
function undefinedDim(): string {
  undefinedCounter++;
  return `unk__${undefinedCounter}`;
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

function reshapeOutput(input: Dim[] | undefined, shape: Dim[], allowZero: boolean): Dim[] | undefined {
  const out: Dim[] = shape.map((s, i) => (s === 0 && !allowZero ? input?.[i] ?? undefinedDim() : s));
  const inferIndex = out.findIndex((s) => s === -1);
  if (inferIndex >= 0) {
    if (!input) {
      out[inferIndex] = undefinedDim();
    } else {
      const known = out.filter((_, i) => i !== inferIndex);
      out[inferIndex] = divideDims(multiplyDims(input), multiplyDims(known)) ?? undefinedDim();
    }
  }
  return out;
}

/** Infer shapes and element types of every tensor in the model's main graph. */
export function inferShapes(model: IModelProto, options: ShapeInferenceOptions = {}): ShapeInferenceResult {
  const inference = new Inference(model);
  if (model.graph) inference.run(model.graph, options);
  return { tensors: inference.tensors, values: inference.values, unsupportedOps: inference.unsupportedOps };
}
