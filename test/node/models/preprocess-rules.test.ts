// One set of preprocessing rules for every JSON edgetl reads: a head file's backbone.preprocess, an embedding set's
// preprocess and a backbone sidecar's preprocess are checked by the same schema definition
// (src/core/formats/edgetl-preprocess.schema.json), so the same bad value is refused with the same reason, each
// error naming its file and the field.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainHead } from '../../../src/core/heads/train.js';
import { parseHeadFile, serializeHeadFile } from '../../../src/core/formats/head-file.js';
import { readEmbeddingSet, writeEmbeddingSet } from '../../../src/node/embed/embedding-set.js';
import { writeNpyFile } from '../../../src/node/embed/npy-file.js';
import { backboneSpecFor, parseSidecar } from '../../../src/node/models/backbone-spec.js';
import { preprocessOverridesFromFlags } from '../../../src/node/cli/preprocess-flags.js';
import { IMAGENET_224, type PreprocessSpec } from '../../../src/core/preprocess/spec.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { checkPreprocess } from '../../../src/core/formats/format-schemas.js';
import { catalogEntries } from '../../../src/core/models/catalog.js';
import { gaussianClusters } from '../../core/heads/synthetic.js';

const sha256 = 'ab'.repeat(32);
const { data, labels } = gaussianClusters({ perClass: [10, 10], dim: 3, separation: 3, seed: 5 });

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-preprocess-rules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function errorOf(action: () => unknown): Promise<EdgetlError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof EdgetlError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

/** The reason after the field's path inside the preprocessing (`std[1]" must be greater than 0, got 0`). */
function reason(message: string): string {
  const match = /field "(?:backbone\.)?preprocess\.([^"]+)" (.*)$/.exec(message);
  return match ? `${match[1]}: ${match[2]}` : `(no preprocessing field named in: ${message})`;
}

/**
 * Bad values as JSON text (the file a user edits): 1e999 is valid JSON that parses as Infinity. Each is spliced
 * into the preprocessing of a head file, an embedding set and a sidecar.
 */
