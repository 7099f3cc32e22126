import t from 'tap';
import { readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { selectBackbone, type SelectProgress } from '../../../src/node/select/select.js';
import { localBackbones, namedBackbones } from '../../../src/node/select/candidates.js';
import { committedCost, committedResultFiles, profileDescribesHost } from '../../../src/node/select/cost.js';
import { collectHostFacts } from '../../../src/node/bench/host.js';
import { loadProfile } from '../../../src/node/bench/profile.js';
import { findCatalogEntry } from '../../../src/core/models/catalog.js';
import { selectCommand } from '../../../src/node/cli/select.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { Head } from '../../../src/core/heads/head.js';
import { tinyClassifier } from '../embed/tiny-backbone.js';
import { colourFolder, run, workspace } from '../cli/head-fixtures.js';

t.test('selection on tiny generated backbones: every figure present, the cache used the second time', async (t) => {
  const ws = await workspace(t, 'select');
  const train = await colourFolder(ws.root, 'train', { red: 9, green: 9, blue: 9 }, 1);
  const stages = new Set<string>();
  const result = await selectBackbone(train, {
    backbones: [ws.model, ws.otherModel],
    load: { ep: 'cpu' },
    onProgress: (e: SelectProgress) => stages.add(e.stage),
  });
  t.same([...stages].sort(), ['baseline', 'cost', 'cross-validation', 'done', 'embedding']);
  t.equal(result.images, 27);
  t.same(result.classes, ['blue', 'green', 'red']);
  t.match(result.crossValidation, /^3-fold out-of-fold/);
  t.equal(result.candidates.length, 2);
  for (const c of result.candidates) {
    t.equal(c.status, 'ok', c.error ?? '');
    t.equal(c.accuracy, 1, `${c.id}: solid colours are separable from the mean colour`);
    t.equal(c.foldAccuracy.length, 3);
    t.ok(
      c.msPerImage! > 0 && c.preprocessMsPerImage! > 0 && c.inferenceMsPerImage! > 0,
      `${c.id}: ms per image measured`,
    );
    t.ok(Math.abs(c.msPerImage! - (c.preprocessMsPerImage! + c.inferenceMsPerImage!)) < 0.01);
    t.ok(c.imagesPerSecond! > 0);
    t.ok(c.peakRssMb! > 20, `${c.id}: peak memory of a fresh process (${c.peakRssMb} MB)`);
    t.equal(c.modelBytes, (await stat(c.path!)).size);
    t.ok(c.headBytes! > 100, 'the head file train would write');
    t.equal(c.cost.source, 'measured here');
    t.equal(c.embedded.computed, 27);
    // raw pixels separate solid colours just as well: the backbone adds nothing
    t.equal(c.negativeTransfer, true);
    t.match(c.negativeTransferReason, /no better than raw pixels/);
  }
  t.equal(result.baseline.accuracy, 1);
  t.ok(
    result.recommended === ws.model || result.recommended === ws.otherModel,
    'the recommendation is a backbone as given',
  );
  t.match(result.rule, /one-standard-error rule/);
  t.ok(result.pareto.length >= 1);
  t.ok(
    result.warnings.some((w) => /does not clearly beat raw pixels/.test(w)),
    'a negative-transfer pick is called out',
  );
  t.equal(result.interrupted, false);

  const again = await selectBackbone(train, { backbones: [ws.model], load: { ep: 'cpu' } });
  t.equal(again.candidates[0]!.embedded.cacheHits, 27, 'second run: embeddings from the cache');
  t.equal(again.candidates[0]!.embedded.computed, 0);
});

t.test('budgets: nothing within an impossible one; a failed candidate is reported, not fatal', async (t) => {
  const ws = await workspace(t, 'select-budget');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 2);
  const broken = join(ws.root, 'broken.onnx');
  await writeFile(broken, 'not a model');
  const result = await selectBackbone(train, {
    backbones: [ws.model, broken],
    maxMsPerImage: 0.0001,
    load: { ep: 'cpu' },
  });
  t.equal(result.recommended, null);
  t.match(result.reason, /No candidate is known to be within the budgets \(<= 0\.0001 ms per image\)/);
  t.equal(result.candidates[0]!.withinBudget, 'over');
  t.match(result.candidates[0]!.budgetNotes[0], /ms per image .* > 0\.0001 ms/);
  t.equal(result.candidates[1]!.status, 'failed');
  t.ok(result.candidates[1]!.error, 'the reason it failed');
  t.same(result.budgets.sources, ['<= 0.0001 ms per image (given)']);
});

