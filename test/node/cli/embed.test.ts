import t from 'tap';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describeProvider, embedCommand } from '../../../src/node/cli/embed.js';
import { gatherHostFacts } from '../../../src/node/execution/providers.js';
import { readEmbeddingSet } from '../../../src/node/embed/embedding-set.js';
import { tinyClassifier } from '../embed/tiny-backbone.js';
import { captureOutput } from '../../helpers/capture-output.js';

/** Run a command in-process, capturing what it writes to stdout. */
async function capture(argv: string[]): Promise<{ code: number; stdout: string }> {
  const { result, stdout } = await captureOutput(() => embedCommand.run(argv));
  return { code: result, stdout };
}

/** Class folders cats/ and dogs/ of `perClass` solid-colour JPEGs each (widths differ, so no two files match). */
async function catsAndDogs(data: string, perClass: number): Promise<string> {
  for (const [label, colour] of [
    ['cats', { r: 200, g: 10, b: 10 }],
    ['dogs', { r: 10, g: 10, b: 200 }],
  ] as const) {
    await mkdir(join(data, label), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      await sharp({ create: { width: 20 + i, height: 18, channels: 3, background: colour } })
        .jpeg()
        .toFile(join(data, label, `${i}.jpg`));
    }
  }
  return data;
}

async function fixture(t: { teardown(fn: () => unknown): void }) {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-cli-embed-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const data = await catsAndDogs(join(root, 'data'), 3);
  await writeFile(join(data, 'dogs', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff]));
  const model = join(root, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  process.env.EDGETL_CACHE_DIR = join(root, 'cache');
  return { root, data, model };
}

const savedCacheDir = process.env.EDGETL_CACHE_DIR;
t.teardown(() => {
  if (savedCacheDir === undefined) delete process.env.EDGETL_CACHE_DIR;
  else process.env.EDGETL_CACHE_DIR = savedCacheDir;
});

t.test('--json prints one object with the documented fields and writes the set', async (t) => {
  const { root, data, model } = await fixture(t);
  const out = join(root, 'out', 'train');
  const { code, stdout } = await capture([data, '--backbone', model, '--out', out, '--ep', 'cpu', '--json']);
  t.equal(code, 0);
  const lines = stdout.trim().split('\n');
  t.equal(lines.length, 1, 'exactly one line on stdout');
  const summary = JSON.parse(lines[0]!);
  t.equal(summary.count, 6);
  t.equal(summary.skipped, 1);
  t.equal(summary.executionProvider, 'cpu');
  t.type(summary.seconds, 'number');
  t.type(summary.imagesPerSecond, 'number');
  t.ok(summary.imagesPerSecond > 0);
  t.match(summary.skippedFiles[0].path, /broken\.jpg$/);
  const set = await readEmbeddingSet(out);
  t.equal(set.count, 6);
  t.equal(set.dim, 3);
  t.same(set.classes, ['cats', 'dogs']);
  t.same(
    set.items.map((i) => i.label),
    ['cats', 'cats', 'cats', 'dogs', 'dogs', 'dogs'],
  );
  t.equal(set.skipped.length, 1);
  t.match(set.skipped[0]!.reason, /truncated|corrupt/i);
});

