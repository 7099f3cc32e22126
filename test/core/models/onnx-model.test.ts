import t from 'tap';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import {
  encodeOnnxModel,
  parseOnnxModel,
  readFloatTensor,
  readIntegerTensor,
  unknownFieldCount,
} from '../../../src/core/models/onnx-model.js';
import { isEdgetlError } from '../../../src/core/util/errors.js';
import { sharedModel } from '../../helpers/shared.js';
import { INT64, modelBytes, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';

function tinyModelBytes(): Uint8Array {
  return modelBytes({
    inputs: [valueInfo('x', ['N', 4])],
    outputs: [valueInfo('y', ['N', 2])],
    initializers: [tensor('w', [2, 4], pseudoRandom(8)), tensor('b', [2], [0.5, -0.5])],
    nodes: [node('Gemm', ['x', 'w', 'b'], ['y'], { transB: 1 })],
  });
}

t.test('parses a model and reads its typed tensors', async (t) => {
  const model = parseOnnxModel(tinyModelBytes(), 'tiny.onnx');
  t.equal(model.graph?.node?.[0].opType, 'Gemm');
  const b = model.graph!.initializer!.find((i) => i.name === 'b')!;
  t.same(Array.from(readFloatTensor(b)!), [0.5, -0.5]);
  const shape = tensor('s', [3], [1, -1, 7], INT64);
  t.same(readIntegerTensor(shape), [1, -1, 7]);
  t.equal(readFloatTensor(shape), undefined, 'integer tensors are not read as floats');
  t.equal(unknownFieldCount(model), 0);
});

t.test('non-ONNX input fails with an error naming the file', async (t) => {
  const cases: [string, Uint8Array][] = [
    ['empty.onnx', new Uint8Array(0)],
    ['photo.jpg', Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46])],
    ['text.onnx', new TextEncoder().encode('this is not a model at all, just words')],
    ['truncated.onnx', tinyModelBytes().subarray(0, 40)],
  ];
  for (const [file, bytes] of cases) {
    try {
      parseOnnxModel(bytes, file);
      t.fail(`${file} should not parse`);
    } catch (error) {
      t.ok(isEdgetlError(error), `${file}: EdgetlError`);
      t.match((error as Error).message, file, `${file}: message names the file`);
      t.equal((error as { code?: string }).code, 'onnx-parse');
    }
  }
});

t.test('fields newer than the schema are counted and block re-encoding', async (t) => {
  const bytes = tinyModelBytes();
  // Append field 99 (varint 1) to the top-level ModelProto: valid protobuf, unknown to an IR 8 schema.
  const withUnknown = new Uint8Array(bytes.length + 3);
  withUnknown.set(bytes);
  withUnknown.set([0x98, 0x06, 0x01], bytes.length);
  const model = parseOnnxModel(withUnknown, 'future.onnx');
  t.equal(unknownFieldCount(model), 1);
  t.throws(() => encodeOnnxModel(model), { code: 'onnx-schema' });
  t.doesNotThrow(() => encodeOnnxModel(parseOnnxModel(bytes)));
});

const sharedFiles = [
  'mobilenetv2-12-int8.onnx',
  'shufflenet-v2-12-qdq.onnx',
  'mobilenet-v1-0.25-224.fp32.onnx',
  'resnet8-cifar10.fp32.onnx',
  'arch-only/efficientnet_b0.arch-only.onnx',
  'arch-only/mobilenet_v3_large.arch-only.onnx',
  'arch-only/resnet50.arch-only.onnx',
];

for (const file of sharedFiles) {
  const shared = sharedModel(file);
  t.test(
    `${file}: parse + encode keeps every field and onnxruntime gives identical outputs`,
    { skip: shared.skip },
    async (t) => {
      const original = readFileSync(shared.path!);
      const model = parseOnnxModel(original, file);
      t.equal(unknownFieldCount(model), 0, 'the schema knows every field');
      const reencoded = encodeOnnxModel(model);
      // The only byte-level difference allowed is packed vs unpacked repeated ints, so the size stays close.
      t.ok(Math.abs(reencoded.length - original.length) < 1000, `size ${reencoded.length} vs ${original.length}`);
      const a = await ort.InferenceSession.create(original);
      const b = await ort.InferenceSession.create(reencoded);
      const inputName = a.inputNames[0];
      const size = file.startsWith('resnet8') ? 32 : 224;
      const data = pseudoRandom(3 * size * size, 7).map((v) => v * 2);
      const feeds = { [inputName]: new ort.Tensor('float32', data, [1, 3, size, size]) };
      const [ra, rb] = [await a.run(feeds), await b.run(feeds)];
      t.same(b.outputNames, a.outputNames);
      for (const name of a.outputNames) {
        t.same(
          Array.from(rb[name].data as Float32Array),
          Array.from(ra[name].data as Float32Array),
          `${name} identical`,
        );
      }
      await a.release();
      await b.release();
    },
  );
}
