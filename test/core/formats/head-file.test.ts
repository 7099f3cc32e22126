import t, { type Test } from 'tap';
import { trainHead } from '../../../src/core/heads/train.js';
import { Head } from '../../../src/core/heads/head.js';
import { parseHeadFile, serializeHeadFile } from '../../../src/core/formats/head-file.js';
import { checkFormat } from '../../../src/core/formats/format-schemas.js';
import { encodeBase64, decodeBase64 } from '../../../src/core/formats/base64.js';
import { sha256Hex } from '../../../src/core/formats/sha256.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { gaussianClusters } from '../heads/synthetic.js';
import { asVersion1 } from '../../helpers/head-v1.js';

// The schemas through the loader's own validator (format-schemas.ts): the same Ajv set-up and $refs.
const validate = (doc: unknown) => checkFormat('headV2', doc);
const validateV1 = (doc: unknown) => checkFormat('headV1', doc);
const backbone = { id: 'tiny-test', sha256: 'ab'.repeat(32), embeddingDim: 24, preprocess: IMAGENET_224 };
const { data, labels } = gaussianClusters({ perClass: [30, 25, 20], dim: 24, separation: 3, seed: 9 });

async function trained(type: 'linear' | 'mlp' | 'prototype', extra: Parameters<typeof trainHead>[2] = {}) {
  return trainHead(data, labels, {
    type,
    backbone,
    seed: 3,
    rejectRate: 0.05,
    mlp: { epochs: 20, hidden: [16, 8] },
    ...extra,
  });
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

t.test('every head type round-trips: schema-valid file, same labels, near-identical probabilities', async (t) => {
  for (const type of ['linear', 'mlp', 'prototype'] as const) {
    const head = await trained(type);
    const text = head.serialize();
    const doc = JSON.parse(text);
    t.same(validate(doc), [], `${type}: valid against the JSON Schema`);
    const loaded = Head.parse(text, { backbone });
    t.same(loaded.labels, head.labels);
    t.equal(loaded.type, type);
    t.equal(loaded.temperature, head.temperature);
    t.same(loaded.rejection, head.rejection);
    t.same(loaded.backbone.preprocess, IMAGENET_224);
    t.same(loaded.training.counts, { c0: 30, c1: 25, c2: 20 });
    const before = head.probabilities(data);
    const after = loaded.probabilities(data);
    t.ok(
      maxDifference(before, after) < 5e-3,
      `${type}: float16 weights move probabilities by ${maxDifference(before, after)}`,
    );
    const exact = Head.parse(head.serialize({ dtype: 'float32' }));
    t.equal(maxDifference(head.probabilities(data), exact.probabilities(data)), 0, `${type}: float32 storage is exact`);
    t.equal(
      Head.parse(loaded.serialize()).serialize(),
      loaded.serialize(),
      `${type}: re-serializing a loaded head is stable`,
    );
  }
});

t.test('file size stays within 1.4 x raw float16 weight bytes + 16 KB', async (t) => {
  const wide = gaussianClusters({ perClass: Array.from({ length: 100 }, () => 3), dim: 1280, separation: 3, seed: 1 });
  for (const [name, head] of [
    ['linear 2 classes x 24', await trained('linear')],
    ['prototype 2 classes', await trained('prototype')],
    ['mlp', await trained('mlp')],
    [
      'linear 100 classes x 1280',
      await trainHead(wide.data, wide.labels, { l2: 1e-2, calibrate: false, maxIterations: 3, seed: 0 }),
    ],
  ] as const) {
    const text = head.serialize();
    const values = head.toFileContent().tensors.reduce((sum, tensor) => sum + tensor.data.length, 0);
    const limit = 1.4 * values * 2 + 16 * 1024;
    t.ok(text.length <= limit, `${name}: ${text.length} bytes <= ${Math.round(limit)}`);
  }
});

/** Tap's t.throws treats a function as a class; this checks the thrown error with a predicate. */
function throwsMatching(t: Test, fn: () => unknown, check: (error: unknown) => boolean, what: string): void {
  try {
    fn();
    t.fail(`${what}: did not throw`);
  } catch (error) {
    t.ok(check(error), `${what}: ${(error as Error).message}`);
  }
}

/** Re-serialize a document after editing it, keeping the checksum right unless told otherwise. */
function edited(text: string, edit: (doc: Record<string, any>) => void): string {
  const doc = JSON.parse(text);
  edit(doc);
  return JSON.stringify(doc);
}

function rechecksum(doc: Record<string, any>, bytes: Uint8Array): void {
  doc.weights.data = encodeBase64(bytes);
  doc.weights.byteLength = bytes.length;
  doc.weights.checksum = `sha256:${sha256Hex(bytes)}`;
}

t.test('loading names the field of every problem', async (t) => {
  const head = await trained('linear', { normalization: 'standardize' });
  const good = head.serialize();
  const expectError = (text: string, code: string, field: RegExp, what: string) => {
    throwsMatching(
      t,
      () => parseHeadFile(text, { file: 'head.json' }),
      (error: unknown) =>
        error instanceof EdgetlError &&
        error.code === code &&
        field.test(error.message) &&
        error.message.startsWith('head.json: '),
      what,
    );
    // the schema agrees that the broken files (other than checksum/shape/backbone checks it cannot express) are bad
  };
  expectError('{not json', 'head-format', /invalid JSON/, 'not JSON');
  expectError(
    edited(good, (d) => (d.format = 'something-else')),
    'head-format',
    /"format"/,
    'unknown format',
  );
  expectError(
    edited(good, (d) => (d.version = 3)),
    'head-version',
    /"version".*upgrade edgetl/,
    'newer version',
  );
  expectError(
    edited(good, (d) => delete d.labels),
    'head-labels',
    /"labels"/,
    'no labels',
  );
  expectError(
    edited(good, (d) => d.labels.pop()),
    'head-labels',
    /("weights\.tensors\[\d\]\.shape".*linear\.weight.*2 labels|"openSet\.memoryClasses\[\d+\]" is 2, but the head has 2 labels)/,
    'labels do not match the weights',
  );
  expectError(
    edited(good, (d) => (d.openSet.threshold = 3)),
    'head-invalid',
    /"openSet\.threshold"/,
    'outlier threshold beyond a cosine distance',
  );
  expectError(
    edited(good, (d) => d.openSet.memoryClasses.pop()),
    'head-invalid',
    /"openSet\.memoryWeights"/,
    'memory classes and weights disagree',
  );
  expectError(
    edited(good, (d) => (d.openSet.method = 'magic')),
    'head-invalid',
    /"openSet\.method"/,
    'unknown open-set method',
  );
  expectError(
    edited(good, (d) => (d.version = 1)),
    'head-invalid',
    /"openSet" is a version 2 field/,
    'a version 1 file with a version 2 section',
  );
  expectError(
    edited(good, (d) => (d.labels[1] = d.labels[0])),
    'head-labels',
    /"labels\[1\]" repeats/,
    'duplicate label',
  );
  expectError(
    edited(good, (d) => (d.backbone.embeddingDim = 25)),
    'head-shape',
    /"weights\.tensors\[0\]\.shape".*normalization\.mean/,
    'embedding size does not match the weights',
  );
  expectError(
    edited(good, (d) => (d.backbone.sha256 = 'xyz')),
    'head-invalid',
    /"backbone\.sha256"/,
    'malformed sha256',
  );
  expectError(
    edited(good, (d) => (d.type = 'forest')),
    'head-invalid',
    /"type"/,
    'unknown head type',
  );
  expectError(
    edited(good, (d) => (d.calibration.temperature = -1)),
    'head-invalid',
    /"calibration\.temperature"/,
    'negative temperature',
  );
  expectError(
    edited(good, (d) => (d.rejection = { threshold: 2, rate: 0.05 })),
    'head-invalid',
    /"rejection\.threshold"/,
    'threshold above 1',
  );
  expectError(
    edited(good, (d) => (d.training.seed = 'x')),
    'head-invalid',
    /"training\.seed"/,
    'bad seed',
  );
  expectError(
    edited(good, (d) => (d.weights.tensors[1].shape = [99])),
    'head-shape',
    /"weights\.tensors\[1\]\.shape"/,
    'wrong vector shape',
  );
  expectError(
    edited(good, (d) => (d.weights.tensors[2].offset += 2)),
    'head-shape',
    /"weights\.tensors\[2\]\.offset"/,
    'bad offset',
  );
  expectError(
    edited(good, (d) => (d.weights.tensors[2].name = 'linear.extra')),
    'head-shape',
    /"weights\.tensors\[2\]\.name"/,
    'unknown tensor',
  );
  expectError(
    edited(good, (d) => d.weights.tensors.pop()),
    'head-shape',
    /"weights\.(tensors|byteLength)"/,
    'missing tensor',
  );
  expectError(
    edited(good, (d) => (d.weights.data = d.weights.data.slice(0, -4) + '!!!!')),
    'head-invalid',
    /"weights\.data" is not valid base64/,
    'bad base64',
  );
  expectError(
    edited(good, (d) => {
      const bytes = decodeBase64(d.weights.data)!;
      bytes[bytes.length - 1] ^= 1;
      d.weights.data = encodeBase64(bytes);
    }),
    'head-checksum',
    /"weights\.checksum" does not match/,
    'a flipped bit fails the checksum',
  );
  expectError(
    edited(good, (d) => {
      const bytes = decodeBase64(d.weights.data)!;
      const offset = d.weights.tensors[2].offset;
      bytes[offset + 1] = 0x7c; // float16 +Infinity in linear.weight[0]
      bytes[offset] = 0x00;
      rechecksum(d, bytes);
    }),
    'head-nonfinite',
    /"weights\.tensors\[2\] \("linear\.weight"\)" holds a non-finite value \(Infinity\) at index 0/,
    'Infinity in the weights',
  );
  expectError(
    edited(good, (d) => {
      const bytes = decodeBase64(d.weights.data)!;
      new DataView(bytes.buffer).setFloat32(d.weights.tensors[1].offset, 0, true);
      rechecksum(d, bytes);
    }),
    'head-invalid',
    /normalization\.std.*positive/,
    'zero standard deviation',
  );
  throwsMatching(
    t,
    () => Head.parse(good, { backbone: { id: 'other', sha256: 'cd'.repeat(32) } }),
    (error: unknown) =>
      error instanceof EdgetlError &&
      error.code === 'head-backbone-mismatch' &&
      /"backbone\.sha256".*tiny-test.*other/.test(error.message),
    'a different backbone is refused, naming both',
  );
  throwsMatching(
    t,
    () => Head.parse(good, { backbone: { sha256: 'ab'.repeat(32), embeddingDim: 1280 } }),
    (error: unknown) =>
      error instanceof EdgetlError &&
      error.code === 'head-backbone-mismatch' &&
      /"backbone\.embeddingDim"/.test(error.message),
    'a backbone with another embedding size is refused',
  );
  t.doesNotThrow(
    () => Head.parse(good, { backbone: { sha256: 'AB'.repeat(32), embeddingDim: 24 } }),
    'the same backbone (any hex case) loads',
  );

  for (const broken of [
    edited(good, (d) => (d.format = 'x')),
    edited(good, (d) => (d.version = 3)),
    edited(good, (d) => (d.weights.checksum = 'md5:1')),
    edited(good, (d) => (d.openSet.threshold = 3)),
  ]) {
    t.not(validate(JSON.parse(broken)).length, 0, 'the schema rejects it too');
  }
});

t.test('writing refuses values a float16 cannot hold, naming the tensor', async (t) => {
  const head = await trained('linear', { normalization: 'none' });
  const content = head.toFileContent();
  content.tensors.find((x) => x.name === 'linear.weight')!.data[3] = 70000;
  t.throws(
    () => serializeHeadFile(content),
    /tensor "linear\.weight" value 70000 at index 3 is beyond the float16 range; write with dtype float32/,
  );
  t.doesNotThrow(() => serializeHeadFile(content, { dtype: 'float32' }));
  content.tensors.find((x) => x.name === 'linear.bias')!.data[0] = NaN;
  t.throws(() => serializeHeadFile(content, { dtype: 'float32' }), /tensor "linear\.bias" holds a non-finite value/);
});

t.test('version 1 files still load: no outlierScore, one warning, same probabilities', async (t) => {
  for (const type of ['linear', 'mlp', 'prototype'] as const) {
    const head = await trained(type);
    const v1 = asVersion1(head.serialize());
    t.same(validateV1(JSON.parse(v1)), [], `${type}: the converted file is valid version 1`);
    const loaded = Head.parse(v1, { file: 'old.json' });
    t.equal(loaded.warnings.length, 1, `${type}: one warning`);
    t.match(loaded.warnings[0], /old\.json.*no open-set data.*no outlierScore/);
    t.equal(loaded.openSet, null);
    const prediction = loaded.predict(data.subarray(0, 24));
    t.notOk('outlierScore' in prediction, `${type}: predictions carry no outlierScore`);
    t.equal(prediction.closest, prediction.label, 'closest is still there');
    t.ok(
      maxDifference(Head.parse(head.serialize()).probabilities(data), loaded.probabilities(data)) === 0,
      `${type}: same probabilities as the version 2 file`,
    );
    t.equal(JSON.parse(loaded.serialize()).version, 2, 'saving writes version 2');
    t.equal(
      Head.parse(head.serialize()).warnings.length,
      0,
      `${type}: a version 2 file with open-set data loads without warnings`,
    );
  }
});

t.test('the open-set section round-trips: memory, threshold and outlier scores survive float16 storage', async (t) => {
  for (const type of ['linear', 'mlp', 'prototype'] as const) {
    const head = await trained(type);
    const loaded = Head.parse(head.serialize());
    t.ok(loaded.openSet, `${type}: has open-set data`);
    t.equal(loaded.openSet!.threshold, head.openSet!.threshold);
    t.same(loaded.openSet!.memoryClasses, head.openSet!.memoryClasses);
    t.ok(
      maxDifference(head.outlierScores(data)!, loaded.outlierScores(data)!) < 2e-3,
      `${type}: outlier scores move by ${maxDifference(head.outlierScores(data)!, loaded.outlierScores(data)!)}`,
    );
  }
});
