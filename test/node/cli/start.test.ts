import t, { type Test } from 'tap';
import { mkdtemp, rm, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { startCommand, defaultStartFolder } from '../../../src/node/cli/start.js';
import { repoRoot, sharedModel } from '../../helpers/shared.js';
import { captureOutput } from '../../helpers/capture-output.js';

const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');

async function capture(argv: string[]): Promise<{ code: number; stdout: string }> {
  const { result, stdout } = await captureOutput(() => startCommand.run(argv));
  return { code: result, stdout };
}

/** Two visibly different classes of small generated photos: reddish and bluish, with some texture. */
async function makeTwoClassFolder(root: string, perClass: number): Promise<string> {
  for (const [label, colour] of [
    ['red', { r: 200, g: 40, b: 30 }],
    ['blue', { r: 30, g: 60, b: 210 }],
  ] as const) {
    await mkdir(join(root, label), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const background = { r: Math.min(255, colour.r + i * 5), g: colour.g + i * 3, b: Math.max(0, colour.b - i * 4) };
      await sharp({ create: { width: 160 + i * 7, height: 120 + i * 5, channels: 3, background } })
        .jpeg()
        .toFile(join(root, label, `${i}.jpg`));
    }
  }
  return root;
}

t.test(
  'start trains a head, predicts photos of each class, and stops before serving with --no-serve',
  { skip: mobilenet.skip },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'edgetl-start-'));
    const saved = { cache: process.env.EDGETL_CACHE_DIR, models: process.env.EDGETL_MODEL_PATH };
    process.env.EDGETL_CACHE_DIR = join(root, 'cache');
    process.env.EDGETL_MODEL_PATH = join(mobilenet.path!, '..');
    t.teardown(async () => {
      for (const [key, value] of [
        ['EDGETL_CACHE_DIR', saved.cache],
        ['EDGETL_MODEL_PATH', saved.models],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      await rm(root, { recursive: true, force: true });
    });
    const train = await makeTwoClassFolder(join(root, 'photos', 'train'), 6);
    await makeTwoClassFolder(join(root, 'photos', 'val'), 3);

    const { code, stdout } = await capture([train, '--ep', 'cpu', '--no-serve']);
    t.equal(code, 0, 'exit code 0');
    t.match(stdout, /\[1\/3\] edgetl train .*--val .*photos\/val/, 'the val sibling of a train folder validates');
    t.match(stdout, /validation\s+6 examples/, 'the report covers the 6 validation photos');
    t.match(stdout, /\[2\/3\] edgetl predict \(4 photos/, 'two photos per class are predicted');
    t.match(stdout, /Done \(--no-serve\)/);
    const head = JSON.parse(await readFile(join(root, 'cache', 'start', 'head.json'), 'utf8'));
    t.equal(head.format, 'edgetl-head');
    t.same([...head.labels].sort(), ['blue', 'red']);
    const predictions = stdout.split('\n').filter((line) => /\.jpg\s+(red|blue) /.test(line));
    t.equal(predictions.length, 4, 'four prediction lines');
    for (const line of predictions) {
      const [, folder, predicted] = /\/(red|blue)\/\d+\.jpg\s+(red|blue) /.exec(line)!;
      t.equal(predicted, folder, `${line.trim().split(/\s+/)[0]} is predicted as its class`);
    }
  },
);

/** Sets environment variables for one test and restores them after it. */
function withEnv(t: Test, vars: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

t.test(
  'the sample dataset is looked for in EDGETL_DATA_PATH alone when set, else only beside the checkout',
  async (t) => {
    const empty = await mkdtemp(join(tmpdir(), 'edgetl-start-empty-'));
    t.teardown(() => rm(empty, { recursive: true, force: true }));
    withEnv(t, { EDGETL_DATA_PATH: empty });
    t.same(defaultStartFolder(), { dir: undefined, looked: [join(empty, 'datasets', 'hymenoptera', 'train')] });
    withEnv(t, { EDGETL_DATA_PATH: undefined });
    t.same(
      defaultStartFolder().looked,
      [join(repoRoot, '..', 'shared', 'datasets', 'hymenoptera', 'train')],
      "the checkout's parent only, never further up",
    );
  },
);

t.test(
  'start --no-serve without any dataset: the bundled backbone is ready, and it says how to teach or train',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'edgetl-start-nodata-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    withEnv(t, {
      EDGETL_DATA_PATH: join(root, 'no-data'),
      EDGETL_MODEL_PATH: undefined,
      EDGETL_CACHE_DIR: join(root, 'cache'),
    });
    const text = await capture(['--no-serve']);
    t.equal(text.code, 0);
    t.match(text.stdout, /no sample dataset found/);
    t.match(text.stdout, /Backbone mobilenetv2-12-int8 is ready/);
    t.match(
      text.stdout,
      new RegExp(`from ${join(repoRoot, 'models', 'mobilenetv2-12-int8.onnx').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      'the bundled copy',
    );
    t.match(text.stdout, /npm start -- <dir>/);
    const json = await capture(['--no-serve', '--json']);
    t.equal(json.code, 0);
    const lines = json.stdout.trim().split('\n');
    t.equal(lines.length, 1, 'with --json stdout holds only JSON');
    t.match(JSON.parse(lines[0]!), { dataset: null, backbone: { id: 'mobilenetv2-12-int8', embeddingDim: 1280 } });
  },
);

t.test('start --json: the train summary and one JSON line per prediction on stdout', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-start-json-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  withEnv(t, { EDGETL_CACHE_DIR: join(root, 'cache') });
  const train = await makeTwoClassFolder(join(root, 'photos', 'train'), 4);
  await makeTwoClassFolder(join(root, 'photos', 'val'), 2);
  const { code, stdout } = await capture([train, '--ep', 'cpu', '--no-serve', '--json']);
  t.equal(code, 0);
  const lines = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const predictions = lines.filter((line) => 'path' in line);
  t.equal(predictions.length, 4, 'four predictions');
  t.equal(lines.length, 6, "one training summary, four predictions and the predictions' summary");
  t.match(lines[0], { classes: ['blue', 'red'], valCount: 4 });
  t.match(lines[5], { summary: { count: 4 } });
  for (const line of predictions) t.match(line, { path: /\/(red|blue)\/\d+\.jpg$/, label: /^(red|blue)$/ });
});

/** Runs the built CLI's `start` and resolves with the kiosk URL it prints; the child is killed at teardown. */
async function startChild(
  t: Test,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; output: () => string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'start', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  let output = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 120 s; output so far:\n${output}`)), 120_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /edgetl kiosk: (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`start exited with ${code} before serving:\n${output}`)));
  });
  return { url, output: () => output };
}

