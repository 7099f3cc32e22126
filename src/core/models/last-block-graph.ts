/**
 * The two graphs fine-tuning needs, both made by the feature-extractor surgery (models/surgery.ts) on the source
 * model with a few nodes appended at the cut:
 *  - the cut extractor: backbone up to the last block's input, float, laid out pixel-major
 *    ([N, H*W*C]: each pixel's channels contiguous), which is what the block's matrix products read;
 *  - the adapted extractor: cut backbone -> adapted 1x1 conv -> activation -> global average pool -> `embedding`,
 *    which any onnxruntime provider runs at inference time.
 * Runtime-neutral.
 */
import { EdgetlError } from '../util/errors.js';
import { sha256Hex } from '../formats/sha256.js';
import { findLastBlock, type BlockActivation, type LastBlock } from './last-block.js';
import { ElementType, onnx, opsetVersion, type IModelProto, type INodeProto, type ITensorProto } from './onnx-model.js';
import { inferShapes } from './shapes.js';
import { buildFeatureExtractor, type FeatureExtractor } from './surgery.js';

/** What the adapted block holds: the weights the head file carries and the cut they apply at. */
export interface AdaptedBlockWeights {
  cutTensor: string;
  inputChannels: number;
  outputChannels: number;
  activation: BlockActivation;
  /** [outputChannels, inputChannels] */
  weight: Float32Array;
  bias: Float32Array;
}

const PREFIX = 'edgetl_block';

function floatTensor(name: string, dims: number[], values: Float32Array): ITensorProto {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: ElementType.FLOAT,
    rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  });
}

function withTail(model: IModelProto, nodes: INodeProto[], initializers: ITensorProto[]): IModelProto {
  const graph = model.graph!;
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      ...graph,
      node: [...(graph.node ?? []), ...nodes],
      initializer: [...(graph.initializer ?? []), ...initializers],
    }),
  });
}

/** The float value of the cut tensor: the tensor itself, or a DequantizeLinear of it. */
function floatCut(
  block: Pick<LastBlock, 'cutTensor' | 'cutQuantization'>,
  model: IModelProto,
): { tensor: string; nodes: INodeProto[] } {
  if (!block.cutQuantization) return { tensor: block.cutTensor, nodes: [] };
  if (opsetVersion(model, '') < 10) throw new EdgetlError('onnx-opset', 'DequantizeLinear needs opset >= 10');
  const { scale, zeroPoint } = block.cutQuantization;
  const tensor = `${PREFIX}_cut_float`;
  return {
    tensor,
    nodes: [
      onnx.NodeProto.create({
        name: `${PREFIX}_dequantize`,
        opType: 'DequantizeLinear',
        input: zeroPoint ? [block.cutTensor, scale, zeroPoint] : [block.cutTensor, scale],
        output: [tensor],
      }),
    ],
  };
}

/** Pixels (H*W) of the cut tensor when the model's image input has `inputDims` (e.g. [1, 3, 224, 224]). */
export function cutPixels(
  model: IModelProto,
  block: Pick<LastBlock, 'cutTensor'>,
  inputName: string,
  inputDims: number[],
): number {
  const shapes = inferShapes(model, { inputDims: { [inputName]: inputDims } });
  const dims = shapes.tensors.get(block.cutTensor)?.dims;
  if (dims?.length !== 4 || typeof dims[2] !== 'number' || typeof dims[3] !== 'number') {
    throw new EdgetlError(
      'last-block-unsupported',
      `cannot tell the spatial size of the cut tensor "${block.cutTensor}" for input [${inputDims}] (got [${dims ?? '?'}])`,
    );
  }
  return dims[2] * dims[3];
}

/** Backbone up to the last block, output `embedding` [N, pixels * channels] float, pixel-major. */
export function buildCutExtractor(model: IModelProto, block: LastBlock, pixels: number): FeatureExtractor {
  const cut = floatCut(block, model);
  const pixelMajor = `${PREFIX}_cut_nhwc`;
  const transpose = onnx.NodeProto.create({
    name: `${PREFIX}_cut_transpose`,
    opType: 'Transpose',
    input: [cut.tensor],
    output: [pixelMajor],
    attribute: [
      onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 2, 3, 1] }),
    ],
  });
  const extended = withTail(model, [...cut.nodes, transpose], []);
  const extractor = buildFeatureExtractor(extended, {
    tensor: pixelMajor,
    dim: pixels * block.inputChannels,
    source: 'explicit',
    needsDequantize: false,
    elementType: ElementType.FLOAT,
    batchDim: 'N',
  });
  return {
    ...extractor,
    description: `${extractor.description}; last-block cut at "${block.cutTensor}" (${block.description}), pixel-major`,
  };
}

/** A short identity of adapted weights, for fingerprints and cache keys. */
export function adaptedWeightsHash(weights: AdaptedBlockWeights): string {
  const bytes = new Uint8Array(weights.weight.byteLength + weights.bias.byteLength);
  bytes.set(new Uint8Array(weights.weight.buffer, weights.weight.byteOffset, weights.weight.byteLength));
  bytes.set(
    new Uint8Array(weights.bias.buffer, weights.bias.byteOffset, weights.bias.byteLength),
    weights.weight.byteLength,
  );
  return sha256Hex(bytes).slice(0, 16);
}

