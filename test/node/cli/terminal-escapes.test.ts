/**
 * File names and labels with terminal escape sequences (clear screen, set title) are printed escaped in the
 * human output of predict, eval and head inspect, and in error messages; --json keeps the exact strings.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { rename } from 'node:fs/promises';
import { predictCommand } from '../../../src/node/cli/predict.js';
import { evalCommand } from '../../../src/node/cli/eval.js';
import { headCommand } from '../../../src/node/cli/head.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { terminalSafe } from '../../../src/node/cli/common.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

const CLEAR = '\u001b[2J';
const TITLE = '\u001b]0;owned\u0007';
const C1_CSI = '\u009b31m';

/** No raw control character other than the line breaks between lines. */
function assertNoControls(t: Test, text: string, what: string): void {
  const raw = [...text].filter((c) => c !== '\n' && /[\u0000-\u001f\u007f-\u009f]/.test(c));
  t.same(
    raw.map((c) => c.charCodeAt(0)),
    [],
    `${what}: no raw control characters`,
  );
}

t.test('terminalSafe escapes C0, DEL, C1 and bidi overrides, and only those', async (t) => {
  t.equal(terminalSafe(`a${CLEAR}b`), 'a\\x1b[2Jb');
  t.equal(terminalSafe(`${TITLE}`), '\\x1b]0;owned\\x07');
  t.equal(terminalSafe(C1_CSI), '\\x9b31m');
  t.equal(terminalSafe('tab\there\r\n\u007f'), 'tab\\x09here\\x0d\\x0a\\x7f');
  t.equal(terminalSafe('evil\u202egpj.exe'), 'evil\\u202egpj.exe');
  t.equal(terminalSafe('line one\nline two', { keepNewlines: true }), 'line one\nline two');
  t.equal(terminalSafe('abeilles é 蜂 🐝'), 'abeilles é 蜂 🐝', 'printable Unicode is untouched');
});

t.test('predict, eval and head inspect print escape sequences in file names and labels escaped', async (t) => {
  const ws = await workspace(t, 'cli-escapes');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 3);
  const evil = `red${CLEAR}${C1_CSI}`;
  await rename(join(train, 'red'), join(train, evil));
  const head = join(ws.root, 'head.json');
  const trained = await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head, '--json']);
  t.equal(trained.error, undefined, trained.error?.message ?? '');
  const images = await colourFolder(ws.root, 'new', { red: 1 }, 5);
  const image = join(images, 'red', `photo${TITLE}.png`);
  await rename(join(images, 'red', '0.png'), image);

  const predicted = await run(predictCommand, [image, '--head', head, '--backbone', ws.model, '--ep', 'cpu']);
  t.equal(predicted.error, undefined, predicted.error?.message ?? '');
  assertNoControls(t, predicted.stdout, 'predict');
  t.match(predicted.stdout, /photo\\x1b\]0;owned\\x07\.png/, 'the file name is shown escaped');
  t.match(predicted.stdout, /red\\x1b\[2J\\x9b31m/, 'the label is shown escaped');

  const evaluated = await run(evalCommand, [train, '--head', head, '--backbone', ws.model, '--ep', 'cpu']);
  t.equal(evaluated.error, undefined, evaluated.error?.message ?? '');
  assertNoControls(t, evaluated.stdout, 'eval');
  t.match(evaluated.stdout, /red\\x1b\[2J/);

  const inspected = await run(headCommand, ['inspect', head]);
  assertNoControls(t, inspected.stdout, 'head inspect');
  t.match(inspected.stdout, /labels +blue \(6\), red\\x1b\[2J\\x9b31m \(6\)/);

  const json = await run(predictCommand, [image, '--head', head, '--backbone', ws.model, '--ep', 'cpu', '--json']);
  const line = JSON.parse(json.stdout.split('\n')[0]!); // the image's line (a summary line follows)
  t.equal(line.path, image, '--json keeps the exact path');
  t.equal(line.label, evil, 'and the exact label');
});

t.test('error messages quoting a file name are escaped too (dist/cli.js)', async (t) => {
  const { existsSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const { repoRoot } = await import('../../helpers/shared.js');
  const cli = join(repoRoot, 'dist', 'cli.js');
  if (!existsSync(cli)) return t.comment('dist/cli.js is not built (npm run build): skipped');
  const result = spawnSync(process.execPath, [cli, 'head', 'inspect', `/tmp/no-such${CLEAR}${TITLE}.json`], {
    encoding: 'utf8',
  });
  t.equal(result.status, 1);
  assertNoControls(t, result.stderr, 'the error');
  t.match(
    result.stderr,
    /edgetl head: cannot read head \/tmp\/no-such\\x1b\[2J\\x1b\]0;owned\\x07\.json: file not found/,
  );
});
