import onnxProto from 'onnx-proto';
import t from 'tap';
import { inferShapes } from '../../../src/core/models/shapes.js';
import { INT64, UINT8, model, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';

const { onnx } = onnxProto;

t.test('Conv and pooling output sizes follow pads, strides, dilations, auto_pad and ceil_mode', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 15, 15])],
    outputs: [valueInfo('p3', undefined)],
    initializers: [tensor('w', [8, 3, 3, 3], pseudoRandom(216)), tensor('dw', [8, 1, 3, 3], pseudoRandom(72))],
    nodes: [
      node('Conv', ['x', 'w'], ['c1'], { pads: [1, 1, 1, 1], strides: [2, 2] }), // (15+2-3)/2+1 = 8
      node('Conv', ['c1', 'dw'], ['c2'], { group: 8, dilations: [2, 2] }), // 8-4 = 4 (no pad: (8-5)/1+1)
      node('Conv', ['x', 'w'], ['c3'], { auto_pad: 'SAME_UPPER', strides: [2, 2] }), // ceil(15/2) = 8
      node('MaxPool', ['x'], ['p1'], { kernel_shape: [3, 3], strides: [2, 2] }), // (15-3)/2+1 = 7
      node('MaxPool', ['x'], ['p2'], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }), // ceil(13/2)+1 = 8
      node('AveragePool', ['c1'], ['p3'], { kernel_shape: [8, 8] }),
    ],
  });
  const { tensors } = inferShapes(m);
  t.same(tensors.get('c1')?.dims, ['N', 8, 8, 8]);
  t.same(tensors.get('c2')?.dims, ['N', 8, 4, 4]);
  t.same(tensors.get('c3')?.dims, ['N', 8, 8, 8]);
  t.same(tensors.get('p1')?.dims, ['N', 3, 7, 7]);
  t.same(tensors.get('p2')?.dims, ['N', 3, 8, 8]);
  t.same(tensors.get('p3')?.dims, ['N', 8, 1, 1]);
});

t.test('a dynamic-batch Reshape built from Shape/Gather/Unsqueeze/Concat resolves to [batch, D]', async (t) => {
  const m = model({
    opset: 12,
    inputs: [valueInfo('x', ['batch', 64, 7, 7])],
    outputs: [valueInfo('flat', undefined)],
    initializers: [tensor('zero', [], [0], INT64), tensor('minus_one', [1], [-1], INT64)],
    nodes: [
      node('GlobalAveragePool', ['x'], ['pooled']),
      node('Shape', ['x'], ['shape']),
      node('Gather', ['shape', 'zero'], ['n'], { axis: 0 }),
      node('Unsqueeze', ['n'], ['n1'], { axes: [0] }),
      node('Concat', ['n1', 'minus_one'], ['target'], { axis: 0 }),
      node('Reshape', ['pooled', 'target'], ['flat']),
    ],
  });
  const { tensors, values } = inferShapes(m);
  t.same(values.get('target'), ['batch', -1]);
  t.same(tensors.get('flat')?.dims, ['batch', 64]);
});

t.test('Gemm, MatMul, Transpose, Split, Squeeze/Unsqueeze (opset 13 inputs), ReduceMean, Flatten', async (t) => {
  const m = model({
    opset: 13,
    inputs: [valueInfo('x', ['N', 6, 4, 4]), valueInfo('seq', ['N', 10, 32])],
    outputs: [valueInfo('g', undefined)],
    initializers: [
      tensor('w', [5, 96], pseudoRandom(480)),
      tensor('m', [32, 16], pseudoRandom(512)),
      tensor('split', [2], [2, 4], INT64),
      tensor('axes', [2], [2, 3], INT64),
      tensor('axis0', [1], [0], INT64),
    ],
    nodes: [
      node('Flatten', ['x'], ['f']),
      node('Gemm', ['f', 'w'], ['g'], { transB: 1 }),
      node('MatMul', ['seq', 'm'], ['mm']),
      node('Transpose', ['x'], ['tr'], { perm: [0, 2, 3, 1] }),
      node('Split', ['x', 'split'], ['s1', 's2'], { axis: 1 }),
      node('ReduceMean', ['x'], ['rm'], { axes: [2, 3], keepdims: 0 }),
      node('ReduceMean', ['x'], ['rk'], { axes: [-1] }),
      node('Unsqueeze', ['rm', 'axes'], ['un']),
      node('Squeeze', ['un', 'axes'], ['sq']),
      node('Unsqueeze', ['rm', 'axis0'], ['u0']),
    ],
  });
  const { tensors } = inferShapes(m);
  t.same(tensors.get('f')?.dims, ['N', 96]);
  t.same(tensors.get('g')?.dims, ['N', 5]);
  t.same(tensors.get('mm')?.dims, ['N', 10, 16]);
  t.same(tensors.get('tr')?.dims, ['N', 4, 4, 6]);
  t.same(tensors.get('s1')?.dims, ['N', 2, 4, 4]);
  t.same(tensors.get('s2')?.dims, ['N', 4, 4, 4]);
  t.same(tensors.get('rm')?.dims, ['N', 6]);
  t.same(tensors.get('rk')?.dims, ['N', 6, 4, 1]);
  t.same(tensors.get('un')?.dims, ['N', 6, 1, 1]);
  t.same(tensors.get('sq')?.dims, ['N', 6]);
  t.same(tensors.get('u0')?.dims, [1, 'N', 6]);
});

