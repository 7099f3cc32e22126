import t from 'tap';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { availableParallelism } from 'node:os';
import { Backbone, defaultIntraOpThreads } from '../../../src/node/embed/backbone.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { tinyClassifier, normalizedColour } from './tiny-backbone.js';

type RGB = [number, number, number];
const colours: RGB[] = [
  [255, 0, 0],
  [0, 128, 255],
  [12, 200, 40],
  [90, 90, 90],
  [250, 250, 10],
];

async function workspace(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-backbone-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const images: string[] = [];
  for (const [i, [r, g, b]] of colours.entries()) {
    const path = join(dir, `c${i}.png`);
    await sharp({ create: { width: 24, height: 16, channels: 3, background: { r, g, b } } })
      .png()
      .toFile(path);
    images.push(path);
  }
  return { dir, images, cacheDir: join(dir, 'cache') };
}

/** '' when `got` equals `want` within 1e-5, else both, for the assertion message. */
function mismatch(got: ArrayLike<number>, want: number[]): string {
  const worst = want.reduce((m, w, i) => Math.max(m, Math.abs(w - got[i]!)), 0);
  return got.length === want.length && worst < 1e-5
    ? ''
    : `got [${Array.from(got).map((v) => v.toFixed(5))}], want [${want.map((v) => v.toFixed(5))}]`;
}

t.test('loads an unknown model by path and reports what it is', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  t.teardown(() => backbone.close());
  t.equal(backbone.id, 'tiny');
  t.equal(backbone.embeddingDim, 3);
  t.equal(backbone.batch, 'dynamic');
  t.equal(backbone.provider.used, 'cpu');
  t.equal(backbone.preprocess.width, 8);
  t.equal(backbone.preprocess.layout, 'NCHW');
  t.equal(backbone.modelPath, model);
  t.match(backbone.sha256, /^[0-9a-f]{64}$/);
  t.match(backbone.fingerprint, /^[0-9a-f]{64}$/);
  t.ok(backbone.featureExtractorPath.startsWith(ws.cacheDir));
  t.equal(backbone.facts.embedding?.dim, 3);
});

t.test('embed turns a path, encoded bytes and raw pixels into the expected embedding', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir, cache: false });
  t.teardown(() => backbone.close());
  t.equal(mismatch(await backbone.embed(ws.images[0]!), normalizedColour(colours[0]!)), '', 'from a path');
  t.equal(
    mismatch(await backbone.embed(await readFile(ws.images[1]!)), normalizedColour(colours[1]!)),
    '',
    'from bytes',
  );
  // 9x9: the default recipe for an 8x8 input resizes to 9 and crops 8, so no enlargement is involved.
  const rgb = new Uint8Array(9 * 9 * 3);
  for (let p = 0; p < 81; p++) rgb.set(colours[2]!, p * 3);
  t.equal(
    mismatch(await backbone.embed({ rgb, width: 9, height: 9, channels: 3 }), normalizedColour(colours[2]!)),
    '',
    'from raw pixels',
  );
  const bad = join(ws.dir, 'bad.jpg');
  await writeFile(bad, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]));
  const error = await backbone.embed(bad).catch((e: unknown) => e);
  t.ok(error instanceof EdgetlError && error.code === 'bad-image', String(error));
  t.match((error as Error).message, bad);
});

t.test('embedMany batches, keeps order, skips a corrupt file, and matches embedTensors', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir, cache: false });
  t.teardown(() => backbone.close());
  const bad = join(ws.dir, 'bad.png');
  await writeFile(bad, 'nope');
  const sources = [ws.images[0]!, bad, ...ws.images.slice(1)];
  const seen: number[] = [];
  const result = await backbone.embedMany(sources, { batchSize: 2, onProgress: (done) => seen.push(done) });
  t.same(
    result.items.map((i) => i.index),
    [0, 2, 3, 4, 5],
  );
  t.same(
    result.skipped.map((s) => s.path),
    [bad],
  );
  t.equal(seen.at(-1), 6);
  result.items.forEach((item, row) => {
    const colour = colours[item.index === 0 ? 0 : item.index - 1]!;
    t.equal(mismatch(result.embeddings.subarray(row * 3, row * 3 + 3), normalizedColour(colour)), '', `row ${row}`);
  });
  const tensor = new Float32Array(2 * 3 * 64);
  tensor.fill(0.5, 0, 192);
  tensor.fill(-1, 192);
  t.equal(mismatch(await backbone.embedTensors(tensor, 2), [0.5, 0.5, 0.5, -1, -1, -1]), '', 'ready tensors');
  await t.rejects(backbone.embedTensors(tensor, 3), /do not hold 3 images/);
});

