// Fine-tuning the last block in the browser against Node. On the same activations at the cut, frozen head and seed,
// the worker (fineTuneActivationsInWorker, plain-JS dense math) computes exactly what Node computes with the same
// math, and takes the decision Node's fineTuneHead takes (its dense math on onnxruntime). End to end
// (fineTuneInWorker: the cut graph on onnxruntime-web WASM, then the worker with its products on onnxruntime-web),
// the decision is Node's again and the browser's head file loads in Node and predicts what the browser predicts. A tiny generated backbone and stripe images (test/core/models).
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { chromiumSkip, launchChromium, type LaunchedBrowser } from './chromium.js';
import { openTestPage, startServer } from './harness.js';
import { Backbone } from '../../src/node/embed/backbone.js';
import { flippedEmbeddings } from '../../src/node/embed/augment.js';
import { trainHead } from '../../src/node/train-head.js';
import { fineTuneHead, adaptedBackboneOptions } from '../../src/node/fine-tune.js';
import { imageToTensor } from '../../src/node/preprocess/node-image.js';
import {
  fineTuneFromActivations,
  MemoryActivationRows,
  type FineTuneReport,
} from '../../src/core/heads/fine-tune-head.js';
import { jsDenseMath } from '../../src/core/heads/dense-math.js';
import { Head } from '../../src/core/heads/head.js';
import { findLastBlock } from '../../src/core/models/last-block.js';
import { cutPixels, cutSurgery } from '../../src/core/models/last-block-graph.js';
import { parseOnnxModel } from '../../src/core/models/onnx-model.js';
import { tensorDims, tensorElementsPerImage } from '../../src/core/preprocess/tensor.js';
import type { KioskServer } from '../../src/node/server/kiosk-server.js';
import { stripeWorkspace } from '../core/models/tiny-last-block.js';
import { tinyTorchvisionLike } from '../core/models/tiny-models.js';
import { sha256Hex } from '../../src/core/formats/sha256.js';
import { writePixelsToTensor } from '../../src/core/preprocess/tensor.js';
import { IMAGENET_224 } from '../../src/core/preprocess/spec.js';
import { mirrorRgb } from '../../src/node/embed/augment.js';
import { mirrorTensor } from '../../src/web/fine-tune.js';

type WebModule = typeof import('../../src/web/index.js');

// 20 stripe images per class: enough that the frozen head is well above chance (on 8 per class it is at chance, and
// float noise of 1e-6 in the activations flips out-of-fold predictions and with them the decision).
const settings = { epochs: 3, patience: 3, folds: 2, blockLearningRate: 1e-2, headLearningRate: 1e-2, seed: 0 };