t.test(
  'quantized ops keep their integer element types (QuantizeLinear, QLinearConv, QLinearGlobalAveragePool)',
  async (t) => {
    const m = model({
      opset: 13,
      domains: { 'com.microsoft': 1 },
      inputs: [valueInfo('x', ['N', 3, 8, 8])],
      outputs: [valueInfo('y', undefined)],
      initializers: [
        tensor('s', [], [0.05]),
        tensor('z', [], [128], UINT8),
        tensor(
          'w',
          [4, 3, 1, 1],
          Array.from({ length: 12 }, (_, i) => 120 + i),
          UINT8,
        ),
      ],
      nodes: [
        node('QuantizeLinear', ['x', 's', 'z'], ['xq']),
        node('QLinearConv', ['xq', 's', 'z', 'w', 's', 'z', 's', 'z'], ['cq']),
        node('QLinearGlobalAveragePool', ['cq', 's', 'z', 's', 'z'], ['pq'], { channels_last: 0 }, 'com.microsoft'),
        node('DequantizeLinear', ['pq', 's', 'z'], ['y']),
      ],
    });
    const { tensors } = inferShapes(m);
    t.same(tensors.get('xq'), { elementType: UINT8, dims: ['N', 3, 8, 8] });
    t.same(tensors.get('cq'), { elementType: UINT8, dims: ['N', 4, 8, 8] });
    t.same(tensors.get('pq'), { elementType: UINT8, dims: ['N', 4, 1, 1] });
    t.same(tensors.get('y'), { elementType: 1, dims: ['N', 4, 1, 1] });
  },
);

t.test('ops without a rule fall back to declared value_info and are reported', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 4])],
    outputs: [valueInfo('y', ['N', 9])],
    nodes: [node('MysteryOp', ['x'], ['y'], {}, 'com.example')],
    domains: { 'com.example': 1 },
  });
  const { tensors, unsupportedOps } = inferShapes(m);
  t.same(tensors.get('y')?.dims, ['N', 9]);
  t.ok(unsupportedOps.has('com.example:MysteryOp'));
});

t.test('an op without a rule has explicitly unknown outputs (no declared value_info), and is reported', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 4])],
    outputs: [valueInfo('z', undefined)],
    nodes: [node('MysteryOp', ['x'], ['y'], {}, 'com.example'), node('Relu', ['y'], ['z'])],
    domains: { 'com.example': 1 },
  });
  const { tensors, unsupportedOps } = inferShapes(m);
  t.same(tensors.get('y'), { elementType: 0, dims: undefined });
  t.equal(tensors.get('z')?.dims, undefined, 'what follows an unknown tensor stays unknown');
  t.same([...unsupportedOps], ['com.example:MysteryOp']);
});

t.test('two inferences of one model give the same symbols for unknown dims (no state kept between runs)', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('r', undefined)],
    nodes: [node('Shape', ['x'], ['s']), node('Range', ['x', 'x', 'x'], ['r'])],
  });
  const first = inferShapes(m).tensors.get('r')?.dims;
  const second = inferShapes(m).tensors.get('r')?.dims;
  t.equal(first?.length, 1);
  t.same(second, first);
});

t.test('a malformed node fails the inference naming the node (errors are not swallowed)', async (t) => {
  const broken = tensor('c', [1], [4], INT64);
  broken.dims = [4]; // four int64 values announced, eight bytes of data
  const m = model({
    inputs: [valueInfo('x', ['N', 4])],
    outputs: [valueInfo('y', undefined)],
    nodes: [node('Constant', [], ['shape'], {}), node('Reshape', ['x', 'shape'], ['y'])],
  });
  const constantNode = m.graph?.node?.[0];
  if (!constantNode) throw new Error('test graph has no Constant node');
  constantNode.attribute = [
    onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: broken }),
  ];
  t.throws(() => inferShapes(m), { code: 'onnx-parse', message: /node Constant_shape \(Constant\)/ });
});
