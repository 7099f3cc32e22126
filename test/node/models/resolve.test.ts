import t from 'tap';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import {
  mkdtempSync,
  mkdirSync,
  writeFileSync,
  rmSync,
  copyFileSync,
  existsSync,
  readdirSync,
  utimesSync,
  readFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { repoRoot, sharedModel } from '../../helpers/shared.js';
import {
  resolveBackbone,
  bundledModelsDir,
  locateCatalogModel,
  hashModelFile,
  modelSearchLocations,
  closestIds,
} from '../../../src/node/models/resolve.js';
import type { CatalogEntry } from '../../../src/core/models/catalog-types.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { sha256Bytes } from '../../../src/node/util/sha256.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { inCliTerms } from '../../../src/node/cli/common.js';

// Looked up before this file changes EDGETL_MODEL_PATH.
const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');

const root = mkdtempSync(join(tmpdir(), 'edgetl-resolve-'));
const cacheDir = join(root, 'cache');
const workDir = join(root, 'work');
mkdirSync(workDir, { recursive: true });
process.env.EDGETL_CACHE_DIR = cacheDir;
delete process.env.EDGETL_MODEL_PATH;
process.chdir(workDir);
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const content = randomBytes(20_000);
const fakeEntry = (overrides: Partial<CatalogEntry> = {}): CatalogEntry => ({
  id: 'tiny-net',
  file: 'tiny-net.onnx',
  sha256: sha256Bytes(content),
  bytes: content.length,
  license: 'Apache-2.0',
  source: 'test fixture',
  kind: 'arch-only',
  description: 'bytes standing in for a model',
  input: { layout: 'NCHW' },
  preprocess: IMAGENET_224,
  embedding: { dim: 8 },
  ...overrides,
});

async function failure(promise: Promise<unknown>): Promise<EdgetlError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EdgetlError) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

function folder(name: string, withModel: boolean, bytes: Buffer = content): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (withModel) writeFileSync(join(dir, 'tiny-net.onnx'), bytes);
  return dir;
}

t.test('search order: EDGETL_MODEL_PATH entries, then ./models, then the bundled models, then the cache', async (t) => {
  const entry = fakeEntry();
  const catalog = [entry];
  const first = folder('path-a', false);
  const second = folder('path-b', true);
  const local = join(workDir, 'models');
  mkdirSync(local, { recursive: true });
  writeFileSync(join(local, 'tiny-net.onnx'), content);
  mkdirSync(join(cacheDir, 'models'), { recursive: true });
  writeFileSync(join(cacheDir, 'models', 'tiny-net.onnx'), content);
  process.env.EDGETL_MODEL_PATH = `${first}:${second}`;
  t.teardown(() => {
    delete process.env.EDGETL_MODEL_PATH;
    rmSync(local, { recursive: true, force: true });
    rmSync(join(cacheDir, 'models'), { recursive: true, force: true });
  });

  t.same(
    modelSearchLocations().map((l) => [l.dir, l.origin]),
    [
      [first, 'EDGETL_MODEL_PATH'],
      [second, 'EDGETL_MODEL_PATH'],
      [local, './models'],
      [join(repoRoot, 'models'), 'bundled'],
      [join(cacheDir, 'models'), 'cache'],
    ],
  );
  t.equal(bundledModelsDir(), join(repoRoot, 'models'), "the package's models/ folder, found from the running code");
  let resolved = await resolveBackbone('tiny-net', { catalog, download: false });
  t.equal(resolved.path, join(second, 'tiny-net.onnx'), 'second EDGETL_MODEL_PATH entry wins over ./models');
  t.equal(resolved.id, 'tiny-net');
  t.equal(resolved.entry, entry);
  t.equal(resolved.downloaded, false);

  delete process.env.EDGETL_MODEL_PATH;
  resolved = await resolveBackbone('tiny-net', { catalog, download: false });
  t.equal(resolved.path, join(local, 'tiny-net.onnx'), './models before the cache');

  rmSync(join(local, 'tiny-net.onnx'));
  resolved = await resolveBackbone('tiny-net', { catalog, download: false });
  t.equal(resolved.path, join(cacheDir, 'models', 'tiny-net.onnx'), 'the cache last');
  t.equal((await locateCatalogModel(entry)).path, join(cacheDir, 'models', 'tiny-net.onnx'));
});

