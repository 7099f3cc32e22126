/**
 * The browser benchmark path (`edgetl serve --bench`): a tiny browser profile runs in Chromium and comes back as an
 * edgetl-bench/1 results file (validated against bench/results.schema.json) with the Node harness's run ids and
 * budget verdicts. It checks the plumbing and the schema; the figures of a loaded test machine mean nothing.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, sharedModel } from '../helpers/shared.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { buildWebBundles } from './harness.js';
import { prepareServedBackbone, startKioskServer } from '../../src/node/server/kiosk-server.js';
import { assembleBrowserResults, prepareBrowserBench } from '../../src/node/server/browser-bench.js';
import type { BrowserBenchPayload } from '../../src/web/bench/runner.js';
import type { BenchResults } from '../../src/node/bench/results.js';

const fp32 = sharedModel('mobilenet-v1-0.25-224.fp32.onnx');
const skip = chromiumSkip() || fp32.skip;

const tinyProfile = {
  format: 'edgetl-device-profile/1',
  name: 'tiny-browser',
  deviceClass: 'browser (WebAssembly), plumbing test',
  description: 'The smallest browser run: checks the path, not a figure to quote.',
  source: 'test/web/browser-bench.test.ts',
  runtime: 'browser',
  purpose: 'performance',
  execution: { providers: ['wasm', 'webgpu'], graphOptimizationLevel: 'all' },
  backbones: ['mobilenet-v1-0.25-224.fp32'],
  batchSizes: [1, 2],
  images: { synthetic: { count: 3, width: 320, height: 240, seed: 1 } },
  measurement: {
    warmupRuns: 1,
    minRuns: 4,
    minDurationMs: 200,
    maxDurationMs: 5000,
    seed: 42,
    preprocessImages: 3,
    preprocessMinDurationMs: 100,
  },
  endToEnd: { enabled: true, images: 4, repeats: 1, batchSizes: [2] },
  heads: { samples: 60, dim: 16, classes: 3, types: ['linear', 'prototype'], repeats: 1, predictions: 20, seed: 7 },
  budgets: [
    {
      name: 'latency',
      backbone: 'mobilenet-v1-0.25-224.fp32',
      provider: 'wasm',
      batch: 1,
      p95LatencyMsPerImage: 100000,
    },
    { name: 'head training', maxHeadTrainSeconds: 600 },
  ],
};

t.test('a browser profile runs in Chromium and yields edgetl-bench/1 results', { skip }, async (t) => {
  buildWebBundles();
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-browser-bench-'));
  const file = join(dir, 'tiny-browser.json');
  await writeFile(file, JSON.stringify(tinyProfile));
  const prepared = await prepareBrowserBench(file);
  let resolveResults: (r: BenchResults) => void = () => undefined;
  const done = new Promise<BenchResults>((resolve) => (resolveResults = resolve));
  const server = await startKioskServer({
    backbone: await prepareServedBackbone(fp32.path!, { download: false }),
    port: 0,
    webRoot: join(repoRoot, 'dist', 'web'),
    bench: {
      profile: prepared.loaded.profile,
      backbones: prepared.backbones,
      onResults: async (body) => {
        const results = assembleBrowserResults(prepared, body as BrowserBenchPayload);
        resolveResults(results);
        return { ok: true, message: 'stored' };
      },
    },
  });
  const browser = await launchChromium('wasm');
  t.teardown(async () => {
    await browser.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  await browser.page.goto(`${server.url}bench`);
  const results = await done;
  await browser.page.waitForSelector('body[data-done="ok"]');

  t.equal(results.schema, 'edgetl-bench/1');
  t.equal(results.complete, true);
  t.same(
    results.runs.map((r) => r.id),
    [
      'mobilenet-v1-0.25-224.fp32/wasm/b1',
      'mobilenet-v1-0.25-224.fp32/wasm/b2',
      'mobilenet-v1-0.25-224.fp32/webgpu/b1',
      'mobilenet-v1-0.25-224.fp32/webgpu/b2',
    ],
    'run ids as the Node harness names them',
  );
  for (const run of results.runs.filter((r) => r.providerRequested === 'wasm')) {
    t.equal(run.status, 'ok', `${run.id} measured`);
    t.ok((run.samplesMs?.length ?? 0) >= 4, `${run.id}: at least minRuns samples`);
    t.ok(run.latencyMsPerImage && run.imagesPerSecond && run.noise, `${run.id}: latency, throughput and noise`);
    t.equal(run.provider?.used, 'wasm');
  }
  for (const run of results.runs.filter((r) => r.providerRequested === 'webgpu')) {
    t.equal(run.status, 'unavailable', `${run.id}: no WebGPU in this browser is reported, not faked`);
    t.match(run.reason, /webgpu/i);
  }
  t.equal(results.preprocess[0]?.status, 'ok', 'preprocessing measured apart');
  t.equal(results.endToEnd.find((r) => r.provider === 'wasm')?.status, 'ok', 'end to end measured');
  t.same(
    results.heads.map((h) => [h.type, h.status]),
    [
      ['linear', 'ok'],
      ['prototype', 'ok'],
    ],
    'heads trained in the Web Worker',
  );
  t.equal(
    results.budgets.find((b) => b.budget === 'latency')?.status,
    'pass',
    'budget verdicts from the same rules as edgetl bench',
  );
  t.match(results.warnings.join(' '), /measured in a browser/, 'the results say they come from a browser');
});
