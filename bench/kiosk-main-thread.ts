/**
 * The kiosk page's main-thread time per image, preprocessing on the page against in the preprocessing Web Worker,
 * in headless Chromium: camera frames (Chromium's fake camera, 640x480, through a <video> as the kiosk reads it) and
 * photos (files, as the kiosk's "Add photos" gets them). Both variants take turns, round after round.
 *
 *   node --import=@tapjs/typescript/import bench/kiosk-main-thread.ts [--rounds 6] [--frames 20] [--photos 30]
 *        [--out bench/results/<date>/kiosk-main-thread.md]
 *
 * Per image, "main thread" is performance.now() around what the page's thread itself runs:
 * - on the page: imageToTensor of the video, or of the photo's ImageBitmap (the photo's decode by createImageBitmap is
 *   done before the timed call and not counted: Chromium decodes it off the main thread either way);
 * - in the worker: PreprocessWorker's own count (creating the frame's ImageBitmap, posting it, taking the tensor).
 * "Longest stall" is the widest gap of a 0 ms MessageChannel loop running on the page meanwhile: what a user feels.
 * Needs chromium (apt-get install chromium) and the hymenoptera photos (EDGETL_DATA_PATH or ../shared).
 */
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { sharedPath, smallBackbone } from '../test/helpers/shared.js';
import { chromiumSkip, launchChromium } from '../test/web/chromium.js';
import { openTestPage, startServer } from '../test/web/harness.js';

type WebModule = typeof import('../src/web/index.js');

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    frames: { type: 'string', default: '20' },
    photos: { type: 'string', default: '30' },
    out: { type: 'string' },
  },
});
const skip = chromiumSkip();
const val = sharedPath('datasets/hymenoptera/val');
if (skip || val.skip) {
  console.error(skip || val.skip);
  process.exit(2);
}
const photoFiles = ['ants', 'bees']
  .flatMap((label) =>
    readdirSync(join(val.path!, label))
      .sort()
      .map((f) => join(val.path!, label, f)),
  )
  .filter((f, i) => i % 5 === 0 && !f.includes('ants-devouring'))
  .slice(0, Number(values.photos));
// The set's one big photo (5 MP): a phone photo's share of main-thread work, above the 3 MP exact-resize limit.
const bigPhoto = readdirSync(join(val.path!, 'ants'))
  .filter((f) => f.startsWith('ants-devouring'))
  .map((f) => join(val.path!, 'ants', f));

