import t from 'tap';
import { mkdtemp, rm, stat, writeFile, utimes, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddingCache, imageBytesKey } from '../../../src/node/embed/cache.js';
import {
  maintainEmbeddingCache,
  listEmbeddingFiles,
  embeddingCacheBound,
  parseSize,
} from '../../../src/node/embed/cache-maintenance.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-cache-maintenance-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const dim = 16;
const recordBytes = 4 + 32 + dim * 4 + 4;
const vector = (seed: number) => Float32Array.from({ length: dim }, (_, i) => seed * 100 + i);
const key = (seed: number) => imageBytesKey(new TextEncoder().encode(`image ${seed}`));
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
const open = (root: string, fingerprint = 'fp') =>
  EmbeddingCache.open({ root, fingerprint, preprocess: IMAGENET_224, dim });

async function present(root: string, seeds: number[], fingerprint = 'fp'): Promise<number[]> {
  const cache = await open(root, fingerprint);
  const found: number[] = [];
  for (const s of seeds) {
    const got = cache.has(key(s)) ? await cache.get(key(s)) : undefined;
    if (got) {
      if (got[0] !== s * 100 || got[dim - 1] !== s * 100 + dim - 1) throw new Error(`entry ${s} came back altered`);
      found.push(s);
    }
  }
  // Close without logging these checks as uses (they would change the order under test).
  (cache as unknown as { used: Set<string> }).used.clear();
  await cache.close();
  return found;
}

