// A fine-tuned head in the browser: the page builds the adapted graph from the unmodified classifier
// (loadAdaptedBackbone) and predicts, on onnxruntime-web WASM, what Node predicts on onnxruntime-node.
import t from 'tap';
import { join } from 'node:path';
import { chromiumSkip, launchChromium, type LaunchedBrowser } from './chromium.js';
import { openTestPage, startServer } from './harness.js';
import { Backbone } from '../../src/node/embed/backbone.js';
import { trainHead } from '../../src/node/train-head.js';
import { fineTuneHead, adaptedBackboneOptions } from '../../src/node/fine-tune.js';
import { saveHead } from '../../src/node/head-io.js';
import { imageToTensor } from '../../src/node/preprocess/node-image.js';
import type { KioskServer } from '../../src/node/server/kiosk-server.js';
import { stripeWorkspace } from '../core/models/tiny-last-block.js';

type WebModule = typeof import('../../src/web/index.js');

t.test('browser and Node give the same predictions for a fine-tuned head', { skip: chromiumSkip() }, async (t) => {
  const ws = await stripeWorkspace(t, 6);
  const backbone = await Backbone.load(ws.model, { ep: 'cpu', cacheDir: ws.cacheDir });
  t.teardown(() => backbone.close());
  const embedded = await backbone.embedMany(ws.paths, { strict: true });
  const frozen = await trainHead(embedded.embeddings, ws.labels, {
    backbone: {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    },
    folds: 2,
  });
  const { head } = await fineTuneHead({
    backbone,
    loadOptions: { ep: 'cpu', cacheDir: ws.cacheDir },
    paths: ws.paths,
    labels: ws.labels,
    frozen,
    epochs: 2,
    folds: 2,
    blockLearningRate: 1e-2,
    headLearningRate: 1e-2,
    keepFineTuned: true,
  });
  t.ok(head.adaptedBlock);
  const headFile = join(ws.dir, 'head.json');
  await saveHead(head, headFile);
  const saved = (await import('../../src/core/heads/head.js')).Head.parse(
    await (await import('node:fs/promises')).readFile(headFile, 'utf8'),
  );

  const adapted = await Backbone.load(ws.model, { ep: 'cpu', cacheDir: ws.cacheDir, ...adaptedBackboneOptions(saved) });
  t.teardown(() => adapted.close());
  const tensors: number[][] = [];
  const nodeProbabilities: number[][] = [];
  for (const path of ws.paths) {
    const tensor = new Float32Array(3 * 16 * 16);
    await imageToTensor(path, adapted.preprocess, { out: tensor });
    tensors.push(Array.from(tensor));
    nodeProbabilities.push(Array.from(saved.probabilities(await adapted.embedTensors(tensor, 1))));
  }

  let browser: LaunchedBrowser | undefined;
  let server: KioskServer | undefined;
  t.teardown(async () => {
    await browser?.close();
    await server?.close();
  });
  browser = await launchChromium('wasm');
  server = (await startServer(ws.model)).server;
  await openTestPage(browser.page, server, [ws.model, headFile]);
  const result = await browser.page.evaluate(
    async ({ spec, tensors }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      const head = web.Head.parse(await (await fetch('/test/file/1')).text());
      const backbone = await web.loadAdaptedBackbone({
        model: '/test/file/0',
        id: 'tiny',
        preprocess: spec,
        ep: 'wasm',
        wasmPaths: '/ort/',
        head,
      });
      const probabilities: number[][] = [];
      for (const tensor of tensors)
        probabilities.push(Array.from(head.probabilities(await backbone.embedTensors(new Float32Array(tensor), 1))));
      return { probabilities, used: backbone.provider.used };
    },
    { spec: adapted.preprocess, tensors },
  );
  t.equal(result.used, 'wasm');
  let worst = 0;
  result.probabilities.forEach((p, i) => {
    const n = nodeProbabilities[i];
    t.equal(p.indexOf(Math.max(...p)), n.indexOf(Math.max(...n)), `image ${i}: same class`);
    worst = Math.max(worst, ...p.map((v, k) => Math.abs(v - n[k])));
  });
  t.ok(worst < 1e-4, `probabilities agree within 1e-4 (worst ${worst.toExponential(2)})`);
});
