// The browser bundle validates with Ajv standalone code generated at build time (scripts/precompile-schemas.mjs),
// never with Ajv's compiler (`new Function`, refused by a strict Content-Security-Policy). Pinned here: a bundle built
// with the browser builds' plugin has no `new Function` and no Ajv compiler, and finds exactly the violations that
// Node's runtime-compiled validators find, for good and bad documents of every format.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { precompiledValidatorsPlugin } from '../../scripts/precompile-schemas.mjs';
import { checkFormat, type FormatName } from '../../src/core/formats/format-schemas.js';
import type { SchemaViolation } from '../../src/core/bench/json-schema.js';
import { parseHeadFile } from '../../src/core/formats/head-file.js';
import { trainHead } from '../../src/core/heads/train.js';
import { IMAGENET_224 } from '../../src/core/preprocess/spec.js';
import { gaussianClusters } from '../core/heads/synthetic.js';
import { chromiumSkip, launchChromium } from './chromium.js';

type Bundle = {
  checkFormat: (format: FormatName, value: unknown) => SchemaViolation[];
  parseHeadFile: typeof parseHeadFile;
};

async function bundleCode(plugins: Plugin[], node = false): Promise<string> {
  const result = await build({
    stdin: {
      contents: `export { checkFormat } from './src/core/formats/format-schemas.ts';
export { parseHeadFile } from './src/core/formats/head-file.ts';`,
      resolveDir: process.cwd(),
      loader: 'ts',
    },
    bundle: true,
    platform: node ? 'node' : 'browser',
    ...(node ? { packages: 'external' as const } : {}),
    format: 'esm',
    write: false,
    plugins,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

async function browserBundle(t: { teardown(fn: () => unknown): void }): Promise<{ code: string; bundle: Bundle }> {
  const code = await bundleCode([precompiledValidatorsPlugin()]);
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-precompiled-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bundle.mjs');
  await writeFile(file, code);
  return { code, bundle: (await import(pathToFileURL(file).href)) as Bundle };
}

const backbone = { id: 'tiny', sha256: 'ab'.repeat(32), embeddingDim: 8, preprocess: IMAGENET_224 };

t.test('the browser bundle validates without compiling, with the same violations as Node', async (t) => {
  const { code, bundle } = await browserBundle(t);
  t.notMatch(code, /new Function|Function\(/, 'no code generated at run time');
  t.notMatch(code, /ajv\/lib\/compile|ajv\/dist\/compile/, 'no Ajv compiler in the bundle');

  const { data, labels } = gaussianClusters({ perClass: [10, 10], dim: 8, separation: 3, seed: 2 });
  const head = JSON.parse((await trainHead(data, labels, { backbone, seed: 1 })).serialize());
  const preprocess = { ...IMAGENET_224 };
  const embeddingSet = {
    format: 'edgetl-embeddings/1',
    backbone: { id: 'tiny', sha256: 'ab'.repeat(32), embeddingDim: 8 },
    executionProvider: 'cpu',
    classes: ['a'],
    items: [{ path: 'x.jpg', label: 'a' }],
    skipped: [],
    preprocess,
  };
  const cases: [FormatName, unknown][] = [
    ['headV2', head],
    ['headV2', { ...head, backbone: { ...head.backbone, preprocess: { ...preprocess, std: [1, 0, 1] } } }],
    ['headV2', { ...head, extra: 1, calibration: { temperature: -1 }, parameters: { type: 'mlp' } }],
    ['headV2', { ...head, openSet: { ...head.openSet, threshold: 3 } }],
    ['headV1', { ...head, version: 1, openSet: undefined, adaptation: undefined }],
    ['embeddingsV1', embeddingSet],
    ['embeddingsV1', { ...embeddingSet, preprocess: { ...preprocess, scale: -1, mean: [0, 0] } }],
    ['embeddingsV1', { ...embeddingSet, classes: 'a', items: [{ path: '' }] }],
    ['sidecar', { preprocess: { std: [1, 1, Number.NaN] }, embedding: { dim: 0 } }],
    ['sidecar', { preprocessing: {}, labels: 'a,b' }],
    ['preprocess', { ...preprocess, layout: 'CHW', resizeTo: 1.5 }],
  ];
  for (const [format, value] of cases) {
    const node = checkFormat(format, value);
    t.same(bundle.checkFormat(format, value), node, `${format}: ${node.length ? node[0]!.message : 'valid'}`);
  }
  t.equal(checkFormat('headV2', head).length, 0, 'the good head is valid (the cases can tell)');

  const broken = JSON.stringify({ ...head, backbone: { ...head.backbone, preprocess: { ...preprocess, scale: 0 } } });
  const message = (parse: typeof parseHeadFile) => {
    try {
      parse(broken, { file: 'head.json' });
      return 'loaded';
    } catch (error) {
      return (error as Error).message;
    }
  };
  t.equal(message(bundle.parseHeadFile), message(parseHeadFile), 'a head is refused with the same message');
  t.match(
    message(bundle.parseHeadFile),
    /^head\.json: head file field "backbone\.preprocess\.scale" must be greater than 0/,
  );
});

t.test(
  "under a Content-Security-Policy without 'unsafe-eval', the precompiled bundle refuses a bad head; runtime Ajv cannot run",
  { skip: chromiumSkip() },
  async (t) => {
    const { data, labels } = gaussianClusters({ perClass: [10, 10], dim: 8, separation: 3, seed: 2 });
    const good = JSON.parse((await trainHead(data, labels, { backbone, seed: 1 })).serialize());
    const bad = JSON.stringify({
      ...good,
      backbone: { ...good.backbone, preprocess: { ...IMAGENET_224, std: [1, 0, 1] } },
    });
    const bundles: Record<string, string> = {
      '/precompiled.js': await bundleCode([precompiledValidatorsPlugin()]),
      '/runtime-ajv.js': await bundleCode([]),
    };
    const browser = await launchChromium('wasm');
    t.teardown(() => browser.close());
    const origin = 'http://edgetl.test';
    await browser.context.route(`${origin}/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      const body = bundles[path] ?? '<!doctype html><title>csp</title>';
      return route.fulfill({
        status: 200,
        contentType: path.endsWith('.js') ? 'text/javascript' : 'text/html',
        headers: { 'Content-Security-Policy': "script-src 'self'" },
        body,
      });
    });
    await browser.page.goto(`${origin}/`);
    const tryBundle = (path: string) =>
      browser.page.evaluate(
        async ([url, text]) => {
          try {
            const module = await import(url);
            module.parseHeadFile(text, { file: 'head.json' });
            return 'loaded';
          } catch (error) {
            return `refused: ${(error as Error).message}`;
          }
        },
        [`${origin}${path}`, bad] as const,
      );
    const precompiled = await tryBundle('/precompiled.js');
    t.equal(
      precompiled,
      'refused: head.json: head file field "backbone.preprocess.std[1]" must be greater than 0, got 0',
      'the precompiled validators run under the policy and name the file and the field',
    );
    const runtime = await tryBundle('/runtime-ajv.js');
    t.match(
      runtime,
      /unsafe-eval|Content Security Policy|EvalError/i,
      `Ajv compiling in the page is blocked: ${runtime}`,
    );
  },
);

t.test('the Node bundles use the same precompiled validators, importing Ajv from node_modules', async (t) => {
  const code = await bundleCode([precompiledValidatorsPlugin({ stubAjv: false })], true);
  t.match(code, /from "ajv\/dist\/runtime\/ucs2length\.js"/, "Ajv's runtime helpers stay external");
  // beside the checkout (ignored by git), so `ajv` resolves as it does for dist/
  const dir = await mkdtemp(join(process.cwd(), '.tap', 'precompiled-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'node-bundle.mjs');
  await writeFile(file, code);
  const bundle = (await import(pathToFileURL(file).href)) as Bundle;
  const bad = { preprocess: { std: [1, 0, 1], scale: Number.POSITIVE_INFINITY }, extra: true };
  t.same(
    bundle.checkFormat('sidecar', bad),
    checkFormat('sidecar', bad),
    'the same violations as compiled at run time',
  );
  t.ok(bundle.checkFormat('sidecar', bad).length >= 3);
});
