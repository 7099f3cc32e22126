/**
 * The browser runtime against the Node runtime on the same files: preprocessing (canvas + shared resampler vs sharp),
 * inference (onnxruntime-web WASM vs onnxruntime-node CPU), in-browser surgery, and head files both ways.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedModel, sharedPath } from '../helpers/shared.js';
import { chromiumSkip, launchChromium, type LaunchedBrowser } from './chromium.js';
import { cosine, openTestPage, startServer } from './harness.js';
import { Backbone } from '../../src/node/embed/backbone.js';
import { decodeToRgb, imageToTensor } from '../../src/node/preprocess/node-image.js';
import { Head } from '../../src/core/heads/head.js';
import { trainHead } from '../../src/core/heads/train.js';
import type { KioskServer, ServedBackbone } from '../../src/node/server/kiosk-server.js';

/** The `edgetl/web` bundle as the test page imports it (`/index.js`); types only, nothing is imported here. */
type WebModule = typeof import('../../src/web/index.js');

const fp32 = sharedModel('mobilenet-v1-0.25-224.fp32.onnx');
const int8 = sharedModel('mobilenetv2-12-int8.onnx');
const val = sharedPath('datasets/hymenoptera/val');
const images = sharedPath('images');
const skip = chromiumSkip() || fp32.skip || int8.skip || val.skip || images.skip;

/**
 * Three ants, three bees, and odd ones: a 5-megapixel photo (7.6x reduction), a landscape photo, a small one
 * (enlarged), a painting.
 */
function photos(): { path: string; label: string; big?: boolean }[] {
  const dir = val.path!;
  const pick = (label: string) =>
    readdirSync(join(dir, label))
      .sort()
      .slice(0, 3)
      .map((f) => ({ path: join(dir, label, f), label }));
  const big = readdirSync(join(dir, 'ants'))
    .filter((f) => f.startsWith('ants-devouring'))
    .map((f) => ({ path: join(dir, 'ants', f), label: 'other', big: true }));
  const odd = ['kite.jpg', 'HappyFish.jpg', 'starry_night.jpg'].map((f) => ({
    path: join(images.path!, f),
    label: 'other',
  }));
  return [...pick('ants'), ...pick('bees'), ...big, ...odd];
}

