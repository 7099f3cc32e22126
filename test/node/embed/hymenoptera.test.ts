/**
 * End to end on real data: MobileNetV2-int8 over ../shared/datasets/hymenoptera/train, and the fixed-batch QDQ
 * ShuffleNet on a handful of images. Skipped with a message when the shared folder is absent.
 */
import t from 'tap';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backbone } from '../../../src/node/embed/backbone.js';
import { embedFolder } from '../../../src/node/embed/embed-folder.js';
import { scanImageFolder } from '../../../src/node/embed/dataset.js';
import { readEmbeddingSet } from '../../../src/node/embed/embedding-set.js';
import { cosine } from '../../helpers/vectors.js';
import { sharedModel, sharedPath } from '../../helpers/shared.js';

const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');
const shufflenet = sharedModel('shufflenet-v2-12-qdq.onnx');
const train = sharedPath('datasets/hymenoptera/train');

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-hymenoptera-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test(
  'MobileNetV2-int8 embeds hymenoptera/train into a 1280-d labelled set, and a second run hits the cache',
  { skip: mobilenet.skip || train.skip },
  async (t) => {
    const dir = await scratch(t);
    const cacheDir = join(dir, 'cache');
    const scan = await scanImageFolder(train.path!);
    const backbone = await Backbone.load(mobilenet.path!, { ep: 'cpu', cacheDir });
    t.equal(backbone.id, 'mobilenetv2-12-int8', 'the catalog entry is found by sha256');
    t.equal(backbone.embeddingDim, 1280);
    const first = await embedFolder(backbone, train.path!, { out: join(dir, 'train') });
    await backbone.close();

    t.same(first.classes, ['ants', 'bees']);
    t.equal(first.items.length + first.skipped.length, scan.items.length);
    t.same(first.skipped, [], 'every hymenoptera image decodes');
    t.equal(first.computed, scan.items.length);
    const set = await readEmbeddingSet(join(dir, 'train'));
    t.equal(set.count, scan.items.length);
    t.equal(set.dim, 1280);
    t.same(
      set.items.map((i) => i.label),
      scan.items.map((i) => i.label),
    );
    t.same(
      set.items.map((i) => i.path),
      scan.items.map((i) => i.path),
    );
    t.equal(set.backbone.id, 'mobilenetv2-12-int8');
    t.equal(set.backbone.sha256, 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f');
    t.equal(set.executionProvider, 'cpu');
    t.same(
      Array.from(set.embeddings),
      Array.from(first.embeddings),
      'the streamed .npy holds exactly the returned embeddings',
    );
    const json = JSON.parse(await readFile(join(dir, 'train.json'), 'utf8'));
    t.same(Object.keys(json.backbone).slice(0, 3), ['id', 'sha256', 'embeddingDim']);
    let nonZero = 0;
    for (const v of set.embeddings) if (v !== 0) nonZero++;
    t.ok(nonZero > set.embeddings.length / 4, 'embeddings are not degenerate');

    const again = await Backbone.load(mobilenet.path!, { ep: 'cpu', cacheDir });
    t.teardown(() => again.close());
    const second = await embedFolder(again, train.path!);
    t.equal(second.cacheHits, scan.items.length, 'all from the cache');
    t.equal(second.computed, 0);
    t.same(Array.from(second.embeddings), Array.from(first.embeddings), 'identical values');
    t.comment(
      `first run ${first.imagesPerSecond.toFixed(1)} images/s, cached run ${second.imagesPerSecond.toFixed(1)} images/s`,
    );
  },
);

t.test(
  'the QDQ ShuffleNet (batch fixed at 1) runs one image at a time, 1024-d',
  { skip: shufflenet.skip || train.skip },
  async (t) => {
    const dir = await scratch(t);
    const scan = await scanImageFolder(train.path!);
    const images = [...scan.items.slice(0, 3), ...scan.items.slice(-3)].map((i) => i.path);
    const backbone = await Backbone.load(shufflenet.path!, { ep: 'cpu', cacheDir: join(dir, 'cache'), cache: false });
    t.teardown(() => backbone.close());
    t.equal(backbone.batch, 1);
    t.equal(backbone.embeddingDim, 1024);
    const result = await backbone.embedMany(images, { batchSize: 8 });
    t.equal(result.items.length, 6);
    t.equal(result.stats.batches, 6, 'one inference per image');
    const single = await backbone.embed(images[4]!);
    const row = result.embeddings.subarray(4 * 1024, 5 * 1024);
    t.ok(cosine(single, row) > 0.99999, 'the same image gives the same embedding alone or in a run');
    t.ok(cosine(result.embeddings.subarray(0, 1024), row) < 0.99, 'different images differ');
  },
);