t.test(
  'over the bound, the least-recently-used entries go first, across files, down to 80% of the bound',
  async (t) => {
    const root = await scratch(t);
    const first = await open(root);
    for (let i = 0; i < 10; i++) first.put(key(i), vector(i));
    await first.close();
    await tick();
    const other = await open(root, 'other-backbone');
    for (let i = 100; i < 110; i++) other.put(key(i), vector(i));
    await other.close();
    await tick();
    const second = await open(root);
    for (let i = 10; i < 20; i++) second.put(key(i), vector(i));
    for (let i = 0; i < 5; i++) t.ok(await second.get(key(i)), `entry ${i} read again`);
    await second.close();
    // Use order now: 5-9 (oldest), 100-109, then 0-4 and 10-19 (newest).
    const files = await listEmbeddingFiles(root);
    const total = files.reduce((s, f) => s + f.bytes, 0);
    const perEntry = recordBytes + 40;
    // Room for 18 entries at 80%: 30 - 18 = 12 must go: 5-9, then the 7 oldest... all of 100-109 share one time.
    const maxBytes = Math.ceil((2 * 64 + 18 * perEntry) / 0.8);
    t.ok(total > maxBytes, `the cache (${total} B) is over the bound (${maxBytes} B)`);
    const report = await maintainEmbeddingCache(root, { maxBytes });
    t.ok(report.ran);
    t.ok(report.evicted >= 12, `evicted ${report.evicted}`);
    t.ok(report.bytesAfter <= maxBytes * 0.8, `down to ${report.bytesAfter} B, under 80% of the bound`);
    t.same(await present(root, [5, 6, 7, 8, 9]), [], 'the least recently used go first');
    t.same(
      await present(root, [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]),
      [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      'recently used and recently added stay',
    );
    const left = await present(
      root,
      Array.from({ length: 10 }, (_, i) => 100 + i),
      'other-backbone',
    );
    t.ok(left.length <= 3, `the other backbone's older entries go before the newer ones (${left.length} left)`);

    const under = await maintainEmbeddingCache(root, { maxBytes: total * 10 });
    t.notOk(under.ran, 'under the bound nothing is done');
  },
);

t.test('duplicate records from two writers are compacted to one per key, values intact, usage kept', async (t) => {
  const root = await scratch(t);
  const a = await open(root);
  const b = await open(root);
  for (let i = 0; i < 20; i++) {
    a.put(key(i), vector(i));
    b.put(key(i), vector(i)); // both processes embedded the same images
  }
  await Promise.all([a.close(), b.close()]);
  const before = (await stat(a.path)).size;
  const seen = await open(root);
  t.equal(seen.stats().duplicates, 20, 'the second copy of each record is counted');
  // Opening compacts a file this wasteful already (half its records are copies); maintenance finds what is left.
  const compactedOnOpen = seen.stats().compacted;
  await seen.close();
  const report = await maintainEmbeddingCache(root, { compact: 'needed' });
  t.equal(
    report.compactedRecords,
    compactedOnOpen ? 0 : 20,
    'each duplicate is compacted once, on open or by maintenance',
  );
  t.equal(report.evicted, 0);
  const after = (await stat(a.path)).size;
  t.equal(after, 64 + 20 * recordBytes, `one record per key (${before} -> ${after} bytes)`);
  const reopened = await open(root);
  t.equal(reopened.stats().loaded, 20);
  t.equal(reopened.stats().duplicates, 0);
  t.equal((await reopened.lastUsed()).size, 20, 'the usage log survives compaction');
  await reopened.close();
  t.same(
    await present(
      root,
      Array.from({ length: 20 }, (_, i) => i),
    ),
    Array.from({ length: 20 }, (_, i) => i),
  );
});

t.test('compaction keeps entries added but not yet indexed, and an emptied file is removed', async (t) => {
  const root = await scratch(t);
  const cache = await open(root);
  cache.put(key(1), vector(1));
  cache.put(key(2), vector(2));
  await cache.flush();
  const result = await cache.compact(new Set([key(1)]));
  t.equal(result.kept, 1);
  t.notOk(cache.has(key(1)));
  t.same(Array.from((await cache.get(key(2)))!), Array.from(vector(2)));
  cache.put(key(3), vector(3));
  await cache.close();
  t.same(await present(root, [1, 2, 3]), [2, 3]);
  const report = await maintainEmbeddingCache(root, { usedBefore: Date.now() + 1000 });
  t.equal(report.filesRemoved, 1);
  t.same(await listEmbeddingFiles(root), []);
});

t.test('eviction by age: entries last used before the cutoff go, newer ones stay', async (t) => {
  const root = await scratch(t);
  const old = await open(root);
  for (let i = 0; i < 4; i++) old.put(key(i), vector(i));
  await old.close();
  await tick();
  const cutoff = Date.now();
  await tick();
  const fresh = await open(root);
  fresh.put(key(9), vector(9));
  t.ok(await fresh.get(key(0)));
  await fresh.close();
  const report = await maintainEmbeddingCache(root, { usedBefore: cutoff });
  t.equal(report.evicted, 3);
  t.same(await present(root, [0, 1, 2, 3, 9]), [0, 9]);
  // Records the usage log does not know (written by an older edgetl) count as used when their file was written.
  await rm((await listEmbeddingFiles(root))[0].path + '.used');
  const long = new Date(Date.now() - 40 * 86400e3);
  await utimes((await listEmbeddingFiles(root))[0].path, long, long);
  await maintainEmbeddingCache(root, { usedBefore: Date.now() - 30 * 86400e3 });
  t.same(await listEmbeddingFiles(root), [], 'unlogged entries of a file untouched for 40 days are older than 30 days');
});

t.test('one maintenance pass at a time: a fresh lock makes a pass skip; a stale one is taken over', async (t) => {
  const root = await scratch(t);
  const cache = await open(root);
  cache.put(key(1), vector(1));
  await cache.close();
  const lock = join(root, 'embeddings', '.maintenance.lock');
  await writeFile(lock, '12345\n');
  t.notOk((await maintainEmbeddingCache(root, { maxBytes: 1 })).ran, 'another process is at it');
  const stale = new Date(Date.now() - 3600e3);
  await utimes(lock, stale, stale);
  const report = await maintainEmbeddingCache(root, { maxBytes: 1 });
  t.ok(report.ran, 'a lock an hour old is left over from a crash');
  t.equal(report.filesRemoved, 1);
  t.notOk((await readdir(join(root, 'embeddings'))).includes('.maintenance.lock'), 'the lock is released');
});

t.test('the bound: EDGETL_CACHE_MAX_SIZE, then the config, then 2 GiB', async (t) => {
  const root = await scratch(t);
  t.same(await embeddingCacheBound(root, {}), { maxBytes: 2 * 1024 ** 3, source: 'default' });
  await writeFile(join(root, 'cache-config.json'), JSON.stringify({ embeddingsMaxBytes: 1000 }));
  t.same(await embeddingCacheBound(root, {}), { maxBytes: 1000, source: 'edgetl cache limit' });
  t.same(await embeddingCacheBound(root, { EDGETL_CACHE_MAX_SIZE: '1.5GiB' }), {
    maxBytes: 1.5 * 1024 ** 3,
    source: 'EDGETL_CACHE_MAX_SIZE',
  });
  t.same(await embeddingCacheBound(root, { EDGETL_CACHE_MAX_SIZE: 'none' }), {
    maxBytes: null,
    source: 'EDGETL_CACHE_MAX_SIZE',
  });
  await t.rejects(
    embeddingCacheBound(root, { EDGETL_CACHE_MAX_SIZE: 'lots' }),
    /EDGETL_CACHE_MAX_SIZE="lots" is not a size/,
  );
  t.equal(parseSize('500MB'), 500e6);
  t.equal(parseSize('2 kib'), 2048);
  t.throws(() => parseSize('-3GB'), /not a size/);
});

t.test('the usage log is folded to one record per key once sessions have appended many', async (t) => {
  const root = await scratch(t);
  const first = await open(root);
  first.put(key(1), vector(1));
  await first.close();
  const logPath = first.path + '.used';
  for (let session = 0; session < 1700; session++) {
    const cache = await open(root);
    await cache.get(key(1));
    await cache.close();
  }
  const size = (await stat(logPath)).size;
  t.ok(size < 66000, `after 1700 sessions the log is ${size} bytes, not ${1701 * 40}`);
  const again = await open(root);
  t.equal((await again.lastUsed()).size, 1);
  await again.close();
});
