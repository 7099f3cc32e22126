/**
 * Head training in the Web Worker keeps the page responsive: while a head trains on a realistic kiosk-sized set,
 * the page's timers keep firing, progress arrives, and the result is a valid head.
 */
import t from 'tap';
import { smallBackbone } from '../helpers/shared.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { openTestPage, startServer } from './harness.js';

type WebModule = typeof import('../../src/web/index.js');

// Any small real model will do: the shared fp32 MobileNet V1 0.25, or the bundled int8 MobileNetV2 on a fresh clone.
const small = smallBackbone();

t.test('training in the worker does not freeze the page', { skip: chromiumSkip() }, async (t) => {
  const { server } = await startServer(small.path);
  const browser = await launchChromium('wasm');
  t.teardown(async () => {
    await browser.close();
    await server.close();
  });
  await openTestPage(browser.page, server, []);
  const result = await browser.page.evaluate(async () => {
    const bundle = '/index.js';
    const web = (await import(bundle)) as WebModule;
    // 600 examples x 1280 dims, 6 classes: a few hundred photos per class, as the users have.
    const rows = 600;
    const dim = 1280;
    const classes = 6;
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const centres = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, random));
    const embeddings = new Float32Array(rows * dim);
    const targets = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      targets[i] = i % classes;
      for (let d = 0; d < dim; d++) embeddings[i * dim + d] = centres[i % classes][d] + 2 * random();
    }
    const labels = Array.from({ length: classes }, (_, c) => `class ${c}`);
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 10);
    const progress: number[] = [];
    const started = performance.now();
    const head = await web.trainHeadInWorker(
      {
        embeddings,
        dim,
        labels,
        targets,
        headType: 'linear',
        backbone: { id: 'synthetic', sha256: '0'.repeat(64), embeddingDim: dim, preprocess: null },
      },
      { workerUrl: '/worker.js', onProgress: (p) => progress.push(p.fraction) },
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    let correct = 0;
    for (let i = 0; i < rows; i++)
      if (head.predict(embeddings.subarray(i * dim, (i + 1) * dim)).label === labels[targets[i]]) correct++;
    return { seconds, ticks, maxGap, progress, accuracy: correct / rows, type: head.type };
  });
  t.ok(result.seconds > 0.3, `training took long enough to matter (${result.seconds.toFixed(2)} s)`);
  // Training on the page's own thread would stall the timer for the whole training time.
  const allowed = Math.min(500, (result.seconds * 1000) / 2);
  t.ok(
    result.maxGap < allowed,
    `the page's 10 ms timer never stalled more than ${allowed.toFixed(0)} ms (worst gap ${result.maxGap.toFixed(0)} ms, ${result.ticks} ticks)`,
  );
  t.ok(result.progress.length >= 2, `progress arrived while training (${result.progress.length} updates)`);
  t.same(
    result.progress.slice(1).every((f, i) => f >= result.progress[i]),
    true,
    'progress never goes backwards',
  );
  t.equal(result.progress.at(-1), 1, 'progress ends at 100%');
  t.ok(result.accuracy > 0.9, `the head learned the classes (training accuracy ${result.accuracy.toFixed(3)})`);
});
