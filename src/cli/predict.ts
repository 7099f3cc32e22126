import { existsSync, statSync } from 'node:fs';
import { loadHead } from '../head-io.js';
import { Classifier } from '../classifier.js';
import { scanImageFolder } from '../embed/dataset.js';
import { DEFAULT_BATCH_SIZE } from '../embed/pipeline.js';
import { EdgetlError } from '../util/errors.js';
import { driftJson } from './drift.js';
import { type Command, parseCommandLine, parseNumberOption, printJson, ProgressBar } from './common.js';
import { embedRunHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, printHeadWarnings, shortPath } from './head-shared.js';
import { driftReport } from '../heads/drift.js';
import { predictionJson } from '../heads/head.js';

const predictOptions = { ...backboneRunOptions, head: { type: 'string' }, 'top-k': { type: 'string' } } as const;

export const predictCommand: Command = {
  name: 'predict',
  summary: 'label images with a trained head (one JSON line per image with --json)',
  help: `Usage: edgetl predict <image|dir>... --head head.json [--backbone <id|path>] [--top-k 3] [--json]

Embeds each image (folders: every image in them, class folders or flat) and prints the head's label and
calibrated probability. A photo unlike the head's training data (outlier score above the head's threshold) is
"unknown", with the closest known class beside it. The backbone defaults to the one the head names; a backbone
whose sha256 differs from the head's is refused. A last line (a summary) says how many were unknown and whether
the batch as a whole has drifted from the training data (see \`edgetl drift\`).

With --json, one line per image:
  {"path","label","closest","score","outlierScore","rejected","reason","topK":[{"label","score"}]}
("label" is the class or "unknown"; "closest" the best known class, always; "outlierScore" is higher for photos
less like the training data, absent for version 1 heads; "reason" "outlier" or "low-confidence" when rejected),
for an unusable image {"path","error"} (the exit code is then 1), and a last line
  {"summary":{"count","unknown","skipped","drift":{"overThreshold","expectedOverThreshold","meanOutlierScore",
   "trainingMeanOutlierScore","shift","drifted"} | null}}

${embedRunHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, predictOptions);
    if (positionals.length === 0) throw new EdgetlError('usage', 'missing <image|dir>: the images to label');
    if (!values.head) throw new EdgetlError('usage', 'missing --head <head.json>');
    const topK = parseNumberOption(values['top-k'], 'top-k', 3, { integer: true, min: 1, max: 1000 });
    const head = await loadHead(values.head);
    printHeadWarnings(head);
    const paths: string[] = [];
    for (const input of positionals) {
      if (!existsSync(input)) throw new EdgetlError('not-found', `image ${input} does not exist`, { file: input });
      if (statSync(input).isDirectory()) paths.push(...(await scanImageFolder(input)).items.map((i) => i.path));
      else paths.push(input);
    }
    const lazy = new LazyBackbone(values, head.backbone.id);
    const backbone = await lazy.open();
    try {
      const classifier = await Classifier.load({ backbone, head });
      const bar = new ProgressBar('predicting', values.json !== true && process.stderr.isTTY === true);
      const { predictions, skipped, embeddings } = await classifier.classifyMany(paths, {
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
          printJson(p ? { path, ...predictionJson(p) } : { path, error: errors.get(i) ?? 'not embedded' });
        } else if (p) {
          const rest = p.topK.slice(1).map((k) => `${k.label} ${(100 * k.score).toFixed(1)}%`).join(', ');
          const why = p.reason === 'outlier' ? 'not like the training photos' : 'low confidence';
          const top = p.rejected ? `unknown (${why}; closest ${p.closest} ${(100 * p.score).toFixed(1)}%)` : `${p.label} ${(100 * p.score).toFixed(1)}%`;
          const outlier = p.outlierScore === undefined ? '' : `  outlier ${p.outlierScore.toFixed(3)}`;
          process.stdout.write(`${shortPath(path).padEnd(width)}  ${top}${outlier}${rest ? `   (${rest})` : ''}\n`);
        } else {
          process.stderr.write(`${shortPath(path)}: skipped: ${errors.get(i)}\n`);
        }
      });
      const unknown = predictions.filter((p) => p.rejected).length;
      const drift = embeddings.rows > 0 ? driftReport(head, embeddings.data, embeddings.rows) : undefined;
      if (values.json) {
        printJson({ summary: { count: predictions.length, unknown, skipped: skipped.length, drift: drift ? driftJson(drift) : null } });
      } else {
        process.stdout.write(`${predictions.length} photo(s): ${unknown} unknown${skipped.length ? `, ${skipped.length} skipped` : ''}${drift ? `; ${drift.summary}` : ''}\n`);
      }
      return skipped.length > 0 ? 1 : 0;
    } finally {
      await lazy.close();
    }
  },
};
