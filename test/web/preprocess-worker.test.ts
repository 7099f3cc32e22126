/**
 * Preprocessing in the Web Worker gives the very tensors the page's main thread gives, and (where both decoders are
 * lossless) the very tensors Node gives: moving the work off the page changes where it runs, never a value. A worker
 * that cannot start leaves the work to the page, saying why.
 */
import t, { type Test } from 'tap';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { sharedPath, smallBackbone } from '../helpers/shared.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { openTestPage, startServer } from './harness.js';
import { imageToTensor } from '../../src/node/preprocess/node-image.js';

type WebModule = typeof import('../../src/web/index.js');

const small = smallBackbone();
const photos = sharedPath('datasets/hymenoptera/val');

/** A deterministic picture with edges, gradients and noise (so every resize tap matters), as a PNG file. */
async function writePng(dir: string, name: string, width: number, height: number, alpha: boolean): Promise<string> {
  const channels = alpha ? 4 : 3;
  const pixels = Buffer.alloc(width * height * channels);
  let seed = width * 31 + height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const noise = (seed >> 16) & 31;
      const at = (y * width + x) * channels;
      pixels[at] = ((x * 255) / width + noise) & 255;
      pixels[at + 1] = (((x >> 4) + (y >> 4)) & 1 ? 220 : 30) + (noise >> 2);
      pixels[at + 2] = ((y * 255) / height) ^ noise;
      if (alpha) pixels[at + 3] = (x * 7 + y * 3) & 255;
    }
  }
  const path = join(dir, name);
  await sharp(pixels, { raw: { width, height, channels } }).png().toFile(path);
  return path;
}

