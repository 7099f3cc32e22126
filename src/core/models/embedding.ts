import { EdgetlError } from '../util/errors.js';
import { GraphIndex } from './graph.js';
import {
  ElementType,
  elementTypeName,
  intAttribute,
  intsAttribute,
  type IModelProto,
  type INodeProto,
} from './onnx-model.js';
import { inferShapes, multiplyDims, type Dim, type ShapeInferenceResult } from './shapes.js';

/**
 * Where a backbone's embedding is, in its source graph. Found automatically as the input of the final linear
 * classifier (Gemm, MatMul, QLinearMatMul, or a 1x1 Conv over a 1x1 map), or named explicitly.
 */
export interface EmbeddingLocation {
  /** Tensor in the source graph the feature extractor cuts at; flattened to [N, dim]. */
  tensor: string;
  dim: number;
  /**
   * `output`: the model already exposes it as a graph output; `classifier-input`: found as the input of the final
   * classifier; `explicit`: named by the caller.
   */
  source: 'output' | 'classifier-input' | 'explicit';
  /** The tensor is int8/uint8: the extractor adds a DequantizeLinear with `quantization`. */
  needsDequantize: boolean;
  quantization?: { scale: string; zeroPoint?: string };
  /** ONNX element type of `tensor`. */
  elementType: number;
  /** Batch dimension of `tensor` (a symbol for dynamic batch). */
  batchDim: Dim;
  /** The classifier that was found (absent for `explicit`, or `output` without a classifier). */
  classifier?: ClassifierInfo;
}

export interface ClassifierInfo {
  opType: string;
  nodeName: string;
  /** Its data input, before Flatten/Reshape/QDQ were looked through. */
  input: string;
  /** Weight tensor (an initializer, or a DequantizeLinear of one). */
  weight: string;
  /** Graph output the classifier feeds. */
  output: string;
}

export interface FindEmbeddingOptions {
  /** Use this tensor instead of searching (the CLI's `--embedding`). */
  embeddingTensor?: string;
  /** File name for error messages. */
  file?: string;
  /** Reuse a shape inference already run on this model. */
  shapes?: ShapeInferenceResult;
}

/** Ops that compute classifier logits from features, and which input holds the weight. */
const LINEAR_WEIGHT_INPUT: Record<string, number> = {
  Gemm: 1,
  MatMul: 1,
  MatMulInteger: 1,
  QLinearMatMul: 3,
  Conv: 1,
  ConvInteger: 1,
  QLinearConv: 3,
  'com.microsoft:QGemm': 3,
  'com.microsoft:FusedGemm': 1,
  'com.microsoft:FusedMatMul': 1,
  'com.microsoft:MatMulIntegerToFloat': 1,
  'com.microsoft:DynamicQuantizeMatMul': 1,
};

/** Ops that may sit between the classifier and the graph output (bias, activation, reshape, quantization). */
const UNARY_HEAD_OPS = new Set([
  'Identity',
  'Softmax',
  'LogSoftmax',
  'Sigmoid',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Cast',
  'QuantizeLinear',
  'DequantizeLinear',
  'Dropout',
]);
const BINARY_HEAD_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sum']);
const MICROSOFT_BINARY_HEAD_OPS = new Set(['QLinearAdd', 'QLinearMul']);

const QUANTIZED_TYPES: ReadonlySet<number> = new Set([
  ElementType.UINT8,
  ElementType.INT8,
  ElementType.UINT16,
  ElementType.INT16,
]);

function opKey(node: INodeProto): string {
  const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
  return domain ? `${domain}:${node.opType}` : (node.opType ?? '');
}

class EmbeddingFinder {
  readonly index: GraphIndex;
  readonly shapes: ShapeInferenceResult;
  private readonly where: string;

  constructor(
    readonly model: IModelProto,
    private readonly options: FindEmbeddingOptions,
  ) {
    if (!model.graph)
      throw new EdgetlError('onnx-parse', `${options.file ?? 'model'}: no graph`, { file: options.file });
    this.index = new GraphIndex(model.graph);
    this.shapes = options.shapes ?? inferShapes(model);
    this.where = options.file ?? 'the model';
  }

  dims(tensor: string): Dim[] | undefined {
    return this.shapes.tensors.get(tensor)?.dims;
  }