t.test('a present file with the wrong sha256 is refused, naming the file and both hashes', async (t) => {
  const damaged = Buffer.from(content);
  damaged[100] ^= 0xff;
  const dir = folder('damaged', true, damaged);
  const good = folder('good', true);
  const entry = fakeEntry();
  const error = await failure(
    resolveBackbone('tiny-net', { catalog: [entry], searchPath: [dir, good], download: false }),
  );
  t.equal(error.code, 'model-checksum');
  t.equal(error.file, join(dir, 'tiny-net.onnx'));
  t.match(error.message, join(dir, 'tiny-net.onnx'));
  t.match(error.message, entry.sha256, 'expected hash');
  t.match(error.message, sha256Bytes(damaged), 'actual hash');
});

t.test('missing with downloads off: the error lists every place looked', async (t) => {
  const a = folder('empty-a', false);
  const b = folder('empty-b', false);
  const error = await failure(
    resolveBackbone('tiny-net', {
      catalog: [fakeEntry({ url: 'http://127.0.0.1:9/x' })],
      searchPath: [a, b],
      download: false,
    }),
  );
  t.equal(error.code, 'model-missing');
  t.match(error.message, join(a, 'tiny-net.onnx'));
  t.match(error.message, join(b, 'tiny-net.onnx'));
  t.match(error.message, "Downloading is off (`download: false`); with it on, Backbone.load('tiny-net') downloads it");
  t.match(inCliTerms(error.message), 'Downloading is off (--offline); `edgetl models fetch tiny-net` downloads it');
});

t.test('an entry without a URL says so and where it looked', async (t) => {
  const a = folder('empty-c', false);
  const error = await failure(resolveBackbone('tiny-net', { catalog: [fakeEntry()], searchPath: [a] }));
  t.equal(error.code, 'model-missing');
  t.match(error.message, /no download URL/);
  t.match(error.message, join(a, 'tiny-net.onnx'));
});

t.test('a missing catalog model is downloaded into <cache>/models, then found there', async (t) => {
  let requests = 0;
  const server = http.createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-length': content.length });
    res.end(content);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tiny-net.onnx`;
  const entry = fakeEntry({ url });
  const empty = folder('empty-d', false);
  const progress: number[] = [];
  const starts: string[] = [];
  const resolved = await resolveBackbone('tiny-net', {
    catalog: [entry],
    searchPath: [empty],
    onProgress: (received) => progress.push(received),
    onDownloadStart: (info) => starts.push(`${info.id} ${info.url} ${info.dest}`),
  });
  const dest = join(cacheDir, 'models', 'tiny-net.onnx');
  t.equal(resolved.path, dest);
  t.equal(resolved.downloaded, true);
  t.equal(resolved.sha256, entry.sha256);
  t.ok(readFileSync(dest).equals(content));
  t.same(starts, [`tiny-net ${url} ${dest}`]);
  t.equal(progress.at(-1), content.length);
  t.same(readdirSync(join(cacheDir, 'models')), ['tiny-net.onnx'], 'only the finished file in the cache');

  const again = await resolveBackbone('tiny-net', { catalog: [entry] });
  t.equal(again.path, dest);
  t.equal(again.downloaded, false);
  t.equal(requests, 1, 'the second resolution does not download');
  rmSync(dest);
});

t.test('offline: the error lists the places looked and the URL that failed, promptly', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const url = `http://127.0.0.1:${port}/tiny-net.onnx`;
  const a = folder('empty-e', false);
  const error = await failure(
    resolveBackbone('tiny-net', { catalog: [fakeEntry({ url })], searchPath: [a], timeoutMs: 600_000 }),
  );
  t.equal(error.code, 'download-unreachable');
  t.match(error.message, join(a, 'tiny-net.onnx'));
  t.match(error.message, url);
  t.match(error.message, /offline/);
  t.notOk(existsSync(join(cacheDir, 'models', 'tiny-net.onnx')));
});