t.test('an abort stops after the current step and reports what was done', async (t) => {
  const ws = await workspace(t, 'select-abort');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 3);
  const controller = new AbortController();
  const result = await selectBackbone(train, {
    backbones: [ws.model, ws.otherModel],
    load: { ep: 'cpu' },
    signal: controller.signal,
    onProgress: (e) => {
      if (e.stage === 'done' && e.index === 1) controller.abort();
    },
  });
  t.equal(result.interrupted, true);
  t.equal(result.candidates.length, 1, 'the second candidate never started');
  t.equal(result.candidates[0]!.status, 'ok');
  t.match(result.reason, /^Interrupted:/);
});

t.test(
  'default candidates: local models, architecture-only ones excluded; bare names found in model folders',
  async (t) => {
    const ws = await workspace(t, 'select-local');
    const models = join(ws.root, 'models');
    await mkdir(models);
    await writeFile(join(models, 'tiny-a.onnx'), tinyClassifier());
    await writeFile(join(models, 'tiny-b.onnx'), tinyClassifier()); // same bytes: listed once
    await writeFile(join(models, 'random.arch-only.onnx'), tinyClassifier({ size: 16 }));
    const local = await localBackbones({ searchPath: [models] });
    t.same(
      local.candidates.map((c) => c.id),
      ['tiny-a'],
    );
    t.same(
      local.excluded.map((e) => e.backbone),
      [join(models, 'random.arch-only.onnx')],
    );
    t.match(local.excluded[0]!.reason, /architecture only/);
    const named = namedBackbones(['tiny-a', 'mobilenetv2-12-int8', '/x/y.onnx'], { searchPath: [models] });
    t.same(named, [
      { backbone: 'tiny-a', load: join(models, 'tiny-a.onnx'), id: 'tiny-a' },
      { backbone: 'mobilenetv2-12-int8', load: 'mobilenetv2-12-int8', id: 'mobilenetv2-12-int8' },
      { backbone: '/x/y.onnx', load: '/x/y.onnx', id: 'y' },
    ]);
  },
);

t.test('another device: committed bench results where they exist, else cost unknown', async (t) => {
  const host = collectHostFacts();
  const pi = profileDescribesHost(loadProfile('raspberry-pi-5').profile, {
    ...host,
    arch: 'x64',
    isa: { ...host.isa, neon: false },
  });
  t.equal(pi.matches, false);
  t.match(pi.why, /lists ARMv8\.2-A|lists NEON/);
  t.equal(
    profileDescribesHost(loadProfile('nvidia-cuda').profile, host).matches,
    false,
    'a CUDA profile is not the CPU measured here',
  );
  const x86 = profileDescribesHost(loadProfile('x86-cpu').profile, {
    ...host,
    arch: 'x64',
    isa: { ...host.isa, sse4_2: true, avx2: true, fma: true },
  });
  t.equal(x86.matches, true);
  t.equal(
    profileDescribesHost(loadProfile('x86-cpu').profile, { ...host, arch: 'x64', isa: { ...host.isa, avx2: false } })
      .matches,
    false,
  );

  const unknown = committedCost('raspberry-pi-5', 'f'.repeat(64), []);
  t.equal(unknown.source, 'unknown');
  t.equal(unknown.msPerImage, null);
  t.match(unknown.note, /no committed bench results for profile raspberry-pi-5/);

  const files = committedResultFiles('x86-cpu');
  const mobilenet = findCatalogEntry('mobilenetv2-12-int8')!;
  t.test(
    'from the committed x86-cpu results',
    { skip: files.length === 0 ? 'no committed x86-cpu results in bench/results' : false },
    async (t) => {
      const cost = committedCost('x86-cpu', mobilenet.sha256, files);
      t.equal(cost.source, 'committed bench results');
      t.ok(cost.msPerImage! > cost.inferenceMsPerImage!, 'preprocessing + inference');
      t.match(cost.note, /bench\/results\/\d{4}-\d\d-\d\d\/x86-cpu-\w+\.json .*measured \d{4}-\d\d-\d\d/);
      const absent = committedCost('x86-cpu', 'e'.repeat(64), files);
      t.equal(absent.source, 'unknown');
      t.match(absent.note, /do not include this backbone/);
    },
  );

  const ws = await workspace(t, 'select-profile');
  const train = await colourFolder(ws.root, 'train', { red: 6, blue: 6 }, 4);
  const result = await selectBackbone(train, { backbones: [ws.model], profile: 'raspberry-pi-5', load: { ep: 'cpu' } });
  t.equal(result.device.profile, 'raspberry-pi-5');
  t.equal(result.candidates[0]!.cost.source, 'unknown');
  t.equal(result.candidates[0]!.msPerImage, null);
  t.ok(
    result.budgets.sources.some((s) => /profile raspberry-pi-5/.test(s)),
    `the profile's general budget applies: ${result.budgets.sources.join('; ')}`,
  );
  t.equal(result.recommended, null, 'no cost known there, so nothing is known to be within its memory budget');
});

