/**
 * `edgetl serve`'s HTTP side without a browser: isolation headers, what is served, what is refused.
 */
import t from 'tap';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallBackbone } from '../helpers/shared.js';
import {
  findOrtWebDir,
  prepareServedBackbone,
  startKioskServer,
  type KioskServer,
} from '../../src/node/server/kiosk-server.js';
import { serveCommand } from '../../src/node/cli/serve.js';
import { trainHead } from '../../src/core/heads/train.js';
import { sha256Bytes } from '../../src/node/util/sha256.js';

// Any small real model will do: the shared fp32 MobileNet V1 0.25, or the bundled int8 MobileNetV2 on a fresh clone.
const small = smallBackbone();

async function get(server: KioskServer, path: string, init?: RequestInit): Promise<Response> {
  return fetch(new URL(path, server.url), init);
}

t.test('edgetl serve: headers, files, refusals', async (t) => {
  // A stand-in web build, so this test does not depend on dist/.
  const webRoot = await mkdtemp(join(tmpdir(), 'edgetl-webroot-'));
  await mkdir(join(webRoot, 'app'));
  await writeFile(join(webRoot, 'app', 'index.html'), '<!doctype html><title>kiosk</title>');
  await writeFile(join(webRoot, 'app', 'app.css'), 'body{}');
  await writeFile(join(webRoot, 'worker.js'), 'self.onmessage=()=>{}');
  await writeFile(join(webRoot, 'preprocess-worker.js'), 'self.onmessage=()=>{}');
  const backbone = await prepareServedBackbone(small.path, { download: false });
  const sources = await readFile(small.path);
  const head = await trainHead(
    [new Float32Array(backbone.embeddingDim).fill(1), new Float32Array(backbone.embeddingDim).fill(-1)],
    ['a', 'b'],
    {
      type: 'prototype',
      backbone: {
        id: backbone.id,
        sha256: backbone.sha256,
        embeddingDim: backbone.embeddingDim,
        preprocess: backbone.preprocess,
      },
    },
  );
  const server = await startKioskServer({ backbone, port: 0, webRoot, headJson: head.serialize() });
  t.teardown(async () => {
    await server.close();
    await rm(webRoot, { recursive: true, force: true });
  });
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'binds 127.0.0.1 by default');

  const page = await get(server, '/');
  t.equal(page.status, 200);
  t.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin', 'COOP for cross-origin isolation');
  t.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp', 'COEP for cross-origin isolation');
  t.match(page.headers.get('content-type'), /text\/html/);

  const config = (await (await get(server, '/api/config')).json()) as {
    backbone: { id: string; sha256: string; embeddingDim: number; modelUrl: string };
    headUrl?: string;
    ortUrl: string;
  };
  t.equal(
    config.backbone.sha256,
    sha256Bytes(sources),
    'the page learns the source model sha256 (what head files name)',
  );
  t.equal(config.backbone.embeddingDim, small.embeddingDim);
  t.equal(config.headUrl, '/api/head', 'the --head file is offered');
  const model = await get(server, config.backbone.modelUrl);
  t.equal(model.status, 200);
  // Buffer.equals, not t.same: a deep compare of a megabyte array is slow enough to outlive the keep-alive socket.
  t.ok(Buffer.from(await model.arrayBuffer()).equals(Buffer.from(backbone.model)), 'the feature extractor is served');
  t.equal(model.headers.get('cross-origin-resource-policy'), 'same-origin');
  t.same(JSON.parse(await (await get(server, '/api/head')).text()).labels, ['a', 'b']);

  const ort = await get(server, '/ort/ort.min.mjs');
  t.equal(ort.status, 200, "onnxruntime-web's ESM bundle is served locally");
  t.match(ort.headers.get('content-type'), /javascript/);
  t.ok(
    Buffer.from(await ort.arrayBuffer()).equals(await readFile(join(findOrtWebDir(), 'ort.min.mjs'))),
    'byte for byte the installed file',
  );
  const wasm = await get(server, '/ort/ort-wasm-simd-threaded.jsep.wasm', { method: 'HEAD' });
  t.equal(wasm.status, 200, 'and its WebAssembly binary');
  t.equal(wasm.headers.get('content-type'), 'application/wasm', 'with the type streaming compilation needs');
  t.equal((await get(server, '/worker.js')).status, 200, 'the training worker is served');
  const preprocessWorker = await get(server, '/preprocess-worker.js');
  t.equal(preprocessWorker.status, 200, 'the preprocessing worker is served');
  t.match(preprocessWorker.headers.get('content-type') ?? '', /javascript/, 'as a script a module worker accepts');
  t.equal((await get(server, '/app/app.css')).status, 200);

  for (const path of [
    '/app/../../package.json',
    '/app/..%2f..%2fpackage.json',
    '/ort/..%2fpackage.json',
    '/ort/ort.node.min.js.LICENSE',
    '/%2e%2e/package.json',
    '/nothing-here',
  ]) {
    t.equal((await get(server, path)).status, 404, `${path} is not served`);
  }
  const post = await get(server, '/api/config', { method: 'POST', body: '{}' });
  t.equal(post.status, 405, 'only GET and HEAD');
  t.equal(post.headers.get('allow'), 'GET, HEAD');

  // Another server on the same port fails with advice.
  await t.rejects(startKioskServer({ backbone, port: server.port, webRoot }), {
    code: 'port-in-use',
    message: /already in use.*another `port`/,
  });
});