t.test('an unknown id lists the closest catalog ids', async (t) => {
  const catalog = ['resnet50-v1-12', 'resnet18-v1-7', 'mobilenetv2-12-int8', 'efficientnet-lite4-11'].map((id) =>
    fakeEntry({ id, file: `${id}.onnx` }),
  );
  const error = await failure(resolveBackbone('resnet50-v1', { catalog }));
  t.equal(error.code, 'unknown-backbone');
  t.match(error.message, /Closest catalog ids: resnet50-v1-12/);
  t.match(error.message, 'catalogEntries() lists all 4; or pass a path');
  t.match(inCliTerms(error.message), 'Run `edgetl models list` for all 4, or pass a path');
  t.same(
    closestIds(
      'mobilenetv2',
      catalog.map((e) => e.id),
    ).slice(0, 1),
    ['mobilenetv2-12-int8'],
  );
  t.same(
    closestIds(
      'zzzzzzzzzzzzzzzzzzzzz',
      catalog.map((e) => e.id),
    ),
    [],
  );
});

t.test('a path is used as is; an unknown file gets no entry and its name as id', async (t) => {
  const dir = folder('paths', false);
  const file = join(dir, 'my-model.onnx');
  writeFileSync(file, randomBytes(1000));
  const resolved = await resolveBackbone(file, { catalog: [fakeEntry()] });
  t.equal(resolved.path, file);
  t.equal(resolved.entry, undefined);
  t.equal(resolved.id, 'my-model');
  const relative = await resolveBackbone('../paths/my-model.onnx', { catalog: [fakeEntry()] });
  t.equal(relative.path, file, 'relative to the working directory');

  const missing = await failure(resolveBackbone(join(dir, 'nope.onnx'), { catalog: [] }));
  t.equal(missing.code, 'model-not-found');
  t.match(missing.message, join(dir, 'nope.onnx'));
  const folderError = await failure(resolveBackbone(dir + '/', { catalog: [] }));
  t.match(folderError.message, /is a folder/);
});

t.test('a renamed copy of a catalog file is identified by its sha256', async (t) => {
  const dir = folder('renamed', false);
  const renamed = join(dir, 'whatever-name.onnx');
  writeFileSync(renamed, content);
  const resolved = await resolveBackbone(renamed, { catalog: [fakeEntry()] });
  t.equal(resolved.entry?.id, 'tiny-net');
  t.equal(resolved.id, 'tiny-net');
  t.equal(resolved.path, renamed);
});

