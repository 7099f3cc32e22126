import t from 'tap';
import { mkdtemp, rm, readdir, appendFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { EmbeddingCache, imageBytesKey, rawPixelsKey } from '../../../src/node/embed/cache.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { setEmbeddingCacheBound } from '../../../src/node/embed/cache-bound.js';

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-cache-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const dim = 5;
const vector = (seed: number) => Float32Array.from({ length: dim }, (_, i) => seed * 10 + i + 0.25);
const key = (seed: number) => imageBytesKey(new TextEncoder().encode(`image ${seed}`));

t.test('entries survive a reopen and come back bit-identical', async (t) => {
  const root = await scratch(t);
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp1', preprocess: IMAGENET_224, dim });
  t.equal(await cache.get(key(1)), undefined);
  cache.put(key(1), vector(1));
  cache.put(key(2), vector(2));
  t.same(Array.from((await cache.get(key(1)))!), Array.from(vector(1)), 'visible before flush');
  await cache.close();
  t.ok(cache.path.startsWith(join(root, 'embeddings', 'fp1')), cache.path);

  const again = await EmbeddingCache.open({ root, fingerprint: 'fp1', preprocess: IMAGENET_224, dim });
  t.equal(again.stats().loaded, 2);
  t.equal(again.stats().damaged, 0);
  t.same(Array.from((await again.get(key(2)))!), Array.from(vector(2)));
  t.equal(await again.get(key(3)), undefined);
  t.same(again.stats().hits, 1);
  t.same(again.stats().misses, 1);
  await again.close();
});

t.test('a different fingerprint or preprocessing spec never shares entries', async (t) => {
  const root = await scratch(t);
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp1', preprocess: IMAGENET_224, dim });
  cache.put(key(1), vector(1));
  await cache.close();
  const otherModel = await EmbeddingCache.open({ root, fingerprint: 'fp2', preprocess: IMAGENET_224, dim });
  t.equal(await otherModel.get(key(1)), undefined);
  await otherModel.close();
  const otherSpec = await EmbeddingCache.open({
    root,
    fingerprint: 'fp1',
    preprocess: { ...IMAGENET_224, resizeTo: 224 },
    dim,
  });
  t.equal(await otherSpec.get(key(1)), undefined);
  await otherSpec.close();
  const sameSpecOtherKeyOrder = await EmbeddingCache.open({
    root,
    fingerprint: 'fp1',
    preprocess: JSON.parse(JSON.stringify(IMAGENET_224, Object.keys(IMAGENET_224).reverse())),
    dim,
  });
  t.ok(await sameSpecOtherKeyOrder.get(key(1)), 'spec hashing ignores key order');
  await sameSpecOtherKeyOrder.close();
});

t.test('a torn final write loses only that record, and later appends are still found', async (t) => {
  const root = await scratch(t);
  const first = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  for (let i = 0; i < 3; i++) first.put(key(i), vector(i));
  await first.close();
  // Simulate a crash half-way through appending a record.
  const full = await readFile(first.path);
  const recordBytes = 4 + 32 + dim * 4 + 4;
  await appendFile(first.path, full.subarray(full.length - recordBytes, full.length - recordBytes + 17));

  const second = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(second.stats().loaded, 3);
  t.equal(second.stats().damaged, 1);
  second.put(key(7), vector(7));
  await second.close();

  const third = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(third.stats().loaded, 4, 'the record appended after the torn one is indexed');
  t.same(Array.from((await third.get(key(7)))!), Array.from(vector(7)));
  t.same(Array.from((await third.get(key(2)))!), Array.from(vector(2)));
  await third.close();
});

t.test('a corrupted record in the middle is dropped, its neighbours kept', async (t) => {
  const root = await scratch(t);
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  for (let i = 0; i < 3; i++) cache.put(key(i), vector(i));
  await cache.close();
  const bytes = await readFile(cache.path);
  const recordBytes = 4 + 32 + dim * 4 + 4;
  bytes[64 + recordBytes + 40] ^= 0xff; // a data byte of record 1
  await writeFile(cache.path, bytes);
  const reopened = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(reopened.stats().loaded, 2);
  t.equal(reopened.stats().damaged, 1);
  t.equal(await reopened.get(key(1)), undefined);
  t.ok(await reopened.get(key(0)));
  t.ok(await reopened.get(key(2)));
  await reopened.close();
});

t.test('a file with a foreign header is set aside, not trusted', async (t) => {
  const root = await scratch(t);
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  cache.put(key(1), vector(1));
  await cache.close();
  await writeFile(cache.path, Buffer.alloc(200, 7));
  const fresh = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(fresh.stats().loaded, 0);
  await fresh.close();
  const names = await readdir(dirname(cache.path));
  t.ok(
    names.some((n) => n.includes('.unreadable-')),
    names.join(','),
  );
});

t.test('two writers appending to the same file lose nothing', async (t) => {
  const root = await scratch(t);
  const a = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  const b = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  for (let i = 0; i < 50; i++) (i % 2 ? a : b).put(key(i), vector(i));
  await Promise.all([a.flush(), b.flush()]);
  await Promise.all([a.close(), b.close()]);
  const c = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(c.stats().loaded, 50);
  t.equal(c.stats().damaged, 0);
  await c.close();
});

t.test('thousands of entries with a real dimension index correctly across scan chunks', async (t) => {
  const root = await scratch(t);
  const big = 1280;
  const count = 2500; // ~13 MB: more than one 8 MB scan chunk, so records straddle a chunk boundary
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim: big });
  const v = new Float32Array(big);
  for (let i = 0; i < count; i++) {
    v.fill(i);
    cache.put(key(i), v);
    if (i % 500 === 499) await cache.flush();
  }
  await cache.close();
  const reopened = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim: big });
  t.equal(reopened.stats().loaded, count);
  t.equal(reopened.stats().damaged, 0);
  for (const i of [0, 1, 1637, count - 1]) {
    const got = (await reopened.get(key(i)))!;
    t.ok(got[0] === i && got[big - 1] === i, `entry ${i}`);
  }
  await reopened.close();
});

