/**
 * `Head.load(url)` in the browser (fetch is its only client) loads a served head, and gives up on a server that
 * never answers after the default 10 s with the Node downloader's code and a message naming the URL,
 * instead of staying pending forever.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallBackbone } from '../helpers/shared.js';
import { trainHead } from '../../src/core/heads/train.js';
import { IMAGENET_224 } from '../../src/core/preprocess/spec.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { openTestPage, startServer } from './harness.js';

type WebModule = typeof import('../../src/web/index.js');

t.test(
  'Head.load from a URL in Chromium: a served head loads, a silent server fails after 10 s',
  { skip: chromiumSkip() },
  async (t) => {
    const head = await trainHead([Float32Array.of(1, 0, 0, 0), Float32Array.of(0, 1, 0, 0)], ['a', 'b'], {
      type: 'prototype',
      backbone: { id: 'tiny-test', sha256: 'ab'.repeat(32), embeddingDim: 4, preprocess: IMAGENET_224 },
    });
    const headPath = join(mkdtempSync(join(tmpdir(), 'edgetl-head-url-')), 'head.json');
    writeFileSync(headPath, head.serialize());

    const { server } = await startServer(smallBackbone().path);
    const browser = await launchChromium('wasm');
    t.teardown(async () => {
      await browser.close();
      await server.close();
    });
    await openTestPage(browser.page, server, [headPath]);
    // Same origin (Chromium asks the user before a page may reach another loopback port): a request the test server
    // takes and never answers, as a server that accepts the connection and stays silent.
    const silentUrl = `${server.url}test/silent/head.json`;
    let held = 0;
    await browser.page.route(silentUrl, () => {
      held++;
    });
    const result = await browser.page.evaluate(async (silentUrl) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      const loaded = await web.Head.load('/test/file/0');
      const started = performance.now();
      // Without a timeout Head.load would stay pending: give up on it after 20 s so the test fails instead of hanging.
      const pending = new Promise<'still pending'>((resolve) => setTimeout(() => resolve('still pending'), 20_000));
      try {
        const outcome = await Promise.race([web.Head.load(silentUrl), pending]);
        const error = outcome === 'still pending' ? { code: outcome, message: outcome } : undefined;
        return { labels: loaded.labels, error, elapsed: performance.now() - started };
      } catch (error) {
        const { code, message } = error as { code?: string; message: string };
        return { labels: loaded.labels, error: { code, message }, elapsed: performance.now() - started };
      }
    }, silentUrl);
    t.equal(held, 1, 'the silent request reached the test server');
    t.same(result.labels, ['a', 'b'], 'a served head loads');
    t.match(result.error, {
      code: 'download-unreachable',
      message: `cannot reach ${silentUrl}: no answer within 10 s`,
    });
    t.ok(result.elapsed >= 9500 && result.elapsed < 15_000, `failed after ${Math.round(result.elapsed)} ms`);
  },
);
