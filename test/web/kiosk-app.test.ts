/**
 * The kiosk app end to end in real Chromium, as a person uses it: add photos for two classes, train, classify a
 * held-out photo, export the head. Once on WASM with the default backbone, once on WebGPU (SwiftShader, correctness
 * only) with a small fp32 backbone. Screenshots of the trained state go to test-artifacts/.
 */
import t from 'tap';
import { mkdirSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFormat } from '../../src/core/formats/format-schemas.js';
import { repoRoot, sharedModel, sharedPath } from '../helpers/shared.js';
import { describedSharedModel } from '../helpers/test-models.js';
import { chromiumSkip, launchChromium, type BrowserMode } from './chromium.js';
import { startServer } from './harness.js';
import { prepareServedBackbone } from '../../src/node/server/kiosk-server.js';
import { Head } from '../../src/core/heads/head.js';
import { trainHead } from '../../src/core/heads/train.js';
import type { Page } from 'playwright-core';

const int8 = sharedModel('mobilenetv2-12-int8.onnx');
// Test data outside the catalog: served from a copy whose sidecar states its (TF-style) preprocessing.
const fp32 = describedSharedModel('mobilenet-v1-0.25-224.fp32.onnx');
const data = sharedPath('datasets/hymenoptera');
// Tests with no photos run on a fresh clone: the small fp32 backbone when the shared models are there, else the
// bundled int8 one. Only the runs that train on real photos need ../shared.
const pageBackbone = fp32.path ?? int8.path;
const browserSkip = chromiumSkip() || int8.skip;
const photosSkip = browserSkip || data.skip;
const offTopic = sharedPath('images');
const skip = photosSkip || fp32.skip || offTopic.skip;
const artifacts = join(repoRoot, 'test-artifacts');
/** A kiosk user sees the page, not a terminal: its messages never name commands or flags. */
const CLI_WORDS = /edgetl [a-z]+|--[a-z]/;

function files(split: 'train' | 'val', label: string, from: number, count: number): string[] {
  const dir = join(data.path!, split, label);
  return readdirSync(dir)
    .sort()
    .slice(from, from + count)
    .map((f) => join(dir, f));
}

async function waitForCount(page: Page, classIndex: number, count: number): Promise<void> {
  await page.waitForFunction(
    ([i, n]) => document.querySelector(`#class-${i}`)?.getAttribute('data-count') === String(n),
    [classIndex, count] as const,
    { timeout: 120_000 },
  );
}

async function classify(
  page: Page,
  file: string,
): Promise<{ label: string | null; closest: string | null; text: string | null }> {
  await page.evaluate(() => document.querySelector('#prediction-label')?.removeAttribute('data-label'));
  await page.setInputFiles('#test-file', file);
  await page.waitForFunction(() => document.querySelector('#prediction-label')?.hasAttribute('data-label'), null, {
    timeout: 60_000,
  });
  return {
    label: await page.getAttribute('#prediction-label', 'data-label'),
    closest: await page.getAttribute('#prediction-label', 'data-closest'),
    text: await page.textContent('#prediction-label'),
  };
}

const runs: {
  mode: BrowserMode;
  model: string | undefined;
  perClass: number;
  provider: string;
  skip: string | false;
}[] = [
  { mode: 'wasm', model: int8.path, perClass: 6, provider: 'WebAssembly', skip: photosSkip },
  { mode: 'webgpu', model: fp32.path, perClass: 4, provider: 'WebGPU', skip: photosSkip || fp32.skip },
];

