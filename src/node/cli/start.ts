import { existsSync } from 'node:fs';
import { join, resolve, basename, dirname } from 'node:path';
import { EdgetlError } from '../../core/util/errors.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { edgetlPackageRoot } from '../util/package-root.js';
import { DEFAULT_BACKBONE_ID } from '../../core/models/catalog.js';
import { scanImageFolder } from '../embed/dataset.js';
import { type Command, parseCommandLine, parseNumberOption, printJson } from './common.js';
import { trainCommand } from './train.js';
import { predictCommand } from './predict.js';
import { serveCommand } from './serve.js';
import { prepareServedBackbone } from '../server/kiosk-server.js';

const DEFAULT_DATASET = join('datasets', 'hymenoptera');

/**
 * Where the sample data may be: EDGETL_DATA_PATH when set (and then only there), else `shared/` in the folder that
 * holds this checkout (the checkout's parent, never further up).
 */
function sharedRoots(): string[] {
  if (process.env.EDGETL_DATA_PATH) return [resolve(process.env.EDGETL_DATA_PATH)];
  const root = edgetlPackageRoot();
  return root ? [resolve(root, '..', 'shared')] : [];
}

export function defaultStartFolder(): { dir?: string; looked: string[] } {
  const looked = sharedRoots().map((root) => join(root, DEFAULT_DATASET, 'train'));
  return { dir: looked.find((dir) => existsSync(dir)), looked };
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
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const;

const TRAIN_FROM_A_FOLDER = 'npm start -- <dir>   (or edgetl start <dir>; <dir>/<class>/*.jpg, one folder per class)';

export const startCommand: Command = {
  name: 'start',
  summary:
    'the main job: train a head on a labelled folder (or teach one in the kiosk app), predict, serve the kiosk app',
  help: `Usage: edgetl start [<train-dir>] [--val <dir>] [--out head.json] [--backbone <id|path>] [--ep cpu|webgpu|cuda|auto]
                    [--type linear|mlp|prototype] [--port 8080] [--no-serve] [--json]

The whole edgetl loop in one command (this is \`npm start\`):
  1. train   a head on <train-dir> (class folders, <train-dir>/<class>/*.jpg) with the backbone
             (default ${DEFAULT_BACKBONE_ID}, bundled), validated on --val, or on <train-dir>/../val when <train-dir>
             is called train and has that sibling; the head goes to --out (default <cache>/start/head.json)
  2. predict two photos per class of the validation folder (or of <train-dir>) with the new head
  3. serve   the kiosk app with that head on http://127.0.0.1:<port>/ (until Ctrl-C); --no-serve stops after 2

Without <train-dir> it trains on the sample dataset $EDGETL_DATA_PATH/${DEFAULT_DATASET}/train, or, when
EDGETL_DATA_PATH is not set, shared/${DEFAULT_DATASET}/train in the folder that holds this checkout. When there is
none, it serves the kiosk app with the backbone and no head, ready to be taught from the camera or from photo files
in the browser (--no-serve then only checks that the backbone is ready).

Backbones are found as by every verb: EDGETL_MODEL_PATH, ./models, the bundled models, the cache, then a download.
--json: the steps' JSON on stdout (train's summary, one line per prediction, serve's ready line); progress on stderr.
Each step is a verb of its own, with more options: edgetl train --help, edgetl predict --help, edgetl serve --help.
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, options);
    if (positionals.length > 1)
      throw new EdgetlError(
        'usage',
        `expected at most one folder, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    const port = parseNumberOption(values.port, 'port', 8080, { integer: true, min: 0, max: 65535 });
    const json = values.json === true;
    // With --json stdout carries only the steps' JSON; the narration goes to stderr.
    const say = (text: string) => (json ? process.stderr : process.stdout).write(text);
    const jsonFlag = json ? ['--json'] : [];
    const debugFlag = values.debug ? ['--debug'] : [];
    const backboneFlags = [
      ...(values.backbone ? ['--backbone', values.backbone] : []),
      ...(values.ep ? ['--ep', values.ep] : []),
    ];
    const serveArgs = (head?: string) => [
      ...(head ? ['--head', head] : []),
      '--port',
      String(port),
      ...(values.backbone ? ['--backbone', values.backbone] : []),
      ...jsonFlag,
      ...debugFlag,
    ];

    let trainDir = positionals[0];
    if (trainDir === undefined) {
      const found = defaultStartFolder();
      if (!found.dir) {
        const looked = found.looked.length ? ` (looked for ${found.looked.join(', ')})` : '';
        say(`No folder given and no sample dataset found${looked}.\n`);
        if (values['no-serve']) {
          const backbone = await prepareServedBackbone(values.backbone ?? DEFAULT_BACKBONE_ID);
          if (json)
            printJson({
              dataset: null,
              backbone: {
                id: backbone.id,
                sha256: backbone.sha256,
                embeddingDim: backbone.embeddingDim,
                path: backbone.path,
              },
            });
          say(
            `Backbone ${backbone.id} is ready (${backbone.embeddingDim}-d embedding, from ${backbone.path}).\n` +
              `Done (--no-serve). Teach it in the kiosk app: npm start (or edgetl serve); train from a folder: ${TRAIN_FROM_A_FOLDER}\n`,
          );
          return 0;
        }
        say(
          'Serving the kiosk app with no head: open the URL below, add example photos per class (camera or files), train in the page.\n' +
            `To train from a folder instead: ${TRAIN_FROM_A_FOLDER}\n\n`,
        );
        return serveCommand.run(serveArgs());
      }
      trainDir = found.dir;
    }
    const valDir = values.val ?? siblingValidationFolder(trainDir);
    const headPath = resolve(values.out ?? join(edgetlCacheDir(), 'start', 'head.json'));

    say(`[1/3] edgetl train ${trainDir}${valDir ? ` --val ${valDir}` : ''}\n`);
    const trainArgs = [
      trainDir,
      '--out',
      headPath,
      ...backboneFlags,
      ...(valDir ? ['--val', valDir] : []),
      ...(values.type ? ['--head', values.type] : []),
      ...jsonFlag,
      ...debugFlag,
    ];
    const trained = await trainCommand.run(trainArgs);
    if (trained !== 0) return trained;

    const photos = await samplePhotos(valDir ?? trainDir, 2);
    say(`\n[2/3] edgetl predict (${photos.length} photos from ${valDir ?? trainDir}) --head ${headPath}\n`);
    const predicted = await predictCommand.run([
      ...photos,
      '--head',
      headPath,
      ...backboneFlags,
      ...jsonFlag,
      ...debugFlag,
    ]);
    if (predicted !== 0) return predicted;

    if (values['no-serve']) {
      say(`\nDone (--no-serve). Serve this head later with: edgetl serve --head ${headPath}\n`);
      return 0;
    }
    say(`\n[3/3] edgetl serve --head ${headPath}\n`);
    return serveCommand.run(serveArgs(headPath));
  },
};