t.test('browser and Node give the same embeddings and heads', { skip }, async (t) => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'edgetl-web-cache-'));
  const list = photos();
  let browser: LaunchedBrowser | undefined;
  let server: KioskServer | undefined;
  t.teardown(async () => {
    await browser?.close();
    await server?.close();
    await rm(cacheDir, { recursive: true, force: true });
  });
  browser = await launchChromium('wasm');
  const page = browser.page;

  t.test(
    'canvas preprocessing matches sharp, and fp32 embeddings match (in-browser surgery, cosine >= 0.99)',
    async (t) => {
      const node = await Backbone.load(fp32.path!, { ep: 'cpu', cache: false, cacheDir });
      t.teardown(() => node.close());
      const started = await startServer(fp32.path!);
      server = started.server;
      await openTestPage(page, server, [fp32.path!, ...list.map((p) => p.path)]);
      const result = await page.evaluate(
        async ({ count, spec }) => {
          const bundle = '/index.js';
          const web = (await import(bundle)) as WebModule;
          // The unmodified classifier: surgery happens here, in the page.
          const backbone = await web.loadBackboneFromClassifier({
            model: '/test/file/0',
            id: 'mobilenet-v1-0.25-224.fp32',
            preprocess: spec,
            ep: 'wasm',
            wasmPaths: '/ort/',
          });
          const embeddings: number[][] = [];
          const pixels: number[][] = [];
          for (let i = 1; i <= count; i++) {
            const blob = await (await fetch(`/test/file/${i}`)).blob();
            embeddings.push(Array.from(await backbone.embed(blob)));
            pixels.push(Array.from((await web.imageToPixels(blob, spec)).pixels));
          }
          return {
            embeddings,
            pixels,
            sha256: backbone.info.sha256,
            dim: backbone.info.embeddingDim,
            used: backbone.provider.used,
          };
        },
        { count: list.length, spec: node.preprocess },
      );
      t.equal(result.used, 'wasm');
      t.equal(result.sha256, node.sha256, 'the browser names the backbone by the same sha256 as Node');
      t.equal(result.dim, node.embeddingDim, 'in-browser surgery finds the same embedding');
      const cosines: number[] = [];
      for (let i = 0; i < list.length; i++) {
        const mine = await decodeToRgb(list[i].path, node.preprocess);
        let sum = 0;
        let worst = 0;
        for (let p = 0; p < mine.width * mine.height; p++) {
          for (let c = 0; c < 3; c++) {
            const d = Math.abs(result.pixels[i][p * 4 + c] - mine.pixels[p * 3 + c]);
            sum += d;
            worst = Math.max(worst, d);
          }
        }
        const meanAbs = sum / (mine.width * mine.height * 3);
        if (list[i].big) {
          // Above 3 MP Node resizes with libvips' linear reduce, which the browser approximates (resample.ts).
          t.ok(
            meanAbs < 0.6 && worst <= 3,
            `${list[i].path}: pixels within 3 levels of sharp's (mean ${meanAbs.toFixed(2)}, max ${worst})`,
          );
        } else {
          // Up to 3 MP both sides run the same Pillow port: only JPEG decoding could differ (both libjpeg-turbo).
          t.ok(
            meanAbs < 0.05 && worst <= 1,
            `${list[i].path}: pixels equal to Node's (mean ${meanAbs.toFixed(3)}, max ${worst}${worst === 0 ? ', bit-exact' : ''})`,
          );
        }
        cosines.push(cosine(result.embeddings[i], await node.embed(list[i].path)));
      }
      t.ok(
        Math.min(...cosines) >= 0.99,
        `cosine browser vs Node >= 0.99 for every photo (min ${Math.min(...cosines).toFixed(4)})`,
      );
      await server.close();
      server = undefined;
    },
  );

  let int8Embeddings: { browser: Float32Array[]; node: Float32Array[]; served: ServedBackbone } | undefined;

  t.test('int8 default backbone: onnxruntime-web WASM equals onnxruntime-node CPU on the same tensor', async (t) => {
    const node = await Backbone.load(int8.path!, { ep: 'cpu', cache: false, cacheDir });
    t.teardown(() => node.close());
    const started = await startServer(int8.path!);
    server = started.server;
    await openTestPage(
      page,
      server,
      list.map((p) => p.path),
    );
    const tensors: number[][] = [];
    const fromTensor: Float32Array[] = [];
    for (const p of list.slice(0, 3)) {
      const tensor = new Float32Array(3 * 224 * 224);
      await imageToTensor(p.path, node.preprocess, { out: tensor });
      tensors.push(Array.from(tensor));
      fromTensor.push(await node.embedTensors(tensor, 1));
    }
    const result = await page.evaluate(
      async ({ count, spec, modelUrl, id, sha256, tensors }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const backbone = await web.WebBackbone.load({
          model: modelUrl,
          id,
          sha256,
          preprocess: spec,
          embeddingOutput: 'embedding',
          ep: 'auto',
          wasmPaths: '/ort/',
        });
        const sameTensor: number[][] = [];
        for (const tensor of tensors)
          sameTensor.push(Array.from(await backbone.embedTensors(new Float32Array(tensor), 1)));
        const files: Blob[] = [];
        for (let i = 0; i < count; i++) files.push(await (await fetch(`/test/file/${i}`)).blob());
        const all = await backbone.embedMany(files);
        const dim = backbone.info.embeddingDim;
        const photos: number[][] = [];
        for (let i = 0; i < count; i++) photos.push(Array.from(all.subarray(i * dim, (i + 1) * dim)));
        return { sameTensor, photos, used: backbone.provider.used };
      },
      {
        count: list.length,
        spec: started.backbone.preprocess,
        modelUrl: `/models/${started.backbone.id}.features.onnx`,
        id: started.backbone.id,
        sha256: started.backbone.sha256,
        tensors,
      },
    );
    t.equal(result.used, 'wasm', 'int8 runs on WASM');
    const same = result.sameTensor.map((e, i) => cosine(e, fromTensor[i]));
    t.ok(Math.min(...same) >= 0.9999, `same tensor: cosine >= 0.9999 (min ${Math.min(...same).toFixed(6)})`);
    const nodePhotos: Float32Array[] = [];
    for (const p of list) nodePhotos.push(await node.embed(p.path));
    const fromPhotos = result.photos.map((e, i) => cosine(e, nodePhotos[i]));
    const exact = fromPhotos.filter((_, i) => !list[i].big);
    const big = fromPhotos.filter((_, i) => list[i].big);
    t.ok(
      Math.min(...exact) >= 0.999,
      `photos up to 3 MP (same pixels): cosine >= 0.999 with int8 (min ${Math.min(...exact).toFixed(5)})`,
    );
    // This int8 graph moves by ~0.02 in cosine when 1% of its input pixels change by one level (its own noise floor):
    // where pixels differ slightly (the libvips path above 3 MP), agreement is bounded by that. README states it.
    t.ok(
      Math.min(...big) >= 0.96,
      `a 5 MP photo (pixels within 2 levels): cosine >= 0.96 with int8 (${big.map((c) => c.toFixed(4)).join(', ')})`,
    );
    int8Embeddings = {
      browser: result.photos.map((e) => Float32Array.from(e)),
      node: nodePhotos,
      served: started.backbone,
    };
  });

  t.test('a head trained in the browser (Web Worker) loads in Node with identical predictions', async (t) => {
    if (!int8Embeddings) return t.fail('needs the int8 embeddings from the test above');
    const { browser: rows, served } = int8Embeddings;
    const labelled = list.map((p, i) => ({ embedding: rows[i], label: p.label })).filter((r) => r.label !== 'other');
    const labels = ['ants', 'bees'];
    const backboneRef = {
      id: served.id,
      sha256: served.sha256,
      embeddingDim: served.embeddingDim,
      preprocess: served.preprocess,
    };
    for (const headType of ['linear', 'mlp', 'prototype'] as const) {
      const fromBrowser = await page.evaluate(
        async ({ rows, targets, labels, headType, backboneRef, probe }) => {
          const bundle = '/index.js';
          const web = (await import(bundle)) as WebModule;
          const dim = rows[0].length;
          const flat = new Float32Array(rows.length * dim);
          rows.forEach((r, i) => flat.set(r, i * dim));
          const progress: number[] = [];
          const head = await web.trainHeadInWorker(
            {
              embeddings: flat,
              dim,
              labels,
              targets: Int32Array.from(targets),
              headType,
              backbone: backboneRef,
              seed: 7,
            },
            { workerUrl: '/worker.js', onProgress: (p) => progress.push(p.fraction) },
          );
          const predictions = probe.map((e) => head.predict(Float32Array.from(e)));
          return { json: head.json, predictions, progress };
        },
        {
          rows: labelled.map((r) => Array.from(r.embedding)),
          targets: labelled.map((r) => labels.indexOf(r.label)),
          labels,
          headType,
          backboneRef,
          probe: rows.map((e) => Array.from(e)),
        },
      );
      t.ok(fromBrowser.progress.length > 0, `${headType}: the worker reported progress`);
      const head = Head.parse(fromBrowser.json, {
        file: `browser-${headType}.json`,
        backbone: { id: served.id, sha256: served.sha256, embeddingDim: served.embeddingDim },
      });
      t.equal(head.type, headType);
      rows.forEach((embedding, i) => {
        const p = head.predict(embedding, { topK: labels.length });
        const b = fromBrowser.predictions[i];
        t.equal(p.rejected ? 'unknown' : p.label, b.label, `${headType}: photo ${i} gets the same label in Node`);
        t.same(p.topK, b.scores, `${headType}: photo ${i} gets identical scores in Node`);
      });
      // The shared code, not a copy: Node training on the same rows with the same seed writes the same weights.
      const nodeHead = await trainHead(
        labelled.map((r) => r.embedding),
        labelled.map((r) => r.label),
        { type: headType, seed: 7, classes: labels, backbone: backboneRef, rejectRate: 0.05 },
      );
      const weights = (json: string) => (JSON.parse(json) as { weights: unknown }).weights;
      t.same(
        weights(nodeHead.serialize()),
        weights(fromBrowser.json),
        `${headType}: Node trains byte-identical weights from the same rows and seed`,
      );
    }
  });

  t.test('a head trained in Node loads in the browser with identical predictions', async (t) => {
    if (!int8Embeddings) return t.fail('needs the int8 embeddings from the test above');
    const { node: rows, served } = int8Embeddings;
    const labelled = list.map((p, i) => ({ embedding: rows[i], label: p.label })).filter((r) => r.label !== 'other');
    for (const type of ['linear', 'prototype'] as const) {
      const head = await trainHead(
        labelled.map((r) => r.embedding),
        labelled.map((r) => r.label),
        {
          type,
          seed: 3,
          backbone: {
            id: served.id,
            sha256: served.sha256,
            embeddingDim: served.embeddingDim,
            preprocess: served.preprocess,
          },
          rejectRate: 0.05,
        },
      );
      const json = head.serialize();
      // Predictions of the file (float16 weights by default), as any runtime that loads it sees them.
      const loaded = Head.parse(json, { file: `node-${type}.json` });
      const inBrowser = await page.evaluate(
        async ({ json, probe, backbone }) => {
          const bundle = '/index.js';
          const web = (await import(bundle)) as WebModule;
          const loaded = web.parseWebHead(json, 'node-head.json');
          web.assertHeadFitsBackbone(loaded, backbone);
          return probe.map((e) => loaded.predict(Float32Array.from(e)));
        },
        {
          json,
          probe: rows.map((e) => Array.from(e)),
          backbone: { id: served.id, sha256: served.sha256, embeddingDim: served.embeddingDim },
        },
      );
      rows.forEach((embedding, i) => {
        const p = loaded.predict(embedding, { topK: loaded.labels.length });
        t.equal(inBrowser[i].label, p.rejected ? 'unknown' : p.label, `${type}: photo ${i} same label in the browser`);
        t.same(inBrowser[i].scores, p.topK, `${type}: photo ${i} identical scores in the browser`);
      });
    }
  });
});