t.test('raw pixel keys depend on geometry as well as bytes', async (t) => {
  const pixels = new Uint8Array(12);
  t.not(rawPixelsKey(pixels, 2, 2, 3), rawPixelsKey(pixels, 4, 1, 3));
  t.equal(rawPixelsKey(pixels, 2, 2, 3), rawPixelsKey(new Uint8Array(12), 2, 2, 3));
});

t.test(
  'two processes appending the same images: duplicates are found and compacted away at the next open',
  async (t) => {
    const { spawnTypeScript, waitForOutput, runToEnd } = await import('../../helpers/child-script.js');
    const { fileURLToPath } = await import('node:url');
    const { statSync } = await import('node:fs');
    const root = await scratch(t);
    const script = fileURLToPath(new URL('../../helpers/crash-writers.ts', import.meta.url));
    const children = [0, 1].map(() =>
      spawnTypeScript(script, ['cache-fill', root, '100'], { stdio: ['pipe', 'pipe', 'pipe'] }),
    );
    // both have opened (and indexed an empty file) before either appends
    await Promise.all(children.map((child) => waitForOutput(child, 'opened')));
    const ended = children.map((child) => runToEnd(child));
    for (const child of children) child.stdin!.write('go\n');
    for (const result of await Promise.all(ended)) t.equal(result.code, 0, result.stderr);
    const recordBytes = 4 + 32 + 4 * 4 + 4;
    const cache = await EmbeddingCache.open({
      root,
      fingerprint: 'shared',
      preprocess: IMAGENET_224,
      dim: 4,
      maxBytes: 1 << 20,
    });
    t.equal(cache.stats().duplicates, 100, 'every record was appended twice');
    t.equal(cache.stats().compacted, true, 'so the file was compacted on open');
    t.equal(cache.stats().loaded, 100);
    t.equal(statSync(cache.path).size, 64 + 100 * recordBytes, 'one record per image is left');
    t.same(Array.from((await cache.get(imageBytesKey(new TextEncoder().encode('image 42'))))!), [42, 42, 42, 42]);
    cache.put(imageBytesKey(new TextEncoder().encode('a new image')), Float32Array.of(1, 2, 3, 4));
    await cache.close();
    const again = await EmbeddingCache.open({ root, fingerprint: 'shared', preprocess: IMAGENET_224, dim: 4 });
    t.equal(again.stats().loaded, 101, 'appends after compaction are kept');
    t.equal(again.stats().compacted, false, 'a clean file is left alone');
    await again.close();
  },
);