  elementType(tensor: string): number {
    return this.shapes.tensors.get(tensor)?.elementType ?? 0;
  }

  find(): EmbeddingLocation {
    if (this.options.embeddingTensor !== undefined) return this.explicit(this.options.embeddingTensor);
    const classifier = this.findClassifier();
    if (classifier) {
      const base = this.lookThrough(classifier.input);
      const exposed = this.index.graphOutputs.find(
        (o) => o !== classifier.output && this.lookThrough(o) === base && this.isFlatFloat(o),
      );
      if (exposed) return this.locate(exposed, 'output', classifier);
      return this.locate(base, 'classifier-input', classifier);
    }
    const exposed = this.exposedEmbeddingOutput();
    if (exposed) return this.locate(exposed, 'output');
    const outputs = this.index.graphOutputs.map((o) => `${o} ${this.describeShape(o)}`).join(', ');
    throw new EdgetlError(
      'embedding-not-found',
      `${this.where}: found no final linear classifier (Gemm, MatMul, QLinearMatMul or 1x1 Conv over a 1x1 map) ` +
        `feeding the outputs (${outputs}), and no output looks like an embedding. Name the tensor with the \`embeddingTensor\` option.`,
      { file: this.options.file },
    );
  }

  private explicit(tensor: string): EmbeddingLocation {
    if (!this.index.has(tensor) || this.index.initializers.has(tensor)) {
      const hint = this.index.initializers.has(tensor) ? ' (that is a weight, not an activation)' : '';
      throw new EdgetlError(
        'embedding-not-found',
        `${this.where}: there is no tensor "${tensor}" to use as the embedding${hint}. ` +
          `Graph outputs: ${this.index.graphOutputs.join(', ') || 'none'}; without the \`embeddingTensor\` option the embedding is found automatically.`,
        { file: this.options.file },
      );
    }
    return this.locate(tensor, 'explicit');
  }

  /** Walk back from each graph output through bias/activation/reshape/QDQ ops to a linear op with constant weights. */
  private findClassifier(): ClassifierInfo | undefined {
    for (const output of this.index.graphOutputs) {
      let tensor = output;
      for (let steps = 0; steps < 32; steps++) {
        const node = this.index.producer(tensor);
        if (!node) break;
        const key = opKey(node);
        const inputs = node.input ?? [];
        if (key in LINEAR_WEIGHT_INPUT) {
          const weight = inputs[LINEAR_WEIGHT_INPUT[key]];
          if (weight && this.index.isConstant(weight) && this.isClassifierShaped(node, inputs[0])) {
            return { opType: node.opType ?? '', nodeName: node.name ?? '', input: inputs[0], weight, output };
          }
          break;
        }
        if (UNARY_HEAD_OPS.has(key)) {
          tensor = inputs[0];
          continue;
        }
        if (BINARY_HEAD_OPS.has(key)) {
          const variable = inputs.filter((i) => i && !this.index.isConstant(i));
          if (variable.length !== 1) break;
          tensor = variable[0];
          continue;
        }
        if (key.startsWith('com.microsoft:') && MICROSOFT_BINARY_HEAD_OPS.has(node.opType ?? '')) {
          const variable = [inputs[0], inputs[3]].filter((i) => i && !this.index.isConstant(i));
          if (variable.length !== 1) break;
          tensor = variable[0];
          continue;
        }
        break;
      }
    }
    return undefined;
  }

  /** Convs count as classifiers only when 1x1 over a 1x1 map (a dense layer written as a conv). */
  private isClassifierShaped(node: INodeProto, input: string): boolean {
    const op = node.opType ?? '';
    if (op !== 'Conv' && op !== 'ConvInteger' && op !== 'QLinearConv') return true;
    const kernel = intsAttribute(node, 'kernel_shape');
    const weightDims = this.dims((node.input ?? [])[op === 'QLinearConv' ? 3 : 1]);
    const kernelSizes = kernel ?? weightDims?.slice(2);
    if (!kernelSizes || kernelSizes.some((k) => k !== 1)) return false;
    if ((intAttribute(node, 'group') ?? 1) !== 1) return false;
    const dims = this.dims(input);
    return dims !== undefined && dims.length >= 3 && dims.slice(2).every((d) => d === 1);
  }

