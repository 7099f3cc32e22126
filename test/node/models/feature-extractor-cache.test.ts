import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { fingerprintOf, prepareFeatureExtractor } from '../../../src/node/models/feature-extractor-cache.js';
import { onnx } from '../../../src/core/models/onnx-model.js';
import { SURGERY_VERSION } from '../../../src/core/models/surgery.js';
import { sha256Bytes } from '../../../src/node/util/sha256.js';
import { sharedModel } from '../../helpers/shared.js';
import { tinyTorchvisionLike } from '../../core/models/tiny-models.js';

function temporaryDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgetl-fx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function workspace(t: Test) {
  const dir = temporaryDir(t);
  const source = join(dir, 'tiny.onnx');
  const bytes = onnx.ModelProto.encode(tinyTorchvisionLike()).finish();
  writeFileSync(source, bytes);
  return { dir, source, bytes, cacheDir: join(dir, 'cache') };
}

t.test('writes the extractor under <cache>/extractors/<fingerprint>.onnx and reuses it next time', async (t) => {
  const { source, bytes, cacheDir } = workspace(t);
  const first = await prepareFeatureExtractor(source, { cacheDir });
  t.equal(first.reused, false);
  t.equal(first.path, join(cacheDir, 'extractors', `${first.fingerprint}.onnx`));
  t.equal(first.dim, 4);
  t.equal(first.sourceSha256, sha256Bytes(bytes));
  t.equal(first.sha256, sha256Bytes(readFileSync(first.path)));
  t.match(first.facts, { macsPerImage: 6932, embedding: { tensor: 'pooled', dim: 4 } });
  t.same(readFileSync(source), Buffer.from(bytes), 'the source file is untouched');
  t.same(
    readdirSync(join(cacheDir, 'extractors')).sort(),
    [`${first.fingerprint}.json`, `${first.fingerprint}.onnx`],
    'no temporary files left',
  );

  const mtime = statSync(first.path).mtimeMs;
  const second = await prepareFeatureExtractor(source, { cacheDir });
  t.equal(second.reused, true);
  t.equal(second.fingerprint, first.fingerprint);
  t.equal(second.sha256, first.sha256);
  t.same(second.facts, first.facts);
  t.equal(statSync(first.path).mtimeMs, mtime, 'not rewritten');

  const session = await ort.InferenceSession.create(second.path);
  t.same(session.outputNames, ['embedding']);
  await session.release();
});

t.test('the fingerprint covers the source bytes and the surgery', async (t) => {
  const { source, cacheDir } = workspace(t);
  const auto = await prepareFeatureExtractor(source, { cacheDir });
  const explicit = await prepareFeatureExtractor(source, { cacheDir, embeddingTensor: 'relu' });
  t.not(explicit.fingerprint, auto.fingerprint);
  t.equal(explicit.dim, 256);
  t.equal(explicit.facts.embedding?.source, 'explicit');

  const other = onnx.ModelProto.encode(tinyTorchvisionLike(2)).finish();
  writeFileSync(source, other);
  const changed = await prepareFeatureExtractor(source, { cacheDir });
  t.not(changed.fingerprint, auto.fingerprint, 'a different source file gives a different extractor');
  t.equal(changed.reused, false);
  t.not(fingerprintOf('a'.repeat(64), 'x'), fingerprintOf('b'.repeat(64), 'x'));
  t.ok(SURGERY_VERSION >= 1);
});

t.test('a damaged cache entry is rebuilt', async (t) => {
  const { source, cacheDir } = workspace(t);
  const first = await prepareFeatureExtractor(source, { cacheDir });
  writeFileSync(first.path, readFileSync(first.path).subarray(0, 100));
  const again = await prepareFeatureExtractor(source, { cacheDir });
  t.equal(again.reused, false);
  t.equal(sha256Bytes(readFileSync(again.path)), first.sha256);
});

t.test('errors name the file: missing source, not ONNX, unknown embedding tensor', async (t) => {
  const { dir, source, cacheDir } = workspace(t);
  await t.rejects(prepareFeatureExtractor(join(dir, 'nope.onnx'), { cacheDir }), {
    code: 'model-not-found',
    message: /nope\.onnx.*no such file/,
  });
  const text = join(dir, 'notes.onnx');
  writeFileSync(text, 'hello, not a model');
  await t.rejects(prepareFeatureExtractor(text, { cacheDir }), { code: 'onnx-parse', message: /notes\.onnx/ });
  await t.rejects(prepareFeatureExtractor(source, { cacheDir, embeddingTensor: 'nope' }), {
    code: 'embedding-not-found',
    message: /tiny\.onnx.*"nope"/,
  });
});

t.test('without cacheDir the extractor goes under EDGETL_CACHE_DIR', async (t) => {
  const { dir, source } = workspace(t);
  const saved = process.env.EDGETL_CACHE_DIR;
  process.env.EDGETL_CACHE_DIR = join(dir, 'env-cache');
  t.teardown(() => {
    if (saved === undefined) delete process.env.EDGETL_CACHE_DIR;
    else process.env.EDGETL_CACHE_DIR = saved;
  });
  const prepared = await prepareFeatureExtractor(source);
  t.equal(prepared.path, join(dir, 'env-cache', 'extractors', `${prepared.fingerprint}.onnx`));
});

const int8 = sharedModel('mobilenetv2-12-int8.onnx');
t.test(
  'mobilenetv2-12-int8 (the default backbone): a 1280-d extractor, reused on the second call',
  { skip: int8.skip },
  async (t) => {
    const cacheDir = temporaryDir(t);
    const first = await prepareFeatureExtractor(int8.path!, { cacheDir });
    t.equal(first.dim, 1280);
    t.equal(first.sourceSha256, 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f');
    t.equal(first.facts.quantization, 'qoperator');
    const second = await prepareFeatureExtractor(int8.path!, { cacheDir, sourceSha256: first.sourceSha256 });
    t.equal(second.reused, true);
    t.equal(second.path, first.path);
  },
);
