/** Fixtures for the head verbs' CLI tests: solid-colour class folders and the tiny test backbone. */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Command } from '../../../src/node/cli/common.js';
import { tinyClassifier } from '../embed/tiny-backbone.js';
import { Random } from '../../../src/core/heads/random.js';
import { captureOutput } from '../../helpers/capture-output.js';

/** Run a command in-process, capturing stdout and stderr; EdgetlErrors come back as `error`. */
export async function run(
  command: Command,
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string; error?: Error }> {
  const output = { stdout: '', stderr: '' };
  try {
    const { result, stdout, stderr } = await captureOutput(() => command.run(argv), output);
    return { code: result, stdout, stderr };
  } catch (error) {
    return { code: -1, stdout: output.stdout, stderr: output.stderr, error: error as Error };
  }
}

export const COLOURS: Record<string, [number, number, number]> = {
  red: [200, 30, 30],
  green: [30, 200, 30],
  blue: [30, 30, 200],
};

/** `<root>/<name>/<class>/<i>.png`: solid colours jittered around each class colour (seeded). */
export async function colourFolder(
  root: string,
  name: string,
  perClass: Record<string, number>,
  seed: number,
): Promise<string> {
  const random = new Random(seed);
  const dir = join(root, name);
  for (const [label, count] of Object.entries(perClass)) {
    await mkdir(join(dir, label), { recursive: true });
    const base = COLOURS[label] ?? [128, 128, 128];
    for (let i = 0; i < count; i++) {
      const jitter = () => Math.round((random.next() - 0.5) * 60);
      const background = {
        r: Math.max(0, Math.min(255, base[0] + jitter())),
        g: Math.max(0, Math.min(255, base[1] + jitter())),
        b: Math.max(0, Math.min(255, base[2] + jitter())),
      };
      await sharp({ create: { width: 12, height: 10, channels: 3, background } })
        .png()
        .toFile(join(dir, label, `${i}.png`));
    }
  }
  return dir;
}

export interface Workspace {
  root: string;
  model: string;
  /** The same graph at another input size: a different backbone (other sha256) with the same 3-d embedding. */
  otherModel: string;
}

const savedCacheDir = process.env.EDGETL_CACHE_DIR;

export async function workspace(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), `edgetl-${prefix}-`));
  t.teardown(async () => {
    await rm(root, { recursive: true, force: true });
    if (savedCacheDir === undefined) delete process.env.EDGETL_CACHE_DIR;
    else process.env.EDGETL_CACHE_DIR = savedCacheDir;
  });
  process.env.EDGETL_CACHE_DIR = join(root, 'cache');
  const model = join(root, 'tiny.onnx');
  await writeFile(model, tinyClassifier());
  const otherModel = join(root, 'tiny-other.onnx');
  await writeFile(otherModel, tinyClassifier({ size: 16 }));
  return { root, model, otherModel };
}