/** The kiosk server on the small backbone, a fresh Chromium, and a scratch folder, all gone when `t` ends. */
async function setUp(t: Test, options: { fakeCamera?: boolean } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-preprocess-worker-'));
  const { server, backbone } = await startServer(small.path);
  const browser = await launchChromium('wasm', options);
  t.teardown(async () => {
    await browser.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, server, backbone, browser };
}

t.test('the preprocessing worker gives the main thread’s tensors, and Node’s', { skip: chromiumSkip() }, async (t) => {
  const { dir, server, backbone, browser } = await setUp(t);
  const spec = backbone.preprocess;
  // Opaque PNGs: lossless on both sides, so the browser's tensors must equal sharp + the Pillow port's bit for bit.
  const opaque = [
    await writePng(dir, 'down.png', 500, 375, false),
    await writePng(dir, 'up.png', 97, 61, false),
    await writePng(dir, 'tall.png', 600, 1400, false),
  ];
  // Alpha is composited over white by the canvas (page or worker alike) and by sharp's flatten: compared page-worker.
  const withAlpha = [await writePng(dir, 'alpha.png', 320, 200, true)];
  const jpegs = photos.path
    ? readdirSync(join(photos.path, 'bees'))
        .sort()
        .slice(0, 3)
        .map((f) => join(photos.path!, 'bees', f))
    : [];
  if (!jpegs.length) t.comment(`no real photos: ${photos.skip}`);
  const files = [...opaque, ...withAlpha, ...jpegs];
  await openTestPage(browser.page, server, files);

  const result = await browser.page.evaluate(
    async ({ count, spec }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      const worker = await web.PreprocessWorker.start('/preprocess-worker.js');
      const differing = (a: Float32Array, b: Float32Array) => {
        if (a.length !== b.length) return -1;
        const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
        const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
        let n = 0;
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
        return n;
      };
      const base64 = (a: Float32Array) => {
        const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
        let text = '';
        for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(text);
      };
      const images = [];
      for (let i = 0; i < count; i++) {
        const blob = await (await fetch(`/test/file/${i}`)).blob();
        const fromBlob = await worker.imageToTensor(blob, spec);
        const onPage = await web.imageToTensor(blob, spec);
        // The sources a kiosk hands over besides files: an <img>, a canvas (a camera frame drawn), an ImageBitmap.
        const img = new Image();
        img.src = URL.createObjectURL(blob);
        await img.decode();
        const bitmap = await createImageBitmap(blob);
        const canvas = document.createElement('canvas');
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
        canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
        const sources = { img, canvas, bitmap } as const;
        const others: Record<string, number> = {};
        for (const [name, source] of Object.entries(sources))
          others[name] = differing(
            (await worker.imageToTensor(source, spec)).tensor,
            await web.imageToTensor(source, spec),
          );
        images.push({
          blob: differing(fromBlob.tensor, onPage),
          others,
          bitmapStillUsable: bitmap.width > 0,
          mainThreadMs: fromBlob.mainThreadMs,
          workerMs: fromBlob.workerMs,
          tensor: base64(fromBlob.tensor),
        });
        bitmap.close();
      }
      // A file that is no image fails as that file's error; the worker goes on working.
      let badImage: { code?: string; message: string } | undefined;
      try {
        await worker.imageToTensor(new File([new Uint8Array([1, 2, 3])], 'notes.jpg'), spec);
      } catch (error) {
        badImage = { code: (error as { code?: string }).code, message: (error as Error).message };
      }
      const after = await worker.imageToTensor(await (await fetch('/test/file/0')).blob(), spec);
      worker.close();
      return { images, badImage, afterBad: base64(after.tensor), resize: worker.resize };
    },
    { count: files.length, spec },
  );

  t.equal(result.resize, 'wasm-simd', 'the worker runs the WebAssembly SIMD resize');
  for (let i = 0; i < files.length; i++) {
    const name = files[i];
    const image = result.images[i];
    t.equal(image.blob, 0, `${name}: the worker's tensor equals the main thread's, bit for bit (from the file)`);
    t.same(image.others, { img: 0, canvas: 0, bitmap: 0 }, `${name}: also from an <img>, a canvas and an ImageBitmap`);
    t.ok(image.bitmapStillUsable, 'the caller keeps its own ImageBitmap');
    t.ok(image.mainThreadMs >= 0 && image.workerMs > 0, 'the timings are reported');
  }
  for (let i = 0; i < opaque.length; i++) {
    const worker = new Float32Array(Buffer.from(result.images[i].tensor, 'base64').buffer.slice(0));
    const node = await imageToTensor(opaque[i], spec);
    let differing = 0;
    for (let k = 0; k < node.length; k++) if (!Object.is(node[k], worker[k])) differing++;
    t.equal(worker.length, node.length, `${opaque[i]}: one image's tensor`);
    t.equal(differing, 0, `${opaque[i]}: the worker's tensor equals Node's (sharp + Pillow port), bit for bit`);
  }
  // JPEGs: Chromium and libvips both decode with libjpeg-turbo, so the tensors match as the pixels do in
  // browser-vs-node.test.ts (equal here; within one level allowed, in case a build decodes differently).
  const level = Math.max(...spec.std.map((std) => spec.scale / std));
  for (let j = 0; j < jpegs.length; j++) {
    const i = opaque.length + withAlpha.length + j;
    const worker = new Float32Array(Buffer.from(result.images[i].tensor, 'base64').buffer.slice(0));
    const node = await imageToTensor(jpegs[j], spec);
    let differing = 0;
    let worst = 0;
    for (let k = 0; k < node.length; k++) {
      if (!Object.is(node[k], worker[k])) differing++;
      worst = Math.max(worst, Math.abs(node[k] - worker[k]));
    }
    t.ok(
      worst <= level * 1.0001,
      `${jpegs[j]}: the worker's tensor matches Node's (${differing} of ${node.length} values differ, by at most ${(worst / level).toFixed(2)} levels)`,
    );
  }
  t.equal(result.badImage?.code, 'bad-image', 'a file that is no image is refused as a bad image');
  t.match(result.badImage?.message, /notes\.jpg/, 'naming the file');
  t.equal(result.afterBad, result.images[0].tensor, 'and the worker keeps working afterwards');
});

t.test(
  'WebBackbone preprocesses in the worker, with the same embeddings, and falls back saying why',
  {
    skip: chromiumSkip(),
  },
  async (t) => {
    const { dir, server, backbone, browser } = await setUp(t);
    const files = [await writePng(dir, 'a.png', 400, 300, false), await writePng(dir, 'b.png', 240, 320, false)];
    await openTestPage(browser.page, server, files);
    const result = await browser.page.evaluate(
      async ({ count, spec, modelUrl, id, sha256 }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const warnings: string[] = [];
        const warn = console.warn;
        console.warn = (...args: unknown[]) => {
          warnings.push(args.join(' '));
          warn(...args);
        };
        const load = (preprocessWorker?: string) =>
          web.WebBackbone.load({
            model: modelUrl,
            id,
            sha256,
            preprocess: spec,
            ep: 'wasm',
            wasmPaths: '/ort/',
            preprocessWorker,
          });
        const inWorker = await load('/preprocess-worker.js');
        const onPage = await load();
        const missing = await load('/no-such-worker.js');
        const blobs: Blob[] = [];
        for (let i = 0; i < count; i++) blobs.push(await (await fetch(`/test/file/${i}`)).blob());
        const same: boolean[] = [];
        for (const blob of blobs) {
          const a = await inWorker.embed(blob);
          const b = await onPage.embed(blob);
          const c = await missing.embed(blob);
          same.push(a.every((v, i) => Object.is(v, b[i]) && Object.is(v, c[i])));
        }
        const many = await inWorker.embedMany(blobs);
        const manyOnPage = await onPage.embedMany(blobs);
        const report = {
          inWorker: inWorker.preprocessing,
          onPage: onPage.preprocessing,
          missing: missing.preprocessing,
          timings: inWorker.lastTimings,
        };
        await inWorker.close();
        const afterClose = inWorker.preprocessing;
        await onPage.close();
        await missing.close();
        console.warn = warn;
        return {
          same,
          manySame: many.every((v, i) => Object.is(v, manyOnPage[i])),
          report,
          afterClose,
          warnings,
        };
      },
      {
        count: files.length,
        spec: backbone.preprocess,
        modelUrl: `/models/${backbone.id}.features.onnx`,
        id: backbone.id,
        sha256: backbone.sha256,
      },
    );
    t.same(result.report.inWorker, { where: 'worker', resize: 'wasm-simd' }, 'asked for, the worker preprocesses');
    t.equal(result.report.onPage.where, 'main-thread', 'not asked for, the page does');
    t.match(result.report.onPage.reason, /no preprocessing worker/, 'and says so');
    t.equal(result.report.missing.where, 'main-thread', 'a worker script that does not load leaves it to the page');
    t.match(
      result.report.missing.reason,
      /did not start|could not load/,
      `saying why (${result.report.missing.reason})`,
    );
    t.ok(
      result.warnings.some((w) => /preprocessing runs on the main thread/.test(w)),
      'and warning on the console',
    );
    t.same(result.same, [true, true], 'embed gives identical embeddings wherever preprocessing ran');
    t.ok(result.manySame, 'so does embedMany');
    t.ok(
      result.report.timings && result.report.timings.preprocessCallerMs <= result.report.timings.preprocessMs,
      'the page’s share of preprocessing is part of the preprocessing time',
    );
    t.equal(result.afterClose.where, 'main-thread', 'after close the worker is gone');
  },
);

t.test('a camera frame gives the same tensor in the worker as on the page', { skip: chromiumSkip() }, async (t) => {
  const { server, backbone, browser } = await setUp(t, { fakeCamera: true });
  await browser.context.grantPermissions(['camera'], { origin: server.url.replace(/\/$/, '') });
  await openTestPage(browser.page, server, []);
  const result = await browser.page.evaluate(
    async ({ spec }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      const worker = await web.PreprocessWorker.start('/preprocess-worker.js');
      const video = document.createElement('video');
      video.muted = true;
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
      await video.play();
      await new Promise((resolve) => video.requestVideoFrameCallback(resolve));
      // A paused video holds one frame, so page and worker see the same pixels.
      video.pause();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const differing = (a: Float32Array, b: Float32Array) => {
        const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
        const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
        let n = a.length === b.length ? 0 : -1;
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
        return n;
      };
      const onPage = await web.imageToTensor(video, spec);
      const fromVideo = await worker.imageToTensor(video, spec);
      const frame = new VideoFrame(video);
      const fromFrame = await worker.imageToTensor(frame, spec);
      const frameKept = frame.codedWidth > 0;
      frame.close();
      let spread = 0;
      for (let i = 1; i < onPage.length; i++) spread = Math.max(spread, Math.abs(onPage[i] - onPage[0]));
      for (const track of (video.srcObject as MediaStream).getTracks()) track.stop();
      worker.close();
      return {
        video: differing(fromVideo.tensor, onPage),
        frame: differing(fromFrame.tensor, onPage),
        frameKept,
        spread,
        size: `${video.videoWidth}x${video.videoHeight}`,
      };
    },
    { spec: backbone.preprocess },
  );
  t.ok(result.spread > 0.5, `the frame has content (${result.size})`);
  t.equal(result.video, 0, 'a <video> preprocessed in the worker gives the page’s tensor, bit for bit');
  t.equal(result.frame, 0, 'so does a VideoFrame of it');
  t.ok(result.frameKept, 'and the caller keeps its own VideoFrame');
});

t.test(
  'without OffscreenCanvas the page preprocesses itself, says why, and gives Node’s tensor',
  {
    skip: chromiumSkip(),
  },
  async (t) => {
    const { dir, server, backbone, browser } = await setUp(t);
    const png = await writePng(dir, 'old-browser.png', 330, 250, false);
    // A browser from before OffscreenCanvas (Safari before 16.4): the page's globals as such a browser has them.
    await browser.page.addInitScript(() => {
      Reflect.deleteProperty(globalThis, 'OffscreenCanvas');
    });
    await openTestPage(browser.page, server, [png]);
    const result = await browser.page.evaluate(
      async ({ spec, modelUrl, id, sha256 }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const backbone = await web.WebBackbone.load({
          model: modelUrl,
          id,
          sha256,
          preprocess: spec,
          ep: 'wasm',
          wasmPaths: '/ort/',
          preprocessWorker: '/preprocess-worker.js',
        });
        const blob = await (await fetch('/test/file/0')).blob();
        const tensor = await web.imageToTensor(blob, spec);
        await backbone.embed(blob);
        const report = backbone.preprocessing;
        await backbone.close();
        return { offscreen: typeof OffscreenCanvas, report, tensor: Array.from(tensor) };
      },
      {
        spec: backbone.preprocess,
        modelUrl: `/models/${backbone.id}.features.onnx`,
        id: backbone.id,
        sha256: backbone.sha256,
      },
    );
    t.equal(result.offscreen, 'undefined', 'the page has no OffscreenCanvas');
    t.same(
      result.report,
      { where: 'main-thread', resize: 'wasm-simd', reason: 'this browser has no OffscreenCanvas' },
      'preprocessing stays on the page, saying why',
    );
    const node = await imageToTensor(png, backbone.preprocess);
    t.same(result.tensor, Array.from(node), 'a page canvas stands in for OffscreenCanvas, with Node’s tensor');
  },
);

t.test('a worker that dies mid-way leaves the rest to the page, saying why', { skip: chromiumSkip() }, async (t) => {
  const { dir, server, backbone, browser } = await setUp(t);
  const png = await writePng(dir, 'after-crash.png', 300, 200, false);
  await openTestPage(browser.page, server, [png]);
  const result = await browser.page.evaluate(
    async ({ spec, modelUrl, id, sha256 }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      // Greets like the real worker, then throws on the first image: an uncaught error in the worker.
      const crashing = URL.createObjectURL(
        new Blob(
          [
            `self.onmessage = (e) => {
              if (e.data.kind === 'hello') self.postMessage({ kind: 'hello', id: e.data.id, offscreenCanvas: true, resize: 'wasm-simd' });
              else throw new Error('simulated crash');
            };`,
          ],
          { type: 'text/javascript' },
        ),
      );
      const blob = await (await fetch('/test/file/0')).blob();
      const worker = await web.PreprocessWorker.start(crashing);
      let direct: { code?: string; message: string } | undefined;
      try {
        await worker.imageToTensor(blob, spec);
      } catch (error) {
        direct = { code: (error as { code?: string }).code, message: (error as Error).message };
      }
      const backbone = await web.WebBackbone.load({
        model: modelUrl,
        id,
        sha256,
        preprocess: spec,
        ep: 'wasm',
        wasmPaths: '/ort/',
        preprocessWorker: crashing,
      });
      const before = backbone.preprocessing;
      const embedding = await backbone.embed(blob);
      const after = backbone.preprocessing;
      const again = await backbone.embed(blob);
      await backbone.close();
      return {
        direct,
        failed: worker.failed,
        before,
        after,
        same: embedding.length > 0 && embedding.every((v, i) => Object.is(v, again[i])),
      };
    },
    {
      spec: backbone.preprocess,
      modelUrl: `/models/${backbone.id}.features.onnx`,
      id: backbone.id,
      sha256: backbone.sha256,
    },
  );
  t.equal(result.direct?.code, 'worker', 'the image in flight fails as a worker failure');
  t.match(result.direct?.message, /preprocessing worker stopped: .*simulated crash/, 'with the worker’s own error');
  t.match(result.failed, /simulated crash/, 'and the worker says it has stopped');
  t.equal(result.before.where, 'worker', 'the backbone starts on the worker');
  t.equal(result.after.where, 'main-thread', 'once it dies, the page preprocesses');
  t.match(result.after.reason, /stopped: .*simulated crash/, 'saying why');
  t.ok(result.same, 'and embed still answers, the same as on the next call');
});
