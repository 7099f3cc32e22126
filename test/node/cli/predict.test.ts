import t from 'tap';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { predictCommand } from '../../../src/node/cli/predict.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { colourFolder, run, workspace } from './head-fixtures.js';
import { readFile } from 'node:fs/promises';
import { asVersion1 } from '../../helpers/head-v1.js';

t.test(
  'predict --json prints one line per image, in order, with top-k; unusable images get an error line',
  async (t) => {
    const ws = await workspace(t, 'cli-predict');
    const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 1);
    const head = join(ws.root, 'head.json');
    await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
    const images = await colourFolder(ws.root, 'new', { blue: 2, red: 1 }, 9);
    const broken = join(ws.root, 'broken.jpg');
    await writeFile(broken, Buffer.from([0xff, 0xd8, 0xff]));
    const single = join(images, 'red', '0.png');
    const result = await run(predictCommand, [
      single,
      join(images, 'blue'),
      broken,
      '--head',
      head,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--top-k',
      '2',
      '--json',
    ]);
    t.equal(result.error, undefined, result.error?.message ?? '');
    t.equal(result.code, 1, 'exit 1 when an image could not be used');
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    t.equal(lines.length, 5, 'one line per image and a summary');
    t.same(
      lines.slice(0, 4).map((l) => l.path),
      [single, join(images, 'blue', '0.png'), join(images, 'blue', '1.png'), broken],
    );
    t.same(
      lines.slice(0, 3).map((l) => l.closest),
      ['red', 'blue', 'blue'],
    );
    for (const line of lines.slice(0, 3)) {
      t.same(
        Object.keys(line),
        ['path', 'label', 'closest', 'score', 'outlierScore', 'rejected', ...(line.rejected ? ['reason'] : []), 'topK'],
        'the prediction contract, in order',
      );
      t.equal(line.label, line.rejected ? 'unknown' : line.closest);
      t.type(line.outlierScore, 'number');
      t.equal(line.topK.length, 2);
      t.equal(line.topK[0].label, line.closest);
      t.equal(line.score, line.topK[0].score);
      t.ok(line.topK[0].score >= line.topK[1].score);
    }
    t.type(lines[3].error, 'string', 'the broken file gets an error line');
    t.same(Object.keys(lines[4].summary), ['count', 'unknown', 'skipped', 'drift']);
    t.equal(lines[4].summary.count, 3);
    t.equal(lines[4].summary.skipped, 1);
    t.type(lines[4].summary.drift.overThreshold, 'number');
  },
);

t.test('an image unlike the training data is "unknown", with the closest class and why', async (t) => {
  const ws = await workspace(t, 'cli-predict-reject');
  const train = await colourFolder(ws.root, 'train', { red: 20, blue: 20 }, 2);
  const head = join(ws.root, 'head.json');
  const trained = await run(trainCommand, [
    train,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--out',
    head,
    '--head',
    'prototype',
    '--reject-rate',
    '0.1',
    '--json',
  ]);
  t.equal(trained.error, undefined, trained.error?.message ?? '');
  // green is neither red nor blue
  const green = join(ws.root, 'green.png');
  await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: 20, g: 200, b: 30 } } })
    .png()
    .toFile(green);
  const result = await run(predictCommand, [green, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json']);
  const line = JSON.parse(result.stdout.split('\n')[0]);
  t.equal(line.label, 'unknown');
  t.equal(line.reason, 'outlier');
  t.match(line.closest, /^(red|blue)$/);
  const readable = await run(predictCommand, [
    green,
    join(train, 'red', '0.png'),
    '--head',
    head,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
  ]);
  t.match(
    readable.stdout,
    /green\.png\s+unknown \(not like the training photos; closest (red|blue) \d+\.\d%\)\s+outlier \d\.\d+/,
  );
  t.match(readable.stdout, /0\.png\s+red \d+\.\d%/);
  t.match(readable.stdout, /2 photo\(s\): 1 unknown/);
  const mismatch = await run(predictCommand, [green, '--head', head, '--backbone', ws.otherModel, '--ep', 'cpu']);
  t.match(
    mismatch.error?.message,
    /head was trained on backbone tiny .* but the backbone given is tiny-other .*: use backbone tiny or retrain the head/,
  );
});

