import { existsSync } from 'node:fs';
import { join, resolve, basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgetlError } from '../util/errors.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { DEFAULT_BACKBONE_ID } from '../models/catalog.js';
import { scanImageFolder } from '../embed/dataset.js';
import { type Command, parseCommandLine, parseNumberOption } from './common.js';
import { trainCommand } from './train.js';
import { predictCommand } from './predict.js';
import { serveCommand } from './serve.js';

const DEFAULT_DATASET = join('datasets', 'hymenoptera');

/** Where a shared data folder may be: EDGETL_DATA_PATH, then ../shared beside the working folder and the package. */
function sharedRoots(): string[] {
  const roots: string[] = [];
  if (process.env.EDGETL_DATA_PATH) roots.push(resolve(process.env.EDGETL_DATA_PATH));
  roots.push(resolve(process.cwd(), '..', 'shared'));
  // Beside the package: dist/cli.js is one folder below its root, src/cli/start.ts two.
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of [['..', '..'], ['..', '..', '..']]) roots.push(resolve(here, ...up, 'shared'));
  return [...new Set(roots)];
}

export function defaultStartFolder(): { dir?: string; looked: string[] } {
  const looked = sharedRoots().map((root) => join(root, DEFAULT_DATASET, 'train'));
  return { dir: looked.find((dir) => existsSync(dir)), looked };
}

/**
 * Adds a shared models folder (../shared/models) to EDGETL_MODEL_PATH for this process, so the demo finds the
 * default backbone offline. The variable is how every verb below (train, predict, serve) resolves backbones.
 */
function addSharedModelsToSearchPath(): void {
  const entries = (process.env.EDGETL_MODEL_PATH ?? '').split(':').filter(Boolean);
  for (const root of sharedRoots()) {
    const models = join(root, 'models');
    if (existsSync(models) && !entries.includes(models)) entries.push(models);
  }
  if (entries.length > 0) process.env.EDGETL_MODEL_PATH = entries.join(':');
}

/** `<dir>/../val` when `<dir>` is a `train` folder with a `val` sibling. */
function siblingValidationFolder(trainDir: string): string | undefined {
  const absolute = resolve(trainDir);
  if (basename(absolute) !== 'train') return undefined;
  const val = join(dirname(absolute), 'val');
  return existsSync(val) ? val : undefined;
}

/** A few photos per class to show predictions on: from the validation folder when there is one. */
async function samplePhotos(dir: string, perClass: number): Promise<string[]> {
  const folder = await scanImageFolder(dir);
  const taken = new Map<string, number>();
  const chosen: string[] = [];
  for (const item of folder.items) {
    const label = item.label ?? '';
    const count = taken.get(label) ?? 0;
    if (count >= perClass) continue;
    taken.set(label, count + 1);
    chosen.push(item.path);
  }
  return chosen;
}

const options = {
  val: { type: 'string' },
  out: { type: 'string' },
  backbone: { type: 'string', short: 'b' },
  ep: { type: 'string' },
  type: { type: 'string' },
  port: { type: 'string' },
  'no-serve': { type: 'boolean' },
  debug: { type: 'boolean' },
} as const;

export const startCommand: Command = {
  name: 'start',
  summary: 'the main job: train a head on a labelled folder, predict held-out photos, serve the kiosk app with it',
  help: `Usage: edgetl start [<train-dir>] [--val <dir>] [--out head.json] [--backbone <id|path>] [--ep cpu|webgpu|cuda|auto]
                    [--type linear|mlp|prototype] [--port 8080] [--no-serve]

The whole edgetl loop in one command (this is \`npm start\`):
  1. train   a head on <train-dir> (class folders, <train-dir>/<class>/*.jpg) with the backbone
             (default ${DEFAULT_BACKBONE_ID}), validated on --val, or on <train-dir>/../val when <train-dir> is
             called train and has that sibling; the head goes to --out (default <cache>/start/head.json)
  2. predict two photos per class of the validation folder (or of <train-dir>) with the new head
  3. serve   the kiosk app with that head on http://127.0.0.1:<port>/ (until Ctrl-C); --no-serve stops after 2

Without <train-dir> it uses $EDGETL_DATA_PATH/${DEFAULT_DATASET}/train or ../shared/${DEFAULT_DATASET}/train.
Backbones are looked for on the usual search path (EDGETL_MODEL_PATH, ./models, the cache), then in ../shared/models.
Each step is a verb of its own, with more options: edgetl train --help, edgetl predict --help, edgetl serve --help.
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, options);
    if (positionals.length > 1) throw new EdgetlError('usage', `expected at most one folder, got ${positionals.length}: ${positionals.join(' ')}`);
    const port = parseNumberOption(values.port, 'port', 8080, { integer: true, min: 0, max: 65535 });
    let trainDir = positionals[0];
    if (trainDir === undefined) {
      const found = defaultStartFolder();
      if (!found.dir) {
        throw new EdgetlError(
          'usage',
          `no folder given and no default dataset found. Looked for:\n${found.looked.map((p) => `  ${p}`).join('\n')}\n` +
            'Pass a folder of class folders (`edgetl start <dir>`, or `npm start -- <dir>`), or set EDGETL_DATA_PATH to the shared data folder.',
        );
      }
      trainDir = found.dir;
    }
    addSharedModelsToSearchPath();
    const valDir = values.val ?? siblingValidationFolder(trainDir);
    const headPath = resolve(values.out ?? join(edgetlCacheDir(), 'start', 'head.json'));
    const backboneFlags = [...(values.backbone ? ['--backbone', values.backbone] : []), ...(values.ep ? ['--ep', values.ep] : [])];

    process.stdout.write(`[1/3] edgetl train ${trainDir}${valDir ? ` --val ${valDir}` : ''}\n`);
    const trainArgs = [trainDir, '--out', headPath, ...backboneFlags, ...(valDir ? ['--val', valDir] : []), ...(values.type ? ['--head', values.type] : [])];
    const trained = await trainCommand.run(trainArgs);
    if (trained !== 0) return trained;

    const photos = await samplePhotos(valDir ?? trainDir, 2);
    process.stdout.write(`\n[2/3] edgetl predict (${photos.length} photos from ${valDir ?? trainDir}) --head ${headPath}\n`);
    const predicted = await predictCommand.run([...photos, '--head', headPath, ...backboneFlags]);
    if (predicted !== 0) return predicted;

    if (values['no-serve']) {
      process.stdout.write(`\nDone (--no-serve). Serve this head later with: edgetl serve --head ${headPath}\n`);
      return 0;
    }
    process.stdout.write(`\n[3/3] edgetl serve --head ${headPath}\n`);
    return serveCommand.run(['--head', headPath, '--port', String(port), ...(values.backbone ? ['--backbone', values.backbone] : [])]);
  },
};
