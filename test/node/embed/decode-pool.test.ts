import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { WorkerDecodePool, MainThreadDecoder, decodeWorkerUrl } from '../../../src/node/embed/decode-pool.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { tensorElementsPerImage, writePixelsToTensor } from '../../../src/core/preprocess/tensor.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

const spec = { ...IMAGENET_224, width: 32, height: 32, resizeTo: 36 };

async function photo(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(60 * 45 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed * 17) % 251;
  return sharp(raw, { raw: { width: 60, height: 45, channels: 3 } })
    .jpeg()
    .toBuffer();
}

t.test('worker threads decode exactly what the main thread decodes', async (t) => {
  t.ok(decodeWorkerUrl(), 'the worker script is found beside the module');
  const { pool } = WorkerDecodePool.create(2);
  t.ok(pool);
  t.teardown(() => pool!.close());
  t.equal(pool!.parallelism, 4);
  const main = new MainThreadDecoder();
  const inputs = await Promise.all([1, 2, 3, 4, 5].map(photo));
  const fromWorkers = await Promise.all(inputs.map((bytes) => pool!.decode(bytes, spec)));
  t.equal(pool!.description, '2 worker threads');
  for (const [i, bytes] of inputs.entries()) {
    const expected = await main.decode(bytes, spec);
    t.same(Buffer.from(fromWorkers[i]!.pixels), Buffer.from(expected.pixels), `image ${i}`);
    t.equal(bytes.byteLength > 0, true, 'a caller buffer is not taken without transfer');
  }
  const raw = { rgb: new Uint8Array(40 * 40 * 3).fill(77), width: 40, height: 40, channels: 3 as const };
  const decodedRaw = await pool!.decode(raw, spec);
  t.ok(decodedRaw.pixels.every((v) => v === 77));
});

t.test('decodeTensor hands back the normalized tensor writePixelsToTensor makes of the same pixels', async (t) => {
  const { pool } = WorkerDecodePool.create(2);
  t.teardown(() => pool!.close());
  const main = new MainThreadDecoder();
  for (const kernel of ['pillow', 'linear'] as const) {
    for (const s of [spec, { ...spec, layout: 'NHWC' as const, channelOrder: 'BGR' as const }]) {
      const bytes = await photo(7);
      const expected = new Float32Array(tensorElementsPerImage(s));
      const pixels = await new MainThreadDecoder({ kernel }).decode(bytes, s);
      writePixelsToTensor(pixels.pixels, s.width, s.height, 3, s, expected, 0);
      const viaMain = await new MainThreadDecoder({ kernel }).decodeTensor(bytes, s);
      t.same(Array.from(viaMain), Array.from(expected), `main thread, ${kernel}, ${s.layout} ${s.channelOrder}`);
      if (kernel === 'pillow') {
        const viaWorker = await pool!.decodeTensor(bytes, s);
        t.same(Array.from(viaWorker), Array.from(expected), `worker, ${s.layout} ${s.channelOrder}`);
      }
    }
  }
  await t.rejects(pool!.decodeTensor(new Uint8Array([1, 2, 3]), spec), { code: 'bad-image' });
  await t.rejects(main.decodeTensor(new Uint8Array([1, 2, 3]), spec), { code: 'bad-image' });
});

t.test('a transferred buffer moves to the worker', async (t) => {
  const { pool } = WorkerDecodePool.create(1);
  t.teardown(() => pool!.close());
  const source = await photo(9);
  const owned = new Uint8Array(source.byteLength);
  owned.set(source);
  const image = await pool!.decode(owned, spec, true);
  t.equal(image.pixels.length, 32 * 32 * 3);
  t.equal(owned.byteLength, 0, 'detached after transfer');
});

t.test('a bad image is reported with its reason, and the pool goes on', async (t) => {
  const { pool } = WorkerDecodePool.create(1);
  t.teardown(() => pool!.close());
  const error = await pool!.decode(new Uint8Array([1, 2, 3, 4]), spec).catch((e: unknown) => e);
  t.ok(error instanceof EdgetlError && error.code === 'bad-image', String(error));
  t.match((error as Error & { reason: string }).reason, /unsupported|not an image/);
  t.equal((await pool!.decode(await photo(3), spec)).width, 32);
  await pool!.close();
  await t.rejects(pool!.decode(await photo(3), spec), { code: 'closed' });
});

t.test('workers that cannot start fall back to the main thread and say why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const broken = join(dir, 'broken-worker.mjs');
  await writeFile(broken, "throw new Error('cannot load the decoder');\n");
  const { pool } = WorkerDecodePool.create(2, {}, 2, pathToFileURL(broken));
  t.teardown(() => pool!.close());
  const image = await pool!.decode(await photo(4), spec);
  t.equal(image.width, 32);
  t.match(pool!.description, /main thread \(decode workers did not start: cannot load the decoder\)/);
  const missing = WorkerDecodePool.create(2, {}, 2, null);
  t.equal(missing.pool, undefined);
  t.match(missing.reason, /decode-worker script not found/);
});