t.test(
  'npm start on a fresh machine (no dataset, no EDGETL_MODEL_PATH) serves a teachable kiosk with the bundled backbone',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'edgetl-start-fresh-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: root,
      EDGETL_CACHE_DIR: join(root, 'cache'),
      EDGETL_DATA_PATH: join(root, 'no-data'),
    };
    delete env.EDGETL_MODEL_PATH;
    const { url, output } = await startChild(t, ['--port', '0'], env);
    t.match(output(), /npm start -- <dir>/, 'it says how to train from a folder');
    t.match(
      output(),
      /backbone mobilenetv2-12-int8 .*models\/mobilenetv2-12-int8\.onnx/,
      'it names the bundled backbone',
    );
    const config = (await (await fetch(new URL('api/config', url))).json()) as {
      backbone: { id: string; modelUrl: string; embeddingDim: number };
      headUrl?: string;
    };
    t.equal(config.backbone.id, 'mobilenetv2-12-int8');
    t.equal(config.backbone.embeddingDim, 1280);
    t.equal(config.headUrl, undefined, 'no head yet: the page is taught in the browser');
    const model = await fetch(new URL(config.backbone.modelUrl, url));
    t.equal(model.status, 200, 'the browser gets the model from this server');
    t.ok((await model.arrayBuffer()).byteLength > 1e6);
  },
);

t.test('npm start serves the kiosk app with the head it trained', { skip: mobilenet.skip }, async (t) => {
  // The real main job, as the README runs it: the built CLI, then the page answers on the printed URL.
  const cache = await mkdtemp(join(tmpdir(), 'edgetl-start-serve-'));
  t.teardown(() => rm(cache, { recursive: true, force: true }));
  const train = await makeTwoClassFolder(join(cache, 'photos', 'train'), 4);
  await makeTwoClassFolder(join(cache, 'photos', 'val'), 2);
  const env = {
    ...process.env,
    EDGETL_CACHE_DIR: join(cache, 'cache'),
    EDGETL_MODEL_PATH: join(mobilenet.path!, '..'),
  };
  const { url, output } = await startChild(t, [train, '--port', '0', '--ep', 'cpu'], env);
  const page = await fetch(url);
  t.equal(page.status, 200, 'the kiosk page is served');
  t.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin', 'with the isolation headers');
  t.match(await page.text(), /<html/i);
  t.match(output(), /head .*start\/head\.json/, 'it serves the head it trained');
});
