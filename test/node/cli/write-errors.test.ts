/** A full disk on save: the CLI names the file and the reason, and the previous head is intact. */
import t from 'tap';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { trainCommand } from '../../../src/node/cli/train.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

t.test('train --out on a full disk fails naming the file (ENOSPC), the previous head intact', async (t) => {
  if (process.getuid?.() !== 0) return t.comment('mounting a tiny tmpfs needs root: skipped');
  const ws = await workspace(t, 'cli-enospc');
  const train = await colourFolder(ws.root, 'train', { red: 4, blue: 4 }, 2);
  const disk = join(ws.root, 'disk');
  await mkdir(disk);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk]).status !== 0)
    return t.comment('cannot mount a tmpfs here: skipped');
  t.teardown(() => spawnSync('umount', [disk]));
  const head = join(disk, 'head.json');
  await writeFile(head, 'previous head');
  // fill what is left
  try {
    writeFileSync(join(disk, 'filler'), Buffer.alloc(1 << 20));
  } catch {
    // ENOSPC expected: the filler took what it could
  }
  const result = await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', head]);
  t.match(result.error, {
    code: 'write-failed',
    message: new RegExp(`^cannot write ${head}: no space left on the device \\(ENOSPC\\)$`),
  });
  t.equal(await readFile(head, 'utf8'), 'previous head', 'the previous head is intact');
});
