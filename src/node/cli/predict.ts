import { existsSync, statSync } from 'node:fs';
import { loadHead } from '../head-io.js';
import { Classifier } from '../classifier.js';
import type { Head, Prediction } from '../../core/heads/head.js';
import { adaptedBackboneOptions } from '../fine-tune.js';
import { scanImageFolder } from '../embed/dataset.js';
import { EdgetlError } from '../../core/util/errors.js';
import { driftJson } from './drift.js';
import { type Command, parseCommandLine, parseNumberOption, printJson, ProgressBar, terminalSafe } from './common.js';
import { backboneFlagsHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, printHeadWarnings, shortPath } from './head-shared.js';
import { driftReport } from '../../core/heads/drift.js';
import { predictionJson } from '../../core/heads/head.js';

const predictOptions = {
  ...backboneRunOptions,
  head: { type: 'string', multiple: true },
  'top-k': { type: 'string' },
} as const;

function describePrediction(p: Prediction): string {
  if (!p.rejected) return `${p.label} ${(100 * p.score).toFixed(1)}%`;
  const why = p.reason === 'outlier' ? 'not like the training photos' : 'low confidence';
  return `unknown (${why}; closest ${p.closest} ${(100 * p.score).toFixed(1)}%)`;
}

type PredictValues = ReturnType<typeof parseCommandLine<typeof predictOptions>>['values'];

/** One head's share of the summary: its unknown count and the batch's drift from its training data. */
interface HeadSummary {
  head: string;
  unknown: number;
  drift: ReturnType<typeof driftReport> | undefined;
}

/** Every image named, folders expanded (class folders or flat); a missing path is refused before any work. */
async function predictionInputs(positionals: string[]): Promise<string[]> {
  const paths: string[] = [];
  for (const input of positionals) {
    if (!existsSync(input)) throw new EdgetlError('not-found', `image ${input} does not exist`, { file: input });
    if (statSync(input).isDirectory()) paths.push(...(await scanImageFolder(input)).items.map((i) => i.path));
    else paths.push(input);
  }
  return paths;
}

/** One image's line: JSON, one head's label with its top-k and outlier score, or every head's side by side. */
function printPrediction(
  path: string,
  shown: string,
  width: number,
  predictions: Prediction[] | undefined,
  error: string | undefined,
  headFiles: string[],
  json: boolean,
): void {
  const p = predictions?.[0];
  const several = headFiles.length > 1;
  if (json) {
    if (!predictions || !p) printJson({ path, error: error ?? 'not embedded' });
    else if (several)
      printJson({
        path,
        heads: predictions.map((prediction, h) => ({ head: headFiles[h], ...predictionJson(prediction) })),
      });
    else printJson({ path, ...predictionJson(p) });
  } else if (predictions && p && several) {
    const perHead = terminalSafe(
      predictions.map((prediction, h) => `${shortPath(headFiles[h])}: ${describePrediction(prediction)}`).join('   '),
    );
    process.stdout.write(`${shown.padEnd(width)}  ${perHead}\n`);
  } else if (p) {
    const rest = p.topK
      .slice(1)
      .map((k) => `${k.label} ${(100 * k.score).toFixed(1)}%`)
      .join(', ');
    const outlier = p.outlierScore === undefined ? '' : `  outlier ${p.outlierScore.toFixed(3)}`;
    process.stdout.write(
      `${shown.padEnd(width)}  ${terminalSafe(`${describePrediction(p)}${outlier}${rest ? `   (${rest})` : ''}`)}\n`,
    );
  } else {
    process.stderr.write(`${shown}: skipped: ${terminalSafe(error ?? 'not embedded')}\n`);
  }
}

/** The last line: each head's unknown count and drift (JSON: the first head's, and with several, each head's). */
function printSummary(perHead: HeadSummary[], count: number, skipped: number, json: boolean): void {
  const several = perHead.length > 1;
  const first = perHead[0]!;
  if (json) {
    const summary = {
      count,
      unknown: first.unknown,
      skipped,
      drift: first.drift ? driftJson(first.drift) : null,
    };
    const headsSummary = several
      ? {
          heads: perHead.map((s) => ({
            head: s.head,
            unknown: s.unknown,
            drift: s.drift ? driftJson(s.drift) : null,
          })),
        }
      : {};
    printJson({ summary: { ...summary, ...headsSummary } });
    return;
  }
  for (const s of perHead) {
    const label = several ? `${shortPath(s.head)}: ` : '';
    process.stdout.write(
      terminalSafe(
        `${label}${count} photo(s): ${s.unknown} unknown${skipped ? `, ${skipped} skipped` : ''}${s.drift ? `; ${s.drift.summary}` : ''}`,
      ) + '\n',
    );
  }
}