  /**
   * The tensor behind Flatten/Reshape/Squeeze/Identity (when they only flatten [N, ...] to [N, D]), behind a
   * QuantizeLinear -> DequantizeLinear pair (QDQ graphs fake-quantize the classifier input), and behind a lone
   * QuantizeLinear (QOperator graphs quantize a float pooled tensor for QLinearMatMul/QGemm): the embedding is the
   * float tensor before quantization. Cutting there also leaves shape-computation side branches out of the extractor.
   */
  lookThrough(tensor: string): string {
    let current = tensor;
    for (let steps = 0; steps < 16; steps++) {
      const node = this.index.producer(current);
      if (!node) return current;
      const input = (node.input ?? [])[0];
      if (!input) return current;
      const op = opKey(node);
      if (op === 'QuantizeLinear') {
        // A QOperator classifier fed by QuantizeLinear(float): the float tensor is the embedding, unrounded.
        current = input;
        continue;
      }
      if (op === 'DequantizeLinear') {
        const quantizer = this.index.producer(input);
        if (quantizer && quantizer.opType === 'QuantizeLinear' && !quantizer.domain) {
          current = (quantizer.input ?? [])[0] ?? current;
          continue;
        }
        return current;
      }
      if (
        op === 'Identity' ||
        ((op === 'Flatten' || op === 'Reshape' || op === 'Squeeze') && this.onlyFlattens(input, current))
      ) {
        current = input;
        continue;
      }
      return current;
    }
    return current;
  }

  /** Does `to` hold `from`'s elements as [N, D] with the same N (so Flatten(from, axis=1) equals it)? */
  private onlyFlattens(from: string, to: string): boolean {
    const a = this.dims(from);
    const b = this.dims(to);
    if (!a || !b || a.length < 1 || b.length !== 2) return false;
    return a[0] === b[0] && multiplyDims(a.slice(1)) === b[1];
  }

  private isFlatFloat(tensor: string): boolean {
    const dims = this.dims(tensor);
    const type = this.elementType(tensor);
    return (
      dims !== undefined &&
      dims.length === 2 &&
      typeof dims[1] === 'number' &&
      (type === ElementType.FLOAT || type === 0)
    );
  }

  /** A graph with no classifier may already be a feature extractor: one float [N, D] (or [N, D, 1, 1]) output. */
  private exposedEmbeddingOutput(): string | undefined {
    const candidates = this.index.graphOutputs.filter((o) => {
      const dims = this.dims(o);
      if (!dims || this.elementType(o) !== ElementType.FLOAT) return false;
      if (dims.length === 2) return typeof dims[1] === 'number';
      return dims.length > 2 && typeof dims[1] === 'number' && dims.slice(2).every((d) => d === 1);
    });
    if (candidates.length === 1) return candidates[0];
    return candidates.find((o) => /^(embedding|embeddings|features|feature|pooled)$/i.test(o));
  }

  private describeShape(tensor: string): string {
    const dims = this.dims(tensor);
    return dims ? `[${dims.join(', ')}]` : '[?]';
  }

  private locate(tensor: string, source: EmbeddingLocation['source'], classifier?: ClassifierInfo): EmbeddingLocation {
    const dims = this.dims(tensor);
    const feature = dims ? multiplyDims(dims.slice(1)) : undefined;
    if (!dims || dims.length < 1 || typeof feature !== 'number') {
      throw new EdgetlError(
        'embedding-shape',
        `${this.where}: cannot tell the size of embedding tensor "${tensor}" (shape ${this.describeShape(tensor)}): ` +
          'its dimensions beyond the batch must be known statically.',
        { file: this.options.file },
      );
    }
    const elementType = this.elementType(tensor);
    const needsDequantize = QUANTIZED_TYPES.has(elementType);
    let quantization: EmbeddingLocation['quantization'];
    if (needsDequantize) {
      quantization = this.quantizationOf(tensor);
      if (!quantization) {
        throw new EdgetlError(
          'embedding-quantized',
          `${this.where}: embedding tensor "${tensor}" is ${elementTypeName(elementType)} and no scale/zero-point for it ` +
            'was found (no QuantizeLinear, DequantizeLinear or QLinear op next to it). Pick a float tensor with the `embeddingTensor` option.',
          { file: this.options.file },
        );
      }
    } else if (elementType !== ElementType.FLOAT && elementType !== 0) {
      throw new EdgetlError(
        'embedding-type',
        `${this.where}: embedding tensor "${tensor}" is ${elementTypeName(elementType)}, not float32 or a quantized int8 tensor.`,
        { file: this.options.file },
      );
    }
    return { tensor, dim: feature, source, needsDequantize, quantization, elementType, batchDim: dims[0], classifier };
  }