function activationNodes(
  activation: BlockActivation,
  input: string,
  output: string,
): { nodes: INodeProto[]; initializers: ITensorProto[] } {
  if (activation.kind === 'swish') {
    const sigmoid = `${PREFIX}_sigmoid`;
    return {
      nodes: [
        onnx.NodeProto.create({ name: `${PREFIX}_sigmoid`, opType: 'Sigmoid', input: [input], output: [sigmoid] }),
        onnx.NodeProto.create({ name: `${PREFIX}_swish`, opType: 'Mul', input: [input, sigmoid], output: [output] }),
      ],
      initializers: [],
    };
  }
  const min = `${PREFIX}_clip_min`;
  const max = `${PREFIX}_clip_max`;
  return {
    nodes: [
      onnx.NodeProto.create({ name: `${PREFIX}_clip`, opType: 'Clip', input: [input, min, max], output: [output] }),
    ],
    initializers: [
      onnx.TensorProto.create({
        name: min,
        dims: [],
        dataType: ElementType.FLOAT,
        floatData: [Number.isFinite(activation.min) ? activation.min : -3.4e38],
      }),
      onnx.TensorProto.create({
        name: max,
        dims: [],
        dataType: ElementType.FLOAT,
        floatData: [Number.isFinite(activation.max) ? activation.max : 3.4e38],
      }),
    ],
  };
}

/**
 * Cut backbone -> adapted block -> pool: output `embedding` [N, outputChannels]. `block` is the source graph's
 * own last block (found again in the model, so the cut and its quantization come from the file actually run).
 */
export function buildAdaptedExtractor(
  model: IModelProto,
  block: LastBlock,
  weights: AdaptedBlockWeights,
): FeatureExtractor {
  if (
    block.cutTensor !== weights.cutTensor ||
    block.inputChannels !== weights.inputChannels ||
    block.outputChannels !== weights.outputChannels
  ) {
    throw new EdgetlError(
      'head-backbone-mismatch',
      `the adapted block cuts at "${weights.cutTensor}" (${weights.inputChannels}->${weights.outputChannels}) but this backbone's last block reads "${block.cutTensor}" (${block.inputChannels}->${block.outputChannels})`,
    );
  }
  if (opsetVersion(model, '') < 11)
    throw new EdgetlError('onnx-opset', 'the adapted block needs opset >= 11 (Clip with tensor bounds)');
  const cut = floatCut(block, model);
  const convOut = `${PREFIX}_conv`;
  const activated = `${PREFIX}_activated`;
  const pooled = `${PREFIX}_pooled`;
  const w = `${PREFIX}_weight`;
  const b = `${PREFIX}_bias`;
  const act = activationNodes(weights.activation, convOut, activated);
  const nodes = [
    ...cut.nodes,
    onnx.NodeProto.create({
      name: `${PREFIX}_conv`,
      opType: 'Conv',
      input: [cut.tensor, w, b],
      output: [convOut],
      attribute: [
        onnx.AttributeProto.create({
          name: 'kernel_shape',
          type: onnx.AttributeProto.AttributeType.INTS,
          ints: [1, 1],
        }),
      ],
    }),
    ...act.nodes,
    onnx.NodeProto.create({
      name: `${PREFIX}_pool`,
      opType: 'GlobalAveragePool',
      input: [activated],
      output: [pooled],
    }),
  ];
  const initializers = [
    floatTensor(w, [weights.outputChannels, weights.inputChannels, 1, 1], weights.weight),
    floatTensor(b, [weights.outputChannels], weights.bias),
    ...act.initializers,
  ];
  const extractor = buildFeatureExtractor(withTail(model, nodes, initializers), {
    tensor: pooled,
    dim: weights.outputChannels,
    source: 'explicit',
    needsDequantize: false,
    elementType: ElementType.FLOAT,
    batchDim: 'N',
  });
  return {
    ...extractor,
    description: `${extractor.description}; adapted last block at "${block.cutTensor}" (weights ${adaptedWeightsHash(weights)})`,
  };
}

/** What Backbone.load takes to run another graph than the plain extractor (see models/feature-extractor-cache.ts). */
export interface BlockSurgery {
  description: string;
  build(model: IModelProto): FeatureExtractor;
}

/** The last-block cut as a backbone surgery: the backbone then "embeds" images as their activations at the cut. */
export function cutSurgery(pixels: number): BlockSurgery {
  return {
    description: `last-block cut v1, ${pixels} pixels, pixel-major`,
    build: (model) => buildCutExtractor(model, findLastBlock(model), pixels),
  };
}

/** The adapted block as a backbone surgery: the backbone then embeds images through the fine-tuned block. */
export function adaptedSurgery(weights: AdaptedBlockWeights): BlockSurgery {
  const activation =
    weights.activation.kind === 'swish' ? 'swish' : `clip ${weights.activation.min} ${weights.activation.max}`;
  return {
    description: `adapted last block v1 at "${weights.cutTensor}" ${weights.inputChannels}->${weights.outputChannels} ${activation}, weights ${adaptedWeightsHash(weights)}`,
    build: (model) => buildAdaptedExtractor(model, findLastBlock(model), weights),
  };
}
