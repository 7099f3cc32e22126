import t from 'tap';
import { mkdtemp, mkdir, writeFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanImageFolder } from '../../../src/node/embed/dataset.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

async function tree(files: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-dataset-'));
  for (const file of files) {
    if (file.endsWith('/')) {
      await mkdir(join(root, file), { recursive: true });
      continue;
    }
    await mkdir(join(root, file, '..'), { recursive: true });
    await writeFile(join(root, file), 'x');
  }
  return root;
}

async function failure(promise: Promise<unknown>): Promise<EdgetlError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof EdgetlError)) throw new Error(`expected an EdgetlError, got ${String(error)}`);
  return error;
}

t.test('class folders give sorted classes and items labelled by folder', async (t) => {
  const root = await tree([
    'bees/b.JPG',
    'bees/a.png',
    'ants/z.jpeg',
    'ants/.hidden.jpg',
    'ants/notes.txt',
    'ants/Y.webp',
    '.git/x.jpg',
    'README.md',
  ]);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const scan = await scanImageFolder(root);
  t.same(scan.classes, ['ants', 'bees']);
  t.same(
    scan.items.map((i) => [i.path.slice(root.length + 1), i.label]),
    [
      ['ants/Y.webp', 'ants'],
      ['ants/z.jpeg', 'ants'],
      ['bees/a.png', 'bees'],
      ['bees/b.JPG', 'bees'],
    ],
  );
  t.match(scan.warnings.join('\n'), /README\.md/);
});

t.test('every listed extension counts, case-insensitively', async (t) => {
  const names = ['a.jpg', 'b.JPEG', 'c.png', 'd.WebP', 'e.gif', 'f.tif', 'g.TIFF', 'h.avif', 'i.bmp', 'j.heic'];
  const root = await tree(names);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const scan = await scanImageFolder(root);
  t.equal(scan.classes, null);
  t.same(
    scan.items.map((i) => i.path.slice(root.length + 1)),
    names.slice(0, 8),
  );
  t.ok(scan.items.every((i) => i.label === null));
});

t.test('a flat folder has null classes and null labels; empty sub-folders are reported', async (t) => {
  const root = await tree(['2.jpg', '10.jpg', 'old/']);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const scan = await scanImageFolder(root);
  t.equal(scan.classes, null);
  t.same(
    scan.items.map((i) => i.path.slice(root.length + 1)),
    ['10.jpg', '2.jpg'],
    'code-unit order, stable across machines',
  );
  t.match(scan.warnings.join('\n'), /old/);
});

t.test('a class folder with no images is left out of classes and named in a warning', async (t) => {
  const root = await tree(['cats/1.jpg', 'dogs/readme.txt', 'empty/']);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const scan = await scanImageFolder(root);
  t.same(scan.classes, ['cats']);
  t.match(scan.warnings.join('\n'), /2 class folder\(s\) with no images: dogs, empty/);
});

t.test('images nested below a class folder are ignored with a warning', async (t) => {
  const root = await tree(['cats/1.jpg', 'cats/more/2.jpg']);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const scan = await scanImageFolder(root);
  t.equal(scan.items.length, 1);
  t.match(scan.warnings.join('\n'), /nested folder.*cats.*more/);
});

t.test('symlinked class folders and images are followed', async (t) => {
  const source = await tree(['real/1.jpg', 'loose.png']);
  const root = await tree(['x/']);
  t.teardown(() =>
    Promise.all([rm(source, { recursive: true, force: true }), rm(root, { recursive: true, force: true })]),
  );
  await symlink(join(source, 'real'), join(root, 'linked'));
  await symlink(join(source, 'loose.png'), join(root, 'x', 'l.png'));
  const scan = await scanImageFolder(root);
  t.same(scan.classes, ['linked', 'x']);
  t.equal(scan.items.length, 2);
});

t.test('a mix of class folders and loose images is refused, naming both', async (t) => {
  const root = await tree(['cats/1.jpg', 'stray.jpg']);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const error = await failure(scanImageFolder(root));
  t.equal(error.code, 'mixed-layout');
  t.match(error.message, /cats/);
  t.match(error.message, /stray\.jpg/);
  t.equal(error.file, root);
});

t.test('missing, not-a-folder and empty folders give clear errors', async (t) => {
  const root = await tree(['file.jpg', 'empty/', 'textonly/a.txt']);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const missing = await failure(scanImageFolder(join(root, 'nope')));
  t.equal(missing.code, 'not-found');
  t.match(missing.message, /nope does not exist/);
  const notDir = await failure(scanImageFolder(join(root, 'file.jpg')));
  t.equal(notDir.code, 'not-a-directory');
  const empty = await failure(scanImageFolder(join(root, 'empty')));
  t.equal(empty.code, 'empty-dataset');
  t.match(empty.message, /it is empty/);
  const textOnly = await failure(scanImageFolder(join(root, 'textonly')));
  t.match(textOnly.message, /only non-image files \(a\.txt\)/);
  const noImagesBelow = await tree(['a/', 'b/x.txt']);
  t.teardown(() => rm(noImagesBelow, { recursive: true, force: true }));
  t.match((await failure(scanImageFolder(noImagesBelow))).message, /sub-folder\(s\) \(a, b\) hold no images/);
});

t.test('broken and looping symlinks in class folders are listed as skipped, not dropped silently', async (t) => {
  const dir = await tree(['ants/1.jpg', 'ants/2.jpg', 'bees/1.jpg']);
  await symlink(join(dir, 'nowhere.jpg'), join(dir, 'ants', 'broken.jpg'));
  await symlink('loop.jpg', join(dir, 'bees', 'loop.jpg'));
  await symlink(join(dir, 'no-such-folder'), join(dir, 'wasps'));
  const scan = await scanImageFolder(dir);
  t.same(scan.classes, ['ants', 'bees']);
  t.same(
    scan.items.map((i) => i.path),
    [join(dir, 'ants', '1.jpg'), join(dir, 'ants', '2.jpg'), join(dir, 'bees', '1.jpg')],
  );
  t.same(scan.skipped, [
    { path: join(dir, 'wasps'), reason: 'broken symbolic link (its target does not exist)' },
    { path: join(dir, 'ants', 'broken.jpg'), reason: 'broken symbolic link (its target does not exist)' },
    { path: join(dir, 'bees', 'loop.jpg'), reason: 'symbolic link loop' },
  ]);
  t.match(scan.warnings.join('\n'), /skipped 3 unusable entries: .*broken\.jpg \(broken symbolic link/);
  const flat = await tree(['a.jpg']);
  await symlink('b.jpg', join(flat, 'b.jpg'));
  t.same(
    (await scanImageFolder(flat)).skipped,
    [{ path: join(flat, 'b.jpg'), reason: 'symbolic link loop' }],
    'in a flat folder too',
  );
  const onlyBroken = await tree([]);
  await symlink(join(onlyBroken, 'x.jpg'), join(onlyBroken, 'y.jpg'));
  const error = await failure(scanImageFolder(onlyBroken));
  t.match(error.message, /y\.jpg \(broken symbolic link/, 'a folder of only broken links says why it has no images');
});
