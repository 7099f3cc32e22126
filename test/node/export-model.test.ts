/**
 * `edgetl export` end to end: the merged file, its sidecar, and the merged model run back through edgetl's own
 * pipeline (`Backbone.load(app.onnx, { embeddingTensor: 'probabilities' })`, what `edgetl embed --backbone app.onnx
 * --embedding probabilities` does) and through plain onnxruntime-node, against `edgetl predict`'s Classifier.
 * The tiny generated backbone always; MobileNetV2-int8 on hymenoptera/val when ../shared is present.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { Backbone } from '../../src/node/embed/backbone.js';
import { Classifier } from '../../src/node/classifier.js';
import { scanImageFolder } from '../../src/node/embed/dataset.js';
import { loadHead, saveHead } from '../../src/node/head-io.js';
import { trainHead } from '../../src/node/train-head.js';
import { exportMergedModel } from '../../src/node/export-model.js';
import { parseOnnxModel } from '../../src/core/models/onnx-model.js';
import { MERGED_METADATA } from '../../src/core/models/merged-model.js';
import { imageToTensor } from '../../src/node/preprocess/node-image.js';
import { tensorDims, tensorElementsPerImage } from '../../src/core/preprocess/tensor.js';
import { exportCommand } from '../../src/node/cli/export.js';
import { embedCommand } from '../../src/node/cli/embed.js';
import { trainCommand } from '../../src/node/cli/train.js';
import { readEmbeddingSet } from '../../src/node/embed/embedding-set.js';
import { colourFolder, run, workspace } from './cli/head-fixtures.js';
import { sharedModel, sharedPath } from '../helpers/shared.js';

interface Agreement {
  images: number;
  argmaxDiffers: number;
  maxDifference: number;
}

/** The merged model through edgetl's pipeline against the Classifier (what `edgetl predict` runs). */
async function compareWithPredict(
  merged: string,
  backboneId: string,
  headPath: string,
  images: string[],
  cacheDir: string,
): Promise<Agreement> {
  const classifier = await Classifier.load({ backbone: backboneId, head: headPath, ep: 'cpu', cacheDir });
  const { predictions } = await classifier.classifyMany(images, { topK: classifier.labels.length, strict: true });
  await classifier.close();
  const app = await Backbone.load(merged, { ep: 'cpu', embeddingTensor: 'probabilities', cacheDir });
  const result = await app.embedMany(images, { strict: true });
  await app.close();
  const classes = classifier.labels.length;
  let argmaxDiffers = 0;
  let maxDifference = 0;
  predictions.forEach((p, i) => {
    const row = result.embeddings.subarray(i * classes, (i + 1) * classes);
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    if (best !== p.index) argmaxDiffers++;
    for (const k of p.topK)
      maxDifference = Math.max(maxDifference, Math.abs(row[classifier.labels.indexOf(k.label)] - k.score));
  });
  return { images: predictions.length, argmaxDiffers, maxDifference };
}

/** The merged model in plain onnxruntime-node (only the pixels come from edgetl's preprocessing). */
async function plainProbabilities(merged: string, images: string[]): Promise<Float32Array[]> {
  const sidecar = JSON.parse(readFileSync(merged.replace(/\.onnx$/, '.edgetl.json'), 'utf8'));
  const session = await ort.InferenceSession.create(merged);
  const out: Float32Array[] = [];
  for (const image of images) {
    const input = new Float32Array(tensorElementsPerImage(sidecar.preprocess));
    await imageToTensor(image, sidecar.preprocess, { out: input });
    const result = await session.run({
      [session.inputNames[0]]: new ort.Tensor('float32', input, tensorDims(sidecar.preprocess, 1)),
    });
    out.push(result.probabilities.data as Float32Array);
  }
  await session.release();
  return out;
}

