import t from 'tap';
import { DEFAULT_AMBIGUOUS_SHARE, DEFAULT_REJECT_RATE } from '../../../src/core/heads/train.js';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import sharp from 'sharp';
import { driftCommand } from '../../../src/node/cli/drift.js';
import { adaptCommand } from '../../../src/node/cli/adapt.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { loadHead } from '../../../src/node/head-io.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('drift: a batch unlike the training photos is flagged, one like them is not; --json fields', async (t) => {
  const ws = await workspace(t, 'cli-drift');
  const train = await colourFolder(ws.root, 'train', { red: 20, blue: 20 }, 1);
  const head = join(ws.root, 'head.json');
  t.equal(
    (await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json'])).error,
    undefined,
  );
  const same = await colourFolder(ws.root, 'same', { red: 15, blue: 15 }, 2);
  const other = await colourFolder(ws.root, 'other', { green: 30 }, 3);
  const calm = JSON.parse(
    (await run(driftCommand, [same, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json'])).stdout,
  );
  t.same(Object.keys(calm), [
    'head',
    'input',
    'rows',
    'overThreshold',
    'expectedOverThreshold',
    'threshold',
    'meanOutlierScore',
    'trainingMeanOutlierScore',
    'trainingStdOutlierScore',
    'shift',
    'drifted',
    'skipped',
  ]);
  t.equal(calm.rows, 30);
  t.ok(
    Math.abs(calm.expectedOverThreshold - DEFAULT_REJECT_RATE * (1 - DEFAULT_AMBIGUOUS_SHARE)) < 1e-12,
    "drift expects the outlier cut's share of the reject rate over the threshold",
  );
  t.equal(calm.drifted, false, `new red and blue photos: no drift (${calm.overThreshold} over the threshold)`);
  const drifted = JSON.parse(
    (await run(driftCommand, [other, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json'])).stdout,
  );
  t.equal(drifted.drifted, true, `green photos: drift (${drifted.overThreshold} over the threshold)`);
  t.ok(drifted.meanOutlierScore > calm.meanOutlierScore);
  const text = await run(driftCommand, [other, '--head', head, '--backbone', ws.model, '--ep', 'cpu']);
  t.match(
    text.stdout,
    /30 photo\(s\) against .*head\.json: \d+\.\d% over the outlier threshold \(training: \d+\.\d%\).*the field has drifted/,
  );
  t.match((await run(driftCommand, [other])).error?.message, /missing --head/);
  t.match(
    (await run(driftCommand, [join(ws.root, 'nope'), '--head', head])).error?.message,
    /nope is neither a folder nor an embedding set/,
  );
});

t.test(
  'adapt: darker field photos come back after re-estimating the feature statistics; kept only when it helps',
  async (t) => {
    const ws = await workspace(t, 'cli-adapt');
    const train = await colourFolder(ws.root, 'train', { red: 20, blue: 20 }, 4);
    const head = join(ws.root, 'head.json');
    t.equal(
      (await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json'])).error,
      undefined,
    );
    // the field camera: every photo darker and greyer
    const field = join(ws.root, 'field');
    await mkdir(field, { recursive: true });
    const source = await colourFolder(ws.root, 'source', { red: 16, blue: 16 }, 5);
    for (const label of ['red', 'blue']) {
      for (let i = 0; i < 16; i++) {
        await sharp(join(source, label, `${i}.png`))
          .modulate({ brightness: 0.5, saturation: 0.6 })
          .png()
          .toFile(join(field, `${label}-${i}.png`));
      }
    }
    const out = join(ws.root, 'adapted.json');
    const result = await run(adaptCommand, [
      field,
      '--head',
      head,
      '--out',
      out,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--json',
    ]);
    t.equal(result.error, undefined, result.error?.message ?? '');
    const summary = JSON.parse(result.stdout);
    t.equal(summary.rows, 32);
    t.ok(summary.adapted, `kept: ${summary.reason}`);
    t.ok(
      summary.heldOutBefore.meanOutlierScore > summary.heldOutAfter.meanOutlierScore,
      'the held-out half came closer',
    );
    const adapted = await loadHead(out);
    t.equal(
      adapted.adaptation !== null,
      summary.adapted,
      'the written head carries the adaptation exactly when it was kept',
    );
    if (summary.adapted) t.equal(adapted.adaptation!.spec.rows, 32);
    const before = JSON.parse(
      (await run(driftCommand, [field, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json'])).stdout,
    );
    const after = JSON.parse(
      (await run(driftCommand, [field, '--head', out, '--backbone', ws.model, '--ep', 'cpu', '--json'])).stdout,
    );
    t.comment(
      `field over the threshold: ${before.overThreshold} before, ${after.overThreshold} after (adapted: ${summary.adapted})`,
    );
    t.ok(after.overThreshold < before.overThreshold, 'the field looks more like the training data afterwards');
    const unchanged = JSON.parse(
      (
        await run(adaptCommand, [
          train,
          '--head',
          head,
          '--out',
          join(ws.root, 'same.json'),
          '--backbone',
          ws.model,
          '--ep',
          'cpu',
          '--json',
        ])
      ).stdout,
    );
    t.comment(`adapting to the training photos themselves: adapted ${unchanged.adapted} (${unchanged.reason})`);
    const tooFew = await colourFolder(ws.root, 'few', { red: 3 }, 6);
    t.match(
      (await run(adaptCommand, [tooFew, '--head', head, '--out', out, '--backbone', ws.model, '--ep', 'cpu'])).error
        ?.message,
      /at least 16 field photos/,
    );
    t.match((await run(adaptCommand, [field, '--head', head])).error?.message, /missing --out/);
  },
);
