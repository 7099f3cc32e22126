import t from 'tap';
import { mkdtemp, rm, readdir, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Backbone,
  trainHead,
  Classifier,
  Head,
  EdgetlError,
  prepareServedBackbone,
  startKioskServer,
  DEFAULT_BACKBONE_ID,
} from '../src/index.js';
import sharp from 'sharp';
import { sharedModel, sharedPath } from './helpers/shared.js';

const model = sharedModel('mobilenetv2-12-int8.onnx');
const data = sharedPath('datasets/hymenoptera');

/** Up to `count` photo paths of one class folder, sorted. */
async function photos(dir: string, count: number): Promise<string[]> {
  return (await readdir(dir))
    .sort()
    .slice(0, count)
    .map((name) => join(dir, name));
}

t.test("the README's library example: embed, train, save, classify", { skip: model.skip || data.skip }, async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'edgetl-api-'));
  const saved = process.env.EDGETL_CACHE_DIR;
  process.env.EDGETL_CACHE_DIR = cache;
  t.teardown(async () => {
    if (saved === undefined) delete process.env.EDGETL_CACHE_DIR;
    else process.env.EDGETL_CACHE_DIR = saved;
    await rm(cache, { recursive: true, force: true });
  });
  const ants = await photos(join(data.path!, 'train', 'ants'), 20);
  const bees = await photos(join(data.path!, 'train', 'bees'), 20);
  const paths = [...ants, ...bees];
  const labels = [...ants.map(() => 'ants'), ...bees.map(() => 'bees')];

  const backbone = await Backbone.load(model.path!, { ep: 'auto' });
  // closed even when an assertion throws first: an open session would keep the file running until tap's timeout
  t.teardown(() => backbone.close());
  t.equal(backbone.provider.requested, 'auto');
  t.not(backbone.provider.adapter?.software, true, 'auto never runs on a software adapter');
  let progressCalls = 0;
  const { embeddings, items, skipped } = await backbone.embedMany(paths, { onProgress: () => progressCalls++ });
  t.equal(items.length, paths.length);
  t.equal(skipped.length, 0);
  t.equal(embeddings.length, paths.length * backbone.embeddingDim);
  t.ok(progressCalls > 0, 'progress is reported');

  const head = await trainHead(embeddings, labels, { type: 'linear', backbone });
  const file = join(cache, 'head.json');
  await head.save(file);
  const reloaded = await Head.load(file);
  t.same(reloaded.labels, ['ants', 'bees']);

  const classifier = await Classifier.load({ backbone, head: file });
  const valAnts = await photos(join(data.path!, 'val', 'ants'), 5);
  const valBees = await photos(join(data.path!, 'val', 'bees'), 5);
  let correct = 0;
  for (const [path, truth] of [...valAnts.map((p) => [p, 'ants']), ...valBees.map((p) => [p, 'bees'])] as const) {
    const { label, score, topK } = await classifier.classify(path, { topK: 2 });
    t.ok(score > 0 && score <= 1, 'a probability');
    t.equal(topK?.length, 2);
    if (label === truth) correct++;
  }
  t.ok(correct >= 8, `at least 8 of 10 held-out photos right from 40 training photos (got ${correct})`);
  await classifier.close();
  await backbone.close();
});

t.test(
  'embedMany with labels keeps rows and labels aligned past a skipped image; trainHead explains a mismatch',
  async (t) => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'edgetl-api-labels-'));
    t.teardown(() => rm(cacheDir, { recursive: true, force: true }));
    // By id, with no configuration: the bundled default backbone (or the shared copy when EDGETL_MODEL_PATH has it).
    const backbone = await Backbone.load('mobilenetv2-12-int8', { ep: 'cpu', cache: false, cacheDir });
    t.teardown(() => backbone.close());
    const photo = (r: number, g: number, b: number) =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: { r, g, b } } })
        .jpeg()
        .toBuffer();
    const images = [
      await photo(200, 30, 30),
      Buffer.from('not an image'),
      await photo(30, 30, 200),
      await photo(210, 40, 20),
      await photo(20, 50, 220),
    ];
    const given = ['red', 'broken', 'blue', 'red', 'blue'];
    const result = await backbone.embedMany(images, { labels: given });
    t.equal(result.skipped.length, 1);
    t.same(
      result.items.map((i) => i.index),
      [0, 2, 3, 4],
    );
    t.same(result.labels, ['red', 'blue', 'red', 'blue'], 'the labels of the rows, in row order');
    t.equal(result.embeddings.length, 4 * backbone.embeddingDim);
    await t.rejects(backbone.embedMany(images, { labels: ['red'] }), /1 labels for 5 images/);

    const head = await trainHead(result.embeddings, result.labels, { backbone, folds: 2 });
    t.same(head.labels, ['blue', 'red']);
    await t.rejects(trainHead(result.embeddings, given, { backbone }), {
      code: 'train-input',
      message: /4 embedding rows but 5 labels.*skipped.*embedMany\(images, \{ labels \}\)/s,
    });
  },
);

t.test('errors from the public API are EdgetlErrors that name the file', async (t) => {
  const missing = join(tmpdir(), 'edgetl-no-such-head.json');
  const error = await Head.load(missing).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof EdgetlError, 'an EdgetlError');
  t.match((error as Error).message, missing);
});

t.test('the kiosk server runs from the public API alone: prepareServedBackbone, then startKioskServer', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-api-kiosk-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  // A stand-in for the built page (dist/web): what is served around it is the point here.
  await mkdir(join(root, 'web', 'app'), { recursive: true });
  await writeFile(join(root, 'web', 'app', 'index.html'), '<!doctype html><title>kiosk</title>');
  const backbone = await prepareServedBackbone(DEFAULT_BACKBONE_ID, { cacheDir: join(root, 'cache') });
  const server = await startKioskServer({ backbone, port: 0, webRoot: join(root, 'web') });
  t.teardown(() => server.close());
  const config = (await (await fetch(`${server.url}api/config`)).json()) as {
    backbone: { id: string; embeddingDim: number; modelUrl: string };
  };
  t.match(config.backbone, { id: DEFAULT_BACKBONE_ID, embeddingDim: 1280 });
  const model = await fetch(new URL(config.backbone.modelUrl, server.url));
  t.equal(model.status, 200);
  t.equal((await model.arrayBuffer()).byteLength, backbone.model.byteLength, 'the feature extractor it prepared');
  t.match(await (await fetch(server.url)).text(), /<title>kiosk<\/title>/);
});