t.test('the bundled default backbone resolves by id with no configuration, offline', async (t) => {
  // EDGETL_MODEL_PATH is unset and the working folder has no models/: only the package's own copy can answer.
  const resolved = await resolveBackbone('mobilenetv2-12-int8', { download: false });
  t.equal(resolved.path, join(repoRoot, 'models', 'mobilenetv2-12-int8.onnx'));
  t.equal(resolved.entry?.bundled, true);
  t.equal(resolved.sha256, 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f');
  t.equal(resolved.downloaded, false);
});

t.test(
  'an id the catalog does not know is found as <id>.onnx in a search folder or one of its subfolders',
  async (t) => {
    const dir = folder('unknown-ids', false);
    mkdirSync(join(dir, 'arch-only'));
    const top = randomBytes(500);
    const nested = randomBytes(600);
    writeFileSync(join(dir, 'my-net.onnx'), top);
    writeFileSync(join(dir, 'arch-only', 'deep-net.arch-only.onnx'), nested);
    const a = await resolveBackbone('my-net', { catalog: [fakeEntry()], searchPath: [dir] });
    t.equal(a.path, join(dir, 'my-net.onnx'));
    t.equal(a.entry, undefined, 'no catalog entry: the sidecar or the defaults describe it');
    t.equal(a.id, 'my-net');
    const b = await resolveBackbone('deep-net.arch-only', { catalog: [fakeEntry()], searchPath: [dir] });
    t.equal(b.path, join(dir, 'arch-only', 'deep-net.arch-only.onnx'));
    t.equal(b.sha256, sha256Bytes(nested));
    const error = await failure(resolveBackbone('no-such-net', { catalog: [fakeEntry()], searchPath: [dir] }));
    t.equal(error.code, 'unknown-backbone');
    t.match(error.message, /no no-such-net\.onnx in the model search path/);
    t.match(error.message, dir);
  },
);

t.test('a bare "<id>.onnx" that is not a file here resolves as the catalog id', async (t) => {
  const dir = folder('bare', true);
  const resolved = await resolveBackbone('tiny-net.onnx', {
    catalog: [fakeEntry()],
    searchPath: [dir],
    download: false,
  });
  t.equal(resolved.path, join(dir, 'tiny-net.onnx'));
});

t.test('the real catalog identifies a renamed shared MobileNetV2-int8', { skip: mobilenet.skip }, async (t) => {
  const dir = folder('renamed-real', false);
  const renamed = join(dir, 'kiosk-backbone.onnx');
  copyFileSync(mobilenet.path!, renamed);
  const resolved = await resolveBackbone(renamed);
  t.equal(resolved.entry?.id, 'mobilenetv2-12-int8');
  t.equal(resolved.id, 'mobilenetv2-12-int8');
  t.equal(resolved.sha256, 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f');
});

t.test('hashes are remembered by path, size and mtime; verify rehashes', async (t) => {
  const dir = folder('memo', false);
  const file = join(dir, 'm.onnx');
  const original = randomBytes(5000);
  writeFileSync(file, original);
  // Whole seconds: a sub-millisecond mtime would not survive utimes.
  const mtime = 1_700_000_000;
  utimesSync(file, mtime, mtime);
  t.equal(await hashModelFile(file), sha256Bytes(original));
  t.ok(existsSync(join(cacheDir, 'file-hashes.json')), 'memo stored in the cache folder');

  const replaced = randomBytes(5000);
  writeFileSync(file, replaced);
  utimesSync(file, mtime, mtime);
  t.equal(await hashModelFile(file), sha256Bytes(original), 'same path, size and mtime: the memo answers');
  t.equal(await hashModelFile(file, { verify: true }), sha256Bytes(replaced), 'verify rehashes');

  writeFileSync(file, randomBytes(6000));
  t.not(await hashModelFile(file), sha256Bytes(replaced), 'a changed size invalidates the memo');
});

t.test('a model path that exists but is not a regular file is said to be so, not "not present"', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdirSync, symlinkSync } = await import('node:fs');
  const entry = fakeEntry();
  const cases: [string, (path: string) => void, RegExp][] = [
    ['folder', (path) => mkdirSync(path), /is a folder, not a model file/],
    ['fifo', (path) => execFileSync('mkfifo', [path]), /is a FIFO, not a model file/],
    [
      'broken-link',
      (path) => symlinkSync(join(path, '..', 'gone.onnx'), path),
      /is a broken symbolic link, not a model file/,
    ],
  ];
  for (const [name, make, reason] of cases) {
    const dir = folder(`not-a-file-${name}`, false);
    const path = join(dir, 'tiny-net.onnx');
    make(path);
    const located = await locateCatalogModel(entry, { searchPath: [dir] });
    t.equal(located.path, undefined, `${name}: no model there`);
    t.match(located.notAFile, new RegExp(`${path} exists but ${reason.source}`), `${name}: locate says what is there`);
    const error = await failure(resolveBackbone('tiny-net', { catalog: [entry], searchPath: [dir], download: false }));
    t.equal(error.code, 'model-not-a-file', `${name}: resolving by id names it`);
    t.match(error.message, reason);
    const byPath = await failure(resolveBackbone(path, { catalog: [] }));
    t.match(byPath.message, name === 'broken-link' ? /not found/ : reason, `${name}: as a path too`);
  }
});