for (const run of runs) {
  t.test(
    `kiosk app on ${run.mode}: examples, train, predict a held-out photo, export a valid head`,
    { skip: run.skip },
    async (t) => {
      const { server, backbone } = await startServer(run.model!);
      const browser = await launchChromium(run.mode);
      t.teardown(async () => {
        await browser.close();
        await server.close();
      });
      const page = browser.page;
      t.teardown(() => {
        if (t.passing()) return;
        t.comment(browser.logs.slice(-30).join('\n'));
      });
      // Fully offline: every request the page makes goes to edgetl serve (or stays inside the page: data:, blob:).
      const foreign: string[] = [];
      page.on('request', (request) => {
        const url = request.url();
        if (!url.startsWith(server.url) && !url.startsWith('data:') && !url.startsWith('blob:')) foreign.push(url);
      });
      await page.goto(`${server.url}?ep=${run.mode}`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
      t.match(
        await page.textContent('#model-status'),
        run.provider,
        `the header says the model runs on ${run.provider}`,
      );
      t.match(await page.textContent('[data-fact="provider"]'), run.provider, 'the device panel names the provider');
      t.match(
        await page.textContent('[data-fact="preprocessing"]'),
        /^in a Web Worker \(WebAssembly SIMD resize\)$/,
        'photos and frames are preprocessed off the page, with the exact WebAssembly resize',
      );
      t.equal(
        await page.textContent('[data-fact="cross-origin-isolated"]'),
        'yes',
        'the page is cross-origin isolated (COOP/COEP from edgetl serve)',
      );
      if (run.mode === 'webgpu')
        t.match(
          await page.textContent('[data-fact="adapter"]'),
          /swiftshader.*software/i,
          'the software adapter is reported as such',
        );

      await page.fill('#class-name-0', 'ants');
      await page.fill('#class-name-1', 'bees');
      t.ok(await page.isDisabled('#train-button'), 'Train waits for examples');
      await page.setInputFiles('#class-0 input[type=file]', files('train', 'ants', 0, run.perClass));
      await page.setInputFiles('#class-1 input[type=file]', files('train', 'bees', 0, run.perClass));
      await waitForCount(page, 0, run.perClass);
      await waitForCount(page, 1, run.perClass);
      t.equal(
        await page.textContent('#class-0 [data-ref="count"]'),
        `${run.perClass} photos`,
        'counts per class are shown',
      );

      await page.click('#train-button');
      await page.waitForSelector('body[data-head="ready"]', { timeout: 60_000 });
      t.match(await page.textContent('#train-status'), /Trained a linear head/, 'training reports success');

      const antPhoto = files('val', 'ants', 0, 1)[0];
      const beePhoto = files('val', 'bees', 0, 1)[0];
      // a held-out photo may fall outside a few examples' reach (then "Unknown", closest class named): the closest
      // class is what must be right; a training photo itself is well inside it
      const ant = await classify(page, antPhoto);
      t.equal(ant.closest, 'ants', `held-out ant photo is closest to "ants" (${ant.text})`);
      const bee = await classify(page, beePhoto);
      t.equal(bee.closest, 'bees', `held-out bee photo is closest to "bees" (${bee.text})`);
      const seen = await classify(page, files('train', 'bees', 0, 1)[0]);
      t.equal(seen.label, 'bees', `a training photo of bees is predicted "bees" (${seen.text})`);
      t.equal(await page.locator('#prediction-bars .bar').count(), 2, 'one confidence bar per class');
      t.match(await page.textContent('[data-fact="image-embedding"]'), /ms/, 'the device panel shows measured latency');
      t.match(
        await page.textContent('[data-fact="preprocess-on-the-page"]'),
        /ms/,
        "and the page's own share of preprocessing",
      );

      t.same(foreign, [], 'no request left this machine (no CDN)');
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, `kiosk-trained-${run.mode}.png`), fullPage: true });

      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-head')]);
      const json = await readFile((await download.path())!, 'utf8');
      t.same(checkFormat('headV2', JSON.parse(json)), [], 'the exported head matches the edgetl-head v2 schema');
      const head = Head.parse(json, {
        file: download.suggestedFilename(),
        backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: backbone.embeddingDim },
      });
      t.same(head.labels, ['ants', 'bees'], 'the exported head loads in Node with the class names typed in the page');

      if (run.mode === 'wasm') {
        // Off-topic photos (other datasets' single photos): "Unknown", with the closest class and why.
        const photos = readdirSync(offTopic.path!)
          .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
          .sort()
          .slice(0, 3);
        t.ok(photos.length > 0, 'there are off-topic photos to show');
        for (const photo of photos) {
          const shown = await classify(page, join(offTopic.path!, photo));
          t.equal(shown.label, '', `${photo} gets no label`);
          t.equal(
            await page.getAttribute('#prediction-label', 'data-state'),
            'unknown',
            `${photo} shows the unknown state (${shown.text})`,
          );
          t.equal(
            await page.getAttribute('#prediction-label', 'data-reason'),
            'outlier',
            'because it is unlike the examples',
          );
          t.match(shown.text, /^Unknown \(closest: (ants|bees)/, 'naming the closest class');
          t.match(await page.textContent('#prediction-reason'), /Not like the examples/, 'and saying why');
        }
        t.equal(
          (await classify(page, files('train', 'ants', 0, 1)[0])).label,
          'ants',
          'an own photo after them is still known',
        );

        // The head and the examples survive a reload (IndexedDB).
        await page.reload();
        await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
        t.equal(await page.getAttribute('body', 'data-head'), 'ready', 'the head is restored after a reload');
        t.equal(
          await page.getAttribute('#class-0', 'data-count'),
          String(run.perClass),
          'the examples are restored after a reload',
        );
        t.equal((await classify(page, beePhoto)).closest, 'bees', 'the restored head predicts');

        // The "unknown" state: the same head with a rejection threshold no prediction reaches (the weights'
        // checksum does not cover the threshold, so the edited file is still valid).
        const strict = JSON.parse(json) as { rejection: { threshold: number; rate: number } | null };
        strict.rejection = { threshold: 0.9999, rate: 0.5 };
        await page.setInputFiles('#import-head', {
          name: 'strict.json',
          mimeType: 'application/json',
          buffer: Buffer.from(JSON.stringify(strict)),
        });
        await page.waitForFunction(() => document.querySelector('#train-status')?.textContent?.includes('imported'));
        const unknown = await classify(page, beePhoto);
        t.equal(unknown.label, '', 'a rejected photo has no label');
        t.equal(await page.getAttribute('#prediction-label', 'data-state'), 'unknown', 'and shows the unknown state');
        t.match(unknown.text, /^Unknown \(closest: bees/, `with the closest class named (${unknown.text})`);
      }
    },
  );
}