t.test('the readable summary names the provider, the counts and the skipped file', async (t) => {
  const { root, data, model } = await fixture(t);
  const { code, stdout } = await capture([
    data,
    '-b',
    model,
    '-o',
    join(root, 'x'),
    '--ep',
    'cpu',
    '--batch',
    '2',
    '--no-cache',
  ]);
  t.equal(code, 0);
  t.match(stdout, /Embedded 6 image\(s\)/);
  t.match(stdout, /2 classes: cats 3, dogs 3/);
  t.match(stdout, /provider\s+cpu \(requested cpu/);
  t.match(stdout, /skipped\s+1 file/);
  t.match(stdout, /broken\.jpg: /);
  t.match(stdout, /images\/s/);
  t.match(stdout, /x\.npy\s+float32 \[6, 3\]/);
});

t.test('--strict makes a broken image fatal', async (t) => {
  const { root, data, model } = await fixture(t);
  await t.rejects(capture([data, '-b', model, '-o', join(root, 'x'), '--ep', 'cpu', '--strict']), {
    code: 'bad-image',
    message: /broken\.jpg/,
  });
});

t.test('usage errors say what is missing', async (t) => {
  const { root, data, model } = await fixture(t);
  await t.rejects(capture(['-b', model, '-o', join(root, 'x')]), { code: 'usage', message: /missing <dir>/ });
  await t.rejects(capture([data, '-b', model]), { code: 'usage', message: /missing --out/ });
  await t.rejects(capture([data, '-b', model, '-o', join(root, 'x'), '--batch', '0']), {
    code: 'usage',
    message: /--batch must be at least 1/,
  });
  await t.rejects(capture([data, '-b', model, '-o', join(root, 'x'), '--ep', 'tpu']), {
    code: 'usage',
    message: /--ep must be one of/,
  });
  await t.rejects(capture([join(root, 'nope'), '-b', model, '-o', join(root, 'x')]), {
    code: 'not-found',
    message: /nope does not exist/,
  });
  await t.rejects(capture([data, '--frobnicate']), { code: 'usage' });
  await t.rejects(capture([data, '-b', model, '-o', root]), {
    code: 'usage',
    message: /--out is a file prefix, not a folder/,
  });
  await t.rejects(capture([data, '-b', model, '-o', 'somewhere/']), { code: 'usage', message: /not a folder/ });
});

t.test(
  'why CUDA was not used is said only to those who asked for it or have an NVIDIA GPU (always with --debug)',
  async (t) => {
    const report = (requested: 'auto' | 'cuda') => ({
      requested,
      used: 'cpu' as const,
      fallbacks: [
        { provider: 'cuda' as const, reason: 'CUDA provider library not found (libonnxruntime_providers_cuda.so)' },
        { provider: 'webgpu' as const, reason: 'no Vulkan loader' },
      ],
    });
    const gpu = gatherHostFacts({ runTools: false }).cuda.gpuPresent;
    const quiet = describeProvider(report('auto')).join('\n');
    t.match(quiet, /webgpu not used: no Vulkan loader/, 'other providers are still explained');
    if (gpu) t.match(quiet, /cuda not used/, 'with an NVIDIA GPU here, CUDA is explained');
    else t.notMatch(quiet, /cuda/i, 'no GPU and CUDA not asked for: nothing about CUDA');
    t.match(
      describeProvider(report('auto'), { verbose: true }).join('\n'),
      /cuda not used: CUDA provider library not found/,
      '--debug keeps it',
    );
    t.match(
      describeProvider(report('cuda')).join('\n'),
      /cuda not used: CUDA provider library not found/,
      '--ep cuda keeps it',
    );
  },
);

t.test('--autotune times the combinations, embeds with the fastest and saves it for later runs', async (t) => {
  const { root, model } = await fixture(t);
  const data = await catsAndDogs(join(root, 'many'), 17);
  const out = join(root, 'tuned');
  const args = [data, '--backbone', model, '--out', out, '--ep', 'cpu', '--json'];
  const tuned = await capture([...args, '--autotune', '--autotune-sample', '32', '--threads', '1']);
  t.equal(tuned.code, 0);
  const summary = JSON.parse(tuned.stdout);
  t.equal(summary.count, 34, 'the whole folder is embedded after tuning');
  t.equal(summary.autotune.sampleImages, 32);
  t.ok(summary.autotune.trials.length >= 3, `${summary.autotune.trials.length} combinations timed`);
  t.ok(
    summary.autotune.trials.every((trial: { intraOpThreads: number }) => trial.intraOpThreads === 1),
    'a flag given fixes its setting while tuning',
  );
  t.same(summary.settings.sources, { intraOpThreads: 'flag', decodeThreads: 'tuned', batchSize: 'tuned' });
  t.equal(summary.settings.batchSize, summary.autotune.choice.batchSize, 'the run used the choice');
  t.match(summary.settings.tuningFile, /tuning[\\/]embed-[0-9a-f]+\.json$/);

  const later = JSON.parse((await capture([...args, '--no-cache'])).stdout);
  t.notOk(later.autotune, 'no tuning without --autotune');
  t.same(later.settings.sources, { intraOpThreads: 'tuned', decodeThreads: 'tuned', batchSize: 'tuned' });
  t.equal(later.settings.intraOpThreads, summary.autotune.choice.intraOpThreads, 'the saved choice is used');
  t.equal(later.settings.tuningFile, summary.settings.tuningFile);
  const flagged = JSON.parse((await capture([...args, '--batch', '3'])).stdout);
  t.equal(flagged.settings.batchSize, 3, 'a flag wins over the saved tuning');
  t.equal(flagged.settings.sources.batchSize, 'flag');
});

t.test('--autotune on too few photos says how many it needs', async (t) => {
  const { root, data, model } = await fixture(t);
  await t.rejects(
    embedCommand.run([data, '--backbone', model, '--out', join(root, 'x'), '--ep', 'cpu', '--autotune']),
    /tuning needs at least 32 photos/,
  );
});

t.test(
  '--autotune belongs to embed: a command that only loads a backbone refuses it instead of ignoring it',
  async (t) => {
    const { trainCommand } = await import('../../../src/node/cli/train.js');
    const { root, data, model } = await fixture(t);
    await t.rejects(
      trainCommand.run([data, '--backbone', model, '--out', join(root, 'h.json'), '--autotune']),
      /Unknown option '--autotune'/,
    );
  },
);
