import t from 'tap';
import { join } from 'node:path';
import { evalCommand } from '../../../src/node/cli/eval.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { embedCommand } from '../../../src/node/cli/embed.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('eval --json: counts, accuracy, per-class results and confusion keyed by label', async (t) => {
  const ws = await workspace(t, 'cli-eval');
  const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 1);
  const head = join(ws.root, 'head.json');
  t.equal((await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json'])).code, 0);
  // a test set where "green" images are really blue-ish: some must be confused
  const test = await colourFolder(ws.root, 'test', { red: 5, blue: 4 }, 2);
  const result = await run(evalCommand, [test, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json']);
  t.equal(result.error, undefined, result.error?.message ?? '');
  const report = JSON.parse(result.stdout);
  t.equal(report.count, 9);
  t.equal(report.accuracy, 1);
  t.equal(report.balancedAccuracy, 1, 'mean recall over the classes present');
  t.same(Object.keys(report.perClass), ['blue', 'green', 'red']);
  t.same(report.perClass.red, { precision: 1, recall: 1, f1: 1, support: 5 });
  t.equal(report.perClass.green.support, 0);
  t.same(report.confusion, {
    labels: ['blue', 'green', 'red'],
    matrix: [
      [4, 0, 0],
      [0, 0, 0],
      [0, 0, 5],
    ],
  });
  t.equal(report.closedSetAccuracy, 1);
  t.same(
    Object.keys(report.openSet),
    ['rejectedRate', 'acceptedAccuracy', 'threshold', 'drift'],
    'open-set figures beside the closed-set ones',
  );
  t.equal(report.openSet.rejectedRate, 0);
  t.equal(report.openSet.acceptedAccuracy, 1);
  t.equal(report.openSet.drift.drifted, false);

  const text = await run(evalCommand, [test, '--head', head, '--backbone', ws.model, '--ep', 'cpu']);
  t.match(text.stdout, /closed set\s+accuracy 100\.0%/);
  t.match(text.stdout, /open set\s+0 rejected as unknown \(0\.0%\), accuracy on the accepted 100\.0%/);
  t.match(text.stdout, /drift\s+0\.0% over the outlier threshold/);
  t.match(text.stdout, /confusion/);
  // without --backbone the head's backbone id is tried; "tiny" is a file, not a catalog id, so the error says what to do
  const implicit = await run(evalCommand, [test, '--head', head, '--ep', 'cpu']);
  t.match(
    implicit.error?.message,
    /backbone "tiny" is the one the head or embeddings name; if it is a file, pass --backbone/,
  );
});

t.test('eval refuses another backbone and classes the head does not know', async (t) => {
  const ws = await workspace(t, 'cli-eval-refuse');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 3);
  const head = join(ws.root, 'head.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
  let result = await run(evalCommand, [train, '--head', head, '--backbone', ws.otherModel, '--ep', 'cpu']);
  t.match(result.error?.message, /trained on backbone tiny .* but --backbone .* is tiny-other/);
  const otherSet = join(ws.root, 'other');
  await run(embedCommand, [train, '--backbone', ws.otherModel, '--ep', 'cpu', '--out', otherSet, '--json']);
  result = await run(evalCommand, [otherSet, '--head', head]);
  t.match(result.error?.message, /comes from backbone tiny-other but .* was trained on tiny/);
  const extra = await colourFolder(ws.root, 'extra', { red: 2, green: 2 }, 4);
  result = await run(evalCommand, [extra, '--head', head, '--backbone', ws.model, '--ep', 'cpu']);
  t.match(result.error?.message, /class "green" that the head does not know/);
  result = await run(evalCommand, [extra, '--head', join(ws.root, 'missing.json')]);
  t.match(result.error?.message, /cannot read head .*missing\.json: file not found/);
});
