import { loadHead } from '../head-io.js';
import { type DriftReport, driftReport } from '../../core/heads/drift.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, parseCommandLine, printJson } from './common.js';
import { backboneFlagsHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, fieldEmbeddings, printHeadWarnings, shortPath } from './head-shared.js';

const driftOptions = { ...backboneRunOptions, head: { type: 'string' } } as const;

/** The JSON form of a drift report (`drift --json`, the `predict --json` summary, `eval --json`). */
export function driftJson(report: DriftReport) {
  return {
    rows: report.rows,
    overThreshold: report.overThreshold,
    expectedOverThreshold: report.expectedOverThreshold,
    threshold: report.threshold,
    meanOutlierScore: report.meanOutlierScore,
    trainingMeanOutlierScore: report.trainingMeanOutlierScore,
    trainingStdOutlierScore: report.trainingStdOutlierScore,
    shift: report.shift,
    drifted: report.drifted,
  };
}

export const driftCommand: Command = {
  name: 'drift',
  summary: "compare a batch of field photos with a head's training data: share unlike it, outlier scores",
  help: `Usage: edgetl drift <dir|embeddings-prefix> --head head.json [--backbone <id|path>] [--json]

Embeds a folder of field photos (flat or class folders; labels are not used), or reads an embedding set, and
compares it with the data the head was trained on, through the head's outlier scores: the share of photos over
the head's outlier threshold against the share of the head's own photos (its reject rate), and the mean outlier
score against the training photos' (out-of-fold) mean. "drifted" is true when clearly more of the batch is over the
threshold than the training rate allows (three binomial standard errors, and at least twice the rate).
Exit code 0 either way; 1 for errors. \`edgetl adapt\` re-estimates a head's feature statistics on such a batch.

With --json, stdout is one object:
  {"head","input","rows","overThreshold","expectedOverThreshold","threshold","meanOutlierScore",
   "trainingMeanOutlierScore","trainingStdOutlierScore","shift","drifted","skipped"}

${backboneFlagsHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, driftOptions);
    if (positionals.length !== 1)
      throw new EdgetlError(
        'usage',
        positionals.length === 0
          ? 'missing <dir|embeddings-prefix>: the field photos to compare'
          : `expected one folder or embedding set, got ${positionals.length}`,
      );
    if (!values.head) throw new EdgetlError('usage', 'missing --head <head.json>');
    const head = await loadHead(values.head);
    printHeadWarnings(head);
    if (!head.openSet)
      throw new EdgetlError(
        'head-type',
        `${values.head} has no open-set data (a version 1 file), so drift cannot be measured: retrain it with this edgetl`,
        { file: values.head },
      );
    const backbone = new LazyBackbone(values, head.backbone.id);
    try {
      const field = await fieldEmbeddings(positionals[0]!, head, backbone, values, 'field photos');
      const report = driftReport(head, field.embeddings, field.rows)!;
      if (values.json) {
        printJson({ head: values.head, input: positionals[0], ...driftJson(report), skipped: field.skipped });
        return 0;
      }
      process.stdout.write(
        `${shortPath(positionals[0]!)}: ${field.rows} photo(s) against ${shortPath(values.head)}: ${report.summary}\n`,
      );
      if (field.skipped.length > 0)
        process.stdout.write(`  ${field.skipped.length} unusable image(s) skipped (listed with --json)\n`);
      return 0;
    } finally {
      await backbone.close();
    }
  },
};