t.test('a fixed-batch model runs in groups of its size, padding the last', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'fixed2.onnx');
  await writeFile(model, tinyClassifier({ fixedBatch: 2 }));
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir, cache: false });
  t.teardown(() => backbone.close());
  t.equal(backbone.batch, 2);
  const result = await backbone.embedMany(ws.images, { batchSize: 8 });
  t.equal(result.items.length, 5);
  t.equal(result.stats.batches, 3);
  colours.forEach((colour, i) =>
    t.equal(mismatch(result.embeddings.subarray(i * 3, i * 3 + 3), normalizedColour(colour)), '', `image ${i}`),
  );
  t.equal(
    mismatch(await backbone.embed(ws.images[4]!), normalizedColour(colours[4]!)),
    '',
    'single image through a batch-2 graph',
  );
});

t.test('a second backbone over unchanged images is served from the on-disk cache', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const first = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  const a = await first.embedMany(ws.images);
  await first.close();
  t.equal(a.stats.computed, 5);
  const second = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  t.teardown(() => second.close());
  t.equal(second.fingerprint, first.fingerprint);
  const b = await second.embedMany(ws.images);
  t.equal(b.stats.cacheHits, 5);
  t.equal(b.stats.computed, 0);
  t.same(Array.from(b.embeddings), Array.from(a.embeddings));
  const otherSpec = await Backbone.load(model, {
    ep: 'cpu',
    cacheDir: ws.cacheDir,
    preprocess: { resize: 'stretch', crop: 'none' },
  });
  t.teardown(() => otherSpec.close());
  const c = await otherSpec.embedMany(ws.images);
  t.equal(c.stats.cacheHits, 0, 'a different preprocessing spec never reuses entries');
});

t.test('a closed backbone refuses work', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  await backbone.close();
  await backbone.close();
  await t.rejects(backbone.embed(ws.images[0]!), { code: 'closed' });
});

t.test('intra-op threads: every core by default, an explicit choice wins', async (t) => {
  t.equal(defaultIntraOpThreads(2), 2);
  t.equal(defaultIntraOpThreads(8), 8);
  t.equal(defaultIntraOpThreads(0), 1, 'at least one thread');
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const chosen = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  t.teardown(() => chosen.close());
  t.equal(chosen.provider.intraOpThreads, defaultIntraOpThreads(availableParallelism()));
  const explicit = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir, intraOpThreads: 3 });
  t.teardown(() => explicit.close());
  t.equal(explicit.provider.intraOpThreads, 3, 'an explicit choice wins');
});

t.test('JSON.stringify gives a plain description of the backbone', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  t.teardown(() => backbone.close());
  const described = JSON.parse(JSON.stringify(backbone));
  t.equal(described.id, 'tiny');
  t.equal(described.embeddingDim, 3);
  t.equal(described.batch, 'dynamic');
  t.equal(described.provider.used, 'cpu');
  t.equal(described.preprocess.width, 8);
  t.equal(described.facts.embedding.dim, 3);
  t.notOk('session' in described);
});

t.test('many images decode on worker threads when asked, with the same results', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const many = Array.from({ length: 4 }, () => ws.images).flat(); // 20 images >= WORKER_DECODE_MIN_IMAGES
  const threaded = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir, cache: false, decodeThreads: 2 });
  t.teardown(() => threaded.close());
  const result = await threaded.embedMany(many, { batchSize: 4 });
  t.equal(threaded.decoding, '2 worker threads');
  t.equal(result.items.length, many.length);
  many.forEach((_, i) =>
    t.equal(
      mismatch(result.embeddings.subarray(i * 3, i * 3 + 3), normalizedColour(colours[i % colours.length]!)),
      '',
      `image ${i}`,
    ),
  );
  const single = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir, cache: false, decodeThreads: 0 });
  t.teardown(() => single.close());
  await single.embedMany(many);
  t.equal(single.decoding, 'main thread');
});
