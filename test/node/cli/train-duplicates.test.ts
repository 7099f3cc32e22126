import t from 'tap';
import { join } from 'node:path';
import { copyFile } from 'node:fs/promises';
import { trainCommand } from '../../../src/node/cli/train.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('train warns when training photos repeat the same image content', async (t) => {
  const ws = await workspace(t, 'cli-train-dup');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 7);
  await copyFile(join(train, 'red', '0.png'), join(train, 'red', 'copy-of-0.png'));
  await copyFile(join(train, 'red', '1.png'), join(train, 'blue', 'mislabelled.png'));
  const head = join(ws.root, 'head.json');
  const result = await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
  t.equal(result.error, undefined, result.error?.message ?? '');
  const summary = JSON.parse(result.stdout) as { warnings: string[] };
  const warning = summary.warnings.find((w) => /repeat another's image content/.test(w));
  t.ok(warning, 'a duplicate warning is given');
  t.match(warning, /^2 training example\(s\) repeat/);
  t.match(warning, /red\/0\.png = .*red\/copy-of-0\.png/);
  t.match(warning, /1 group\(s\) with different labels/);
  t.match(warning, /cross-validation and held-out figures/);

  const clean = await colourFolder(ws.root, 'clean', { red: 6, blue: 6 }, 8);
  const again = await run(trainCommand, [clean, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
  t.notOk(
    (JSON.parse(again.stdout) as { warnings: string[] }).warnings.some((w) => /repeat/.test(w)),
    'no warning without copies',
  );
});
