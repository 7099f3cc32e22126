/**
 * Last-block fine-tuning in the browser against Node on a real backbone and dataset: Node's fineTuneHead
 * (onnxruntime-node for the cut activations and the dense products) vs the browser's fineTuneInWorker (the cut graph
 * on onnxruntime-web WASM, canvas preprocessing from the same image files, training in the Web Worker with its
 * products on the page's onnxruntime-web), plus the worker alone on Node's own activations
 * (fineTuneActivationsInWorker) with plain-JS and with onnxruntime-web products, which isolates the training math.
 * Reports seconds per stage, the decisions and out-of-fold scores, and the val accuracy of each head through the
 * adapted ONNX graph in Node (what `edgetl eval` runs).
 *
 *   EDGETL_MODEL_PATH=../shared/models node --import @tapjs/typescript/import bench/web-fine-tune.ts \
 *     <train-dir> <val-dir> [--backbone mobilenetv2-12-int8] [--epochs N] [--json]
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromiumSkip, launchChromium } from '../test/web/chromium.js';
import { openTestPage, startServer } from '../test/web/harness.js';
import { Backbone } from '../src/node/embed/backbone.js';
import { embedFolder } from '../src/node/embed/embed-folder.js';
import { trainHead } from '../src/node/train-head.js';
import { fineTuneHead, adaptedBackboneOptions } from '../src/node/fine-tune.js';
import { heldOutMetrics } from '../src/core/heads/metrics.js';
import { Head } from '../src/core/heads/head.js';
import type { FineTuneReport } from '../src/core/heads/fine-tune-head.js';
import { findLastBlock } from '../src/core/models/last-block.js';
import { cutPixels, cutSurgery } from '../src/core/models/last-block-graph.js';
import { parseOnnxModel } from '../src/core/models/onnx-model.js';
import { tensorDims } from '../src/core/preprocess/tensor.js';
import { gemmModels } from '../src/core/heads/dense-math-graph.js';
import { readFile } from 'node:fs/promises';

type WebModule = typeof import('../src/web/index.js');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backbone: { type: 'string', default: 'mobilenetv2-12-int8' },
    epochs: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const [trainDir, valDir] = positionals;
if (!trainDir || !valDir) {
  console.error('usage: web-fine-tune.ts <train-dir> <val-dir> [--backbone id] [--epochs N] [--json]');
  process.exit(2);
}
const skip = chromiumSkip();
if (skip) {
  console.error(skip);
  process.exit(2);
}
const log = (line: string) => process.stderr.write(line + '\n');
const loadAtStart = loadavg()[0];
const settings = values.epochs ? { epochs: Number(values.epochs) } : {};

const backbone = await Backbone.load(values.backbone!, { ep: 'cpu' });
const train = await embedFolder(backbone, trainDir);
const val = await embedFolder(backbone, valDir);
const paths = train.items.map((i) => i.path);
const labels = train.items.map((i) => i.label!);
const frozen = await trainHead(train.embeddings, labels, {
  classes: train.classes!,
  backbone: {
    id: backbone.id,
    sha256: backbone.sha256,
    embeddingDim: backbone.embeddingDim,
    preprocess: backbone.preprocess,
  },
});
const frozenJson = frozen.serialize();
const valLabels = val.items.map((i) => i.label!);
const valAccuracy = async (head: Head): Promise<number> => {
  let embeddings = val.embeddings;
  if (head.adaptedBlock) {
    const adapted = await Backbone.load(values.backbone!, { ep: 'cpu', ...adaptedBackboneOptions(head) });
    embeddings = (await embedFolder(adapted, valDir, { useCache: false })).embeddings;
    await adapted.close();
  }
  return heldOutMetrics(
    head.logits(embeddings, valLabels.length),
    valLabels.map((l) => head.labels.indexOf(l)),
    head.labels.length,
    head.temperature,
  ).accuracy;
};

// Node
log(`node: fineTuneHead on ${paths.length} images`);
const t = performance.now();
const node = await fineTuneHead({
  backbone,
  paths,
  labels,
  frozen: Head.parse(frozenJson),
  useCache: false,
  ...settings,
});
const nodeSeconds = (performance.now() - t) / 1000;
log(`  ${node.report.reason} (${nodeSeconds.toFixed(1)} s)`);

// Node's activations, for the worker alone
const model = parseOnnxModel(await readFile(backbone.modelPath));
const block = findLastBlock(model);
const pixels = cutPixels(model, block, backbone.facts.inputs[0]?.name ?? '', tensorDims(backbone.preprocess, 1));
const cut = await Backbone.load(backbone.modelPath, { ep: 'cpu', surgery: cutSurgery(pixels) });
const activations = (await cut.embedMany(paths, { strict: true, useCache: false })).embeddings;
await cut.close();
const dir = await mkdtemp(join(tmpdir(), 'edgetl-web-fine-tune-'));
const activationFile = join(dir, 'activations.f32');
await writeFile(activationFile, new Uint8Array(activations.buffer, activations.byteOffset, activations.byteLength));

const { server } = await startServer(backbone.modelPath);
const browser = await launchChromium('wasm');
type PageResult = { report: FineTuneReport; json: string; seconds: number };
let web: { endToEnd: PageResult; workerJs: PageResult; workerOrt: PageResult };
try {
  await openTestPage(browser.page, server, [backbone.modelPath, activationFile, ...paths]);
  log('browser: fineTuneInWorker (images), then fineTuneActivationsInWorker (Node activations)');
  web = await browser.page.evaluate(
    async ({ count, labels, frozenJson, spec, id, settings, job, gemm }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      const images = await Promise.all(
        Array.from({ length: count }, (_, i) => fetch(`/test/file/${i + 2}`).then((r) => r.blob())),
      );
      const started = performance.now();
      const endToEnd = await web.fineTuneInWorker(
        {
          model: '/test/file/0',
          id,
          preprocess: spec,
          ep: 'wasm',
          wasmPaths: '/ort/',
          images,
          labels,
          frozen: web.Head.parse(frozenJson),
          settings,
        },
        { workerUrl: '/worker.js' },
      );
      const endToEndSeconds = (performance.now() - started) / 1000;
      const bytes = await (await fetch('/test/file/1')).arrayBuffer();
      const gemmModels = Object.fromEntries(Object.entries(gemm).map(([key, bytes]) => [key, new Uint8Array(bytes)]));
      const workerOnly = async (math?: {
        moduleUrl: string;
        wasmPaths: string;
        models: Record<string, Uint8Array>;
      }) => {
        const started = performance.now();
        const run = await web.fineTuneActivationsInWorker(
          {
            ...job,
            activations: new Float32Array(bytes.slice(0)),
            targets: new Int32Array(job.targets),
            groups: new Int32Array(job.groups),
            block: { ...job.block, weight: new Float32Array(job.block.weight), bias: new Float32Array(job.block.bias) },
            frozenJson,
            settings,
            activationSeconds: 0,
            math,
          },
          { workerUrl: '/worker.js', transfer: true },
        );
        return { report: run.report, json: run.head.json, seconds: (performance.now() - started) / 1000 };
      };
      const workerJs = await workerOnly();
      const workerOrt = await workerOnly({
        moduleUrl: new URL('/ort/ort.min.mjs', location.href).href,
        wasmPaths: '/ort/',
        models: gemmModels,
      });
      return {
        endToEnd: { report: endToEnd.report, json: endToEnd.head.json, seconds: endToEndSeconds },
        workerJs,
        workerOrt,
      };
    },
    {
      count: paths.length,
      labels,
      frozenJson,
      spec: backbone.preprocess,
      id: backbone.id,
      settings,
      gemm: Object.fromEntries(Object.entries(gemmModels()).map(([key, bytes]) => [key, Array.from(bytes)])),
      job: {
        pixels,
        channels: block.inputChannels,
        targets: labels.map((l) => frozen.labels.indexOf(l)),
        groups: labels.map((_, i) => i),
        block: {
          description: block.description,
          cutTensor: block.cutTensor,
          inputChannels: block.inputChannels,
          outputChannels: block.outputChannels,
          activation: block.activation,
          weight: Array.from(block.weight),
          bias: Array.from(block.bias),
        },
      },
    },
  );
} finally {
  await browser.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}

const summary = (name: string, report: FineTuneReport, seconds: number, accuracy: number) => ({
  name,
  outcome: report.outcome,
  chosenEpochs: report.chosenEpochs,
  epochs: report.epochs,
  valAccuracy: accuracy,
  seconds,
  activationSeconds: report.activationSeconds,
  trainSeconds: report.trainSeconds,
  reason: report.reason,
  denseMath: report.denseMath,
});
const rows = [
  summary('node fineTuneHead (onnxruntime-node)', node.report, nodeSeconds, await valAccuracy(node.head)),
  summary(
    'browser fineTuneInWorker (onnxruntime-web WASM, worker products on onnxruntime-web)',
    web.endToEnd.report,
    web.endToEnd.seconds,
    await valAccuracy(Head.parse(web.endToEnd.json)),
  ),
  summary(
    "browser worker on Node's activations, plain-JS products",
    web.workerJs.report,
    web.workerJs.seconds,
    await valAccuracy(Head.parse(web.workerJs.json)),
  ),
  summary(
    "browser worker on Node's activations, onnxruntime-web products",
    web.workerOrt.report,
    web.workerOrt.seconds,
    await valAccuracy(Head.parse(web.workerOrt.json)),
  ),
];
await backbone.close();
const result = {
  backbone: values.backbone,
  train: trainDir,
  val: valDir,
  trainImages: paths.length,
  valImages: valLabels.length,
  frozenValAccuracy: await valAccuracy(frozen),
  runs: rows,
  host: {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg()[0],
  },
};
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`${values.backbone}: ${trainDir} (${paths.length}) -> ${valDir} (${valLabels.length})`);
  console.log(`  frozen val ${(100 * result.frozenValAccuracy).toFixed(2)}%`);
  for (const r of rows)
    console.log(
      `  ${r.name}: ${r.outcome} (${r.chosenEpochs} epochs), val ${(100 * r.valAccuracy).toFixed(2)}%, ${r.seconds.toFixed(1)} s (activations ${r.activationSeconds.toFixed(1)} s, training ${r.trainSeconds.toFixed(1)} s)`,
    );
  console.log(`  load average ${loadAtStart.toFixed(1)} -> ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`);
}
