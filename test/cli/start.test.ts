import t from 'tap';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { startCommand, defaultStartFolder } from '../../src/cli/start.js';
import { readEmbeddingSet } from '../../src/embed/embedding-set.js';
import { sharedModel } from '../helpers/shared.js';

const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');

async function capture(argv: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await startCommand.run(argv), stdout };
  } finally {
    process.stdout.write = original;
  }
}

t.test('start embeds a given folder with the default backbone and summarizes', { skip: mobilenet.skip }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-start-'));
  const savedCache = process.env.EDGETL_CACHE_DIR;
  const savedModels = process.env.EDGETL_MODEL_PATH;
  process.env.EDGETL_CACHE_DIR = join(root, 'cache');
  process.env.EDGETL_MODEL_PATH = join(mobilenet.path!, '..');
  t.teardown(async () => {
    if (savedCache === undefined) delete process.env.EDGETL_CACHE_DIR;
    else process.env.EDGETL_CACHE_DIR = savedCache;
    if (savedModels === undefined) delete process.env.EDGETL_MODEL_PATH;
    else process.env.EDGETL_MODEL_PATH = savedModels;
    await rm(root, { recursive: true, force: true });
  });
  const data = join(root, 'photos');
  await mkdir(data);
  for (let i = 0; i < 3; i++) {
    await sharp({ create: { width: 300, height: 240, channels: 3, background: { r: 80 * i, g: 100, b: 30 } } }).jpeg().toFile(join(data, `p${i}.jpg`));
  }
  const { code, stdout } = await capture([data, '--ep', 'cpu', '--json']);
  t.equal(code, 0);
  const summary = JSON.parse(stdout);
  t.equal(summary.count, 3);
  t.equal(summary.backbone.id, 'mobilenetv2-12-int8');
  t.equal(summary.classes, null, 'a flat folder has no classes');
  const set = await readEmbeddingSet(summary.out.npy);
  t.equal(set.dim, 1280);
  t.ok(summary.out.npy.startsWith(join(root, 'cache', 'start')), 'the default output goes to the cache folder');

  const text = await capture([data, '--ep', 'cpu', '--out', join(root, 'mine')]);
  t.match(text.stdout, /Embedded 3 image\(s\) .*flat folder, no labels/);
  t.match(text.stdout, /Next: /);
});

t.test('the default folder is looked for in the shared data folder', async (t) => {
  const found = defaultStartFolder();
  t.ok(found.looked.length > 0);
  t.ok(found.looked.every((p) => p.endsWith(join('datasets', 'hymenoptera', 'train'))));
  if (found.dir) t.ok(found.looked.includes(found.dir));
});