t.test(
  'edgetl export on the tiny backbone: files, metadata, and agreement with predict through edgetl and plain onnxruntime',
  async (t) => {
    const ws = await workspace(t, 'export');
    const train = await colourFolder(ws.root, 'train', { red: 8, green: 8, blue: 8 }, 1);
    const headPath = join(ws.root, 'head.json');
    await run(trainCommand, [
      train,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--out',
      headPath,
      '--head',
      'mlp',
      '--json',
    ]);
    const out = join(ws.root, 'app.onnx');
    const result = await run(exportCommand, [headPath, '--backbone', ws.model, '--out', out, '--json']);
    t.equal(result.error, undefined, result.error?.message ?? '');
    const report = JSON.parse(result.stdout);
    t.equal(report.path, out);
    t.equal(report.sidecar, join(ws.root, 'app.edgetl.json'));
    t.same(report.labels, ['blue', 'green', 'red']);
    t.ok(report.check.maxDifference <= 1e-3, `the export's own check passed (${report.check.maxDifference})`);
    t.ok(existsSync(out) && existsSync(report.sidecar));
    const sidecar = JSON.parse(readFileSync(report.sidecar, 'utf8'));
    t.same(sidecar.embedding, { tensor: 'embedding', dim: 3 });
    t.same(sidecar.labels, ['blue', 'green', 'red'], 'the labels in probability order');
    t.equal(sidecar.preprocess.width, 8);
    const props = Object.fromEntries(
      (parseOnnxModel(readFileSync(out)).metadataProps ?? []).map((p) => [p.key, p.value]),
    );
    t.same(JSON.parse(props[MERGED_METADATA.labels]!), ['blue', 'green', 'red']);

    const images = (
      await scanImageFolder(await colourFolder(ws.root, 'new', { red: 3, green: 3, blue: 3 }, 7))
    ).items.map((i) => i.path);
    const agreement = await compareWithPredict(out, ws.model, headPath, images, join(ws.root, 'cache'));
    t.equal(agreement.images, 9);
    t.equal(agreement.argmaxDiffers, 0, 'the same class for every image');
    t.ok(agreement.maxDifference <= 2e-3, `probabilities within 2e-3 of predict (max ${agreement.maxDifference})`);
    const head = await loadHead(headPath);
    const backbone = await Backbone.load(ws.model, { ep: 'cpu', cache: false });
    const expected = head.probabilities((await backbone.embedMany(images)).embeddings);
    await backbone.close();
    const plain = await plainProbabilities(out, images);
    const worst = Math.max(...plain.flatMap((row, i) => Array.from(row, (v, c) => Math.abs(v - expected[i * 3 + c]))));
    t.ok(worst <= 2e-3, `plain onnxruntime-node agrees within 2e-3 (max ${worst})`);

    // `edgetl embed --backbone app.onnx --embedding probabilities`: the sidecar gives the preprocessing.
    const embedded = await run(embedCommand, [
      join(ws.root, 'new'),
      '--backbone',
      out,
      '--embedding',
      'probabilities',
      '--ep',
      'cpu',
      '--out',
      join(ws.root, 'probs'),
      '--json',
    ]);
    t.equal(embedded.error, undefined, embedded.error?.message ?? '');
    const set = await readEmbeddingSet(join(ws.root, 'probs'));
    t.equal(set.dim, 3, 'one probability per class');
    for (let r = 0; r < set.items.length; r++) {
      const sum = set.embeddings.subarray(r * 3, r * 3 + 3).reduce((a, b) => a + b, 0);
      t.ok(Math.abs(sum - 1) < 1e-5, `row ${r} sums to 1`);
    }
  },
);

t.test('edgetl export refuses another backbone than the head was trained on, and a folder as --out', async (t) => {
  const ws = await workspace(t, 'export-refuse');
  const train = await colourFolder(ws.root, 'train', { red: 4, blue: 4 }, 2);
  const headPath = join(ws.root, 'head.json');
  await run(trainCommand, [train, '--backbone', ws.model, '--ep', 'cpu', '--out', headPath, '--json']);
  const mismatch = await run(exportCommand, [
    headPath,
    '--backbone',
    ws.otherModel,
    '--out',
    join(ws.root, 'app.onnx'),
  ]);
  t.match(mismatch.error?.message, /head was trained on backbone tiny .* but tiny-other .* was given/);
  t.notOk(existsSync(join(ws.root, 'app.onnx')), 'nothing written');
  await mkdir(join(ws.root, 'folder'));
  const folder = await run(exportCommand, [headPath, '--backbone', ws.model, '--out', join(ws.root, 'folder')]);
  t.match(folder.error?.message, /is a folder/);
  const missing = await run(exportCommand, [headPath]);
  t.match(missing.error?.message, /missing --out/);
});

const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');
const hymenoptera = sharedPath('datasets/hymenoptera');

t.test(
  'MobileNetV2-int8 on hymenoptera/val: the merged model agrees with predict on every photo',
  { skip: mobilenet.skip || hymenoptera.skip },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgetl-export-hymenoptera-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const cacheDir = join(dir, 'cache');
    const trainScan = await scanImageFolder(join(hymenoptera.path!, 'train'));
    const backbone = await Backbone.load(mobilenet.path!, { ep: 'cpu', cacheDir });
    const embedded = await backbone.embedMany(
      trainScan.items.map((i) => i.path),
      { strict: true },
    );
    const ref = {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    };
    await backbone.close();
    const labels = trainScan.items.map((i) => i.label!);
    const valImages = (await scanImageFolder(join(hymenoptera.path!, 'val'))).items.map((i) => i.path);
    for (const type of ['linear', 'mlp', 'prototype'] as const) {
      const headPath = join(dir, `${type}.json`);
      await saveHead(
        await trainHead(embedded.embeddings, labels, { backbone: ref, type, mlp: { epochs: 30 } }),
        headPath,
      );
      const out = join(dir, `${type}.onnx`);
      const exported = await exportMergedModel(headPath, { out, searchPath: [join(mobilenet.path!, '..')] });
      t.equal(exported.backbone.id, 'mobilenetv2-12-int8');
      const agreement = await compareWithPredict(out, mobilenet.path!, headPath, valImages, cacheDir);
      t.equal(agreement.images, valImages.length, `${type}: every val photo`);
      t.equal(agreement.argmaxDiffers, 0, `${type}: argmax equal on every val photo`);
      t.ok(
        agreement.maxDifference <= 2e-3,
        `${type}: probabilities within 2e-3 (max ${agreement.maxDifference.toExponential(2)})`,
      );
    }
  },
);
