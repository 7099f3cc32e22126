// Finding the last block (float and int8 QOperator graphs) and the graphs built at its cut, run on onnxruntime.
import t from 'tap';
import ort from 'onnxruntime-node';
import { findLastBlock } from '../../../src/core/models/last-block.js';
import { buildAdaptedExtractor, buildCutExtractor, cutPixels } from '../../../src/core/models/last-block-graph.js';
import { blockForward } from '../../../src/core/heads/last-block.js';
import { jsDenseMath } from '../../../src/core/heads/dense-math.js';
import { encodeOnnxModel, type IModelProto } from '../../../src/core/models/onnx-model.js';
import { INT32, UINT8, model, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';
import { tinyTorchvisionLike } from './tiny-models.js';

/** x [N,3,6,6] -> Quantize -> QLinearConv 1x1 3->4 (per-channel weights) -> QLinearGlobalAveragePool -> DQ -> Gemm. */
function tinyInt8LastBlock() {
  const weights = Array.from(pseudoRandom(12, 31), (v) => Math.round(v * 100));
  return model({
    opset: 13,
    domains: { 'com.microsoft': 1 },
    inputs: [valueInfo('x', ['N', 3, 6, 6])],
    outputs: [valueInfo('y', ['N', 2])],
    initializers: [
      tensor('x_s', [], [0.02]),
      tensor('x_z', [], [128], UINT8),
      tensor('w', [4, 3, 1, 1], weights, 3),
      tensor('w_s', [4], [0.01, 0.02, 0.015, 0.01]),
      tensor('w_z', [4], [0, 0, 0, 0], 3),
      tensor('b', [4], [100, -50, 0, 20], INT32),
      tensor('c_s', [], [0.004]),
      tensor('c_z', [], [0], UINT8),
      tensor('p_s', [], [0.005]),
      tensor('p_z', [], [0], UINT8),
      tensor('fc_w', [2, 4], pseudoRandom(8, 32)),
      tensor('fc_b', [2], [0, 0]),
    ],
    nodes: [
      node('QuantizeLinear', ['x', 'x_s', 'x_z'], ['xq']),
      node('QLinearConv', ['xq', 'x_s', 'x_z', 'w', 'w_s', 'w_z', 'c_s', 'c_z', 'b'], ['cq'], { kernel_shape: [1, 1] }),
      node(
        'QLinearGlobalAveragePool',
        ['cq', 'c_s', 'c_z', 'p_s', 'p_z'],
        ['pq'],
        { channels_last: 0 },
        'com.microsoft',
      ),
      node('DequantizeLinear', ['pq', 'p_s', 'p_z'], ['pooled']),
      node('Flatten', ['pooled'], ['features'], { axis: 1 }),
      node('Gemm', ['features', 'fc_w', 'fc_b'], ['y'], { transB: 1 }),
    ],
  });
}

async function run(bytes: Uint8Array, input: Float32Array, dims: number[], output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
  const data = Float32Array.from(result[output].data as Float32Array);
  await session.release();
  return data;
}

/** The source graph with its (dequantized) pooled tensor as an extra output, for reference values. */
function withOutput(m: IModelProto, name: string): Uint8Array {
  const copy = { ...m, graph: { ...m.graph!, output: [...m.graph!.output!, valueInfo(name, undefined)] } };
  return encodeOnnxModel(copy);
}

t.test(
  'int8 QOperator: the block is found, its weights dequantized, and the adapted graph reproduces the int8 embedding',
  async (t) => {
    const m = tinyInt8LastBlock();
    const block = findLastBlock(m);
    t.equal(block.cutTensor, 'xq');
    t.same(block.cutQuantization, { scale: 'x_s', zeroPoint: 'x_z' });
    t.equal(block.inputChannels, 3);
    t.equal(block.outputChannels, 4);
    t.same(
      block.activation,
      { kind: 'clip', min: 0, max: 255 * Math.fround(0.004) },
      'the output quantization range is the activation',
    );
    t.ok(
      Math.abs(block.weight[3] - pseudoRandom(12, 31).map((v) => Math.round(v * 100))[3] * 0.02) < 1e-6,
      'per-channel weight scale applied',
    );
    t.ok(Math.abs(block.bias[1] - -50 * 0.02 * 0.02) < 1e-7, 'int32 bias dequantized with x_scale * w_scale');
    const pixels = cutPixels(m, block, 'x', [1, 3, 6, 6]);
    t.equal(pixels, 36);

    const x = Float32Array.from(pseudoRandom(2 * 3 * 36, 33), (v) => v * 2);
    const reference = await run(withOutput(m, 'pooled'), x, [2, 3, 6, 6], 'pooled');
    const adapted = buildAdaptedExtractor(m, block, {
      cutTensor: block.cutTensor,
      inputChannels: 3,
      outputChannels: 4,
      activation: block.activation,
      weight: block.weight,
      bias: block.bias,
    });
    const embedding = await run(adapted.bytes, x, [2, 3, 6, 6], 'embedding');
    const worst = embedding.reduce((w, v, i) => Math.max(w, Math.abs(v - reference[i])), 0);
    t.ok(
      worst <= 0.004 + 0.005,
      `the float block matches the int8 pool within one quantization step of each (worst ${worst.toFixed(5)})`,
    );

    // the cut extractor gives pixel-major activations; the TypeScript forward pass on them equals the adapted graph
    const cut = await run(buildCutExtractor(m, block, pixels).bytes, x, [2, 3, 6, 6], 'embedding');
    t.equal(cut.length, 2 * 36 * 3);
    const { pooled } = await blockForward(
      { weight: block.weight, bias: block.bias, inputs: 3, outputs: 4, activation: block.activation },
      cut,
      2,
      pixels,
      jsDenseMath,
    );
    const gap = pooled.reduce((w, v, i) => Math.max(w, Math.abs(v - embedding[i])), 0);
    t.ok(gap < 1e-5, `training-time forward = adapted graph (worst ${gap.toExponential(2)})`);
  },
);

t.test('graphs whose pool is not fed by a 1x1 conv are refused with the reason', async (t) => {
  t.throws(() => findLastBlock(tinyTorchvisionLike()), { code: 'last-block-unsupported', message: /has padding/ });
});
