/**
 * A tiny "classifier" built in the test: input [N,3,S,S] -> GlobalAveragePool -> Flatten (or a Reshape with a
 * constant shape, which pins the batch like the zoo's ShuffleNet) -> Gemm (2 classes).
 * Its embedding is the input of the Gemm: the per-channel mean of the input tensor. So for a solid-colour image the
 * expected embedding is the normalized colour, computable by hand.
 */
import {
  onnx,
  encodeOnnxModel,
  ElementType,
  type IModelProto,
  type INodeProto,
} from '../../../src/core/models/onnx-model.js';

export interface TinyOptions {
  size?: number;
  /** Pin the batch to this size (input dim and a Reshape constant). */
  fixedBatch?: number;
}

function valueInfo(name: string, dims: (number | string)[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType: ElementType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function tinyClassifier(options: TinyOptions = {}): Uint8Array {
  const size = options.size ?? 8;
  const batch: number | string = options.fixedBatch ?? 'batch';
  const nodes: INodeProto[] = [{ opType: 'GlobalAveragePool', input: ['input'], output: ['pooled'], name: 'pool' }];
  const initializers = [
    { name: 'W', dims: [2, 3], dataType: ElementType.FLOAT, floatData: [1, 0, -1, 0.5, 0.5, 0.5] },
    { name: 'B', dims: [2], dataType: ElementType.FLOAT, floatData: [0.1, -0.1] },
  ];
  if (options.fixedBatch !== undefined) {
    initializers.push({
      name: 'shape',
      dims: [2],
      dataType: ElementType.INT64,
      int64Data: [options.fixedBatch, 3],
    } as never);
    nodes.push({ opType: 'Reshape', input: ['pooled', 'shape'], output: ['features'], name: 'reshape' });
  } else {
    nodes.push({
      opType: 'Flatten',
      input: ['pooled'],
      output: ['features'],
      name: 'flatten',
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
    });
  }
  nodes.push({
    opType: 'Gemm',
    input: ['features', 'W', 'B'],
    output: ['logits'],
    name: 'classifier',
    attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
  });
  const model: IModelProto = {
    irVersion: 8,
    producerName: 'edgetl-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny',
      node: nodes,
      initializer: initializers,
      input: [valueInfo('input', [batch, 3, size, size])],
      output: [valueInfo('logits', [batch, 2])],
    },
  };
  return encodeOnnxModel(model);
}

/** ImageNet normalization of a solid colour: the tiny backbone's embedding of that image. */
export function normalizedColour(rgb: [number, number, number]): number[] {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  return rgb.map((v, c) => Math.fround((v * (1 / 255) - mean[c]!) / std[c]!));
}
