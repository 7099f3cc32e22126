import t from 'tap';
import { trainHead } from '../../../src/core/heads/train.js';
import { Head } from '../../../src/core/heads/head.js';
import { decodeBase64, encodeBase64 } from '../../../src/core/formats/base64.js';
import { sha256Hex } from '../../../src/core/formats/sha256.js';
import { decodeTensor, encodeTensor, encodedByteLength } from '../../../src/core/formats/tensor-encoding.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { checkFormat } from '../../../src/core/formats/format-schemas.js';
import { gaussianClusters } from '../heads/synthetic.js';

const backbone = { id: 'tiny-test', sha256: 'ab'.repeat(32), embeddingDim: 24, preprocess: IMAGENET_224 };
const { data, labels } = gaussianClusters({ perClass: [30, 25, 20], dim: 24, separation: 3, seed: 9 });

t.test(
  'int8 with per-row scales: each value within half its row scale, rows scaled independently, zero rows stay zero',
  async (t) => {
    const shape = [3, 5];
    const values = Float32Array.from([0.1, -0.5, 0.25, 0.7, -0.01, 100, -300, 50, 12.5, 299, 0, 0, 0, 0, 0]);
    const length = encodedByteLength('int8', shape);
    t.equal(length, 3 * 4 + 15, 'three float32 scales, then one byte per value');
    const view = new DataView(new ArrayBuffer(length + 3));
    encodeTensor(view, 3, 'int8', 'w', shape, values);
    const decoded = decodeTensor(view, 3, 'int8', shape);
    if (!('data' in decoded)) throw new Error('decode failed');
    for (let r = 0; r < 3; r++) {
      const row = values.subarray(r * 5, r * 5 + 5);
      const scale = Math.max(...Array.from(row, Math.abs)) / 127;
      for (let c = 0; c < 5; c++) {
        const error = Math.abs(decoded.data[r * 5 + c] - row[c]);
        t.ok(
          error <= scale / 2 + 1e-6 * Math.abs(row[c]),
          `row ${r} value ${c}: error ${error} <= half the row scale ${scale / 2}`,
        );
      }
    }
    t.equal(decoded.data[6], -300, 'the largest magnitude of a row is exact');
    t.same(Array.from(decoded.data.subarray(10)), [0, 0, 0, 0, 0]);
    const small = Math.abs(decoded.data[4] - values[4]);
    t.ok(small < 0.004, `a small row keeps its own fine scale (error ${small}), not the large row's`);
    view.setFloat32(3 + 4, Number.NaN, true);
    t.match(decodeTensor(view, 3, 'int8', shape), { bad: 5 }, 'a NaN row scale is reported at the row start');
  },
);

t.test(
  'head files with --dtype int8: schema-valid, about a quarter of float32 weights, probabilities close',
  async (t) => {
    for (const type of ['linear', 'mlp', 'prototype'] as const) {
      const head = await trainHead(data, labels, { type, backbone, seed: 3, mlp: { epochs: 20, hidden: [16, 8] } });
      const int8 = head.serialize({ dtype: 'int8' });
      const doc = JSON.parse(int8);
      t.same(checkFormat('headV2', doc), [], `${type}: valid against the JSON Schema`);
      const weights = doc.weights.tensors.filter(
        (entry: { name: string }) =>
          !entry.name.endsWith('.bias') &&
          !entry.name.startsWith('normalization.') &&
          !entry.name.startsWith('openSet.') &&
          !entry.name.startsWith('adaptation.'),
      );
      t.ok(
        weights.every((entry: { dtype: string }) => entry.dtype === 'int8'),
        `${type}: weight matrices are int8`,
      );
      t.ok(
        doc.weights.tensors
          .filter((e: { name: string }) => e.name.endsWith('.bias'))
          .every((e: { dtype: string }) => e.dtype === 'float32'),
        'biases stay float32',
      );
      const matrixBytes = weights.reduce(
        (sum: number, e: { shape: number[] }) => sum + encodedByteLength('int8', e.shape),
        0,
      );
      const matrixValues = weights.reduce(
        (sum: number, e: { shape: number[] }) => sum + e.shape.reduce((a, b) => a * b, 1),
        0,
      );
      t.ok(
        matrixBytes < 0.35 * 4 * matrixValues,
        `${type}: weight matrices take ${matrixBytes} bytes against ${4 * matrixValues} as float32`,
      );
      t.ok(
        doc.weights.byteLength < JSON.parse(head.serialize()).weights.byteLength,
        `${type}: smaller than the float16 default`,
      );
      const loaded = Head.parse(int8, { backbone });
      const before = head.probabilities(data);
      const after = loaded.probabilities(data);
      let worst = 0;
      for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i] - after[i]));
      t.ok(worst < 0.05, `${type}: int8 weights move probabilities by ${worst.toFixed(4)} at most`);
      t.equal(
        Head.parse(loaded.serialize({ dtype: 'int8' })).serialize({ dtype: 'int8' }),
        loaded.serialize({ dtype: 'int8' }),
        `${type}: re-serializing an int8 head is stable`,
      );
    }
  },
);

t.test('an int8 tensor that runs past the data, or a damaged scale, is refused naming the tensor', async (t) => {
  const head = await trainHead(data, labels, { type: 'linear', backbone, seed: 3 });
  const doc = JSON.parse(head.serialize({ dtype: 'int8' }));
  const index = doc.weights.tensors.findIndex((e: { name: string }) => e.name === 'linear.weight');
  const bytes = decodeBase64(doc.weights.data)!;
  new DataView(bytes.buffer, bytes.byteOffset).setFloat32(
    doc.weights.tensors[index].offset,
    Number.POSITIVE_INFINITY,
    true,
  );
  doc.weights.data = encodeBase64(bytes);
  doc.weights.checksum = `sha256:${sha256Hex(bytes)}`;
  t.throws(() => Head.parse(JSON.stringify(doc), { file: 'h.json' }), {
    code: 'head-nonfinite',
    message:
      /h\.json: head file field "weights\.tensors\[\d\] \("linear\.weight"\)" holds a non-finite value \(Infinity\) at index 0 \(a row scale\)/,
  });
  const wrongType = JSON.parse(head.serialize({ dtype: 'int8' }));
  wrongType.weights.tensors[index].dtype = 'int4';
  t.throws(
    () => Head.parse(JSON.stringify(wrongType)),
    /dtype" must be one of "float16", "float32", "int8", got "int4"/,
  );
});