t.test('kiosk app errors a user can act on', { skip: browserSkip }, async (t) => {
  const { server, backbone } = await startServer(int8.path!);
  const browser = await launchChromium('wasm');
  t.teardown(async () => {
    await browser.close();
    await server.close();
  });
  const page = browser.page;
  await page.goto(`${server.url}?ep=wasm`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });

  // A head trained on another backbone (same embedding size, different model file).
  const other = await trainHead(
    [
      new Float32Array(backbone.embeddingDim).fill(1),
      new Float32Array(backbone.embeddingDim).fill(-1),
      new Float32Array(backbone.embeddingDim).fill(0.5),
      new Float32Array(backbone.embeddingDim).fill(-0.5),
    ],
    ['cats', 'dogs', 'cats', 'dogs'],
    {
      type: 'prototype',
      backbone: {
        id: 'resnet50-v1-12',
        sha256: 'ab'.repeat(32),
        embeddingDim: backbone.embeddingDim,
        preprocess: backbone.preprocess,
      },
    },
  );
  await page.setInputFiles('#import-head', {
    name: 'other.json',
    mimeType: 'application/json',
    buffer: Buffer.from(other.serialize()),
  });
  await page.waitForSelector('#error:not([hidden])');
  t.match(
    await page.textContent('#error-text'),
    /trained on backbone resnet50-v1-12.*this page runs mobilenetv2-12-int8.*train a new head here, or use this head where resnet50-v1-12 runs/s,
    'a head for another backbone is refused, saying what to do',
  );
  t.notMatch(await page.textContent('#error-text'), CLI_WORDS, 'in words for the kiosk user, not command-line ones');
  t.not(await page.getAttribute('body', 'data-head'), 'ready', 'the wrong head is not used');
  await page.click('#error-dismiss');

  await page.setInputFiles('#import-head', {
    name: 'broken.json',
    mimeType: 'application/json',
    buffer: Buffer.from('{"format":"edgetl-head","version":9}'),
  });
  await page.waitForSelector('#error:not([hidden])');
  t.match(await page.textContent('#error-text'), /broken\.json/, 'a damaged head file is refused, naming the file');
  await page.click('#error-dismiss');

  // No camera permission granted in this profile: the browser refuses getUserMedia.
  await page.click('#camera-toggle');
  await page.waitForSelector('#error:not([hidden])');
  t.match(await page.textContent('#error-text'), /[Cc]amera/, `no camera: ${await page.textContent('#error-text')}`);
  t.match(
    await page.textContent('#error-text'),
    /press "Start camera" again|add photos from files|secure page/,
    'the camera message says what to do',
  );
  t.notMatch(await page.textContent('#error-text'), CLI_WORDS, "in the kiosk user's words");

  // A model that does not load.
  const broken = await startServer(int8.path!, {
    backbone: { ...backbone, model: new Uint8Array([8, 1, 18, 4, 116, 101, 115, 116]) },
  });
  t.teardown(() => broken.server.close());
  await page.goto(`${broken.server.url}?ep=wasm`);
  await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
  t.match(
    await page.textContent('#error-text'),
    /failed to load.*server is still running/s,
    'a model that fails to load says so and what to check',
  );
  t.notMatch(await page.textContent('#error-text'), CLI_WORDS, 'without command-line words');
  t.equal(await page.textContent('#model-status'), 'Model failed to load');
});

