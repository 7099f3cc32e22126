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
  const nodes: INodeProto[] = [];
  const initializers: ITensorProto[] = [];
  const dim = embedding.dim;
  const classes = head.classCount;

  const constant = (base: string, dims: number[], values: ArrayLike<number>): string => {
    const name = names.fresh(`edgetl_head_${base}`);
    initializers.push(
      onnx.TensorProto.create({ name, dims, dataType: ElementType.FLOAT, rawData: floatBytes(values) }),
    );
    return name;
  };
  const op = (
    opType: string,
    inputs: string[],
    base: string,
    attributes: ReturnType<typeof onnx.AttributeProto.create>[] = [],
    output?: string,
  ): string => {
    const out = output ?? names.fresh(`edgetl_head_${base}`);
    nodes.push(
      onnx.NodeProto.create({
        name: names.fresh(`edgetl_head_${base}_node`),
        opType,
        input: inputs,
        output: [out],
        attribute: attributes,
      }),
    );
    return out;
  };
  const ones = (() => {
    let name: string | undefined;
    return () => (name ??= constant('ones', [dim, 1], new Float32Array(dim).fill(1)));
  })();
  // x / max(||x||, tiny) row by row: a zero row stays zero, as l2NormalizeInPlace leaves it. The sum of squares is a
  // MatMul with ones rather than ReduceSumSquare, whose axes moved from attribute to input in opset 18.
  const l2Normalize = (x: string, base: string): string => {
    const squares = op('Mul', [x, x], `${base}_squares`);
    const sum = op('MatMul', [squares, ones()], `${base}_sum`);
    const norm = op('Sqrt', [sum], `${base}_norm`);
    const safe = op('Max', [norm, constant(`${base}_tiny`, [], [1e-30])], `${base}_safe`);
    return op('Div', [x, safe], `${base}_unit`);
  };

  let x = EMBEDDING_OUTPUT;
  const normalization = head.normalization;
  if (normalization.kind === 'standardize') {
    x = op('Sub', [x, constant('mean', [dim], normalization.mean)], 'centered');
    x = op('Div', [x, constant('std', [dim], normalization.std)], 'standardized');
  } else if (normalization.kind === 'l2') {
    x = l2Normalize(x, 'l2');
  }

  const gemm = (
    input: string,
    weight: Float32Array,
    rows: number,
    cols: number,
    bias: Float32Array | undefined,
    base: string,
  ): string => {
    const inputs = [input, constant(`${base}_weight`, [rows, cols], weight)];
    if (bias) inputs.push(constant(`${base}_bias`, [rows], bias));
    return op('Gemm', inputs, base, [onnx.AttributeProto.create({ name: 'transB', type: INT, i: 1 })]);
  };
  let logits: string;
  const weights = head.weights;
  if (weights.type === 'linear') {
    logits = gemm(x, weights.weight, classes, dim, weights.bias, 'linear');
  } else if (weights.type === 'prototype') {
    const unit = l2Normalize(x, 'prototype');
    logits = gemm(unit, prototypeDirections(weights), classes, dim, undefined, 'prototype');
  } else {
    let activations = x;
    weights.layers.forEach((layer, l) => {
      activations = gemm(activations, layer.weight, layer.outputs, layer.inputs, layer.bias, `mlp_${l}`);
      if (l === weights.layers.length - 1) return;
      if (weights.activation === 'relu') {
        activations = op('Relu', [activations], `mlp_${l}_relu`);
      } else {
        // The tanh form of GELU, as heads/head.ts computes it (the Gelu op only exists from opset 20).
        const cube = op(
          'Mul',
          [op('Mul', [activations, activations], `mlp_${l}_square`), activations],
          `mlp_${l}_cube`,
        );
        const inner = op(
          'Add',
          [activations, op('Mul', [cube, constant(`mlp_${l}_c`, [], [0.044715])], `mlp_${l}_scaled_cube`)],
          `mlp_${l}_inner`,
        );
        const tanh = op(
          'Tanh',
          [op('Mul', [inner, constant(`mlp_${l}_k`, [], [Math.sqrt(2 / Math.PI)])], `mlp_${l}_tanh_in`)],
          `mlp_${l}_tanh`,
        );
        const gate = op(
          'Mul',
          [
            op('Add', [tanh, constant(`mlp_${l}_one`, [], [1])], `mlp_${l}_one_plus`),
            constant(`mlp_${l}_half`, [], [0.5]),
          ],
          `mlp_${l}_gate`,
        );
        activations = op('Mul', [activations, gate], `mlp_${l}_gelu`);
      }
    });
    logits = activations;
  }
  const scaled = op('Mul', [logits, constant('inverse_temperature', [], [1 / head.temperature])], 'calibrated');
  // axis 1 of a 2-d tensor: the same softmax under the opset < 13 and the opset >= 13 definitions.
  op(
    'Softmax',
    [scaled],
    'softmax',
    [onnx.AttributeProto.create({ name: 'axis', type: INT, i: 1 })],
    PROBABILITIES_OUTPUT,
  );

  const embeddingOutput = graph.output![0]!;
  const batch =
    embeddingOutput.type?.tensorType?.shape?.dim?.[0] ?? onnx.TensorShapeProto.Dimension.create({ dimParam: 'N' });
  const batchName: string | number = batch.dimValue ? Number(batch.dimValue) : batch.dimParam || 'N';
  const probabilitiesOutput: IValueInfoProto = onnx.ValueInfoProto.create({
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

  const metadata: Record<string, string> = {
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
      surgery: description,
    }),
    [MERGED_METADATA.outputs]: JSON.stringify({
      [PROBABILITIES_OUTPUT]: [batchName, classes],
      [EMBEDDING_OUTPUT]: [batchName, dim],
    }),
  };
  const merged: IModelProto = onnx.ModelProto.create({
    ...extractor,
    producerName: 'edgetl',
    producerVersion: options.edgetlVersion,
    docString: `edgetl merged model: ${options.backboneId} cut at "${embedding.tensor}" + ${head.type} head (${classes} classes: ${head.labels.join(', ')}). Outputs ${PROBABILITIES_OUTPUT} [N, ${classes}] and ${EMBEDDING_OUTPUT} [N, ${dim}].`,
    graph: onnx.GraphProto.create({
      ...graph,
      name: `${graph.name ?? 'model'}_edgetl`,
      node: [...(graph.node ?? []), ...nodes],
      initializer: [...(graph.initializer ?? []), ...initializers],
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
