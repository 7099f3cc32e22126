import t from 'tap';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { headCommand } from '../../../src/node/cli/head.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { embedCommand } from '../../../src/node/cli/embed.js';
import { loadHead, saveHead } from '../../../src/node/head-io.js';
import { Head } from '../../../src/core/heads/head.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('head inspect: labels, type, sizes, metrics and the backbone it needs', async (t) => {
  const ws = await workspace(t, 'cli-head');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 1);
  const head = join(ws.root, 'head.json');
  await run(trainCommand, [
    train,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--out',
    head,
    '--reject-rate',
    '0.05',
    '--json',
  ]);
  const json = JSON.parse((await run(headCommand, ['inspect', head, '--json'])).stdout);
  t.same(json.labels, ['blue', 'red']);
  t.equal(json.type, 'linear');
  t.equal(json.bytes, (await readFile(head)).length);
  t.equal(json.backbone.id, 'tiny');
  t.match(json.backbone.sha256, /^[0-9a-f]{64}$/);
  t.equal(json.backbone.embeddingDim, 3);
  t.same(
    json.tensors.map((x: { name: string }) => x.name),
    [
      'normalization.mean',
      'normalization.std',
      'linear.weight',
      'linear.bias',
      'openSet.memory',
      'openSet.mean',
      'openSet.std',
    ],
  );
  t.equal(json.rejection.rate, 0.02, 'the low-confidence cut rejects 2% of the training photos out of fold');
  t.equal(json.openSet.rate, 0.03, 'the outlier threshold rejects 3% of the training photos out of fold');
  t.type(json.openSet.threshold, 'number');
  t.same(json.warnings, []);
  t.type(json.training.metrics.heldOut.accuracy, 'number');
  const text = (await run(headCommand, ['inspect', head])).stdout;
  t.match(text, /edgetl-head, linear head, 2 classes/);
  t.match(text, /backbone\s+tiny\s+3-d\s+sha256 [0-9a-f]{64}/);
  t.match(text, /open set\s+knn-cosine, \d+ memory rows, k 1; unknown above outlier score \d\.\d+ \(rate 0\.03\)/);
  t.match(text, /rejection below \d\.\d+ \(rate 0\.02\)/);
  t.match((await run(headCommand, ['inspect', join(ws.root, 'nope.json')])).error?.message, /file not found/);
  await writeFile(join(ws.root, 'bad.json'), '{"format":"edgetl-head","version":7}');
  t.match(
    (await run(headCommand, ['inspect', join(ws.root, 'bad.json')])).error?.message,
    /bad\.json: head file field "version" is 7/,
  );
});

t.test('add-class and remove-class on a prototype head; refused for a linear head', async (t) => {
  const ws = await workspace(t, 'cli-head-classes');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 2);
  const extra = await colourFolder(ws.root, 'extra', { green: 5 }, 3);
  const head = join(ws.root, 'proto.json');
  await run(trainCommand, [
    train,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--out',
    head,
    '--head',
    'prototype',
    '--json',
  ]);
  let result = await run(headCommand, [
    'add-class',
    head,
    'green',
    join(extra, 'green'),
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--json',
  ]);
  t.equal(result.error, undefined, result.error?.message ?? '');
  t.same(JSON.parse(result.stdout).labels, ['blue', 'red', 'green']);
  const loaded = await loadHead(head);
  t.equal(loaded.training.counts.green, 5);

  const prefix = join(ws.root, 'green-set');
  await run(embedCommand, [extra, '--backbone', ws.model, '--ep', 'cpu', '--out', prefix, '--json']);
  const copy = join(ws.root, 'copy.json');
  result = await run(headCommand, ['add-class', head, 'green', prefix, '--out', copy, '--json']);
  t.equal(result.error, undefined, result.error?.message ?? '');
  t.equal((await loadHead(copy)).training.counts.green, 10, 'an embedding set adds more examples to an existing class');
  t.equal((await loadHead(head)).training.counts.green, 5, '--out leaves the original alone');

  result = await run(headCommand, ['remove-class', head, 'red']);
  t.match(result.stdout, /removed class "red": .* now has 2 classes \(blue, green\)/);
  t.same((await loadHead(head)).labels, ['blue', 'green']);
  t.match((await run(headCommand, ['remove-class', head, 'blue'])).error?.message, /a head needs at least 2 classes/);

  const linear = join(ws.root, 'linear.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', linear, '--json']);
  t.match(
    (await run(headCommand, ['add-class', linear, 'green', prefix])).error?.message,
    /cannot add a class to a linear head without retraining/,
  );
  const otherSet = join(ws.root, 'other-set');
  await run(embedCommand, [extra, '--backbone', ws.otherModel, '--ep', 'cpu', '--out', otherSet, '--json']);
  t.match(
    (await run(headCommand, ['add-class', head, 'green', otherSet])).error?.message,
    /embedded with backbone tiny-other but .* needs tiny/,
  );
});

t.test('a failed save leaves the previous head file intact', async (t) => {
  const ws = await workspace(t, 'cli-head-atomic');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 4);
  const path = join(ws.root, 'head.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', path, '--json']);
  const before = await readFile(path, 'utf8');
  const head = Head.parse(before);
  (head.weights as { weight: Float32Array }).weight[0] = 1e9; // not storable as float16
  await t.rejects(saveHead(head, path), /beyond the float16 range/);
  t.equal(await readFile(path, 'utf8'), before, 'unchanged');
  t.ok(await saveHead(head, path, { dtype: 'float32' }), 'float32 storage holds it');
  t.equal((await loadHead(path)).weights.type, 'linear');
});
