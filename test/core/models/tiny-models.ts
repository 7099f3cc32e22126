// Tiny classifiers shared by the models tests; every MAC count below is computed by hand.
import { INT64, UINT8, model, node, pseudoRandom, tensor, valueInfo, type DimSpec } from '../../helpers/onnx-graph.js';

/**
 * x [batch,3,size,size] -> Conv 3x3 pad 1 (channels) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (classes) -> Softmax.
 * MACs per image: Conv channels*size*size outputs * 3*3*3, Gemm classes*channels. With the defaults (8, 4, 5):
 * 4*8*8*27 = 6912 + 5*4 = 20: 6932. Parameters: 108 + 4 + 20 + 5 = 137.
 */
export function tinyTorchvisionLike(batch: DimSpec = 'N', { size = 8, channels = 4, classes = 5 } = {}) {
  return model({
    inputs: [valueInfo('x', [batch, 3, size, size])],
    outputs: [valueInfo('probs', [batch, classes])],
    initializers: [
      tensor('conv_w', [channels, 3, 3, 3], pseudoRandom(channels * 27, 3)),
      tensor('conv_b', [channels], pseudoRandom(channels, 4)),
      tensor('fc_w', [classes, channels], pseudoRandom(classes * channels, 5)),
      tensor('fc_b', [classes], pseudoRandom(classes, 6)),
    ],
    nodes: [
      node('Conv', ['x', 'conv_w', 'conv_b'], ['conv'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
      node('Relu', ['conv'], ['relu']),
      node('GlobalAveragePool', ['relu'], ['pooled']),
      node('Flatten', ['pooled'], ['flat'], { axis: 1 }),
      node('Gemm', ['flat', 'fc_w', 'fc_b'], ['logits'], { transB: 1 }),
      node('Softmax', ['logits'], ['probs'], { axis: -1 }),
    ],
  });
}

/** Keras-style: the classifier is a 1x1 Conv over the pooled [N,4,1,1] map, and `features` is already an output. */
export function tinyConvClassifierWithFeatures() {
  return model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('probs', ['N', 5]), valueInfo('features', ['N', 4])],
    initializers: [
      tensor('conv_w', [4, 3, 3, 3], pseudoRandom(108, 3)),
      tensor('cls_w', [5, 4, 1, 1], pseudoRandom(20, 8)),
      tensor('cls_b', [5], pseudoRandom(5, 9)),
      tensor('shape', [2], [-1, 5], INT64),
    ],
    nodes: [
      node('Conv', ['x', 'conv_w'], ['conv'], { pads: [1, 1, 1, 1] }),
      node('Clip', ['conv'], ['act']),
      node('GlobalAveragePool', ['act'], ['gap']),
      node('Conv', ['gap', 'cls_w', 'cls_b'], ['cls']),
      node('Reshape', ['cls', 'shape'], ['logits']),
      node('Softmax', ['logits'], ['probs'], { axis: -1 }),
      node('Flatten', ['gap'], ['features']),
    ],
  });
}

/**
 * QOperator int8 like mobilenetv2-12-int8: QuantizeLinear -> QLinearConv -> QLinearGlobalAveragePool ->
 * Reshape(Shape/Gather/Concat) -> QLinearMatMul -> QLinearAdd -> DequantizeLinear.
 */
export function tinyQOperator() {
  const q = (name: string, dims: number[], seed: number) =>
    tensor(
      name,
      dims,
      Array.from(
        pseudoRandom(
          dims.reduce((a, b) => a * b, 1),
          seed,
        ),
        (v) => Math.round(128 + v * 100),
      ),
      UINT8,
    );
  return model({
    opset: 12,
    domains: { 'com.microsoft': 1 },
    inputs: [valueInfo('x', ['batch', 3, 8, 8])],
    outputs: [valueInfo('y', ['batch', 5])],
    initializers: [
      tensor('x_s', [], [0.02]),
      tensor('x_z', [], [128], UINT8),
      q('w', [4, 3, 3, 3], 11),
      tensor('w_s', [], [0.01]),
      tensor('w_z', [], [128], UINT8),
      tensor('c_s', [], [0.05]),
      tensor('c_z', [], [0], UINT8),
      tensor('p_s', [], [0.03]),
      tensor('p_z', [], [3], UINT8),
      q('fc', [4, 5], 12),
      tensor('fc_s', [], [0.02]),
      tensor('fc_z', [], [128], UINT8),
      tensor('mm_s', [], [0.1]),
      tensor('mm_z', [], [128], UINT8),
      q('bias', [5], 13),
      tensor('bias_s', [], [0.01]),
      tensor('bias_z', [], [128], UINT8),
      tensor('y_s', [], [0.1]),
      tensor('y_z', [], [128], UINT8),
      tensor('zero', [], [0], INT64),
      tensor('minus_one', [1], [-1], INT64),
    ],
    nodes: [
      node('QuantizeLinear', ['x', 'x_s', 'x_z'], ['xq']),
      node('QLinearConv', ['xq', 'x_s', 'x_z', 'w', 'w_s', 'w_z', 'c_s', 'c_z'], ['cq'], {
        pads: [1, 1, 1, 1],
        kernel_shape: [3, 3],
      }),
      node(
        'QLinearGlobalAveragePool',
        ['cq', 'c_s', 'c_z', 'p_s', 'p_z'],
        ['pq'],
        { channels_last: 0 },
        'com.microsoft',
      ),
      node('DequantizeLinear', ['cq', 'c_s', 'c_z'], ['c_float']),
      node('Shape', ['c_float'], ['shape']),
      node('Gather', ['shape', 'zero'], ['n'], { axis: 0 }),
      node('Unsqueeze', ['n'], ['n1'], { axes: [0] }),
      node('Concat', ['n1', 'minus_one'], ['target'], { axis: 0 }),
      node('Reshape', ['pq', 'target'], ['flat_q']),
      node('QLinearMatMul', ['flat_q', 'p_s', 'p_z', 'fc', 'fc_s', 'fc_z', 'mm_s', 'mm_z'], ['mm_q']),
      node(
        'QLinearAdd',
        ['mm_q', 'mm_s', 'mm_z', 'bias', 'bias_s', 'bias_z', 'y_s', 'y_z'],
        ['y_q'],
        {},
        'com.microsoft',
      ),
      node('DequantizeLinear', ['y_q', 'y_s', 'y_z'], ['y']),
    ],
  });
}