const loadStart = loadavg();
const { server, backbone } = await startServer(smallBackbone().path);
const browser = await launchChromium('wasm', { fakeCamera: true });
try {
  await browser.context.grantPermissions(['camera'], { origin: server.url.replace(/\/$/, '') });
  await openTestPage(browser.page, server, [...photoFiles, ...bigPhoto]);
  const samples = await browser.page.evaluate(
    async ({ spec, rounds, frames, photoCount, bigCount }) => {
      const bundle = '/index.js';
      const web = (await import(bundle)) as WebModule;
      const worker = await web.PreprocessWorker.start('/preprocess-worker.js');
      const video = document.createElement('video');
      video.muted = true;
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
      await video.play();
      const photos: File[] = [];
      for (let i = 0; i < photoCount; i++) {
        const blob = await (await fetch(`/test/file/${i}`)).blob();
        photos.push(new File([blob], `photo-${i}.jpg`, { type: blob.type }));
      }
      const big: File[] = [];
      for (let i = photoCount; i < photoCount + bigCount; i++) {
        const blob = await (await fetch(`/test/file/${i}`)).blob();
        big.push(new File([blob], `big-${i}.jpg`, { type: blob.type }));
      }
      const nextFrame = () => new Promise<void>((resolve) => video.requestVideoFrameCallback(() => resolve()));

      type Sample = { mainMs: number; totalMs: number };
      const out: Record<string, { samples: Sample[]; stalls: number[] }> = {};
      const record = (key: string) => (out[key] ??= { samples: [], stalls: [] });

      /** Runs `work` while a 0 ms MessageChannel loop measures the page's widest gap. */
      const withStallProbe = async (work: () => Promise<void>): Promise<number> => {
        const channel = new MessageChannel();
        let last = performance.now();
        let widest = 0;
        let running = true;
        let stopped: (() => void) | undefined;
        channel.port1.onmessage = () => {
          const now = performance.now();
          widest = Math.max(widest, now - last);
          last = now;
          if (running) channel.port2.postMessage(0);
          else stopped?.();
        };
        channel.port2.postMessage(0);
        await work();
        // One more turn of the loop, so a stall at the very end of the work is counted too.
        await new Promise<void>((resolve) => {
          stopped = resolve;
          running = false;
        });
        channel.port1.close();
        return widest;
      };

      const variants = {
        page: async (source: HTMLVideoElement | File): Promise<Sample> => {
          if (source instanceof File) {
            const decodeStart = performance.now();
            const bitmap = await createImageBitmap(source, {
              imageOrientation: 'from-image',
              colorSpaceConversion: 'default',
              premultiplyAlpha: 'none',
            });
            const t0 = performance.now();
            await web.imageToTensor(bitmap, spec);
            const end = performance.now();
            bitmap.close();
            return { mainMs: end - t0, totalMs: end - decodeStart };
          }
          const t0 = performance.now();
          await web.imageToTensor(source, spec);
          const ms = performance.now() - t0;
          return { mainMs: ms, totalMs: ms };
        },
        worker: async (source: HTMLVideoElement | File): Promise<Sample> => {
          const t0 = performance.now();
          const { mainThreadMs } = await worker.imageToTensor(source, spec);
          return { mainMs: mainThreadMs, totalMs: performance.now() - t0 };
        },
      };
      // Warm-up: compile the kernels and size the scratch canvases on both sides.
      for (const run of Object.values(variants)) {
        await run(video);
        await run(photos[0]);
      }
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? (['page', 'worker'] as const) : (['worker', 'page'] as const);
        for (const name of order) {
          const run = variants[name];
          const camera = record(`${name}/camera`);
          camera.stalls.push(
            await withStallProbe(async () => {
              for (let f = 0; f < frames; f++) {
                await nextFrame();
                camera.samples.push(await run(video));
              }
            }),
          );
          const files = record(`${name}/photos`);
          files.stalls.push(
            await withStallProbe(async () => {
              for (const photo of photos) files.samples.push(await run(photo));
            }),
          );
          if (big.length) {
            const large = record(`${name}/5 MP photo`);
            large.stalls.push(
              await withStallProbe(async () => {
                for (const photo of big) large.samples.push(await run(photo));
              }),
            );
          }
        }
      }
      worker.close();
      for (const track of (video.srcObject as MediaStream).getTracks()) track.stop();
      return { out, userAgent: navigator.userAgent, camera: `${video.videoWidth}x${video.videoHeight}` };
    },
    {
      spec: backbone.preprocess,
      rounds: Number(values.rounds),
      frames: Number(values.frames),
      photoCount: photoFiles.length,
      bigCount: bigPhoto.length,
    },
  );
  const loadEnd = loadavg();
  const quantile = (xs: number[], q: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  };
  const f = (x: number) => (x < 1 ? x.toFixed(3) : x.toFixed(2));
  const lines = [
    `# Kiosk main-thread time per image: preprocessing on the page vs in the Web Worker`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} by \`bench/kiosk-main-thread.ts\` in headless Chromium ` +
      `(${samples.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? samples.userAgent}, \`--disable-gpu\`: software canvas), ` +
      `${cpus()[0]?.model ?? 'CPU'} (${cpus().length} logical cores), ` +
      `load average ${loadStart.map((l) => l.toFixed(2)).join(' ')} at the start, ` +
      `${loadEnd.map((l) => l.toFixed(2)).join(' ')} at the end` +
      (loadStart[0]! > cpus().length / 2 ? ': other jobs shared the machine, figures are pessimistic and noisy.' : '.'),
    '',
    `Backbone preprocessing of ${backbone.id} (${backbone.preprocess.width}x${backbone.preprocess.height}); ` +
      `camera: Chromium's fake camera at ${samples.camera} through a <video>; photos: ${photoFiles.length} ` +
      `hymenoptera val JPEGs (about 500x375) as files; the 5 MP photo: the set's one 2592x1944 JPEG (resized by the ` +
      `libvips-like filter above 3 MP). ${values.rounds} rounds, the two variants alternating ` +
      `which goes first; ${values.frames} frames and every photo per variant and round.`,
    '',
    '| source | where | images | main thread ms/image p50 | p90 | max | per image end to end p50 | longest stall p50 (max) ms |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const source of ['camera', 'photos', '5 MP photo']) {
    for (const where of ['page', 'worker']) {
      const entry = samples.out[`${where}/${source}`];
      if (!entry) continue;
      const main = entry.samples.map((s) => s.mainMs);
      const total = entry.samples.map((s) => s.totalMs);
      lines.push(
        `| ${source} | ${where === 'page' ? 'page (main thread)' : 'Web Worker'} | ${main.length} | ` +
          `${f(quantile(main, 0.5))} | ${f(quantile(main, 0.9))} | ${f(Math.max(...main))} | ` +
          `${f(quantile(total, 0.5))} | ${f(quantile(entry.stalls, 0.5))} (${f(Math.max(...entry.stalls))}) |`,
      );
    }
  }
  lines.push(
    '',
    "Main thread: performance.now() around the page thread's own part of each image (see the script's header). " +
      'End to end: from handing the image over until its tensor is back (photos: their decode included on both sides; ' +
      'the worker adds the hand-over). Longest stall: the widest gap between two turns of a 0 ms MessageChannel ' +
      "loop on the page during a variant's frames or photos (median over rounds, and the worst).",
  );
  const text = `${lines.join('\n')}\n`;
  process.stdout.write(text);
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, text);
  }
} finally {
  await browser.close();
  await server.close();
}