const BAD: [string, string, string, RegExp][] = [
  ['std 0', 'std', '[0.229, 0, 0.225]', /^std\[1\]: must be greater than 0, got 0$/],
  ['scale -1', 'scale', '-1', /^scale: must be greater than 0, got -1$/],
  ['an infinite scale', 'scale', '1e999', /^scale: must be a finite number, got Infinity$/],
  ['a mean of 2 channels', 'mean', '[0.5, 0.5]', /^mean: must have at least 3 item\(s\), got 2$/],
  ['an unknown layout', 'layout', '"CHW"', /^layout: must be one of "NCHW", "NHWC", got "CHW"$/],
  ['a fractional size', 'width', '22.5', /^width: must be integer, got number 22.5$/],
  ['an unknown field', 'interpolation', '"bicubic"', /^interpolation: is not a known field \(known: layout, width/],
];

/** JSON text of `value` with `"PLACEHOLDER"` replaced by raw text (so 1e999 stays as written). */
function withRaw(value: unknown, raw: string): string {
  return JSON.stringify(value).replace('"PLACEHOLDER"', raw);
}

t.test(
  'the same bad preprocessing is refused identically in a head file, an embedding set and a sidecar',
  async (t) => {
    const dir = await scratch(t);
    const head = JSON.parse(
      (
        await trainHead(data, labels, { backbone: { id: 'tiny', sha256, embeddingDim: 3, preprocess: IMAGENET_224 } })
      ).serialize(),
    );
    await writeNpyFile(join(dir, 'set.npy'), new Float32Array(3), [1, 3]);
    const set = {
      format: 'edgetl-embeddings/1',
      backbone: { id: 'tiny', sha256, embeddingDim: 3 },
      executionProvider: 'cpu',
      classes: null,
      items: [{ path: 'a.jpg', label: null }],
      skipped: [],
    };
    for (const [what, field, raw, expected] of BAD) {
      const preprocess = { ...IMAGENET_224, [field]: 'PLACEHOLDER' };
      const headText = withRaw({ ...head, backbone: { ...head.backbone, preprocess } }, raw);
      const headError = await errorOf(() => parseHeadFile(headText, { file: 'head.json' }));
      await writeFile(join(dir, 'set.json'), withRaw({ ...set, preprocess }, raw));
      const setError = await errorOf(() => readEmbeddingSet(join(dir, 'set')));
      const modelPath = join(dir, `model-${field}.onnx`);
      await writeFile(modelPath, 'not read');
      const sidecar = join(dir, `model-${field}.edgetl.json`);
      await writeFile(sidecar, withRaw({ preprocess: { [field]: 'PLACEHOLDER' } }, raw));
      const sidecarError = await errorOf(() => backboneSpecFor({ path: modelPath }));

      t.match(
        headError.message,
        /^head\.json: head file field "backbone\.preprocess\./,
        `${what}: the head names file, field`,
      );
      t.equal(headError.code, raw === '1e999' ? 'head-nonfinite' : 'head-invalid', `${what}: head code`);
      t.match(
        setError.message,
        new RegExp(`^${join(dir, 'set.json')}: embedding set field "preprocess\\.`),
        `${what}: set`,
      );
      t.equal(setError.code, 'bad-embedding-set');
      t.match(sidecarError.message, new RegExp(`^sidecar ${sidecar}: field "preprocess\\.`), `${what}: sidecar`);
      t.equal(sidecarError.code, 'sidecar-invalid');
      t.equal(sidecarError.file, sidecar);
      const reasons = [headError, setError, sidecarError].map((e) => reason(e.message));
      t.match(reasons[0], expected, `${what}: ${reasons[0]}`);
      t.same(reasons, [reasons[0], reasons[0], reasons[0]], `${what}: the same reason in all three`);
    }
  },
);

t.test('NaN, which JSON cannot hold, is refused the same way where it can arise: writing and flags', async (t) => {
  const dir = await scratch(t);
  const nan: PreprocessSpec = { ...IMAGENET_224, mean: [Number.NaN, 0.456, 0.406] };
  const trained = await trainHead(data, labels, { backbone: { id: 'tiny', sha256, embeddingDim: 3, preprocess: nan } });
  const headError = await errorOf(() => serializeHeadFile(trained.toFileContent()));
  const setError = await errorOf(() =>
    writeEmbeddingSet(join(dir, 'nan'), {
      backbone: { id: 'tiny', sha256, embeddingDim: 3 },
      executionProvider: 'cpu',
      classes: null,
      items: [{ path: 'a.jpg', label: null }],
      skipped: [],
      embeddings: new Float32Array(3),
      preprocess: nan,
    }),
  );
  const sidecarError = await errorOf(() => parseSidecar({ preprocess: { mean: nan.mean } }, 'model.edgetl.json'));
  const reasons = [headError, setError, sidecarError].map((e) => reason(e.message));
  t.equal(reasons[0], 'mean[0]: must be a finite number, got NaN', headError.message);
  t.same(
    reasons,
    [reasons[0], reasons[0], reasons[0]],
    'the same reason when writing a head, a set, or reading a sidecar',
  );
  t.equal(headError.code, 'head-nonfinite');
  t.match(setError.message, /cannot write .*nan\.json/, 'the set is refused before anything is written');
  const flagError = await errorOf(() => preprocessOverridesFromFlags({ std: '0.229,0,0.225' }));
  t.equal(flagError.message, '--std[1] must be greater than 0, got 0', 'a flag is held to the same rule');
});

t.test('good preprocessing still loads everywhere, old heads and catalog recipes included', async (t) => {
  for (const entry of catalogEntries())
    t.same(checkPreprocess(entry.preprocess), [], `catalog ${entry.id}: its recipe passes the shared rules`);
  const tf: PreprocessSpec = { ...IMAGENET_224, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], layout: 'NHWC' };
  const content = (
    await trainHead(data, labels, { backbone: { id: 'tiny', sha256, embeddingDim: 3, preprocess: tf } })
  ).toFileContent();
  t.same(parseHeadFile(serializeHeadFile(content)).backbone.preprocess, tf, 'a TF-style head round-trips');
  t.same(parseSidecar({ preprocess: { resize: 'stretch', resizeTo: 0 } }, 's.json').preprocess, {
    resize: 'stretch',
    resizeTo: 0,
  });
});
