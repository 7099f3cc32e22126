import { EdgetlError, isEdgetlError } from '../util/errors.js';
import { findEmbedding, type EmbeddingLocation } from './embedding.js';
import { GraphIndex } from './graph.js';
import {
  elementTypeName,
  parseOnnxModel,
  tensorElementCount,
  toNumber,
  type IModelProto,
  type INodeProto,
} from './onnx-model.js';
import {
  declaredTensorInfo,
  inferShapes,
  isUnknownDim,
  staticSize,
  type Dim,
  type ShapeInferenceResult,
} from './shapes.js';

export interface TensorFacts {
  name: string;
  /** `float32`, `uint8`, ... */
  elementType: string;
  /** Numbers, symbols for dynamic dims (`batch`), `?` when unknown. */
  dims: (number | string)[];
}

export interface EmbeddingFacts {
  tensor: string;
  dim: number;
  source: 'output' | 'classifier-input' | 'explicit';
  needsDequantize: boolean;
}

/** What `edgetl models inspect` reports about an ONNX backbone. */
export interface ModelFacts {
  inputs: TensorFacts[];
  outputs: TensorFacts[];
  irVersion: number;
  /** Producer name and version, e.g. `pytorch 1.13.0`. */
  producer: string;
  opsets: { domain: string; version: number }[];
  /** Elements in all initializers (weights, biases, quantization parameters). */
  parameterCount: number;
  /** `qoperator`: QLinearConv/QLinearMatMul/... ops; `qdq`: float ops between QuantizeLinear/DequantizeLinear pairs. */
  quantization: 'none' | 'qoperator' | 'qdq';
  /** `dynamic`, or the batch size the graph is fixed at. */
  batch: 'dynamic' | number;
  /** Multiply-accumulates of Conv, Gemm, MatMul (and quantized forms) for one image; null when a shape is unknown. */
  macsPerImage: number | null;
  /** Node count per op type (`Conv`, `com.microsoft:QLinearAdd`). */
  opCounts: Record<string, number>;
  nodeCount: number;
  /** Ops the static shape inference has no rule for (`domain:op`); shapes after them come from value_info, if any. */
  unsupportedOps: string[];
  /** The embedding found (or named); null when none was found, with `embeddingError` saying why. */
  embedding: EmbeddingFacts | null;
  embeddingError?: string;
}

export interface InspectOptions {
  /** Use this tensor as the embedding (errors if it does not exist). */
  embeddingTensor?: string;
  /** File name for error messages. */
  file?: string;
  /** `inferShapes(model)` when the caller already ran it (no options), so the graph is inferred once. */
  shapes?: ShapeInferenceResult;
}

const QOPERATOR_OPS = new Set([
  'QLinearConv',
  'QLinearMatMul',
  'ConvInteger',
  'MatMulInteger',
  'com.microsoft:QLinearAdd',
  'com.microsoft:QLinearMul',
  'com.microsoft:QLinearGlobalAveragePool',
  'com.microsoft:QLinearAveragePool',
  'com.microsoft:QLinearConcat',
  'com.microsoft:QLinearSigmoid',
  'com.microsoft:QLinearLeakyRelu',
  'com.microsoft:QLinearSoftmax',
  'com.microsoft:QGemm',
  'com.microsoft:DynamicQuantizeMatMul',
  'com.microsoft:MatMulIntegerToFloat',
  'DynamicQuantizeLinear',
]);

function opKey(node: INodeProto): string {
  const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
  return domain ? `${domain}:${node.opType}` : (node.opType ?? '');
}

/** Facts about a backbone: I/O, opsets, size, quantization, batch, MACs, embedding. */
export function inspectModel(input: IModelProto | Uint8Array, options: InspectOptions = {}): ModelFacts {
  const model = input instanceof Uint8Array ? parseOnnxModel(input, options.file) : input;
  const graph = model.graph;
  if (!graph) throw new EdgetlError('onnx-parse', `${options.file ?? 'model'}: no graph`, { file: options.file });
  const index = new GraphIndex(graph);
  const shapes = options.shapes ?? inferShapes(model);

  const tensorFacts = (name: string, declaredDims?: Dim[], declaredType?: number): TensorFacts => {
    const inferred = shapes.tensors.get(name);
    const dims = (inferred?.dims ?? declaredDims ?? []).map((d) => (isUnknownDim(d) ? '?' : d));
    return { name, elementType: elementTypeName(inferred?.elementType || declaredType || 0), dims };
  };
  const imageInputs = (graph.input ?? []).filter((i) => i.name && !index.initializers.has(i.name));
  const inputs = imageInputs.map((i) => {
    const declared = declaredTensorInfo(i);
    return tensorFacts(i.name ?? '', declared?.dims, declared?.elementType);
  });
  const outputs = (graph.output ?? []).map((o) => {
    const declared = declaredTensorInfo(o);
    return tensorFacts(o.name ?? '', declared?.dims, declared?.elementType);
  });

  const opCounts: Record<string, number> = {};
  for (const node of graph.node ?? []) {
    const key = opKey(node);
    opCounts[key] = (opCounts[key] ?? 0) + 1;
  }

  let embedding: EmbeddingFacts | null = null;
  let embeddingError: string | undefined;
  try {
    const found: EmbeddingLocation = findEmbedding(model, {
      embeddingTensor: options.embeddingTensor,
      file: options.file,
      shapes,
    });
    embedding = { tensor: found.tensor, dim: found.dim, source: found.source, needsDequantize: found.needsDequantize };
  } catch (error) {
    if (options.embeddingTensor !== undefined || !isEdgetlError(error)) throw error;
    embeddingError = error.message;
  }

  const facts: ModelFacts = {
    inputs,
    outputs,
    irVersion: toNumber(model.irVersion),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    opsets: (model.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: toNumber(o.version) })),
    parameterCount: (graph.initializer ?? []).reduce((sum, t) => sum + tensorElementCount(t), 0),
    quantization: quantizationStyle(opCounts),
    batch: batchOf(index, shapes),
    macsPerImage: macsPerImage(model, index, shapes),
    opCounts,
    nodeCount: (graph.node ?? []).length,
    unsupportedOps: [...shapes.unsupportedOps].sort(),
    embedding,
  };
  if (embeddingError) facts.embeddingError = embeddingError;
  return facts;
}

