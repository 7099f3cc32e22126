/**
 * One deployable ONNX graph: the backbone cut at its embedding (the feature-extractor surgery), then the head's
 * normalization, the head itself (linear, MLP or prototype), temperature and softmax. Outputs:
 *   probabilities  float32 [N, classes]  what `edgetl predict` reports (before the rejection threshold)
 *   embedding      float32 [N, dim]      the raw backbone embedding, as `edgetl embed` gives it
 * Labels, the preprocessing, the head's rejection threshold and the edgetl version ride in metadata_props, so plain
 * onnxruntime in any language can run the file and read what it needs. Runtime-neutral: a model message in,
 * bytes out; only standard ONNX ops (opset 7+) are added, none whose signature changed between opsets.
 */
import { EdgetlError } from '../util/errors.js';
import type { Head } from '../heads/head.js';
import { prototypeDirections } from '../heads/prototype.js';
import type { PreprocessSpec } from '../preprocess/spec.js';
import type { EmbeddingLocation } from './embedding.js';
import {
  ElementType,
  encodeOnnxModel,
  onnx,
  type IModelProto,
  type INodeProto,
  type ITensorProto,
  type IValueInfoProto,
} from './onnx-model.js';
import { EMBEDDING_OUTPUT, UniqueNames, featureExtractorModel } from './surgery.js';

export const PROBABILITIES_OUTPUT = 'probabilities';

/** metadata_props keys of a merged model. */
export const MERGED_METADATA = {
  format: 'edgetl.format',
  version: 'edgetl.version',
  labels: 'edgetl.labels',
  preprocess: 'edgetl.preprocess',
  headType: 'edgetl.head.type',
  temperature: 'edgetl.head.temperature',
  rejection: 'edgetl.head.rejection',
  backbone: 'edgetl.backbone',
  outputs: 'edgetl.outputs',
} as const;

export const MERGED_FORMAT = 'edgetl-merged/1';

export interface MergedModelOptions {
  head: Head;
  /** Preprocessing the backbone is run with (what the feature pass of `edgetl predict` uses). */
  preprocess: PreprocessSpec;
  edgetlVersion: string;
  /** The backbone's name for the metadata (catalog id or file name). */
  backboneId: string;
  backboneSha256: string;
}

export interface MergedModel {
  bytes: Uint8Array;
  classes: number;
  dim: number;
  /** The batch dimension of both outputs: a number for a fixed-batch backbone, else its symbol. */
  batch: string | number;
  /** metadata_props written, as key -> value. */
  metadata: Record<string, string>;
}

const INT = onnx.AttributeProto.AttributeType.INT;

type Attribute = ReturnType<typeof onnx.AttributeProto.create>;

/**
 * The head's nodes and initializers, appended after the backbone's, with fresh names that cannot clash with its
 * tensors. Only standard ops whose signature is the same in every opset from 7 on.
 */
class HeadGraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private onesName: string | undefined;

  constructor(
    private readonly names: UniqueNames,
    private readonly dim: number,
  ) {}

  constant(base: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.names.fresh(`edgetl_head_${base}`);
    this.initializers.push(
      onnx.TensorProto.create({ name, dims, dataType: ElementType.FLOAT, rawData: floatBytes(values) }),
    );
    return name;
  }

  op(opType: string, inputs: string[], base: string, attributes: Attribute[] = [], output?: string): string {
    const out = output ?? this.names.fresh(`edgetl_head_${base}`);
    this.nodes.push(
      onnx.NodeProto.create({
        name: this.names.fresh(`edgetl_head_${base}_node`),
        opType,
        input: inputs,
        output: [out],
        attribute: attributes,
      }),
    );
    return out;
  }

  /** A [dim, 1] column of ones, made on first use. */
  ones(): string {
    this.onesName ??= this.constant('ones', [this.dim, 1], new Float32Array(this.dim).fill(1));
    return this.onesName;
  }

  // x / max(||x||, tiny) row by row: a zero row stays zero, as l2NormalizeInPlace leaves it. The sum of squares is a
  // MatMul with ones rather than ReduceSumSquare, whose axes moved from attribute to input in opset 18.
  l2Normalize(x: string, base: string): string {
    const squares = this.op('Mul', [x, x], `${base}_squares`);
    const sum = this.op('MatMul', [squares, this.ones()], `${base}_sum`);
    const norm = this.op('Sqrt', [sum], `${base}_norm`);
    const safe = this.op('Max', [norm, this.constant(`${base}_tiny`, [], [1e-30])], `${base}_safe`);
    return this.op('Div', [x, safe], `${base}_unit`);
  }

  gemm(
    input: string,
    weight: Float32Array,
    rows: number,
    cols: number,
    bias: Float32Array | undefined,
    base: string,
  ): string {
    const inputs = [input, this.constant(`${base}_weight`, [rows, cols], weight)];
    if (bias) inputs.push(this.constant(`${base}_bias`, [rows], bias));
    return this.op('Gemm', inputs, base, [onnx.AttributeProto.create({ name: 'transB', type: INT, i: 1 })]);
  }

  /** The tanh form of GELU, as heads/head.ts computes it (the Gelu op only exists from opset 20). */
  gelu(x: string, base: string): string {
    const cube = this.op('Mul', [this.op('Mul', [x, x], `${base}_square`), x], `${base}_cube`);
    const inner = this.op(
      'Add',
      [x, this.op('Mul', [cube, this.constant(`${base}_c`, [], [0.044715])], `${base}_scaled_cube`)],
      `${base}_inner`,
    );
    const tanh = this.op(
      'Tanh',
      [this.op('Mul', [inner, this.constant(`${base}_k`, [], [Math.sqrt(2 / Math.PI)])], `${base}_tanh_in`)],
      `${base}_tanh`,
    );
    const gate = this.op(
      'Mul',
      [
        this.op('Add', [tanh, this.constant(`${base}_one`, [], [1])], `${base}_one_plus`),
        this.constant(`${base}_half`, [], [0.5]),
      ],
      `${base}_gate`,
    );
    return this.op('Mul', [x, gate], `${base}_gelu`);
  }
}

/** The head's normalization of the embedding `x`. */
function normalizationNodes(builder: HeadGraphBuilder, head: Head, x: string, dim: number): string {
  const normalization = head.normalization;
  if (normalization.kind === 'standardize') {
    const centered = builder.op('Sub', [x, builder.constant('mean', [dim], normalization.mean)], 'centered');
    return builder.op('Div', [centered, builder.constant('std', [dim], normalization.std)], 'standardized');
  }
  if (normalization.kind === 'l2') return builder.l2Normalize(x, 'l2');
  return x;
}

/** The head's logits of the normalized embedding `x`: linear, prototype (cosine) or MLP. */
function logitNodes(builder: HeadGraphBuilder, head: Head, x: string, dim: number): string {
  const classes = head.classCount;
  const weights = head.weights;
  if (weights.type === 'linear') return builder.gemm(x, weights.weight, classes, dim, weights.bias, 'linear');
  if (weights.type === 'prototype') {
    const unit = builder.l2Normalize(x, 'prototype');
    return builder.gemm(unit, prototypeDirections(weights), classes, dim, undefined, 'prototype');
  }
  let activations = x;
  weights.layers.forEach((layer, l) => {
    activations = builder.gemm(activations, layer.weight, layer.outputs, layer.inputs, layer.bias, `mlp_${l}`);
    if (l === weights.layers.length - 1) return;
    activations =
      weights.activation === 'relu'
        ? builder.op('Relu', [activations], `mlp_${l}_relu`)
        : builder.gelu(activations, `mlp_${l}`);
  });
  return activations;
}

/** The probabilities output's type: [batch of the embedding output, classes]. */
function probabilitiesOutputFor(
  embeddingOutput: IValueInfoProto,
  classes: number,
): { info: IValueInfoProto; batchName: string | number } {
  const batch =
    embeddingOutput.type?.tensorType?.shape?.dim?.[0] ?? onnx.TensorShapeProto.Dimension.create({ dimParam: 'N' });
  const batchName: string | number = batch.dimValue ? Number(batch.dimValue) : batch.dimParam || 'N';
  const info: IValueInfoProto = onnx.ValueInfoProto.create({
    name: PROBABILITIES_OUTPUT,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: ElementType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: [batch, onnx.TensorShapeProto.Dimension.create({ dimValue: classes })],
        }),
      }),
    }),
  });
  return { info, batchName };
}