t.test('fine-tuning in the browser worker matches Node', { skip: chromiumSkip() }, async (t) => {
  const ws = await stripeWorkspace(t, 20);
  const loadOptions = { ep: 'cpu' as const, cacheDir: ws.cacheDir };
  const backbone = await Backbone.load(ws.model, loadOptions);
  t.teardown(() => backbone.close());
  const embedded = await backbone.embedMany(ws.paths, { strict: true });
  const trained = await trainHead(embedded.embeddings, ws.labels, {
    backbone: {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    },
    folds: 2,
  });
  // Every run starts from the same frozen head file (a fresh copy each time: a kept frozen head gets the report).
  const frozenJson = trained.serialize();
  const spec = backbone.preprocess;
  const per = tensorElementsPerImage(spec);
  const tensors = new Float32Array(ws.paths.length * per);
  for (const [i, path] of ws.paths.entries()) await imageToTensor(path, spec, { out: tensors, imageIndex: i });

  // Node's decision, and the activations it decides on: every image then every mirrored view, as fineTuneHead orders them
  const nodeRun = await fineTuneHead({
    backbone,
    loadOptions,
    paths: ws.paths,
    labels: ws.labels,
    frozen: Head.parse(frozenJson),
    flip: true,
    useCache: false,
    ...settings,
  });
  const model = parseOnnxModel(await readFile(ws.model));
  const block = findLastBlock(model);
  const pixels = cutPixels(model, block, 'input', tensorDims(spec, 1));
  const cut = await Backbone.load(ws.model, { ...loadOptions, surgery: cutSurgery(pixels) });
  t.teardown(() => cut.close());
  const originals = await cut.embedMany(ws.paths, { strict: true, useCache: false });
  const mirrored = await flippedEmbeddings(cut, ws.paths, { useCache: false });
  const activations = new Float32Array([...originals.embeddings, ...mirrored.embeddings]);
  const frozenLabels = Head.parse(frozenJson).labels;
  const targets = [...ws.labels, ...ws.labels].map((label) => frozenLabels.indexOf(label));
  const groups = targets.map((_, r) => r % ws.paths.length);
  const blockWeights = {
    description: block.description,
    cutTensor: block.cutTensor,
    inputChannels: block.inputChannels,
    outputChannels: block.outputChannels,
    activation: block.activation,
    weight: block.weight,
    bias: block.bias,
  };
  const nodeJs = await fineTuneFromActivations({
    store: new MemoryActivationRows(activations, pixels, block.inputChannels),
    targets,
    groups,
    frozen: Head.parse(frozenJson),
    block: blockWeights,
    settings,
    math: jsDenseMath,
    activationSeconds: 0,
  });

  // a graph whose last block fine-tuning does not support, and a frozen head made for it
  const plainModel = join(ws.dir, 'plain.onnx');
  const plainBytes = onnxProto.onnx.ModelProto.encode(tinyTorchvisionLike('N', { size: 16 })).finish();
  await writeFile(plainModel, plainBytes);
  const plainFrozenJson = (
    await trainHead(embedded.embeddings, ws.labels, {
      backbone: { id: 'plain', sha256: sha256Hex(plainBytes), embeddingDim: 6, preprocess: spec },
      folds: 2,
    })
  ).serialize();

  let browser: LaunchedBrowser | undefined;
  let server: KioskServer | undefined;
  t.teardown(async () => {
    await browser?.close();
    await server?.close();
  });
  browser = await launchChromium('wasm');
  server = (await startServer(ws.model)).server;
  await openTestPage(browser.page, server, [ws.model, plainModel, ...ws.paths]);
  const result = await browser.page.evaluate(
    async ({ spec, tensors, labels, frozenJson, plainFrozenJson, settings, job }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      // the worker alone, on Node's activations
      const onNodeActivations = (runSettings: typeof settings) =>
        web.fineTuneActivationsInWorker(
          {
            ...job,
            activations: new Float32Array(job.activations),
            targets: new Int32Array(job.targets),
            groups: new Int32Array(job.groups),
            block: { ...job.block, weight: new Float32Array(job.block.weight), bias: new Float32Array(job.block.bias) },
            frozenJson,
            settings: runSettings,
            activationSeconds: 0,
          },
          { workerUrl: '/worker.js' },
        );
      const same = await onNodeActivations(settings);
      // learning rates of zero: no epoch can beat the frozen head, which is kept
      const noGain = await onNodeActivations({ ...settings, blockLearningRate: 0, headLearningRate: 0 });

      // end to end: the cut graph on onnxruntime-web, then the worker
      const common = {
        model: '/test/file/0',
        id: 'tiny',
        preprocess: spec,
        ep: 'wasm' as const,
        wasmPaths: '/ort/',
        tensors: new Float32Array(tensors),
        labels,
        flip: true,
      };
      const progress: { stage: string; fraction: number; etaSeconds?: number }[] = [];
      const decided = await web.fineTuneInWorker(
        { ...common, frozen: web.Head.parse(frozenJson), settings },
        {
          workerUrl: '/worker.js',
          onProgress: (p) => progress.push({ stage: p.stage, fraction: p.fraction, etaSeconds: p.etaSeconds }),
        },
      );
      // (a frozen outcome fails the assertions below instead of stopping here)
      const probabilities: number[][] = [];
      if (decided.head.head.adaptedBlock) {
        const adapted = await web.loadAdaptedBackbone({
          model: '/test/file/0',
          id: 'tiny',
          preprocess: spec,
          ep: 'wasm',
          wasmPaths: '/ort/',
          head: decided.head.head,
        });
        const per = tensors.length / labels.length;
        for (let i = 0; i < labels.length; i++) {
          const embedding = await adapted.embedTensors(new Float32Array(tensors.slice(i * per, (i + 1) * per)), 1);
          probabilities.push(Array.from(decided.head.head.probabilities(embedding)));
        }
        await adapted.close();
      }

      // the same images as PNG files decoded by the page (lossless: the same pixels as Node's)
      const blobs = await Promise.all(labels.map((_, i) => fetch(`/test/file/${i + 2}`).then((r) => r.blob())));
      const { tensors: _tensors, ...fromFiles } = common;
      const fromImages = await web.fineTuneInWorker(
        { ...fromFiles, images: blobs, frozen: web.Head.parse(frozenJson), settings },
        { workerUrl: '/worker.js' },
      );

      // refusals, before any session opens
      const refusal = (request: Partial<Parameters<typeof web.fineTuneInWorker>[0]>) =>
        web
          .fineTuneInWorker({ ...common, frozen: web.Head.parse(frozenJson), ...request }, { workerUrl: '/worker.js' })
          .then(
            () => 'accepted',
            (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
          );
      const refusals = {
        memory: await refusal({ memoryBytes: 1024 }),
        otherBackbone: await refusal({ model: '/test/file/1' }),
        unknownLabel: await refusal({ labels: labels.map((l, i) => (i === 0 ? 'zebra' : l)) }),
      };

      // a graph without a supported last block: the frozen head, with the reason
      const unsupported = await web.fineTuneInWorker(
        { ...common, model: '/test/file/1', id: 'plain', frozen: web.Head.parse(plainFrozenJson), settings },
        { workerUrl: '/worker.js' },
      );

      // cancelling while the worker trains rejects with `aborted`
      const controller = new AbortController();
      let cancelled = '';
      await web
        .fineTuneInWorker(
          { ...common, frozen: web.Head.parse(frozenJson), settings: { ...settings, epochs: 50, patience: 50 } },
          {
            workerUrl: '/worker.js',
            signal: controller.signal,
            onProgress: (p) => {
              if (p.stage.startsWith('fine-tuning')) controller.abort();
            },
          },
        )
        .then(
          () => {
            cancelled = 'finished';
          },
          (error: { code?: string }) => {
            cancelled = error.code ?? 'no code';
          },
        );
      return {
        same: { report: same.report, json: same.head.json },
        decided: { report: decided.report, json: decided.head.json },
        noGain: { report: noGain.report, json: noGain.head.json },
        unsupported: { report: unsupported.report, adapted: Boolean(unsupported.head.head.adaptedBlock) },
        fromImages: fromImages.report,
        refusals,
        probabilities,
        progress,
        cancelled,
      };
    },
    {
      spec,
      tensors: Array.from(tensors),
      labels: ws.labels,
      frozenJson,
      plainFrozenJson,
      settings,
      job: {
        activations: Array.from(activations),
        pixels,
        channels: block.inputChannels,
        targets,
        groups,
        block: { ...blockWeights, weight: Array.from(block.weight), bias: Array.from(block.bias) },
      },
    },
  );

  // on the same activations: exactly Node's computation with the same math, and Node's decision
  const scores = (r: FineTuneReport) => r.epochs?.map((e) => [e.epoch, e.accuracy, e.logLoss]);
  t.same(scores(result.same.report), scores(nodeJs.report), 'the worker scores every epoch exactly as Node does');
  t.equal(result.same.report.reason, nodeJs.report.reason, 'the same reason, word for word');
  const nodeJsHead = Head.parse(nodeJs.head.serialize());
  t.same(
    (Head.parse(result.same.json).weights as { weight: Float32Array }).weight,
    (nodeJsHead.weights as { weight: Float32Array }).weight,
    'the same head weights',
  );
  t.equal(
    result.same.report.outcome,
    nodeRun.report.outcome,
    `the same decision as fineTuneHead (${nodeRun.report.outcome})`,
  );
  t.equal(result.same.report.chosenEpochs, nodeRun.report.chosenEpochs, 'the same chosen epoch count');
  t.same(
    result.same.report.epochs?.map((e) => e.accuracy),
    nodeRun.report.epochs?.map((e) => e.accuracy),
    'the same out-of-fold accuracy per epoch as fineTuneHead',
  );
  const worstLoss = Math.max(
    ...(result.same.report.epochs ?? []).map((e, i) => Math.abs(e.logLoss - nodeRun.report.epochs![i].logLoss)),
  );
  t.ok(
    worstLoss < 1e-3,
    `out-of-fold log loss per epoch within 1e-3 of fineTuneHead's (worst ${worstLoss.toExponential(2)})`,
  );

  // a run that cannot beat the frozen head keeps it, and says so
  const noGain = result.noGain.report;
  t.equal(noGain.outcome, 'frozen', 'no gain: the frozen head is kept');
  t.match(noGain.reason, /did not beat the frozen head.*the frozen head is kept/);
  const keptHead = Head.parse(result.noGain.json);
  t.notOk(keptHead.adaptedBlock, 'the kept head has no adapted block');
  t.same(keptHead.weights, Head.parse(frozenJson).weights, 'the kept head is the frozen head');
  t.equal((keptHead.training.metrics.fineTune as FineTuneReport).outcome, 'frozen', 'the head file records the report');

  t.equal(result.unsupported.report.outcome, 'frozen', 'an unsupported graph keeps the frozen head');
  t.match(result.unsupported.report.reason, /plain: the last block is not supported.*the frozen head is kept/);
  t.notOk(result.unsupported.adapted);

  // end to end (activations from onnxruntime-web): Node's decision again
  const decided = result.decided.report;
  t.equal(decided.denseMath, 'onnxruntime-web-wasm', "the worker ran the products on the page's onnxruntime-web");
  t.equal(result.same.report.denseMath, 'js', 'a job without a DenseMath spec runs the plain-JS kernel');
  t.equal(decided.outcome, nodeRun.report.outcome, `end to end: the same decision as fineTuneHead`);
  t.equal(decided.chosenEpochs, nodeRun.report.chosenEpochs, 'end to end: the same chosen epoch count');
  t.equal(decided.rows, 2 * ws.paths.length, 'every image and its mirrored view');
  t.same(
    decided.epochs?.map((e) => e.accuracy),
    nodeRun.report.epochs?.map((e) => e.accuracy),
    'end to end: the same out-of-fold accuracy per epoch',
  );
  const worstEndToEnd = Math.max(
    ...(decided.epochs ?? []).map((e, i) => Math.abs(e.logLoss - nodeRun.report.epochs![i].logLoss)),
  );
  t.ok(worstEndToEnd < 1e-3, `end to end: log loss per epoch within 1e-3 (worst ${worstEndToEnd.toExponential(2)})`);
  t.equal(decided.outcome, 'fine-tuned', 'this data and seed fine-tune (so the head below has an adapted block)');

  // from image files (decoded and mirrored on the page): the same rows, so the same scores
  t.equal(result.fromImages.rows, decided.rows, 'from images: every image and its mirrored view');
  t.same(
    result.fromImages.epochs?.map((e) => e.accuracy),
    decided.epochs?.map((e) => e.accuracy),
    'from images: the same out-of-fold accuracy per epoch as from tensors',
  );
  const worstImages = Math.max(
    ...(result.fromImages.epochs ?? []).map((e, i) => Math.abs(e.logLoss - decided.epochs![i].logLoss)),
  );
  t.ok(worstImages < 1e-4, `from images: log loss per epoch within 1e-4 (worst ${worstImages.toExponential(2)})`);

  t.match(
    result.refusals.memory,
    /^train-input: the activations at the cut would take 160\.0 KiB \(40 images x 2 views x 512 floats\), over the 1\.0 KiB allowed/,
  );
  t.match(result.refusals.otherBackbone, /^head-backbone-mismatch: the frozen head was trained on/);
  t.match(result.refusals.unknownLabel, /^label-mismatch: the training label "zebra"/);

  // progress and cancel
  const fractions = result.progress.map((p) => p.fraction);
  t.ok(
    fractions.every((f, i) => i === 0 || f >= fractions[i - 1]),
    'progress never goes backwards',
  );
  t.equal(fractions.at(-1), 1, 'progress ends at 100%');
  const stages = new Set(result.progress.map((p) => p.stage));
  for (const stage of [
    'activations at the cut',
    'activations at the cut (flipped views)',
    'pretrained features',
    'fine-tuning (cross-validation)',
    'fine-tuning (final fit)',
  ])
    t.ok(stages.has(stage), `progress reports "${stage}"`);
  const steps = result.progress.filter((p) => p.stage.startsWith('fine-tuning'));
  t.ok(
    steps.every((p) => typeof p.etaSeconds === 'number' && p.etaSeconds >= 0),
    'fine-tuning steps come with an estimate of the seconds left',
  );
  t.equal(steps.at(-1)?.etaSeconds, 0, 'none left at the last step');
  t.equal(result.cancelled, 'aborted', 'cancelling rejects with code aborted');

  // the browser's head file in Node predicts what the browser predicts
  const webHead = Head.parse(result.decided.json);
  t.equal(webHead.adaptedBlock?.cutTensor, block.cutTensor, 'the browser head carries the adapted block');
  if (!webHead.adaptedBlock) return;
  t.notSame(Array.from(webHead.adaptedBlock!.weight), Array.from(block.weight), 'the block was trained');
  const adapted = await Backbone.load(ws.model, { ...loadOptions, ...adaptedBackboneOptions(webHead) });
  t.teardown(() => adapted.close());
  let worst = 0;
  for (let i = 0; i < ws.paths.length; i++) {
    const p = Array.from(
      webHead.probabilities(await adapted.embedTensors(tensors.subarray(i * per, (i + 1) * per), 1)),
    );
    const b = result.probabilities[i];
    t.equal(p.indexOf(Math.max(...p)), b.indexOf(Math.max(...b)), `image ${i}: same class in Node and the browser`);
    worst = Math.max(worst, ...p.map((v, k) => Math.abs(v - b[k])));
  }
  t.ok(worst < 1e-4, `Node and browser probabilities agree within 1e-4 (worst ${worst.toExponential(2)})`);
});

t.test('a mirrored tensor is the tensor of the mirrored pixels, in both layouts', async (t) => {
  const width = 5;
  const height = 3;
  const pixels = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256);
  for (const layout of ['NCHW', 'NHWC'] as const) {
    const spec = { ...IMAGENET_224, layout, width, height };
    const mirrored = new Float32Array(2 * width * height * 3);
    const expected = new Float32Array(2 * width * height * 3);
    for (const image of [0, 1]) {
      writePixelsToTensor(pixels, width, height, 3, spec, mirrored, image);
      writePixelsToTensor(mirrorRgb(pixels, width, height), width, height, 3, spec, expected, image);
    }
    mirrorTensor(mirrored, spec);
    t.same(Array.from(mirrored), Array.from(expected), layout);
  }
});
