import t from 'tap';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { predictCommand } from '../../src/cli/predict.js';
import { trainCommand } from '../../src/cli/train.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('predict --json prints one line per image, in order, with top-k; unusable images get an error line', async (t) => {
  const ws = await workspace(t, 'cli-predict');
  const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 1);
  const head = join(ws.root, 'head.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
  const images = await colourFolder(ws.root, 'new', { blue: 2, red: 1 }, 9);
  const broken = join(ws.root, 'broken.jpg');
  await writeFile(broken, Buffer.from([0xff, 0xd8, 0xff]));
  const single = join(images, 'red', '0.png');
  const result = await run(predictCommand, [single, join(images, 'blue'), broken, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--top-k', '2', '--json']);
  t.equal(result.error, undefined, result.error?.message ?? '');
  t.equal(result.code, 1, 'exit 1 when an image could not be used');
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.length, 4);
  t.same(lines.map((l) => l.path), [single, join(images, 'blue', '0.png'), join(images, 'blue', '1.png'), broken]);
  t.same(lines.slice(0, 3).map((l) => l.label), ['red', 'blue', 'blue']);
  for (const line of lines.slice(0, 3)) {
    t.equal(line.topK.length, 2);
    t.equal(line.topK[0].label, line.label);
    t.equal(line.score, line.topK[0].score);
    t.ok(line.topK[0].score >= line.topK[1].score);
  }
  t.type(lines[3].error, 'string', 'the broken file gets an error line');
});

t.test('with a rejection threshold, an off-distribution image is "unknown"', async (t) => {
  const ws = await workspace(t, 'cli-predict-reject');
  const train = await colourFolder(ws.root, 'train', { red: 20, blue: 20 }, 2);
  const head = join(ws.root, 'head.json');
  const trained = await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--head', 'prototype', '--reject-rate', '0.1', '--json']);
  t.equal(trained.error, undefined, trained.error?.message ?? '');
  // purple sits halfway between red and blue: neither class is confident
  const purple = join(ws.root, 'purple.png');
  await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: 115, g: 30, b: 115 } } }).png().toFile(purple);
  const result = await run(predictCommand, [purple, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json']);
  t.equal(JSON.parse(result.stdout).label, 'unknown');
  const readable = await run(predictCommand, [purple, join(train, 'red', '0.png'), '--head', head, '--backbone', ws.model, '--ep', 'cpu']);
  t.match(readable.stdout, /purple\.png\s+unknown \(best (red|blue) \d+\.\d%\)/);
  t.match(readable.stdout, /0\.png\s+red \d+\.\d%/);
  const mismatch = await run(predictCommand, [purple, '--head', head, '--backbone', ws.otherModel, '--ep', 'cpu']);
  t.match(mismatch.error?.message, /head was trained on backbone tiny .* but the backbone given is tiny-other .*: use backbone tiny or retrain the head/);
});