function mergedMetadata(
  options: MergedModelOptions,
  shape: { dim: number; classes: number; batchName: string | number },
  surgery: string,
): Record<string, string> {
  const { head } = options;
  const { dim, classes, batchName } = shape;
  return {
    [MERGED_METADATA.format]: MERGED_FORMAT,
    [MERGED_METADATA.version]: options.edgetlVersion,
    [MERGED_METADATA.labels]: JSON.stringify(head.labels),
    [MERGED_METADATA.preprocess]: JSON.stringify(options.preprocess),
    [MERGED_METADATA.headType]: head.type,
    [MERGED_METADATA.temperature]: String(head.temperature),
    [MERGED_METADATA.rejection]: JSON.stringify(head.rejection),
    [MERGED_METADATA.backbone]: JSON.stringify({
      id: options.backboneId,
      sha256: options.backboneSha256,
      embeddingDim: dim,
      surgery,
    }),
    [MERGED_METADATA.outputs]: JSON.stringify({
      [PROBABILITIES_OUTPUT]: [batchName, classes],
      [EMBEDDING_OUTPUT]: [batchName, dim],
    }),
  };
}

/** Build the merged model of `source` (the backbone as published) cut at `embedding`, and `options.head`. */
export function buildMergedModel(
  source: IModelProto,
  embedding: EmbeddingLocation,
  options: MergedModelOptions,
): MergedModel {
  const { head } = options;
  if (head.embeddingDim !== embedding.dim) {
    throw new EdgetlError(
      'head-backbone-mismatch',
      `the head expects ${head.embeddingDim}-d embeddings but the backbone's embedding "${embedding.tensor}" is ${embedding.dim}-d`,
    );
  }
  const { model: extractor, description } = featureExtractorModel(source, embedding);
  const graph = extractor.graph!;
  const names = new UniqueNames(graph);
  if (names.fresh(PROBABILITIES_OUTPUT) !== PROBABILITIES_OUTPUT) {
    throw new EdgetlError(
      'onnx-export',
      `the backbone graph already has a tensor "${PROBABILITIES_OUTPUT}" the embedding depends on; the merged model cannot name its output so`,
    );
  }
  const dim = embedding.dim;
  const classes = head.classCount;
  const builder = new HeadGraphBuilder(names, dim);
  const logits = logitNodes(builder, head, normalizationNodes(builder, head, EMBEDDING_OUTPUT, dim), dim);
  const scaled = builder.op(
    'Mul',
    [logits, builder.constant('inverse_temperature', [], [1 / head.temperature])],
    'calibrated',
  );
  // axis 1 of a 2-d tensor: the same softmax under the opset < 13 and the opset >= 13 definitions.
  builder.op(
    'Softmax',
    [scaled],
    'softmax',
    [onnx.AttributeProto.create({ name: 'axis', type: INT, i: 1 })],
    PROBABILITIES_OUTPUT,
  );

  const embeddingOutput = graph.output![0]!;
  const { info: probabilitiesOutput, batchName } = probabilitiesOutputFor(embeddingOutput, classes);
  const metadata = mergedMetadata(options, { dim, classes, batchName }, description);
  const merged: IModelProto = onnx.ModelProto.create({
    ...extractor,
    producerName: 'edgetl',
    producerVersion: options.edgetlVersion,
    docString: `edgetl merged model: ${options.backboneId} cut at "${embedding.tensor}" + ${head.type} head (${classes} classes: ${head.labels.join(', ')}). Outputs ${PROBABILITIES_OUTPUT} [N, ${classes}] and ${EMBEDDING_OUTPUT} [N, ${dim}].`,
    graph: onnx.GraphProto.create({
      ...graph,
      name: `${graph.name ?? 'model'}_edgetl`,
      node: [...(graph.node ?? []), ...builder.nodes],
      initializer: [...(graph.initializer ?? []), ...builder.initializers],
      output: [probabilitiesOutput, embeddingOutput],
    }),
    metadataProps: [
      ...(extractor.metadataProps ?? []),
      ...Object.entries(metadata).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value })),
    ],
  });
  return { bytes: encodeOnnxModel(merged), classes, dim, batch: batchName, metadata };
}

function floatBytes(values: ArrayLike<number>): Uint8Array {
  const data = Float32Array.from(values);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