t.test(
  'kiosk app with several served heads shows each other head beside the main prediction',
  { skip: photosSkip },
  async (t) => {
    const backbone = await prepareServedBackbone(pageBackbone!, { download: false });
    const ref = {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    };
    const rows = [new Float32Array(backbone.embeddingDim).fill(1), new Float32Array(backbone.embeddingDim).fill(-1)];
    const main = await trainHead(rows, ['bright', 'dark'], { type: 'prototype', backbone: ref });
    const other = await trainHead(rows, ['yes', 'no'], { type: 'prototype', backbone: ref });
    const { server } = await startServer(pageBackbone!, {
      backbone,
      heads: [
        { name: 'main.json', json: main.serialize() },
        { name: 'other.json', json: other.serialize() },
      ],
    });
    const browser = await launchChromium('wasm');
    t.teardown(async () => {
      await browser.close();
      await server.close();
    });
    const page = browser.page;
    await page.goto(`${server.url}?ep=wasm`);
    await page.waitForSelector('body[data-head="ready"]', { timeout: 90_000 });
    const result = await classify(page, files('val', 'bees', 0, 1)[0]);
    t.match(result.closest ?? '', /^(bright|dark)$/, 'the first head is the main prediction');
    await page.waitForSelector('#other-heads li[data-head="other.json"]');
    t.match(
      await page.textContent('#other-heads li[data-head="other.json"]'),
      /^other\.json: (yes|no|unknown \(closest (yes|no)\)) \d+%$/,
      'the other head predicts from the same embedding',
    );
  },
);

t.test(
  'camera: permission refused, then granted: capture examples and live predictions; a drifted view is flagged',
  { skip },
  async (t) => {
    const { server, backbone } = await startServer(fp32.path!);
    const browser = await launchChromium('wasm', { fakeCamera: true });
    t.teardown(async () => {
      await browser.close();
      await server.close();
    });
    const page = browser.page;
    await page.goto(`${server.url}?ep=wasm`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
    await page.click('#camera-toggle');
    await page.waitForSelector('#error:not([hidden])');
    t.match(
      await page.textContent('#error-text'),
      /Camera permission was denied.*Allow the camera.*"Start camera" again/s,
      'a refused camera says how to allow it',
    );
    await page.click('#error-dismiss');

    await browser.context.grantPermissions(['camera'], { origin: server.url.replace(/\/$/, '') });
    await page.click('#camera-toggle');
    await page.waitForSelector('#camera[data-live="true"]');
    t.equal(await page.textContent('#camera-toggle'), 'Stop camera');
    await page.waitForFunction(
      () => !(document.querySelector('#class-0 [data-ref="capture"]') as HTMLButtonElement).disabled,
    );
    for (const [index, count] of [
      [0, 2],
      [1, 2],
    ] as const) {
      for (let i = 0; i < count; i++) await page.click(`#class-${index} [data-ref="capture"]`);
      await waitForCount(page, index, count);
    }
    t.pass('captured two camera frames into each class');
    await page.click('#train-button');
    await page.waitForSelector('body[data-head="ready"]', { timeout: 60_000 });
    await page.waitForFunction(() => document.querySelectorAll('#prediction-bars .bar').length === 2, null, {
      timeout: 30_000,
    });
    t.pass('live predictions from the camera show a bar per class');
    t.not(await page.getAttribute('body', 'data-drift'), 'true', 'frames like the examples raise no drift warning');

    // A head whose examples look nothing like this camera's view: the live view is flagged as drifted.
    const dim = backbone.embeddingDim;
    const foreign = await trainHead(
      [
        new Float32Array(dim).fill(1),
        new Float32Array(dim).fill(-1),
        new Float32Array(dim).fill(0.9),
        new Float32Array(dim).fill(-0.9),
      ],
      ['day', 'night', 'day', 'night'],
      {
        type: 'prototype',
        backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: dim, preprocess: backbone.preprocess },
      },
    );
    await page.setInputFiles('#import-head', {
      name: 'foreign.json',
      mimeType: 'application/json',
      buffer: Buffer.from(foreign.serialize()),
    });
    await page.waitForSelector('body[data-drift="true"]', { timeout: 60_000 });
    t.match(
      await page.textContent('#drift-warning'),
      /camera view has drifted from the examples: \d+% of the last \d+ frames look unlike them/,
      'the drift warning says what and what to do',
    );
    t.equal(await page.getAttribute('#prediction-label', 'data-state'), 'unknown', 'and the live frames are Unknown');
    await page.click('#camera-toggle');
    await page.waitForSelector('#camera[data-live="false"]', { state: 'attached' });
    t.equal(await page.textContent('#camera-toggle'), 'Start camera', 'the camera stops');
  },
);