t.test(
  'two --head files: one embedding pass, each head gives exactly its single-head result, in --head order',
  async (t) => {
    const ws = await workspace(t, 'cli-predict-heads');
    const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 3);
    const linear = join(ws.root, 'linear.json');
    const prototype = join(ws.root, 'prototype.json');
    await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', linear, '--json']);
    await run(trainCommand, [
      train,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--out',
      prototype,
      '--head',
      'prototype',
      '--json',
    ]);
    const images = await colourFolder(ws.root, 'new', { red: 2, green: 2, blue: 2 }, 8);
    const common = ['--backbone', ws.model, '--ep', 'cpu', '--top-k', '2', '--json'];
    const imageLines = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((l) => 'path' in l);
    const single = async (head: string) =>
      imageLines((await run(predictCommand, [images, '--head', head, ...common])).stdout);
    const alone = { linear: await single(linear), prototype: await single(prototype) };
    const both = await run(predictCommand, [images, '--head', prototype, '--head', linear, ...common]);
    t.equal(both.error, undefined, both.error?.message ?? '');
    const lines = imageLines(both.stdout);
    t.equal(lines.length, 6);
    lines.forEach((line, i) => {
      t.equal(line.path, alone.linear[i].path);
      t.same(
        line.heads.map((h: { head: string }) => h.head),
        [prototype, linear],
        'heads in --head order, named as given',
      );
      for (const [h, name] of [
        [0, 'prototype'],
        [1, 'linear'],
      ] as const) {
        const { path: _path, ...expected } = alone[name][i];
        const fields = Object.fromEntries(Object.keys(expected).map((k) => [k, line.heads[h][k]]));
        t.same(fields, expected, `${name} head: every field of its own run, with the same values`);
      }
    });
    const readable = await run(predictCommand, [
      join(images, 'red', '0.png'),
      '--head',
      prototype,
      '--head',
      linear,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
    ]);
    t.match(readable.stdout, /0\.png\s+.*prototype\.json: red \d+\.\d%\s+.*linear\.json: red \d+\.\d%/);
  },
);

t.test('heads trained on different backbones are refused before any image is embedded', async (t) => {
  const ws = await workspace(t, 'cli-predict-heads-mismatch');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 4);
  const a = join(ws.root, 'a.json');
  const b = join(ws.root, 'b.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', a, '--json']);
  await run(trainCommand, [train, '--backbone', ws.otherModel, '--ep', 'cpu', '--out', b, '--json']);
  const result = await run(predictCommand, [
    join(train, 'red', '0.png'),
    '--head',
    a,
    '--head',
    b,
    '--ep',
    'cpu',
    '--backbone',
    ws.model,
  ]);
  t.match(
    result.error?.message,
    /a\.json and .*b\.json need different backbone passes \(backbone tiny .* vs tiny-other .*\)/,
  );
});

t.test('a version 1 head still predicts: no outlierScore, one note on stderr', async (t) => {
  const ws = await workspace(t, 'cli-predict-v1');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 4);
  const head = join(ws.root, 'head.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
  const old = join(ws.root, 'old.json');
  await writeFile(old, asVersion1(await readFile(head, 'utf8')));
  const result = await run(predictCommand, [
    join(train, 'red', '0.png'),
    join(train, 'blue', '0.png'),
    '--head',
    old,
    '--backbone',
    ws.model,
    '--ep',
    'cpu',
    '--json',
  ]);
  t.equal(result.error, undefined, result.error?.message ?? '');
  const lines = result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.same(
    lines.slice(0, 2).map((l) => l.label),
    ['red', 'blue'],
  );
  t.ok(
    lines.slice(0, 2).every((l) => !('outlierScore' in l) && typeof l.closest === 'string'),
    'closest, but no outlierScore',
  );
  t.equal(lines[2].summary.drift, null, 'no drift figures without open-set data');
  t.equal(result.stderr.match(/^note: /gm)?.length, 1, 'one note');
  t.match(result.stderr, /old\.json: this head \(format version 1\) has no open-set data/);
});