  /** Scale and zero-point of a quantized tensor, from the op that makes it or an op that reads it. */
  quantizationOf(tensor: string, depth = 0): EmbeddingLocation['quantization'] {
    if (depth > 8) return undefined;
    const producer = this.index.producer(tensor);
    if (producer) {
      const inputs = producer.input ?? [];
      const slots = outputQuantizationSlots(producer);
      if (slots) return { scale: inputs[slots[0]], zeroPoint: inputs[slots[1]] || undefined };
      if (isLayoutOnly(producer)) {
        const found = this.quantizationOf(inputs[0], depth + 1);
        if (found) return found;
      }
    }
    for (const consumer of this.index.consumersOf(tensor)) {
      const inputs = consumer.input ?? [];
      for (const [dataSlot, scaleSlot, zeroSlot] of inputQuantizationSlots(consumer)) {
        if (inputs[dataSlot] === tensor) return { scale: inputs[scaleSlot], zeroPoint: inputs[zeroSlot] || undefined };
      }
      if (isLayoutOnly(consumer) && (consumer.input ?? [])[0] === tensor) {
        const found = this.quantizationOf((consumer.output ?? [])[0], depth + 1);
        if (found) return found;
      }
    }
    return undefined;
  }
}

/** Ops that move quantized values without changing them (the scale and zero-point carry over). */
function isLayoutOnly(node: INodeProto): boolean {
  if (node.domain && node.domain !== 'ai.onnx') return false;
  return ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity', 'MaxPool'].includes(node.opType ?? '');
}

/** [scale input, zero-point input] describing the op's quantized output. */
function outputQuantizationSlots(node: INodeProto): [number, number] | undefined {
  const key = opKey(node);
  switch (key) {
    case 'QuantizeLinear':
      return [1, 2];
    case 'QLinearConv':
    case 'QLinearMatMul':
      return [6, 7];
    case 'com.microsoft:QLinearAdd':
    case 'com.microsoft:QLinearMul':
      return [6, 7];
    case 'com.microsoft:QLinearGlobalAveragePool':
    case 'com.microsoft:QLinearAveragePool':
    case 'com.microsoft:QLinearSigmoid':
    case 'com.microsoft:QLinearLeakyRelu':
      return [3, 4];
    case 'com.microsoft:QLinearConcat':
      return [0, 1];
    case 'com.microsoft:QGemm':
      return [7, 8];
    default:
      return undefined;
  }
}

/** [data, scale, zero-point] input triples of ops reading quantized tensors. */
function inputQuantizationSlots(node: INodeProto): [number, number, number][] {
  const key = opKey(node);
  switch (key) {
    case 'DequantizeLinear':
      return [[0, 1, 2]];
    case 'QLinearConv':
    case 'QLinearMatMul':
      return [
        [0, 1, 2],
        [3, 4, 5],
      ];
    case 'com.microsoft:QLinearAdd':
    case 'com.microsoft:QLinearMul':
      return [
        [0, 1, 2],
        [3, 4, 5],
      ];
    case 'com.microsoft:QGemm':
      return [
        [0, 1, 2],
        [3, 4, 5],
      ];
    case 'com.microsoft:QLinearGlobalAveragePool':
    case 'com.microsoft:QLinearAveragePool':
    case 'com.microsoft:QLinearSigmoid':
    case 'com.microsoft:QLinearLeakyRelu':
      return [[0, 1, 2]];
    case 'com.microsoft:QLinearConcat': {
      const triples: [number, number, number][] = [];
      const count = (node.input ?? []).length;
      for (let i = 2; i + 2 < count; i += 3) triples.push([i, i + 1, i + 2]);
      return triples;
    }
    default:
      return [];
  }
}

/** Locate the embedding of a backbone (see EmbeddingLocation). Throws EdgetlError when it cannot. */
export function findEmbedding(model: IModelProto, options: FindEmbeddingOptions = {}): EmbeddingLocation {
  return new EmbeddingFinder(model, options).find();
}
