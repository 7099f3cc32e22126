import { existsSync } from 'node:fs';
import { join, resolve, basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgetlError } from '../util/errors.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { modelSearchPath } from '../models/resolve.js';
import { DEFAULT_BACKBONE_ID } from '../models/catalog.js';
import { type Command, parseCommandLine, printJson } from './common.js';
import { embedRunOptions, embedRunHelp, runEmbedJob, jsonSummary, textSummary, checkOutPrefix } from './embed.js';

const DEFAULT_DATASET = join('datasets', 'hymenoptera', 'train');

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
  const looked = sharedRoots().map((root) => join(root, DEFAULT_DATASET));
  return { dir: looked.find((dir) => existsSync(dir)), looked };
}

/** The model search path, plus a shared models folder (../shared/models) when one is there and not already listed. */
function startSearchPath(): string[] {
  const path = modelSearchPath();
  for (const root of sharedRoots()) {
    const models = join(root, 'models');
    if (existsSync(models) && !path.includes(models)) path.push(models);
  }
  return path;
}

export const startCommand: Command = {
  name: 'start',
  summary: `the main job for now: embed a folder of images with the default backbone and print a summary`,
  help: `Usage: edgetl start [<dir>] [options]

Embeds <dir> (class folders or a flat folder of images) with the default backbone (${DEFAULT_BACKBONE_ID}) and prints
what ran where and how fast. Without <dir> it uses $EDGETL_DATA_PATH/${DEFAULT_DATASET} or ../shared/${DEFAULT_DATASET}.
Backbones are looked for on the usual search path (EDGETL_MODEL_PATH, ./models, the cache), then in ../shared/models.
The embedding set goes to --out <prefix>, by default <cache>/start/<folder name> (.npy + .json).
Later versions train a head and serve it from here.

${embedRunHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, embedRunOptions);
    if (positionals.length > 1) throw new EdgetlError('usage', `expected at most one folder, got ${positionals.length}: ${positionals.join(' ')}`);
    let dir = positionals[0];
    if (dir === undefined) {
      const found = defaultStartFolder();
      if (!found.dir) {
        throw new EdgetlError(
          'usage',
          `no folder given and no default dataset found. Looked for:\n${found.looked.map((p) => `  ${p}`).join('\n')}\n` +
            'Pass a folder of images (`edgetl start <dir>`, or `npm start -- <dir>`), or set EDGETL_DATA_PATH to the shared data folder.',
        );
      }
      dir = found.dir;
    }
    const name = `${basename(dirname(resolve(dir)))}-${basename(resolve(dir))}`;
    if (values.out !== undefined) checkOutPrefix(values.out);
    const out = values.out ?? join(edgetlCacheDir(), 'start', name);
    const report = await runEmbedJob({ dir, out, values, searchPath: startSearchPath() });
    if (values.json) {
      printJson(jsonSummary(report));
    } else {
      process.stdout.write(textSummary(report));
      process.stdout.write(`\nNext: \`edgetl embed <dir> --out <prefix>\` for your own images (see \`edgetl embed --help\`).\n`);
    }
    return 0;
  },
};
