/**
 * writeFileAtomic respects what sits at the path (devices, FIFOs, symlinks, modes), names the file when a write
 * fails, and cleans up the temporary files of killed runs.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../../src/node/util/atomic-write.js';
import { NpyRowWriter, readNpyFile, writeNpyFile } from '../../../src/node/embed/npy-file.js';
import { killHard, runToEnd, spawnTypeScript, waitForOutput } from '../../helpers/child-script.js';

const crashWriters = fileURLToPath(new URL('../../helpers/crash-writers.ts', import.meta.url));
const isRoot = process.getuid?.() === 0;

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-atomic-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function temporaries(dir: string, name: string): Promise<string[]> {
  return readdir(dir).then((names) => names.filter((n) => n.startsWith(`.${name}.`) && n.endsWith('.tmp')));
}

t.test('/dev/null stays a character device after a write to it', async (t) => {
  await writeFileAtomic('/dev/null', 'head json\n');
  t.ok(statSync('/dev/null').isCharacterDevice(), '/dev/null is still a character device');
  await writeNpyFile('/dev/null', Float32Array.of(1, 2), [1, 2]);
  const writer = await NpyRowWriter.create('/dev/null', 2);
  writer.append(Float32Array.of(1, 2));
  await writer.finish();
  t.ok(statSync('/dev/null').isCharacterDevice(), 'also after an NPY written whole and streamed');
});

t.test('a FIFO receives the bytes and stays a FIFO', async (t) => {
  const dir = await scratch(t);
  const fifo = join(dir, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const received = new Promise<string>((resolve, reject) => {
    let text = '';
    createReadStream(fifo, 'utf8')
      .on('data', (chunk) => (text += chunk))
      .on('end', () => resolve(text))
      .on('error', reject);
  });
  await writeFileAtomic(fifo, 'through the pipe\n');
  t.equal(await received, 'through the pipe\n', 'the reader got the data');
  t.ok(lstatSync(fifo).isFIFO(), 'the FIFO is still a FIFO');
  t.same(await temporaries(dir, 'out.fifo'), [], 'no temporary file left');
});

t.test('/dev/stdout writes into the redirect instead of replacing it', async (t) => {
  const dir = await scratch(t);
  const out = join(dir, 'stdout.txt');
  const { writeFileSync, openSync, closeSync } = await import('node:fs');
  writeFileSync(out, '');
  const fd = openSync(out, 'w');
  const child = spawnTypeScript(crashWriters, ['stdout', 'the file\n'], { stdio: ['ignore', fd, 'pipe'] });
  const result = await runToEnd(child);
  closeSync(fd);
  t.equal(result.code, 0, result.stderr);
  t.equal(readFileSync(out, 'utf8'), 'before\nthe file\n', 'what the process printed before is kept, the file follows');
});

t.test('a symlink stays a symlink; its target is replaced atomically', async (t) => {
  const dir = await scratch(t);
  await mkdir(join(dir, 'real'));
  const target = join(dir, 'real', 'head.json');
  await writeFile(target, 'old');
  const link = join(dir, 'head.json');
  await symlink(join('real', 'head.json'), link);
  await writeFileAtomic(link, 'new');
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
  t.equal(readlinkSync(link), join('real', 'head.json'), 'pointing where it pointed');
  t.equal(await readFile(target, 'utf8'), 'new', 'the target holds the new content');
  t.same(await temporaries(join(dir, 'real'), 'head.json'), [], 'no temporary left beside the target');
  t.same(await temporaries(dir, 'head.json'), [], 'nor beside the link');

  // a chain of links, and a dangling link (its target is created)
  const chain = join(dir, 'chain.json');
  await symlink(link, chain);
  await writeFileAtomic(chain, 'newer');
  t.equal(await readFile(target, 'utf8'), 'newer', 'a chain of links writes the last target');
  t.ok(lstatSync(chain).isSymbolicLink() && lstatSync(link).isSymbolicLink());
  const dangling = join(dir, 'dangling.json');
  await symlink('created.json', dangling);
  await writeFileAtomic(dangling, 'made');
  t.ok(lstatSync(dangling).isSymbolicLink(), 'a dangling link stays a link');
  t.equal(await readFile(join(dir, 'created.json'), 'utf8'), 'made', 'and its target is created');

  // streamed NPY through a link
  const npyTarget = join(dir, 'real', 'set.npy');
  await symlink(npyTarget, join(dir, 'set.npy'));
  const writer = await NpyRowWriter.create(join(dir, 'set.npy'), 2);
  writer.append(Float32Array.of(1, 2));
  await writer.finish();
  t.ok(lstatSync(join(dir, 'set.npy')).isSymbolicLink(), 'a streamed NPY keeps the link too');
  t.same(Array.from((await readNpyFile(npyTarget)).data), [1, 2]);

  const loop = join(dir, 'loop.json');
  await symlink('loop.json', loop);
  await t.rejects(
    writeFileAtomic(loop, 'x'),
    { code: 'write-failed', message: /loop\.json.*symbolic links/ },
    'a symlink loop is refused by name',
  );
});

t.test('an existing file keeps its mode (and owner as root)', async (t) => {
  const dir = await scratch(t);
  const file = join(dir, 'secret.json');
  await writeFile(file, 'old');
  await chmod(file, 0o600);
  if (isRoot) await chown(file, 65534, 65534);
  await writeFileAtomic(file, 'new');
  t.equal(statSync(file).mode & 0o7777, 0o600, '0600 stays 0600');
  if (isRoot) t.same([statSync(file).uid, statSync(file).gid], [65534, 65534], 'the owner is kept');
  await chmod(file, 0o640);
  await writeNpyFile(file, Float32Array.of(1), [1, 1]);
  t.equal(statSync(file).mode & 0o7777, 0o640, 'also for an NPY written whole');
  const writer = await NpyRowWriter.create(file, 1);
  writer.append(Float32Array.of(2));
  await writer.finish();
  t.equal(statSync(file).mode & 0o7777, 0o640, 'and for a streamed one');
});

t.test('a folder at the path is refused by name', async (t) => {
  const dir = await scratch(t);
  await t.rejects(writeFileAtomic(dir, 'x'), { code: 'write-failed', message: new RegExp(`${dir}: it is a folder`) });
});

t.test('a full disk names the file (ENOSPC)', async (t) => {
  // /dev/full answers every write with ENOSPC
  await t.rejects(writeFileAtomic('/dev/full', 'x'), {
    code: 'write-failed',
    message: /cannot write \/dev\/full: no space left on the device \(ENOSPC\)/,
  });
  if (!isRoot) return t.comment('a tiny tmpfs needs root to mount: skipped');
  const dir = await scratch(t);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
  if (mount.status !== 0) return t.comment(`cannot mount a tmpfs here (${mount.stderr}): skipped`);
  t.teardown(() => spawnSync('umount', [dir]));
  const file = join(dir, 'head.json');
  await writeFile(file, 'previous head');
  await t.rejects(writeFileAtomic(file, Buffer.alloc(256 * 1024, 1)), {
    code: 'write-failed',
    message: new RegExp(`cannot write ${file}: no space left on the device \\(ENOSPC\\)`),
  });
  t.equal(await readFile(file, 'utf8'), 'previous head', 'the previous file is intact');
  t.same(await temporaries(dir, 'head.json'), [], 'the temporary file is removed');
  const writer = await NpyRowWriter.create(join(dir, 'big.npy'), 1024);
  for (let r = 0; r < 100; r++) writer.append(new Float32Array(1024));
  const failure = await writer.finish().then(
    () => undefined,
    (error: Error & { code?: string }) => error,
  );
  t.match(failure, { code: 'write-failed', message: /big\.npy: no space left on the device/ }, 'a streamed NPY too');
});

t.test('permission denied names the file (EACCES)', async (t) => {
  const dir = await scratch(t);
  const locked = join(dir, 'locked');
  await mkdir(locked);
  await chmod(locked, 0o555);
  await chmod(dir, 0o755);
  const file = join(locked, 'head.json');
  if (isRoot) {
    // root ignores permission bits: write as nobody
    const child = spawnTypeScript(crashWriters, ['write', file, 'x'], { uid: 65534, gid: 65534, cwd: tmpdir() });
    const result = await runToEnd(child);
    t.equal(result.code, 3, 'the write failed');
    t.match(result.stderr, new RegExp(`cannot write ${file}: permission denied \\(EACCES\\)`));
  } else {
    await t.rejects(writeFileAtomic(file, 'x'), {
      code: 'write-failed',
      message: new RegExp(`cannot write ${file}: permission denied \\(EACCES\\)`),
    });
  }
  t.notOk(existsSync(file));
});

t.test('temporary files of a killed run are removed by the next write', async (t) => {
  const dir = await scratch(t);
  const path = join(dir, 'train.npy');
  await writeNpyFile(path, Float32Array.of(1, 2, 3, 4), [1, 4]);
  const child = spawnTypeScript(crashWriters, ['npy-stream', path]);
  t.teardown(() => killHard(child));
  await waitForOutput(child, 'ready');
  await killHard(child);
  const left = await temporaries(dir, 'train.npy');
  t.equal(left.length, 1, 'kill -9 left the streamed temporary file');
  t.match(left[0], new RegExp(`^\\.train\\.npy\\.${child.pid}\\.[0-9a-f]+\\.tmp$`));
  t.same(Array.from((await readNpyFile(path)).data), [1, 2, 3, 4], 'the previous file is intact');
  // a live process's temporary file is left alone
  const live = join(dir, `.train.npy.${process.pid}.abcd1234.tmp`);
  await writeFile(live, 'in use');
  await writeNpyFile(path, Float32Array.of(5, 6, 7, 8), [1, 4]);
  t.same(
    await temporaries(dir, 'train.npy'),
    [`.train.npy.${process.pid}.abcd1234.tmp`],
    "the dead process's file is gone, the live one's kept",
  );
  const streamed = spawnTypeScript(crashWriters, ['npy-stream', path]);
  t.teardown(() => killHard(streamed));
  await waitForOutput(streamed, 'ready');
  await killHard(streamed);
  const writer = await NpyRowWriter.create(path, 4);
  writer.append(Float32Array.of(0, 0, 0, 0));
  await writer.finish();
  t.same(
    await temporaries(dir, 'train.npy'),
    [`.train.npy.${process.pid}.abcd1234.tmp`],
    'a streamed write cleans up too',
  );
});
