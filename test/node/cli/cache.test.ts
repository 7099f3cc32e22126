import t from 'tap';
import { join } from 'node:path';
import { cacheCommand } from '../../../src/node/cli/cache.js';
import { embedCommand } from '../../../src/node/cli/embed.js';
import { colourFolder, run, workspace } from './head-fixtures.js';

const savedBound = process.env.EDGETL_CACHE_MAX_SIZE;
t.teardown(() => {
  if (savedBound === undefined) delete process.env.EDGETL_CACHE_MAX_SIZE;
  else process.env.EDGETL_CACHE_MAX_SIZE = savedBound;
});

type Info = {
  root: string;
  totalBytes: number;
  kinds: { kind: string; bytes: number; entries: number; path: string }[];
  embeddingsBound: { maxBytes: number | null; source: string };
};
const info = async (): Promise<Info> => JSON.parse((await run(cacheCommand, ['info', '--json'])).stdout);
const kind = (i: Info, name: string) => i.kinds.find((k) => k.kind === name)!;

t.test(
  'edgetl cache info --json: size per kind and where; clear by kind; clear --older-than keeps what is recent',
  async (t) => {
    const ws = await workspace(t, 'cli-cache');
    delete process.env.EDGETL_CACHE_MAX_SIZE;
    const images = await colourFolder(ws.root, 'photos', { red: 4, blue: 4 }, 1);
    const embedded = await run(embedCommand, [
      images,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--out',
      join(ws.root, 'set'),
      '--json',
    ]);
    t.equal(embedded.error, undefined, embedded.error?.message ?? '');
    const filled = await info();
    t.equal(filled.root, join(ws.root, 'cache'));
    t.same(
      filled.kinds.map((k) => k.kind),
      ['embeddings', 'extractors', 'downloads', 'tuning'],
    );
    t.equal(kind(filled, 'embeddings').entries, 8, 'eight images cached');
    t.equal(kind(filled, 'embeddings').path, join(ws.root, 'cache', 'embeddings'));
    t.equal(kind(filled, 'extractors').entries, 1);
    t.ok(kind(filled, 'extractors').bytes > 0);
    t.same(filled.embeddingsBound, { maxBytes: 2 * 1024 ** 3, source: 'default' });
    const readable = await run(cacheCommand, ['info']);
    t.match(readable.stdout, /embeddings .* 8 images/);

    const recent = await run(cacheCommand, ['clear', '--older-than', '30d', '--json']);
    t.equal(recent.error, undefined, recent.error?.message ?? '');
    t.same(
      JSON.parse(recent.stdout).removed.map((r: { bytes: number }) => r.bytes),
      [0, 0, 0, 0],
      'nothing is 30 days old',
    );
    t.equal(kind(await info(), 'embeddings').entries, 8);

    const cleared = await run(cacheCommand, ['clear', '--kind', 'embeddings', '--json']);
    const removed = JSON.parse(cleared.stdout).removed;
    t.same(
      removed.map((r: { kind: string }) => r.kind),
      ['embeddings'],
      'only the kind asked for',
    );
    t.equal(removed[0].bytes, kind(filled, 'embeddings').bytes);
    const after = await info();
    t.equal(kind(after, 'embeddings').bytes, 0);
    t.equal(kind(after, 'extractors').bytes, kind(filled, 'extractors').bytes, 'extractors untouched');

    await run(cacheCommand, ['clear']);
    t.equal(
      (await info()).kinds.reduce((s, k) => s + k.bytes, 0),
      0,
      'a plain clear removes every kind',
    );
    t.match(
      (await run(cacheCommand, ['clear', '--kind', 'thumbnails'])).error?.message,
      /--kind must be one of embeddings, extractors, downloads/,
    );
    t.match((await run(cacheCommand, ['clear', '--older-than', 'soon'])).error?.message, /not a duration/);
    t.match((await run(cacheCommand, ['tidy'])).error?.message, /unknown action "tidy"/);
  },
);

t.test('a run that ends over the bound evicts down under it; edgetl cache limit sets the bound', async (t) => {
  const ws = await workspace(t, 'cli-cache-bound');
  delete process.env.EDGETL_CACHE_MAX_SIZE;
  const limit = await run(cacheCommand, ['limit', '1kB', '--json']);
  t.equal(limit.error, undefined, limit.error?.message ?? '');
  t.same((await info()).embeddingsBound, { maxBytes: 1000, source: 'edgetl cache limit' });
  const images = await colourFolder(ws.root, 'photos', { red: 20, green: 20, blue: 20 }, 2);
  await run(embedCommand, [images, '--backbone', ws.model, '--ep', 'cpu', '--out', join(ws.root, 'set'), '--json']);
  const bounded = kind(await info(), 'embeddings');
  t.ok(bounded.bytes <= 1000, `60 images of 3-d embeddings (~${60 * 52} B) were cut to ${bounded.bytes} B`);
  t.ok(bounded.entries > 0, 'the most recent entries are kept');

  process.env.EDGETL_CACHE_MAX_SIZE = 'none';
  t.same(
    (await info()).embeddingsBound,
    { maxBytes: null, source: 'EDGETL_CACHE_MAX_SIZE' },
    'the environment overrides the config',
  );
  await run(embedCommand, [images, '--backbone', ws.model, '--ep', 'cpu', '--out', join(ws.root, 'set'), '--json']);
  t.equal(kind(await info(), 'embeddings').entries, 60, 'unbounded: every image stays');
  delete process.env.EDGETL_CACHE_MAX_SIZE;
});