t.test('a head given to edgetl serve --head is in use when the page opens', { skip: browserSkip }, async (t) => {
  const backbone = await prepareServedBackbone(pageBackbone!, { download: false });
  const dim = backbone.embeddingDim;
  const head = await trainHead(
    [
      new Float32Array(dim).fill(1),
      new Float32Array(dim).fill(-1),
      new Float32Array(dim).fill(0.9),
      new Float32Array(dim).fill(-0.9),
    ],
    ['day', 'night', 'day', 'night'],
    {
      type: 'prototype',
      backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: dim, preprocess: backbone.preprocess },
    },
  );
  const { server } = await startServer(pageBackbone!, { backbone, headJson: head.serialize() });
  const browser = await launchChromium('wasm');
  t.teardown(async () => {
    await browser.close();
    await server.close();
  });
  await browser.page.goto(server.url);
  await browser.page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
  t.equal(await browser.page.getAttribute('body', 'data-head'), 'ready', 'the served head is loaded');
  t.match(
    await browser.page.textContent('#train-status'),
    /served prototype head: day, night/,
    'and named in the status',
  );
  t.equal(await browser.page.isDisabled('#export-head'), false, 'it can be exported');
});

t.test('keyboard only: name a class, add photos, train', { skip: photosSkip }, async (t) => {
  const { server } = await startServer(pageBackbone!);
  const browser = await launchChromium('wasm');
  t.teardown(async () => {
    await browser.close();
    await server.close();
  });
  const page = browser.page;
  await page.goto(`${server.url}?ep=wasm`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
  // Listening from the start turns on Playwright's file-chooser interception before any key is pressed (enabling it
  // inside Promise.all races the key press, and a chooser opened before interception blocks the next ones).
  const choosers: import('playwright-core').FileChooser[] = [];
  page.on('filechooser', (chooser) => choosers.push(chooser));
  const nextChooser = async () => {
    for (let waited = 0; choosers.length === 0 && waited < 10_000; waited += 50)
      await new Promise((r) => setTimeout(r, 50));
    const chooser = choosers.shift();
    if (!chooser) throw new Error('no file chooser opened');
    return chooser;
  };
  const focused = () =>
    page.evaluate(() => {
      const e = document.activeElement as HTMLElement;
      return e.getAttribute('aria-label') || e.id || e.textContent?.trim() || e.tagName;
    });
  // Tab from the top: skip link, add class, then the first class's name field.
  const stops: string[] = [];
  for (let i = 0; i < 4; i++) {
    await page.keyboard.press('Tab');
    stops.push(await focused());
  }
  t.same(
    stops,
    ['Skip to predictions', 'add-class', 'class-name-0', 'Add photos to Class 1'],
    'focus order: skip link, add class, class name, its Add photos',
  );
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('ants');
  await page.keyboard.press('Tab');
  for (const [index, label] of [
    [0, 'ants'],
    [1, 'bees'],
  ] as const) {
    if (index === 1) {
      // From the first class's Add photos: Clear, Remove class, then the second class's name.
      for (let i = 0; i < 3; i++) await page.keyboard.press('Tab');
      t.equal(await focused(), 'class-name-1', 'Tab walks on to the next class');
      await page.keyboard.press('Control+A');
      await page.keyboard.type('bees');
      await page.keyboard.press('Tab');
    }
    t.equal(await focused(), `Add photos to ${label}`, `the Add photos control names its class (${label})`);
    await page.keyboard.press('Enter');
    await (await nextChooser()).setFiles(files('train', label, 0, 2));
    await waitForCount(page, index, 2);
  }
  await page.focus('#train-button');
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-head="ready"]', { timeout: 60_000 });
  t.pass('Enter on Train trains');
  t.equal(await page.getAttribute('.prediction', 'aria-live'), 'polite', 'predictions are announced (aria-live)');
  t.equal(await page.getAttribute('#train-status', 'aria-live'), 'polite', 'training status is announced');
});
