import t from 'tap';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { trainCommand } from '../../../src/node/cli/train.js';
import { embedCommand } from '../../../src/node/cli/embed.js';
import { Head } from '../../../src/core/heads/head.js';
import { DEFAULT_REJECT_RATE } from '../../../src/core/heads/train.js';
import { parseHeadFile } from '../../../src/core/formats/head-file.js';
import { sharedModel, sharedPath } from '../../helpers/shared.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('train from a folder: --json prints the documented object and writes a loadable head', async (t) => {
  const ws = await workspace(t, 'cli-train');
  const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 1);
  const val = await colourFolder(ws.root, 'val', { red: 4, green: 4, blue: 4 }, 2);
  const out = join(ws.root, 'heads', 'head.json');
  const result = await run(trainCommand, [
    train,
    '--val',
    val,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--out',
    out,
    '--json',
  ]);
  t.equal(result.error, undefined, result.error?.message ?? '');
  t.equal(result.code, 0);
  const lines = result.stdout.trim().split('\n');
  t.equal(lines.length, 1, 'one JSON object on stdout');
  const summary = JSON.parse(lines[0]);
  for (const key of ['head', 'classes', 'trainCount', 'valCount', 'val', 'embedSeconds', 'trainSeconds', 'headBytes'])
    t.ok(key in summary, `has "${key}"`);
  for (const key of ['accuracy', 'balancedAccuracy', 'logLoss', 'ece'])
    t.type(summary.val[key], 'number', `val.${key}`);
  t.same(summary.classes, ['blue', 'green', 'red']);
  t.equal(summary.trainCount, 24);
  t.equal(summary.valCount, 12);
  t.equal(summary.val.accuracy, 1, 'solid colours are separable');
  const text = await readFile(out, 'utf8');
  t.equal(summary.headBytes, Buffer.byteLength(text));
  const head = Head.parse(text);
  t.equal(head.backbone.id, 'tiny');
  t.equal(head.embeddingDim, 3);
  t.same(head.training.counts, { blue: 8, green: 8, red: 8 });
  t.ok(head.backbone.preprocess, 'the preprocessing spec travels with the head');

  const readable = await run(trainCommand, [train, '--val', val, '--backbone', ws.model, '--ep', 'cpu', '--out', out]);
  t.match(readable.stdout, /Trained a linear head on 24 images/);
  t.match(readable.stdout, /precision\s+recall\s+f1\s+support/, 'per-class table');
  t.match(readable.stdout, /confusion \(rows: true class, columns: predicted\)/, 'confusion matrix');
});

