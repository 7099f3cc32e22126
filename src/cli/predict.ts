import { existsSync, statSync } from 'node:fs';
import { loadHead } from '../head-io.js';
import { Classifier } from '../classifier.js';
import { adaptedBackboneOptions } from '../fine-tune.js';
import { scanImageFolder } from '../embed/dataset.js';
import { DEFAULT_BATCH_SIZE } from '../embed/pipeline.js';
import { EdgetlError } from '../util/errors.js';
import { type Command, parseCommandLine, parseNumberOption, printJson, ProgressBar } from './common.js';
import { embedRunHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, shortPath } from './head-shared.js';

const predictOptions = { ...backboneRunOptions, head: { type: 'string' }, 'top-k': { type: 'string' } } as const;

export const predictCommand: Command = {
  name: 'predict',
  summary: 'label images with a trained head (one JSON line per image with --json)',
  help: `Usage: edgetl predict <image|dir>... --head head.json [--backbone <id|path>] [--top-k 3] [--json]

Embeds each image (folders: every image in them, class folders or flat) and prints the head's label and
calibrated probability. A prediction below the head's rejection threshold is "unknown". The backbone defaults to
the one the head names; a backbone whose sha256 differs from the head's is refused.

With --json, one line per image: {"path","label","score","topK":[{"label","score"}]}
and for an unusable image {"path","error"} (the exit code is then 1).

${embedRunHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, predictOptions);
    if (positionals.length === 0) throw new EdgetlError('usage', 'missing <image|dir>: the images to label');
    if (!values.head) throw new EdgetlError('usage', 'missing --head <head.json>');
    const topK = parseNumberOption(values['top-k'], 'top-k', 3, { integer: true, min: 1, max: 1000 });
    const head = await loadHead(values.head);
    const paths: string[] = [];
    for (const input of positionals) {
      if (!existsSync(input)) throw new EdgetlError('not-found', `image ${input} does not exist`, { file: input });
      if (statSync(input).isDirectory()) paths.push(...(await scanImageFolder(input)).items.map((i) => i.path));
      else paths.push(input);
    }
    const lazy = new LazyBackbone(values, head.backbone.id, adaptedBackboneOptions(head));
    const backbone = await lazy.open();
    try {
      const classifier = await Classifier.load({ backbone, head });
      const bar = new ProgressBar('predicting', values.json !== true && process.stderr.isTTY === true);
      const { predictions, skipped } = await classifier.classifyMany(paths, {
        topK,
        strict: values.strict === true,
        useCache: values['no-cache'] !== true,
        batchSize: parseNumberOption(values.batch, 'batch', DEFAULT_BATCH_SIZE, { integer: true, min: 1, max: 4096 }),
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.finish();
      const byInput = new Map(predictions.map((p) => [p.input, p]));
      const errors = new Map(skipped.map((s) => [s.input, s.reason]));
      const width = Math.max(...paths.map((p) => shortPath(p).length));
      paths.forEach((path, i) => {
        const p = byInput.get(i);
        if (values.json) {
          printJson(p ? { path, label: p.label, score: p.score, topK: p.topK } : { path, error: errors.get(i) ?? 'not embedded' });
        } else if (p) {
          const rest = p.topK.slice(1).map((k) => `${k.label} ${(100 * k.score).toFixed(1)}%`).join(', ');
          const top = p.rejected ? `unknown (best ${p.topK[0].label} ${(100 * p.score).toFixed(1)}%)` : `${p.label} ${(100 * p.score).toFixed(1)}%`;
          process.stdout.write(`${shortPath(path).padEnd(width)}  ${top}${rest ? `   (${rest})` : ''}\n`);
        } else {
          process.stderr.write(`${shortPath(path)}: skipped: ${errors.get(i)}\n`);
        }
      });
      return skipped.length > 0 ? 1 : 0;
    } finally {
      await lazy.close();
    }
  },
};
