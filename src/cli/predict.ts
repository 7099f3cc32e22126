import { existsSync, statSync } from 'node:fs';
import { loadHead } from '../head-io.js';
import { Classifier } from '../classifier.js';
import type { Prediction } from '../heads/head.js';
import { scanImageFolder } from '../embed/dataset.js';
import { DEFAULT_BATCH_SIZE } from '../embed/pipeline.js';
import { EdgetlError } from '../util/errors.js';
import { type Command, parseCommandLine, parseNumberOption, printJson, ProgressBar, terminalSafe } from './common.js';
import { embedRunHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, shortPath } from './head-shared.js';

const predictOptions = { ...backboneRunOptions, head: { type: 'string', multiple: true }, 'top-k': { type: 'string' } } as const;

/** A prediction as a JSON line shows it: every field but the internal class index and the rejected flag. */
function predictionFields(prediction: Prediction): Omit<Prediction, 'index' | 'rejected'> {
  const { index: _index, rejected: _rejected, ...fields } = prediction;
  return fields;
}

function describePrediction(p: Prediction): string {
  return p.rejected ? `unknown (best ${p.topK[0].label} ${(100 * p.score).toFixed(1)}%)` : `${p.label} ${(100 * p.score).toFixed(1)}%`;
}

export const predictCommand: Command = {
  name: 'predict',
  summary: 'label images with a trained head (one JSON line per image with --json)',
  help: `Usage: edgetl predict <image|dir>... --head head.json [--head other.json ...] [--backbone <id|path>] [--top-k 3] [--json]

Embeds each image (folders: every image in them, class folders or flat) and prints the head's label and
calibrated probability. A prediction below the head's rejection threshold is "unknown". The backbone defaults to
the one the head names; a backbone whose sha256 differs from the head's is refused.

Several --head files: each image is embedded once and every head predicts from that one embedding. The heads
must share a backbone (same sha256, embedding size and preprocessing); heads that need different backbones are
refused.

With --json, one line per image: {"path","label","score","topK":[{"label","score"}]}
with several heads: {"path","heads":[{"head":"<file as given>","label","score","topK"}, ...]} in --head order,
and for an unusable image {"path","error"} (the exit code is then 1).

${embedRunHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, predictOptions);
    if (positionals.length === 0) throw new EdgetlError('usage', 'missing <image|dir>: the images to label');
    const headFiles = values.head ?? [];
    if (headFiles.length === 0) throw new EdgetlError('usage', 'missing --head <head.json>');
    const topK = parseNumberOption(values['top-k'], 'top-k', 3, { integer: true, min: 1, max: 1000 });
    const heads = await Promise.all(headFiles.map((file) => loadHead(file)));
    // Before any backbone is opened: a mismatch is the user's to fix, not something to find after loading a model.
    Classifier.checkShareable(heads, headFiles);
    const paths: string[] = [];
    for (const input of positionals) {
      if (!existsSync(input)) throw new EdgetlError('not-found', `image ${input} does not exist`, { file: input });
      if (statSync(input).isDirectory()) paths.push(...(await scanImageFolder(input)).items.map((i) => i.path));
      else paths.push(input);
    }
    const lazy = new LazyBackbone(values, heads[0].backbone.id);
    const backbone = await lazy.open();
    try {
      const classifier = await Classifier.load({ backbone, heads });
      const bar = new ProgressBar('predicting', values.json !== true && process.stderr.isTTY === true);
      const { images, skipped } = await classifier.classifyManyByHeads(paths, {
        topK,
        strict: values.strict === true,
        useCache: values['no-cache'] !== true,
        batchSize: parseNumberOption(values.batch, 'batch', DEFAULT_BATCH_SIZE, { integer: true, min: 1, max: 4096 }),
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.finish();
      const byInput = new Map(images.map((c) => [c.input, c.predictions]));
      const errors = new Map(skipped.map((s) => [s.input, s.reason]));
      const shown = paths.map((p) => terminalSafe(shortPath(p)));
      const width = Math.max(...shown.map((p) => p.length));
      const several = heads.length > 1;
      paths.forEach((path, i) => {
        const predictions = byInput.get(i);
        const p = predictions?.[0];
        if (values.json) {
          if (!predictions || !p) printJson({ path, error: errors.get(i) ?? 'not embedded' });
          else if (several) printJson({ path, heads: predictions.map((prediction, h) => ({ head: headFiles[h], ...predictionFields(prediction) })) });
          else printJson({ path, label: p.label, score: p.score, topK: p.topK });
        } else if (predictions && p && several) {
          const perHead = terminalSafe(predictions.map((prediction, h) => `${shortPath(headFiles[h])}: ${describePrediction(prediction)}`).join('   '));
          process.stdout.write(`${shown[i]!.padEnd(width)}  ${perHead}\n`);
        } else if (p) {
          const rest = p.topK.slice(1).map((k) => `${k.label} ${(100 * k.score).toFixed(1)}%`).join(', ');
          process.stdout.write(`${shown[i]!.padEnd(width)}  ${terminalSafe(`${describePrediction(p)}${rest ? `   (${rest})` : ''}`)}\n`);
        } else {
          process.stderr.write(`${shown[i]}: skipped: ${terminalSafe(errors.get(i) ?? 'not embedded')}\n`);
        }
      });
      return skipped.length > 0 ? 1 : 0;
    } finally {
      await lazy.close();
    }
  },
};
