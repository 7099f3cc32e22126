import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backboneSpecFor, layoutFromInputDims, sidecarPathsFor } from '../../../src/node/models/backbone-spec.js';
import { preprocessOverridesFromFlags } from '../../../src/node/cli/preprocess-flags.js';
import { inCliTerms } from '../../../src/node/cli/common.js';
import { IMAGENET_224, type PreprocessSpec } from '../../../src/core/preprocess/spec.js';
import type { CatalogEntry } from '../../../src/core/models/catalog-types.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'edgetl-spec-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** A fresh model path (the file itself is never read) with an optional sidecar. */
function model(sidecar?: unknown): string {
  const path = join(dir, `model-${++counter}.onnx`);
  writeFileSync(path, 'not read');
  if (sidecar !== undefined)
    writeFileSync(
      join(dir, `model-${counter}.edgetl.json`),
      typeof sidecar === 'string' ? sidecar : JSON.stringify(sidecar),
    );
  return path;
}

function thrown(fn: () => unknown): EdgetlError {
  try {
    fn();
  } catch (error) {
    if (error instanceof EdgetlError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

const tfStyle: PreprocessSpec = {
  ...IMAGENET_224,
  layout: 'NHWC',
  resize: 'stretch',
  scale: 1 / 127.5,
  mean: [1, 1, 1],
  std: [1, 1, 1],
};
const entry: CatalogEntry = {
  id: 'tf-net',
  file: 'tf-net.onnx',
  sha256: '0'.repeat(64),
  bytes: 1,
  license: 'MIT',
  source: 'test',
  kind: 'pretrained',
  description: 'test entry',
  input: { layout: 'NHWC' },
  preprocess: tfStyle,
  embedding: { tensor: 'pool', dim: 1280 },
};

t.test('a catalog model takes its entry; a sidecar beside it is ignored with a note', async (t) => {
  const path = model({ preprocess: { width: 10 } });
  const spec = backboneSpecFor({ path, entry }, {}, { inputDims: ['N', 224, 224, 3] });
  t.equal(spec.source, 'catalog');
  t.same(spec.preprocess, tfStyle);
  t.equal(spec.embeddingTensor, 'pool');
  t.equal(spec.embeddingDim, 1280);
  t.match(spec.notes.join('\n'), /sidecar .* ignored/);
});

t.test('an unknown model without sidecar gets stated ImageNet defaults, layout and size from its input', async (t) => {
  const nchw = backboneSpecFor({ path: model() }, {}, { inputDims: ['batch', 3, 224, 224] });
  t.equal(nchw.source, 'default');
  t.same(nchw.preprocess, IMAGENET_224);
  t.match(nchw.notes.join('\n'), /safe defaults \(torchvision ImageNet recipe\)/);
  t.match(nchw.notes.join('\n'), /\.edgetl\.json/, 'says how to do better');

  const nhwc = backboneSpecFor({ path: model() }, {}, { inputDims: [1, 300, 320, 3] });
  t.equal(nhwc.preprocess.layout, 'NHWC');
  t.equal(nhwc.preprocess.width, 320);
  t.equal(nhwc.preprocess.height, 300);
  t.equal(nhwc.preprocess.resizeTo, Math.round((300 * 256) / 224));
  t.match(nhwc.notes.join('\n'), /layout NHWC and size 320x300 from input dims \[1,300,320,3\]/);
});

t.test('layout is read from the input dims only when they are clear', async (t) => {
  t.same(layoutFromInputDims(['N', 3, 224, 224]), { layout: 'NCHW', height: 224, width: 224 });
  t.same(layoutFromInputDims([1, 224, 224, 3]), { layout: 'NHWC', height: 224, width: 224 });
  t.same(layoutFromInputDims(['N', 3, 'H', 'W']), { layout: 'NCHW', height: undefined, width: undefined });
  t.equal(layoutFromInputDims(['N', 'C', 'H', 'W']), undefined);
  t.equal(layoutFromInputDims([1, 1000]), undefined);
});

t.test('a sidecar sets fields and the embedding tensor; the rest stays default', async (t) => {
  const path = model({
    preprocess: { scale: 1, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], channelOrder: 'BGR' },
    embedding: { tensor: 'feat', dim: 64 },
  });
  const spec = backboneSpecFor({ path }, {}, { inputDims: ['N', 3, 224, 224] });
  t.equal(spec.source, 'sidecar');
  t.equal(spec.sidecar, join(dir, `model-${counter}.edgetl.json`));
  t.equal(spec.preprocess.channelOrder, 'BGR');
  t.same(spec.preprocess.mean, [123.675, 116.28, 103.53]);
  t.equal(spec.preprocess.resizeTo, 256, 'unset fields keep the defaults');
  t.equal(spec.embeddingTensor, 'feat');
  t.equal(spec.embeddingDim, 64);
});

t.test('the sidecar may also be named <file>.onnx.edgetl.json', async (t) => {
  const path = join(dir, 'other.onnx');
  writeFileSync(path, '');
  t.same(sidecarPathsFor(path), [join(dir, 'other.edgetl.json'), join(dir, 'other.onnx.edgetl.json')]);
  writeFileSync(
    join(dir, 'other.onnx.edgetl.json'),
    JSON.stringify({ preprocess: { crop: 'none', resize: 'stretch' } }),
  );
  t.equal(backboneSpecFor({ path }).preprocess.resize, 'stretch');
});

t.test('sidecar errors name the file and the field', async (t) => {
  const cases: [unknown, RegExp][] = [
    ['{ "preprocess": ', /is not valid JSON/],
    [[1, 2], /: must be object, got array \[1,2\]/],
    [
      { preprocessing: {} },
      /field "preprocessing" is not a known field \(known: \$schema, description, preprocess, embedding, labels\)/,
    ],
    [{ preprocess: 'imagenet' }, /field "preprocess" must be object, got string "imagenet"/],
    [{ preprocess: { mean: [0.5, 0.5] } }, /field "preprocess.mean" must have at least 3 item\(s\), got 2/],
    [{ preprocess: { std: [1, 0, 1] } }, /field "preprocess.std\[1\]" must be greater than 0, got 0/],
    [{ preprocess: { layout: 'CHW' } }, /field "preprocess.layout" must be one of "NCHW", "NHWC", got "CHW"/],
    [{ preprocess: { width: 22.5 } }, /field "preprocess.width" must be integer, got number 22.5/],
    [{ preprocess: { scale: -1 } }, /field "preprocess.scale" must be greater than 0, got -1/],
    [
      { preprocess: { resise: 'stretch' } },
      /field "preprocess.resise" is not a known field \(known: layout, width, height, resize, resizeTo, crop/,
    ],
    [{ embedding: { tensor: 3 } }, /field "embedding.tensor" must be string, got integer 3/],
    [{ embedding: { dim: 0 } }, /field "embedding.dim" must be at least 1, got 0/],
  ];
  for (const [content, pattern] of cases) {
    const path = model(content);
    const error = thrown(() => backboneSpecFor({ path }));
    const sidecar = join(dir, `model-${counter}.edgetl.json`);
    t.equal(error.code, 'sidecar-invalid', String(pattern));
    t.equal(error.file, sidecar);
    t.match(error.message, sidecar);
    t.match(error.message, pattern);
  }
});

t.test('a sidecar that contradicts the model input is refused, naming the field', async (t) => {
  const path = model({ preprocess: { width: 299, height: 299, resizeTo: 342 } });
  const error = thrown(() => backboneSpecFor({ path }, {}, { inputDims: [1, 3, 224, 224] }));
  t.equal(error.code, 'sidecar-invalid');
  t.match(error.message, /field "preprocess.width": width 299 differs from the model input \[1,3,224,224\]/);

  const layout = model({ preprocess: { layout: 'NHWC' } });
  t.match(
    thrown(() => backboneSpecFor({ path: layout }, {}, { inputDims: ['N', 3, 224, 224] })).message,
    /"preprocess.layout": layout NHWC contradicts/,
  );

  const crop = model({ preprocess: { resizeTo: 200 } });
  t.match(
    thrown(() => backboneSpecFor({ path: crop })).message,
    /"preprocess.resizeTo": resizeTo is 200, smaller than the 224x224 crop/,
  );
});

t.test(
  'overrides (the CLI flags) win over the sidecar and the catalog; the library names the option, the CLI the flag',
  async (t) => {
    const path = model({ preprocess: { channelOrder: 'BGR' } });
    const overrides = preprocessOverridesFromFlags({
      'channel-order': 'rgb',
      scale: '1/127.5',
      mean: '1,1,1',
      std: '1,1,1',
    });
    const spec = backboneSpecFor({ path }, overrides, { inputDims: ['N', 3, 224, 224] });
    t.equal(spec.source, 'flags');
    t.equal(spec.preprocess.channelOrder, 'RGB');
    t.equal(spec.preprocess.scale, 1 / 127.5);
    const notes = spec.notes.join('\n');
    t.match(
      notes,
      /set by the `preprocess` option: `preprocess.channelOrder`, `preprocess.scale`, `preprocess.mean`, `preprocess.std`/,
    );
    t.notMatch(notes, /--/, 'no flag in a library note');
    t.match(inCliTerms(notes), /set by flags: --channel-order, --scale, --mean, --std/);
    const square = backboneSpecFor({ path: model() }, { height: 300, width: 300 }, { inputDims: ['N', 3, 'h', 'w'] });
    t.match(inCliTerms(square.notes.join('\n')), /set by flags: --size\n/, 'width and height are one flag, named once');

    const fromCatalog = backboneSpecFor(
      { path: model(), entry },
      preprocessOverridesFromFlags({ resize: 'shorter-side', 'resize-to': '256' }),
    );
    t.equal(fromCatalog.source, 'flags');
    t.equal(fromCatalog.preprocess.resize, 'shorter-side');
    t.equal(fromCatalog.preprocess.layout, 'NHWC', 'other catalog fields kept');

    const sized = backboneSpecFor(
      { path: model() },
      preprocessOverridesFromFlags({ size: '320x240', 'resize-to': '366' }),
    );
    t.equal(sized.preprocess.width, 320);
    t.equal(sized.preprocess.height, 240);
    const scaled = backboneSpecFor({ path: model() }, preprocessOverridesFromFlags({ size: '448' }));
    t.equal(scaled.preprocess.resizeTo, 512, '--size alone keeps the 256/224 resize ratio');
    const tooBig = thrown(() =>
      backboneSpecFor(
        { path: model(), entry: { ...entry, input: { layout: 'NCHW' }, preprocess: IMAGENET_224 } },
        preprocessOverridesFromFlags({ size: '300' }),
        { inputDims: ['N', 3, 224, 224] },
      ),
    );
    t.match(tooBig.message, /^`preprocess.width`: width 300 differs from the model input \[N,3,224,224\]/);
    t.match(inCliTerms(tooBig.message), /^--size: width 300 differs/);
    const tooSmall = thrown(() =>
      backboneSpecFor({ path: model() }, preprocessOverridesFromFlags({ size: '300', 'resize-to': '256' })),
    );
    t.match(tooSmall.message, /^`preprocess.resizeTo`: resizeTo is 256, smaller/);
    t.match(inCliTerms(tooSmall.message), /^--resize-to: resizeTo is 256, smaller/);
    const bad = thrown(() => backboneSpecFor({ path: model() }, { channelOrder: 'BRG' as 'BGR' }));
    t.match(
      bad.message,
      /^`preprocess.channelOrder` must be one of "RGB", "BGR"/,
      'library callers get the option path',
    );
    t.match(inCliTerms(bad.message), /^--channel-order must be one of/);
  },
);

t.test('bad flag values name the flag', async (t) => {
  const cases: [Parameters<typeof preprocessOverridesFromFlags>[0], RegExp][] = [
    [{ size: 'big' }, /--size must be N or WxH/],
    [{ mean: '1,2' }, /--mean must be three numbers/],
    [{ scale: 'one' }, /--scale must be a number or a fraction/],
    [{ layout: 'chw' }, /--layout must be one of "NCHW", "NHWC"/],
    [{ 'resize-to': '-3' }, /--resize-to must be at least 0, got -3/],
    [{ crop: 'middle' }, /--crop must be one of "center", "none"/],
  ];
  for (const [flags, pattern] of cases) {
    const error = thrown(() => preprocessOverridesFromFlags(flags));
    t.equal(error.code, 'usage');
    t.match(error.message, pattern);
  }
});

t.test('a model declaring a huge input is refused when the spec is derived, naming the file', async (t) => {
  const { Backbone } = await import('../../../src/node/embed/backbone.js');
  const { tinyClassifier } = await import('../embed/tiny-backbone.js');
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-huge-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'huge.onnx');
  await writeFile(path, tinyClassifier({ size: 100_000 }));
  const huge = thrown(() => backboneSpecFor({ path }, {}, { inputDims: [1, 3, 100_000, 100_000] }));
  t.match(huge, {
    code: 'model-input-too-large',
    message:
      /huge\.onnx: the model input \[1, ?3, ?100000, ?100000\] asks for 100000x100000 images, beyond what edgetl prepares/,
  });
  await t.rejects(
    Backbone.load(path, { executionProviders: ['cpu'] } as never),
    { code: 'model-input-too-large', message: /huge\.onnx/ },
    'Backbone.load refuses it before allocating anything',
  );
  t.match(
    thrown(() => backboneSpecFor({ path: model() }, { width: 8000, height: 8000 }, { inputDims: ['N', 3, 'H', 'W'] })),
    { code: 'model-input-too-large', message: /8000x8000/ },
    'a size given by flags too',
  );
  t.ok(backboneSpecFor({ path: model() }, {}, { inputDims: [1, 3, 1024, 1024] }), '1024x1024 is fine');
});

t.test('a sidecar may list labels (an edgetl export file); they must be class names', async (t) => {
  const spec = backboneSpecFor({ path: model({ preprocess: { width: 224, height: 224 }, labels: ['ants', 'bees'] }) });
  t.equal(spec.source, 'sidecar');
  const error = thrown(() => backboneSpecFor({ path: model({ labels: 'ants,bees' }) }));
  t.equal(error.code, 'sidecar-invalid');
  t.match(error.message, /field "labels" must be array, got string "ants,bees"/);
});
