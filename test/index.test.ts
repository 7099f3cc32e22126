import t from 'tap';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backbone, trainHead, Classifier, Head, EdgetlError } from '../src/index.js';
import { sharedModel, sharedPath } from './helpers/shared.js';

const model = sharedModel('mobilenetv2-12-int8.onnx');
const data = sharedPath('datasets/hymenoptera');

/** Up to `count` photo paths of one class folder, sorted. */
async function photos(dir: string, count: number): Promise<string[]> {
  return (await readdir(dir)).sort().slice(0, count).map((name) => join(dir, name));
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

t.test('errors from the public API are EdgetlErrors that name the file', async (t) => {
  const missing = join(tmpdir(), 'edgetl-no-such-head.json');
  const error = await Head.load(missing).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof EdgetlError, 'an EdgetlError');
  t.match((error as Error).message, missing);
});