t.test('train from an embedding set, --val-split, other head types, and the same seed twice', async (t) => {
  const ws = await workspace(t, 'cli-train-set');
  const train = await colourFolder(ws.root, 'train', { red: 10, blue: 10 }, 3);
  const prefix = join(ws.root, 'emb', 'train');
  t.equal((await run(embedCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', prefix, '--json'])).code, 0);
  const weights: string[] = [];
  for (const head of ['linear', 'mlp', 'prototype', 'mlp']) {
    const out = join(ws.root, `${head}-${weights.length}.json`);
    const result = await run(trainCommand, [
      prefix,
      '--head',
      head,
      '--val-split',
      '0.2',
      '--seed',
      '5',
      '--epochs',
      '10',
      '--out',
      out,
      '--json',
    ]);
    t.equal(result.error, undefined, result.error?.message ?? '');
    const summary = JSON.parse(result.stdout);
    t.equal(summary.embedSeconds, 0, `${head}: no embedding needed`);
    t.equal(summary.trainCount + summary.valCount, 20, `${head}: the split keeps every row`);
    t.equal(summary.valCount, 4, `${head}: 20% held out, stratified`);
    t.equal(summary.type, head);
    weights.push(JSON.stringify(parseHeadFile(await readFile(out, 'utf8')).tensors.map((x) => Array.from(x.data))));
  }
  t.equal(weights[1], weights[3], 'same data and seed: identical MLP weights');
});

t.test('refusals: one class, empty class folder, flat folder, mismatched backbones', async (t) => {
  const ws = await workspace(t, 'cli-train-refuse');
  const out = join(ws.root, 'head.json');
  const one = await colourFolder(ws.root, 'one', { red: 4 }, 4);
  let result = await run(trainCommand, [one, '--backbone', ws.model, '--ep', 'cpu', '--out', out]);
  t.match(result.error?.message, /only one class \(red\)/);

  const withEmpty = await colourFolder(ws.root, 'with-empty', { red: 4, blue: 4 }, 5);
  await mkdir(join(withEmpty, 'green'));
  result = await run(trainCommand, [withEmpty, '--backbone', ws.model, '--ep', 'cpu', '--out', out]);
  t.match(result.error?.message, /class folder "green" has no images/);

  const flat = join(ws.root, 'flat');
  await mkdir(flat);
  await writeFile(join(flat, 'a.png'), await readFile(join(one, 'red', '0.png')));
  result = await run(trainCommand, [flat, '--backbone', ws.model, '--ep', 'cpu', '--out', out]);
  t.match(result.error?.message, /no class folders/);

  const empty = join(ws.root, 'empty');
  await mkdir(empty);
  result = await run(trainCommand, [empty, '--backbone', ws.model, '--ep', 'cpu', '--out', out]);
  t.match(result.error?.message, /no images in .*empty/);

  const data = await colourFolder(ws.root, 'two', { red: 6, blue: 6 }, 6);
  const prefix = join(ws.root, 'two-set');
  await run(embedCommand, [data, '--backbone', ws.model, '--ep', 'cpu', '--out', prefix, '--json']);
  result = await run(trainCommand, [prefix, '--backbone', ws.otherModel, '--out', out]);
  t.match(result.error?.message, /embedded with backbone tiny .* but --backbone .*tiny-other.*cannot be mixed/);
  const otherPrefix = join(ws.root, 'other-set');
  await run(embedCommand, [data, '--backbone', ws.otherModel, '--ep', 'cpu', '--out', otherPrefix, '--json']);
  result = await run(trainCommand, [prefix, '--val', otherPrefix, '--out', out]);
  t.match(result.error?.message, /validation data .* comes from backbone tiny-other but the training data from tiny/);

  result = await run(trainCommand, [prefix, '--out', out, '--head', 'forest']);
  t.match(result.error?.message, /--head must be one of linear, mlp, prototype/);
  result = await run(trainCommand, [prefix]);
  t.match(result.error?.message, /missing --out/);
});

const model = sharedModel('mobilenetv2-12-int8.onnx');
const hymenoptera = sharedPath('datasets/hymenoptera');
t.test(
  'end to end on hymenoptera with MobileNetV2-int8: val accuracy above 93%',
  { skip: model.skip || hymenoptera.skip },
  async (t) => {
    const ws = await workspace(t, 'cli-train-hym');
    const out = join(ws.root, 'head.json');
    const result = await run(trainCommand, [
      join(hymenoptera.path!, 'train'),
      '--val',
      join(hymenoptera.path!, 'val'),
      '--backbone',
      model.path!,
      '--ep',
      'cpu',
      '--out',
      out,
      '--json',
    ]);
    t.equal(result.error, undefined, result.error?.message ?? '');
    const summary = JSON.parse(result.stdout);
    t.same(summary.classes, ['ants', 'bees']);
    t.equal(summary.trainCount, 244);
    t.equal(summary.valCount, 153);
    t.ok(summary.val.closedSetAccuracy >= 0.93, `closed-set val accuracy ${summary.val.closedSetAccuracy}`);
    t.ok(
      summary.val.acceptedAccuracy >= 0.93,
      `accuracy on the val photos not rejected as unknown ${summary.val.acceptedAccuracy}`,
    );
    t.ok(summary.val.rejectedRate <= 0.1, `own val photos rejected as unknown ${summary.val.rejectedRate}`);
    t.equal(summary.rejectRate, DEFAULT_REJECT_RATE, 'open-set rejection is on by default');
    t.ok(summary.val.ece < 0.1, `val ECE ${summary.val.ece}`);
    // linear weights ~10 KB; the open-set memory (4 * sqrt(244) = 62 rows of 1280 float16) ~210 KB in base64
    t.ok(summary.headBytes < 300_000, `head file ${summary.headBytes} bytes`);
  },
);

t.test('--augment flip adds one mirrored view per training image, grouped with it', async (t) => {
  const ws = await workspace(t, 'cli-train-flip');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 8);
  const out = join(ws.root, 'head.json');
  const result = await run(trainCommand, [
    train,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--augment',
    'flip',
    '--out',
    out,
    '--json',
  ]);
  t.equal(result.error, undefined, result.error?.message ?? '');
  const summary = JSON.parse(result.stdout);
  t.equal(summary.trainCount, 12);
  t.equal(summary.augmentedCount, 12);
  const head = Head.parse(await readFile(out, 'utf8'));
  t.same(head.training.counts, { blue: 6, red: 6 }, 'counts are of original images');
  t.equal((head.training.data as { augmentedRows: number }).augmentedRows, 12);
  t.equal(
    (head.training.metrics.heldOut as { count: number }).count,
    24,
    'out-of-fold metrics cover originals and views',
  );
  t.match(
    (await run(trainCommand, [train, '--backbone', ws.model, '--augment', 'crop', '--out', out])).error?.message,
    /--augment must be one of flip/,
  );
});