t.test('the cache file is bounded: over maxBytes, opening keeps the newest entries', async (t) => {
  const { statSync } = await import('node:fs');
  const root = await scratch(t);
  const recordBytes = 4 + 32 + dim * 4 + 4;
  const maxBytes = 64 + 100 * recordBytes;
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim, maxBytes });
  for (let i = 0; i < 300; i++) cache.put(key(i), vector(i));
  await cache.close();
  t.ok(statSync(cache.path).size > maxBytes, 'a run may go past the bound');
  const reopened = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim, maxBytes });
  t.equal(reopened.stats().compacted, true);
  t.ok(statSync(reopened.path).size <= maxBytes * 0.75, `trimmed to ${statSync(reopened.path).size} bytes`);
  t.equal(await reopened.get(key(0)), undefined, 'the oldest entries are dropped');
  t.same(Array.from((await reopened.get(key(299)))!), Array.from(vector(299)), 'the newest are kept');
  await reopened.close();
});

t.test('without maxBytes, opening a file keeps it within the cache bound set by `edgetl cache limit`', async (t) => {
  const { statSync } = await import('node:fs');
  const root = await scratch(t);
  // the environment variable outranks the configured bound
  const fromEnv = process.env.EDGETL_CACHE_MAX_SIZE;
  delete process.env.EDGETL_CACHE_MAX_SIZE;
  t.teardown(() => {
    if (fromEnv !== undefined) process.env.EDGETL_CACHE_MAX_SIZE = fromEnv;
  });
  const recordBytes = 4 + 32 + dim * 4 + 4;
  const bound = 64 + 100 * recordBytes;
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  for (let i = 0; i < 300; i++) cache.put(key(i), vector(i));
  await cache.close();
  const unbounded = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(unbounded.stats().compacted, false, 'under the default bound (2 GB) nothing is dropped');
  await unbounded.close();
  await setEmbeddingCacheBound(bound, root);
  const reopened = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim });
  t.equal(reopened.stats().compacted, true, 'the configured bound applies to the file too');
  t.ok(statSync(reopened.path).size <= bound, `trimmed to ${statSync(reopened.path).size} bytes`);
  t.same(Array.from((await reopened.get(key(299)))!), Array.from(vector(299)), 'the newest entries are kept');
  await reopened.close();
});

t.test('a cache write failure is reported, not silent', async (t) => {
  const { spawnSync } = await import('node:child_process');
  if (process.getuid?.() !== 0) return t.comment('mounting a tiny tmpfs needs root: skipped');
  const root = await scratch(t);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', root]).status !== 0)
    return t.comment('cannot mount a tmpfs here: skipped');
  t.teardown(() => spawnSync('umount', [root]));
  const cache = await EmbeddingCache.open({ root, fingerprint: 'fp', preprocess: IMAGENET_224, dim: 1024 });
  for (let i = 0; i < 40; i++) cache.put(key(i), new Float32Array(1024).fill(i));
  await t.rejects(cache.flush(), { code: 'ENOSPC' }, 'the flush fails');
  t.match(
    cache.writeProblem,
    new RegExp(`cannot write the embedding cache ${cache.path}: no space left on the device \\(ENOSPC\\)`),
  );
  await cache.close().catch(() => undefined);
});
