import t from 'tap';
import { mkdtemp, rm, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { startCommand, defaultStartFolder } from '../../src/cli/start.js';
import { repoRoot, sharedModel } from '../helpers/shared.js';
import { captureOutput } from '../helpers/capture-output.js';

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
      await sharp({ create: { width: 160 + i * 7, height: 120 + i * 5, channels: 3, background } }).jpeg().toFile(join(root, label, `${i}.jpg`));
    }
  }
  return root;
}

t.test('start trains a head, predicts photos of each class, and stops before serving with --no-serve', { skip: mobilenet.skip }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-start-'));
  const saved = { cache: process.env.EDGETL_CACHE_DIR, models: process.env.EDGETL_MODEL_PATH };
  process.env.EDGETL_CACHE_DIR = join(root, 'cache');
  process.env.EDGETL_MODEL_PATH = join(mobilenet.path!, '..');
  t.teardown(async () => {
    for (const [key, value] of [['EDGETL_CACHE_DIR', saved.cache], ['EDGETL_MODEL_PATH', saved.models]] as const) {
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
});

t.test('start without a folder and without shared data says where it looked', async (t) => {
  const saved = process.env.EDGETL_DATA_PATH;
  const empty = await mkdtemp(join(tmpdir(), 'edgetl-start-empty-'));
  t.teardown(async () => {
    if (saved === undefined) delete process.env.EDGETL_DATA_PATH;
    else process.env.EDGETL_DATA_PATH = saved;
    await rm(empty, { recursive: true, force: true });
  });
  process.env.EDGETL_DATA_PATH = empty;
  const found = defaultStartFolder();
  t.ok(found.looked[0]!.startsWith(empty), 'EDGETL_DATA_PATH is looked in first');
  t.ok(found.looked.every((p) => p.endsWith(join('datasets', 'hymenoptera', 'train'))));
  if (!found.dir) await t.rejects(capture([]), /no default dataset found/);
});

t.test('npm start serves the kiosk app with the head it trained', { skip: mobilenet.skip }, async (t) => {
  // The real main job, as the README runs it: the built CLI, then the page answers on the printed URL.
  const cache = await mkdtemp(join(tmpdir(), 'edgetl-start-serve-'));
  const train = await makeTwoClassFolder(join(cache, 'photos', 'train'), 4);
  await makeTwoClassFolder(join(cache, 'photos', 'val'), 2);
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'start', train, '--port', '0', '--ep', 'cpu'], {
    env: { ...process.env, EDGETL_CACHE_DIR: join(cache, 'cache'), EDGETL_MODEL_PATH: join(mobilenet.path!, '..') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(async () => {
    child.kill('SIGTERM');
    await rm(cache, { recursive: true, force: true });
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
  const page = await fetch(url);
  t.equal(page.status, 200, 'the kiosk page is served');
  t.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin', 'with the isolation headers');
  t.match(await page.text(), /<html/i);
  t.match(output, /head .*start\/head\.json/, 'it serves the head it trained');
});
