import t from 'tap';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { Classifier } from '../../src/node/classifier.js';
import { Backbone } from '../../src/node/embed/backbone.js';
import { trainHead } from '../../src/node/train-head.js';
import { loadHead, saveHead } from '../../src/node/head-io.js';
import { Head } from '../../src/core/heads/head.js';
import { scanImageFolder } from '../../src/node/embed/dataset.js';
import { colourFolder, workspace } from './cli/head-fixtures.js';

t.test('Classifier joins a backbone and a head: classify(image) gives the label, score and top-k', async (t) => {
  const ws = await workspace(t, 'classifier');
  const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 1);
  const backbone = await Backbone.load(ws.model, { ep: 'cpu' });
  t.teardown(() => backbone.close());
  const scan = await scanImageFolder(train);
  const embedded = await backbone.embedMany(scan.items.map((i) => i.path));
  const head = await trainHead(
    embedded.embeddings,
    scan.items.map((i) => i.label!),
    {
      backbone: {
        id: backbone.id,
        sha256: backbone.sha256,
        embeddingDim: backbone.embeddingDim,
        preprocess: backbone.preprocess,
      },
    },
  );
  const path = join(ws.root, 'head.json');
  await saveHead(head, path);

  const classifier = await Classifier.load({ backbone, head: path });
  const prediction = await classifier.classify(join(train, 'green', '0.png'), { topK: 3 });
  t.equal(prediction.label, 'green');
  t.equal(prediction.topK.length, 3);
  t.ok(prediction.score > 0.5);
  const many = await classifier.classifyMany([
    join(train, 'red', '1.png'),
    Buffer.from('not an image'),
    join(train, 'blue', '2.png'),
  ]);
  t.same(
    many.predictions.map((p) => [p.input, p.label]),
    [
      [0, 'red'],
      [2, 'blue'],
    ],
  );
  t.equal(many.skipped[0].input, 1, 'the unusable input is reported, not guessed');

  const loaded = await Head.load(path);
  t.same(loaded.labels, head.labels, 'Head.load reads files in Node');
  await loaded.save(join(ws.root, 'copy.json'));
  t.same((await loadHead(join(ws.root, 'copy.json'))).labels, head.labels, 'head.save writes them');

  const other = await Backbone.load(ws.otherModel, { ep: 'cpu' });
  t.teardown(() => other.close());
  await t.rejects(
    Classifier.load({ backbone: other, head: path }),
    /trained on backbone tiny .* but the backbone given is tiny-other .*: use backbone tiny or retrain the head/,
  );
  await writeFile(join(ws.root, 'broken.json'), '{}');
  await t.rejects(Classifier.load({ backbone, head: join(ws.root, 'broken.json') }), /head file field "format"/);
});

t.test('Classifier with several heads embeds once and gives each head its own prediction', async (t) => {
  const ws = await workspace(t, 'classifier-heads');
  const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 5);
  const backbone = await Backbone.load(ws.model, { ep: 'cpu' });
  t.teardown(() => backbone.close());
  const scan = await scanImageFolder(train);
  const embedded = await backbone.embedMany(scan.items.map((i) => i.path));
  const ref = {
    id: backbone.id,
    sha256: backbone.sha256,
    embeddingDim: backbone.embeddingDim,
    preprocess: backbone.preprocess,
  };
  const labels = scan.items.map((i) => i.label!);
  const linear = await trainHead(embedded.embeddings, labels, { backbone: ref });
  // a second task on the same embeddings: is it red or not
  const redness = await trainHead(
    embedded.embeddings,
    labels.map((l) => (l === 'red' ? 'red' : 'other')),
    { backbone: ref, type: 'prototype' },
  );
  const classifier = await Classifier.load({ backbone, heads: [linear, redness] });
  t.equal(classifier.head, linear, 'head is the first one');
  const image = join(train, 'blue', '1.png');
  const all = await classifier.classifyAll(image, { topK: 2 });
  // the best class of each head (`closest`: a tiny synthetic set may put a photo under a head's rejection cut)
  t.same(
    all.map((p) => p.closest),
    ['blue', 'other'],
  );
  t.same(
    all[0],
    await (await Classifier.load({ backbone, head: linear })).classify(image, { topK: 2 }),
    'the first head alone predicts the same',
  );
  const many = await classifier.classifyManyByHeads([join(train, 'red', '0.png'), 'missing.png', image]);
  t.same(
    many.images.map((c) => [c.input, c.predictions.map((p) => p.closest)]),
    [
      [0, ['red', 'red']],
      [2, ['blue', 'other']],
    ],
  );
  t.same(
    many.skipped.map((s) => s.input),
    [1],
  );

  const foreign = await trainHead(embedded.embeddings, labels, {
    backbone: { ...ref, id: 'elsewhere', sha256: 'f'.repeat(64) },
  });
  await t.rejects(
    Classifier.load({ backbone, heads: [linear, foreign] }),
    /head 1 and head 2 need different backbone passes/,
  );
});
