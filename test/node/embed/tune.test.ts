import t from 'tap';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  MIN_TUNING_IMAGES,
  defaultTuningSpace,
  embedTuningPath,
  machineKey,
  saveEmbedTuning,
  savedEmbedTuning,
  tuneEmbedding,
} from '../../../src/node/embed/tune.js';
import { tinyClassifier } from './tiny-backbone.js';

async function fixture(t: { teardown(fn: () => unknown): void }, count: number, fixedBatch?: number) {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-tune-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const images: string[] = [];
  await mkdir(join(root, 'photos'));
  for (let i = 0; i < count; i++) {
    const path = join(root, 'photos', `${i}.jpg`);
    await sharp({ create: { width: 24 + (i % 5), height: 20, channels: 3, background: { r: 9 * i, g: 80, b: 200 } } })
      .jpeg()
      .toFile(path);
    images.push(path);
  }
  const model = join(root, 'tiny.onnx');
  await writeFile(model, tinyClassifier(fixedBatch ? { fixedBatch } : {}));
  return { root, images, model, load: { ep: 'cpu' as const, cacheDir: join(root, 'cache') } };
}

t.test('every combination is timed, and the fastest is chosen', async (t) => {
  const { images, model, load } = await fixture(t, 40);
  const progress: number[] = [];
  const tuning = await tuneEmbedding(model, images, {
    load,
    space: { intraOpThreads: [1, 2], decodeThreads: [1], batchSizes: [2, 8] },
    sampleImages: 36,
    rounds: 2,
    onProgress: (done, total) => progress.push(done / total),
  });
  t.equal(tuning.trials.length, 4, '2 thread counts x 1 decoder count x 2 batches');
  t.same(tuning.trials.map((trial) => `${trial.intraOpThreads}/${trial.decodeThreads}/${trial.batchSize}`).sort(), [
    '1/1/2',
    '1/1/8',
    '2/1/2',
    '2/1/8',
  ]);
  for (const trial of tuning.trials) {
    t.equal(trial.seconds.length, 2, 'one time per round');
    t.ok(trial.imagesPerSecond > 0);
    t.ok(Math.abs(trial.imagesPerSecond - 36 / Math.min(...trial.seconds)) < 1e-6, 'the fastest round counts');
  }
  const fastest = Math.max(...tuning.trials.map((trial) => trial.imagesPerSecond));
  t.equal(tuning.trials[0]!.imagesPerSecond, fastest, 'trials are listed fastest first');
  t.same(
    tuning.choice,
    {
      intraOpThreads: tuning.trials[0]!.intraOpThreads,
      decodeThreads: tuning.trials[0]!.decodeThreads,
      batchSize: tuning.trials[0]!.batchSize,
    },
    'the choice is the fastest trial',
  );
  t.equal(tuning.sampleImages, 36);
  t.equal(tuning.provider, 'cpu');
  t.equal(progress.at(-1), 1, 'progress reaches the end');
});

t.test('a fixed-batch graph is timed at its own batch only', async (t) => {
  const { images, model, load } = await fixture(t, 32, 1);
  const tuning = await tuneEmbedding(model, images, {
    load,
    space: { intraOpThreads: [1], decodeThreads: [1, 2], batchSizes: [4, 16] },
    rounds: 1,
  });
  t.same(
    tuning.trials.map((trial) => trial.batchSize),
    [1, 1],
    'batch 1, once per decoder count',
  );
});

t.test('tuning refuses too few photos and settings below 1', async (t) => {
  const { images, model, load } = await fixture(t, MIN_TUNING_IMAGES - 1);
  await t.rejects(tuneEmbedding(model, images, { load }), /at least 32 photos/);
  const more = (await fixture(t, MIN_TUNING_IMAGES)).images;
  await t.rejects(tuneEmbedding(model, more, { load, space: { decodeThreads: [0] } }), /at least 1, got 0/);
});

t.test('the default space: 1, half and all of the cores, batches 4, 8, 16', async (t) => {
  t.same(defaultTuningSpace(2), { intraOpThreads: [1, 2], decodeThreads: [1, 2], batchSizes: [4, 8, 16] });
  t.same(defaultTuningSpace(8).intraOpThreads, [1, 4, 8]);
  t.same(defaultTuningSpace(1).decodeThreads, [1]);
});

t.test('a saved tuning is found for the same backbone and machine only', async (t) => {
  const { root, images, model, load } = await fixture(t, 32);
  const cacheDir = join(root, 'cache');
  const tuning = await tuneEmbedding(model, images, {
    load,
    space: { intraOpThreads: [1], decodeThreads: [1], batchSizes: [4] },
    rounds: 1,
  });
  const path = await saveEmbedTuning({ ...tuning, machine: machineKey('auto') }, cacheDir);
  t.equal(path, embedTuningPath(model, machineKey('auto'), cacheDir));
  const found = await savedEmbedTuning(model, 'auto', cacheDir);
  t.same(found.tuning?.choice, tuning.choice, 'found again');
  t.notOk((await savedEmbedTuning(model, 'cuda', cacheDir)).tuning, 'another provider request: none');
  t.notOk((await savedEmbedTuning(join(root, 'other.onnx'), 'auto', cacheDir)).tuning, 'another backbone: none');
  await writeFile(path, '{"choice": {"intraOpThreads": 0}}');
  const broken = await savedEmbedTuning(model, 'auto', cacheDir);
  t.notOk(broken.tuning, 'a file that does not hold a tuning is not used');
  t.match(broken.problem, /not a tuning for this machine; defaults used/);
  await writeFile(path, '{not json');
  t.match((await savedEmbedTuning(model, 'auto', cacheDir)).problem, /not valid JSON/);
});

t.test('a model file is keyed by its absolute path', async (t) => {
  const machine = machineKey('auto');
  const cwd = process.cwd();
  t.equal(
    embedTuningPath('models/x.onnx', machine, '/c'),
    embedTuningPath(join(cwd, 'models', 'x.onnx'), machine, '/c'),
  );
  t.not(embedTuningPath('mobilenetv2-12-int8', machine, '/c'), embedTuningPath('resnet50', machine, '/c'));
});