/**
 * QDQ like shufflenet-v2-12-qdq: batch fixed at 1, ReduceMean -> Q -> DQ -> MatMul(DQ(weight)) -> Q -> DQ -> Add.
 * MACs: Conv 4*8*8 * 27 = 6912, MatMul 5*4 = 20.
 */
export function tinyQdq() {
  return model({
    opset: 13,
    inputs: [valueInfo('x', [1, 3, 8, 8])],
    outputs: [valueInfo('y', [1, 5])],
    initializers: [
      tensor('s', [], [0.05]),
      tensor('z', [], [128], UINT8),
      tensor(
        'w_q',
        [4, 3, 3, 3],
        Array.from(pseudoRandom(108, 21), (v) => Math.round(128 + v * 100)),
        UINT8,
      ),
      tensor(
        'fc_q',
        [4, 5],
        Array.from(pseudoRandom(20, 22), (v) => Math.round(128 + v * 100)),
        UINT8,
      ),
      tensor('fc_b', [5], pseudoRandom(5, 23)),
      tensor('shape', [4], [1, 4, 8, 8], INT64),
    ],
    nodes: [
      node('QuantizeLinear', ['x', 's', 'z'], ['xq']),
      node('DequantizeLinear', ['xq', 's', 'z'], ['xd']),
      node('DequantizeLinear', ['w_q', 's', 'z'], ['w']),
      node('Conv', ['xd', 'w'], ['conv'], { pads: [1, 1, 1, 1] }),
      node('Reshape', ['conv', 'shape'], ['conv_r']),
      node('ReduceMean', ['conv_r'], ['pooled'], { axes: [2, 3], keepdims: 0 }),
      node('QuantizeLinear', ['pooled', 's', 'z'], ['pooled_q']),
      node('DequantizeLinear', ['pooled_q', 's', 'z'], ['pooled_d']),
      node('DequantizeLinear', ['fc_q', 's', 'z'], ['fc']),
      node('MatMul', ['pooled_d', 'fc'], ['mm']),
      node('QuantizeLinear', ['mm', 's', 'z'], ['mm_q']),
      node('DequantizeLinear', ['mm_q', 's', 'z'], ['mm_d']),
      node('Add', ['mm_d', 'fc_b'], ['y']),
    ],
  });
}

/** MobileNetV3-like head: pooled -> Gemm 4->6 -> HardSwish -> Gemm 6->5. The embedding is the input of the LAST Gemm. */
export function tinyTwoGemmHead() {
  return model({
    opset: 14,
    inputs: [valueInfo('x', ['batch', 3, 8, 8])],
    outputs: [valueInfo('logits', ['batch', 5])],
    initializers: [
      tensor('conv_w', [4, 3, 3, 3], pseudoRandom(108, 31)),
      tensor('g1_w', [6, 4], pseudoRandom(24, 32)),
      tensor('g1_b', [6], pseudoRandom(6, 33)),
      tensor('g2_w', [5, 6], pseudoRandom(30, 34)),
      tensor('g2_b', [5], pseudoRandom(5, 35)),
    ],
    nodes: [
      node('Conv', ['x', 'conv_w'], ['conv'], { pads: [1, 1, 1, 1] }),
      node('HardSwish', ['conv'], ['hs']),
      node('GlobalAveragePool', ['hs'], ['gap']),
      node('Flatten', ['gap'], ['flat']),
      node('Gemm', ['flat', 'g1_w', 'g1_b'], ['g1'], { transB: 1 }),
      node('HardSwish', ['g1'], ['g1_act']),
      node('Gemm', ['g1_act', 'g2_w', 'g2_b'], ['logits'], { transB: 1 }),
    ],
  });
}