/** Every image classified by every head from one embedding pass, each printed in input order, then the summary. */
async function classifyAndPrint(
  classifier: Classifier,
  heads: Head[],
  headFiles: string[],
  paths: string[],
  values: PredictValues,
  topK: number,
  batchSize: number,
): Promise<number> {
  const bar = new ProgressBar('predicting', values.json !== true && process.stderr.isTTY === true);
  const { images, skipped, embeddings } = await classifier.classifyManyByHeads(paths, {
    topK,
    strict: values.strict === true,
    useCache: values['no-cache'] !== true,
    batchSize,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.finish();
  const byInput = new Map(images.map((c) => [c.input, c.predictions]));
  const errors = new Map(skipped.map((s) => [s.input, s.reason]));
  const shown = paths.map((p) => terminalSafe(shortPath(p)));
  const width = Math.max(...shown.map((p) => p.length));
  paths.forEach((path, i) => {
    printPrediction(path, shown[i]!, width, byInput.get(i), errors.get(i), headFiles, values.json === true);
  });
  // The summary: each head's unknown count and drift over the photos that were embedded.
  const perHead = heads.map((head, h) => {
    const unknown = images.filter((c) => c.predictions[h]!.rejected).length;
    const drift = embeddings.rows > 0 ? driftReport(head, embeddings.data, embeddings.rows) : undefined;
    return { head: headFiles[h]!, unknown, drift };
  });
  printSummary(perHead, images.length, skipped.length, values.json === true);
  return skipped.length > 0 ? 1 : 0;
}

export const predictCommand: Command = {
  name: 'predict',
  summary: 'label images with a trained head (one JSON line per image with --json)',
  help: `Usage: edgetl predict <image|dir>... --head head.json [--head other.json ...] [--backbone <id|path>] [--top-k 3] [--json]

Embeds each image (folders: every image in them, class folders or flat) and prints the head's label and
calibrated probability. A photo unlike the head's training data (outlier score above the head's threshold) is
"unknown", with the closest known class beside it. The backbone defaults to the one the head names; a backbone
whose sha256 differs from the head's is refused. A last line (a summary) says how many were unknown and whether
the batch as a whole has drifted from the training data (see \`edgetl drift\`).

Several --head files: each image is embedded once and every head predicts from that one embedding. The heads
must share a backbone (same sha256, embedding size and preprocessing); heads that need different backbones are
refused.

With --json, one line per image:
  {"path","label","closest","score","outlierScore","rejected","reason","topK":[{"label","score"}]}
("label" is the class or "unknown"; "closest" the best known class, always; "outlierScore" is higher for photos
less like the training data, absent for version 1 heads; "reason" "outlier" or "low-confidence" when rejected),
with several heads: {"path","heads":[{"head":"<file as given>","label","closest",...}, ...]} in --head order,
for an unusable image {"path","error"} (the exit code is then 1), and a last line
  {"summary":{"count","unknown","skipped","drift":{"overThreshold","expectedOverThreshold","meanOutlierScore",
   "trainingMeanOutlierScore","shift","drifted"} | null}}
(with several heads, "unknown" and "drift" are the first head's and "heads" lists each head's).

${backboneFlagsHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, predictOptions);
    if (positionals.length === 0) throw new EdgetlError('usage', 'missing <image|dir>: the images to label');
    const headFiles = values.head ?? [];
    if (headFiles.length === 0) throw new EdgetlError('usage', 'missing --head <head.json>');
    const topK = parseNumberOption(values['top-k'], 'top-k', 3, { integer: true, min: 1, max: 1000 });
    const heads = await Promise.all(headFiles.map((file) => loadHead(file)));
    heads.forEach((head) => printHeadWarnings(head));
    // Before any backbone is opened: a mismatch is the user's to fix, not something to find after loading a model.
    Classifier.checkShareable(heads, headFiles);
    const paths = await predictionInputs(positionals);
    if (heads.length > 1 && heads.some((head) => head.adaptedBlock)) {
      throw new EdgetlError(
        'usage',
        `${headFiles[heads.findIndex((head) => head.adaptedBlock)]} has a fine-tuned last block, which needs its own backbone pass: predict with it alone`,
      );
    }
    const lazy = new LazyBackbone(values, heads[0].backbone.id, adaptedBackboneOptions(heads[0]));
    const backbone = await lazy.open();
    try {
      const classifier = await Classifier.load({ backbone, heads });
      return await classifyAndPrint(classifier, heads, headFiles, paths, values, topK, lazy.batchSize);
    } finally {
      await lazy.close();
    }
  },
};