t.test(
  'CLI: select --json, the text table, --report, usage errors; train --backbone best records the selection',
  async (t) => {
    const ws = await workspace(t, 'select-cli');
    const train = await colourFolder(ws.root, 'train', { red: 6, green: 6, blue: 6 }, 5);
    const report = join(ws.root, 'select.html');
    const json = await run(selectCommand, [
      train,
      '--backbones',
      `${ws.model},${ws.otherModel}`,
      '--ep',
      'cpu',
      '--json',
      '--report',
      report,
    ]);
    t.equal(json.error, undefined, json.error?.message ?? '');
    t.equal(json.code, 0);
    const parsed = JSON.parse(json.stdout);
    for (const key of [
      'backbone',
      'accuracy',
      'balancedAccuracy',
      'msPerImage',
      'imagesPerSecond',
      'peakRssMb',
      'modelBytes',
      'headBytes',
      'negativeTransfer',
    ]) {
      t.ok(key in parsed.candidates[0], `candidates[].${key}`);
    }
    t.ok('accuracy' in parsed.baseline);
    t.ok([ws.model, ws.otherModel].includes(parsed.recommended));
    const html = await readFile(report, 'utf8');
    t.match(html, /^<!doctype html>/);
    t.match(html, /<svg [^>]*aria-label="accuracy against ms per image"/);
    t.notMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained');

    const text = await run(selectCommand, [train, '--backbones', ws.model, '--ep', 'cpu']);
    t.match(text.stdout, /backbone\s+accuracy\s+balanced\s+folds\s+ms\/img/);
    t.match(text.stdout, /Recommended: /);
    t.match(text.stdout, /Rule: the most accurate candidate/);
    t.match(text.stdout, /baseline: raw 16x16 RGB pixels/);

    t.match((await run(selectCommand, [train, '--report', 'x.txt'])).error?.message, /ending in \.html/);
    t.match((await run(selectCommand, [])).error?.message, /missing <dir>/);
    t.match((await run(selectCommand, [train, '--head', 'svm'])).error?.message, /--head must be one of/);
    t.match(
      (await run(trainCommand, [train, '--backbones', ws.model, '--out', join(ws.root, 'h.json')])).error?.message,
      /needs --backbone best/,
    );

    const out = join(ws.root, 'best.json');
    const best = await run(trainCommand, [
      train,
      '--backbone',
      'best',
      '--backbones',
      `${ws.model},${ws.otherModel}`,
      '--ep',
      'cpu',
      '--out',
      out,
      '--json',
    ]);
    t.equal(best.error, undefined, best.error?.message ?? '');
    const summary = JSON.parse(best.stdout);
    t.ok([ws.model, ws.otherModel].includes(summary.selection.picked));
    const head = Head.parse(await readFile(out, 'utf8'));
    const selection = head.training.selection as {
      picked: string;
      reason: string;
      rule: string;
      candidates: unknown[];
    };
    t.equal(selection.picked, summary.selection.picked, 'the head file records the pick');
    t.match(selection.rule, /one-standard-error rule/);
    t.equal(selection.candidates.length, 2);
    t.match(selection.reason, /\S/);
  },
);
