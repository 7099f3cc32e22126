/**
 * `Head.load(url)` in the browser (fetch is its only client) loads a served head, and gives up on a server that
 * never answers after the default 10 s with the Node downloader's code and a message naming the URL, instead of
 * staying pending forever; `WebBackbone.load` from a model URL alike.
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
  'Head.load and WebBackbone.load from URLs in Chromium: a served head loads, a silent server fails after 10 s',
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
    const silentModelUrl = `${server.url}test/silent/model.onnx`;
    let held = 0;
    await browser.page.route(`${server.url}test/silent/**`, () => {
      held++;
    });
    const result = await browser.page.evaluate(
      async ({ silentUrl, silentModelUrl, preprocess }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const loaded = await web.Head.load('/test/file/0');
        // Without a timeout both loads would stay pending: give up on them after 20 s so the test fails, not hangs.
        const within20s = async (load: () => Promise<unknown>) => {
          const started = performance.now();
          const pending = new Promise<Error>((resolve) =>
            setTimeout(() => resolve(new Error('still pending')), 20_000),
          );
          const error = await Promise.race([
            load().then(
              () => new Error('loaded'),
              (e: Error) => e,
            ),
            pending,
          ]);
          const { code, message } = error as Error & { code?: string };
          return { code, message, elapsed: performance.now() - started };
        };
        const [head, model] = await Promise.all([
          within20s(() => web.Head.load(silentUrl)),
          within20s(() =>
            web.WebBackbone.load({
              model: silentModelUrl,
              id: 'silent',
              sha256: '0'.repeat(64),
              preprocess,
            }),
          ),
        ]);
        return { labels: loaded.labels, head, model };
      },
      { silentUrl, silentModelUrl, preprocess: IMAGENET_224 },
    );
    t.equal(held, 2, 'both silent requests reached the test server');
    t.same(result.labels, ['a', 'b'], 'a served head loads');
    t.match(result.head, { code: 'download-unreachable', message: `cannot reach ${silentUrl}: no answer within 10 s` });
    t.match(result.model, {
      code: 'model-load',
      message: `could not fetch the model: cannot reach ${silentModelUrl}: no answer within 10 s`,
    });
    for (const [what, { elapsed }] of [
      ['Head.load', result.head],
      ['WebBackbone.load', result.model],
    ] as const)
      t.ok(elapsed >= 9500 && elapsed < 15_000, `${what} failed after ${Math.round(elapsed)} ms`);
  },
);