function quantizationStyle(opCounts: Record<string, number>): ModelFacts['quantization'] {
  if (Object.keys(opCounts).some((op) => QOPERATOR_OPS.has(op))) return 'qoperator';
  if (opCounts.DequantizeLinear) return 'qdq';
  return 'none';
}

/**
 * The declared batch of the image input; a symbolic batch is still fixed when the graph pins it (Reshape constants
 * turn every output's batch into a number).
 */
function batchOf(index: GraphIndex, shapes: ShapeInferenceResult): ModelFacts['batch'] {
  const first = [...index.graphInputs][0];
  const dims = first ? shapes.tensors.get(first)?.dims : undefined;
  if (!dims || dims.length === 0) return 'dynamic';
  if (typeof dims[0] === 'number') return dims[0];
  const outputBatches = index.graphOutputs.map((o) => shapes.tensors.get(o)?.dims?.[0]);
  const numeric = outputBatches.filter((b): b is number => typeof b === 'number');
  if (numeric.length > 0 && numeric.length === outputBatches.length && numeric.every((b) => b === numeric[0]))
    return numeric[0];
  return 'dynamic';
}

/**
 * MACs for one image. A symbolic batch is read as 1 in the shapes already inferred; where that leaves a size unknown
 * (say, a Squeeze without axes), shapes are inferred again with batch 1. Totals are divided by a fixed batch.
 */
function macsPerImage(model: IModelProto, index: GraphIndex, shapes: ShapeInferenceResult): number | null {
  const inputDims: Record<string, Dim[]> = {};
  const batchSymbols = new Set<string>();
  let batch = 1;
  for (const name of index.graphInputs) {
    const dims = shapes.tensors.get(name)?.dims;
    if (!dims || dims.length === 0) continue;
    if (typeof dims[0] === 'number') batch = Math.max(batch, dims[0]);
    else {
      batchSymbols.add(dims[0]);
      inputDims[name] = [1, ...dims.slice(1)];
    }
  }
  const total =
    macsOf(model, shapes, batchSymbols) ??
    (batchSymbols.size > 0 ? macsOf(model, inferShapes(model, { inputDims }), new Set()) : null);
  return total === null ? null : total / batch;
}

/** Sum of the MACs of every Conv/Gemm/MatMul; null when one of their sizes is unknown. */
function macsOf(model: IModelProto, shapes: ShapeInferenceResult, batchSymbols: ReadonlySet<string>): number | null {
  const dims = (name: string | undefined) => (name ? shapes.tensors.get(name)?.dims : undefined);
  const size = (d: Dim[] | undefined) => staticSize(d, batchSymbols);
  let total = 0;
  for (const node of model.graph?.node ?? []) {
    const inputs = node.input ?? [];
    const out = size(dims((node.output ?? [])[0]));
    let macs: number | undefined;
    switch (opKey(node)) {
      case 'Conv':
      case 'ConvInteger':
      case 'com.microsoft:FusedConv': {
        const w = size(dims(inputs[1])?.slice(1));
        macs = out !== undefined && w !== undefined ? out * w : undefined;
        break;
      }
      case 'QLinearConv': {
        const w = size(dims(inputs[3])?.slice(1));
        macs = out !== undefined && w !== undefined ? out * w : undefined;
        break;
      }
      case 'ConvTranspose': {
        const x = size(dims(inputs[0]));
        const w = size(dims(inputs[1])?.slice(1));
        macs = x !== undefined && w !== undefined ? x * w : undefined;
        break;
      }
      case 'Gemm':
      case 'com.microsoft:FusedGemm':
      case 'com.microsoft:QGemm': {
        const a = dims(inputs[0]);
        const transA = (node.attribute ?? []).find((x) => x.name === 'transA');
        const k = a && a.length === 2 ? size([a[transA && toNumber(transA.i) ? 0 : 1]]) : undefined;
        macs = out !== undefined && k !== undefined ? out * k : undefined;
        break;
      }
      case 'MatMul':
      case 'MatMulInteger':
      case 'QLinearMatMul':
      case 'com.microsoft:FusedMatMul':
      case 'com.microsoft:MatMulIntegerToFloat':
      case 'com.microsoft:DynamicQuantizeMatMul': {
        const a = dims(inputs[0]);
        const k = a && a.length > 0 ? size([a[a.length - 1]]) : undefined;
        macs = out !== undefined && k !== undefined ? out * k : undefined;
        break;
      }
      default:
        continue;
    }
    if (macs === undefined) return null;
    total += macs;
  }
  return total;
}
