/**
 * Provider choice in the browser (src/web/execution/web-session.ts), in real Chromium: what `auto` picks and why,
 * WebGPU correctness through SwiftShader, int8 graphs kept off WebGPU, threads and cross-origin isolation.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedModel, sharedPath } from '../helpers/shared.js';
import { chromiumSkip, launchChromium } from './chromium.js';
import { cosine, openTestPage, startServer } from './harness.js';
import { Backbone } from '../../src/node/embed/backbone.js';
import { imageToTensor } from '../../src/node/preprocess/node-image.js';
import { prepareServedBackbone, type ServedBackbone } from '../../src/node/server/kiosk-server.js';

type WebModule = typeof import('../../src/web/index.js');

const fp32 = sharedModel('mobilenet-v1-0.25-224.fp32.onnx');
const int8 = sharedModel('mobilenetv2-12-int8.onnx');
const photo = sharedPath('images/kite.jpg');
const skip = chromiumSkip() || fp32.skip || int8.skip || photo.skip;

function modelUrl(backbone: ServedBackbone): string {
  return `/models/${encodeURIComponent(backbone.id)}.features.onnx`;
}

t.test(
  'WebGPU through SwiftShader: never chosen by auto, correct when asked for, int8 kept on WASM',
  { skip },
  async (t) => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'edgetl-web-cache-'));
    const { server, backbone } = await startServer(fp32.path!);
    // The int8 extractor is served from the test page's origin (a second server would be cross-origin, which COEP blocks).
    const quantized = await prepareServedBackbone(int8.path!, { download: false });
    const int8File = join(cacheDir, 'int8.features.onnx');
    await writeFile(int8File, quantized.model);
    const browser = await launchChromium('webgpu');
    const node = await Backbone.load(fp32.path!, { ep: 'cpu', cache: false, cacheDir });
    t.teardown(async () => {
      await browser.close();
      await server.close();
      await node.close();
      await rm(cacheDir, { recursive: true, force: true });
    });
    const tensor = new Float32Array(3 * 224 * 224);
    await imageToTensor(photo.path!, node.preprocess, { out: tensor });
    const expected = await node.embedTensors(tensor, 1);
    await openTestPage(browser.page, server, [int8File]);

    const result = await browser.page.evaluate(
      async ({ fp32Url, int8Url, spec, tensor }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const load = (
          url: string,
          ep: 'auto' | 'webgpu' | 'wasm',
          extra: Partial<Parameters<WebModule['WebBackbone']['load']>[0]> = {},
        ) =>
          web.WebBackbone.load({
            model: url,
            id: 'x',
            sha256: '0'.repeat(64),
            preprocess: spec,
            embeddingOutput: 'embedding',
            ep,
            wasmPaths: '/ort/',
            ...extra,
          });
        // proxy: false keeps this page able to open WebGPU sessions after a WASM one (the proxy worker is page-wide).
        const auto = await load(fp32Url, 'auto', { proxy: false });
        const gpu = await load(fp32Url, 'webgpu');
        const embedding = Array.from(await gpu.embedTensors(new Float32Array(tensor), 1));
        // keepOnGpu: the output stays a GPU buffer for a next WebGPU step; reading it is explicit.
        const session = await web.WebInferenceSession.create(await (await fetch(fp32Url)).arrayBuffer(), {
          ep: 'webgpu',
          keepOnGpu: ['embedding'],
        });
        const raw = await session.runRaw(
          { [session.inputNames[0]]: { data: new Float32Array(tensor), dims: [1, 3, 224, 224] } },
          ['embedding'],
        );
        const location = raw.embedding.location;
        const fromGpu = Array.from((await raw.embedding.getData(true)) as Float32Array);
        const int8Auto = await load(int8Url, 'webgpu');
        let strictError = '';
        try {
          await load(int8Url, 'webgpu', { strictEp: true });
        } catch (error) {
          strictError = String((error as Error).message);
        }
        return {
          auto: auto.provider,
          gpu: gpu.provider,
          embedding,
          location,
          fromGpu,
          int8: int8Auto.provider,
          strictError,
        };
      },
      { fp32Url: modelUrl(backbone), int8Url: '/test/file/0', spec: backbone.preprocess, tensor: Array.from(tensor) },
    );

    t.equal(result.auto.used, 'wasm', 'auto does not pick a software adapter');
    t.match(result.auto.fallbacks[0]?.reason, /software/, `and says why: ${result.auto.fallbacks[0]?.reason}`);
    t.equal(result.auto.adapter?.software, true, 'the adapter is reported as software');
    t.equal(result.gpu.used, 'webgpu', 'asking for webgpu runs it');
    t.same(result.gpu.fallbacks, [], 'with no fallback');
    const c = cosine(result.embedding, expected);
    t.ok(c >= 0.999, `WebGPU embedding matches onnxruntime-node CPU on the same tensor (cosine ${c.toFixed(6)})`);
    t.equal(result.location, 'gpu-buffer', 'keepOnGpu leaves the output on the GPU');
    t.ok(cosine(result.fromGpu, expected) >= 0.999, 'and it holds the same embedding');
    t.equal(result.int8.used, 'wasm', 'an int8 graph asked for on webgpu runs on WASM');
    t.match(result.int8.fallbacks[0]?.reason, /int8/, `with the reason: ${result.int8.fallbacks[0]?.reason}`);
    t.match(result.strictError, /strictEp.*int8/, 'strictEp refuses instead of falling back');
  },
);

t.test(
  'WASM: auto without a GPU, threads with cross-origin isolation, a clear note without it',
  { skip },
  async (t) => {
    const { server, backbone } = await startServer(fp32.path!);
    const browser = await launchChromium('wasm');
    const dir = await mkdtemp(join(tmpdir(), 'edgetl-web-int8-'));
    t.teardown(async () => {
      await browser.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    });
    const int8File = join(dir, 'int8.features.onnx');
    await writeFile(int8File, (await prepareServedBackbone(int8.path!, { download: false })).model);
    const probe = async () =>
      browser.page.evaluate(
        async ({ url, spec }) => {
          const bundle = '/index.js';
          const web = (await import(bundle)) as WebModule;
          const backbone = await web.WebBackbone.load({
            model: url,
            id: 'x',
            sha256: '0'.repeat(64),
            preprocess: spec,
            embeddingOutput: 'embedding',
            ep: 'auto',
            wasmPaths: '/ort/',
          });
          return { report: backbone.provider, isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency };
        },
        { url: modelUrl(backbone), spec: backbone.preprocess },
      );

    await openTestPage(browser.page, server, [int8File]);
    const isolated = await probe();
    t.equal(isolated.report.used, 'wasm');
    t.match(
      isolated.report.fallbacks[0]?.reason ?? '',
      /WebGPU|adapter/,
      `auto says why not WebGPU: ${isolated.report.fallbacks[0]?.reason}`,
    );
    t.equal(isolated.isolated, true, 'edgetl serve headers make the page cross-origin isolated');
    t.equal(isolated.report.wasmThreads, Math.min(4, Math.max(1, isolated.cores)), 'WASM uses the cores when isolated');
    t.equal(isolated.report.proxyWorker, true, 'WASM-only pages run inference in the proxy worker');
    t.notMatch(isolated.report.notes.join(' '), /cross-origin isolation/, 'no threading note when isolated');

    // The page stays responsive while the (slow, int8) backbone runs: its timers keep firing.
    const responsive = await browser.page.evaluate(
      async ({ spec }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const backbone = await web.WebBackbone.load({
          model: '/test/file/0',
          id: 'int8',
          sha256: '0'.repeat(64),
          preprocess: spec,
          embeddingOutput: 'embedding',
          ep: 'wasm',
          wasmPaths: '/ort/',
        });
        const tensor = new Float32Array(3 * 224 * 224).fill(0.1);
        let maxGap = 0;
        let ticks = 0;
        let last = performance.now();
        const timer = setInterval(() => {
          const now = performance.now();
          maxGap = Math.max(maxGap, now - last);
          last = now;
          ticks++;
        }, 5);
        const started = performance.now();
        for (let i = 0; i < 6; i++) await backbone.embedTensors(tensor, 1);
        const total = performance.now() - started;
        clearInterval(timer);
        // A blocked page never runs its timer during the loop: the gap then spans the whole loop.
        maxGap = Math.max(maxGap, performance.now() - last);
        return { perRun: total / 6, total, maxGap, ticks };
      },
      { spec: backbone.preprocess },
    );
    t.ok(
      responsive.maxGap < responsive.total / 2 && responsive.ticks >= 10,
      `6 inference runs (${responsive.perRun.toFixed(0)} ms each) held the page at most ${responsive.maxGap.toFixed(0)} ms at a time (${responsive.ticks} timer ticks)`,
    );

    // The same page without COOP/COEP: single-threaded, and the report says why.
    const plain = await browser.context.newPage();
    await plain.route(`${server.url}plain.html`, (route) =>
      route.fulfill({
        status: 200,
        headers: { 'Content-Type': 'text/html' },
        body: '<!doctype html><script type="importmap">{"imports":{"onnxruntime-web":"/ort/ort.min.mjs"}}</script>plain',
      }),
    );
    await plain.goto(`${server.url}plain.html`);
    const result = await plain.evaluate(
      async ({ url, spec }) => {
        const bundle = '/index.js';
        const web = (await import(bundle)) as WebModule;
        const backbone = await web.WebBackbone.load({
          model: url,
          id: 'x',
          sha256: '0'.repeat(64),
          preprocess: spec,
          embeddingOutput: 'embedding',
          ep: 'wasm',
          wasmPaths: '/ort/',
          numThreads: 4,
        });
        return { report: backbone.provider, isolated: crossOriginIsolated };
      },
      { url: modelUrl(backbone), spec: backbone.preprocess },
    );
    t.equal(result.isolated, false);
    t.equal(result.report.wasmThreads, 1, 'one thread without isolation');
    t.equal(result.report.proxyWorker, true, 'the proxy worker needs no isolation');
    t.match(
      result.report.notes.join(' '),
      /cross-origin isolation.*COOP\/COEP/,
      `a note says why: ${result.report.notes.join(' ')}`,
    );
  },
);