t.test('edgetl serve refuses a head for another backbone before it starts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-serve-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const backbone = await prepareServedBackbone(small.path, { download: false });
  const other = await trainHead(
    [new Float32Array(backbone.embeddingDim).fill(1), new Float32Array(backbone.embeddingDim).fill(-1)],
    ['a', 'b'],
    {
      type: 'prototype',
      backbone: {
        id: 'resnet50-v1-12',
        sha256: 'cd'.repeat(32),
        embeddingDim: backbone.embeddingDim,
        preprocess: backbone.preprocess,
      },
    },
  );
  const file = join(dir, 'other.json');
  await writeFile(file, other.serialize());
  await t.rejects(
    serveCommand.run(['--backbone', small.path, '--head', file, '--port', '0']),
    { message: /other\.json|backbone|sha256/ },
    'the mismatch is reported at the terminal',
  );
  await t.rejects(serveCommand.run(['--port', 'eighty']), { code: 'usage' }, 'a bad port is a usage error');
});

t.test(
  'edgetl serve with several heads offers each one; heads needing different backbone passes are refused',
  async (t) => {
    const webRoot = await mkdtemp(join(tmpdir(), 'edgetl-webroot-'));
    await mkdir(join(webRoot, 'app'));
    await writeFile(join(webRoot, 'app', 'index.html'), '<!doctype html><title>kiosk</title>');
    t.teardown(() => rm(webRoot, { recursive: true, force: true }));
    const backbone = await prepareServedBackbone(small.path, { download: false });
    const ref = {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    };
    const rows = [new Float32Array(backbone.embeddingDim).fill(1), new Float32Array(backbone.embeddingDim).fill(-1)];
    const first = await trainHead(rows, ['a', 'b'], { type: 'prototype', backbone: ref });
    const second = await trainHead(rows, ['up', 'down'], { type: 'prototype', backbone: ref });
    const server = await startKioskServer({
      backbone,
      port: 0,
      webRoot,
      heads: [
        { name: 'first.json', json: first.serialize() },
        { name: 'second.json', json: second.serialize() },
      ],
    });
    t.teardown(() => server.close());
    const config = (await (await get(server, '/api/config')).json()) as {
      headUrl?: string;
      heads: { name: string; url: string }[];
    };
    t.equal(config.headUrl, '/api/head', 'the first head stays where a one-head page looks for it');
    t.same(
      config.heads.map((h) => h.name),
      ['first.json', 'second.json'],
    );
    t.same(JSON.parse(await (await get(server, config.heads[1].url)).text()).labels, ['down', 'up']);
    t.same(JSON.parse(await (await get(server, '/api/head')).text()).labels, ['a', 'b']);
    t.equal((await get(server, '/api/heads/2')).status, 404);

    const dir = await mkdtemp(join(tmpdir(), 'edgetl-serve-heads-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    await writeFile(a, first.serialize());
    await writeFile(
      b,
      (
        await trainHead(rows, ['x', 'y'], {
          type: 'prototype',
          backbone: { ...ref, preprocess: { ...backbone.preprocess, resizeTo: 300 } },
        })
      ).serialize(),
    );
    await t.rejects(serveCommand.run(['--backbone', small.path, '--head', a, '--head', b, '--port', '0']), {
      message: /a\.json and .*b\.json need different backbone passes/,
    });
  },
);

t.test('a port already taken by another program gets a clear error', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const backbone = await prepareServedBackbone(small.path, { download: false });
  const webRoot = await mkdtemp(join(tmpdir(), 'edgetl-webroot-'));
  t.teardown(() => rm(webRoot, { recursive: true, force: true }));
  await t.rejects(startKioskServer({ backbone, port, webRoot }), {
    code: 'port-in-use',
    message: new RegExp(`port ${port} on 127.0.0.1 is already in use`),
  });
});

t.test('the browser resizes with the Pillow port up to the same size as Node', async (t) => {
  const { BROWSER_PILLOW_MAX_PIXELS } = await import('../../src/web/preprocess/canvas.js');
  const { DEFAULT_PILLOW_MAX_PIXELS } = await import('../../src/node/preprocess/node-image.js');
  t.equal(BROWSER_PILLOW_MAX_PIXELS, DEFAULT_PILLOW_MAX_PIXELS);
});
