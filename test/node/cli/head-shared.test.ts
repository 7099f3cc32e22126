import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LazyBackbone } from '../../../src/node/cli/head-shared.js';
import { DEFAULT_BATCH_SIZE } from '../../../src/node/embed/pipeline.js';
import { type EmbedTuning, machineKey, saveEmbedTuning } from '../../../src/node/embed/tune.js';
import { tinyClassifier } from '../embed/tiny-backbone.js';

const savedCacheDir = process.env.EDGETL_CACHE_DIR;
t.teardown(() => {
  if (savedCacheDir === undefined) delete process.env.EDGETL_CACHE_DIR;
  else process.env.EDGETL_CACHE_DIR = savedCacheDir;
});

t.test('train, eval and the other head commands embed with the saved tuning where no flag is given', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-lazy-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  process.env.EDGETL_CACHE_DIR = join(root, 'cache');
  const model = join(root, 'tiny.onnx');
  await writeFile(model, tinyClassifier());

  const untuned = new LazyBackbone({ backbone: model, ep: 'cpu' });
  t.teardown(() => untuned.close());
  await untuned.open();
  t.equal(untuned.batchSize, DEFAULT_BATCH_SIZE, 'nothing saved: the default batch');

  const choice = { intraOpThreads: 1, decodeThreads: 1, batchSize: 3 };
  const tuning: EmbedTuning = {
    backbone: { reference: model, id: 'tiny', sha256: '0'.repeat(64), batch: 'dynamic' },
    provider: 'cpu',
    choice,
    trials: [{ ...choice, seconds: [0.1], imagesPerSecond: 100 }],
    sampleImages: 32,
    rounds: 1,
    machine: machineKey('cpu'),
    measuredAt: new Date().toISOString(),
    edgetlVersion: 'test',
  };
  await saveEmbedTuning(tuning);
  const tuned = new LazyBackbone({ backbone: model, ep: 'cpu' });
  t.teardown(() => tuned.close());
  const opened = await tuned.open();
  t.equal(opened.provider.intraOpThreads, 1, 'the tuned intra-op threads');
  t.equal(tuned.batchSize, 3, 'the tuned batch');

  const flagged = new LazyBackbone({ backbone: model, ep: 'cpu', batch: '5', threads: '2' });
  t.teardown(() => flagged.close());
  t.equal((await flagged.open()).provider.intraOpThreads, 2, 'a flag wins');
  t.equal(flagged.batchSize, 5, 'a flag wins for the batch too');
});
