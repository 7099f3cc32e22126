import { loadHead } from '../head-io.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, inCliTerms, parseCommandLine, printJson, terminalSafe } from './common.js';
import { backboneFlagsHelp } from './embed.js';
import {
  LazyBackbone,
  backboneRunOptions,
  classificationJson,
  formatClassificationReport,
  labelledEmbeddings,
  printHeadWarnings,
  shortPath,
} from './head-shared.js';
import { driftJson } from './drift.js';
import { evaluateHead } from '../../core/heads/evaluate.js';
import { adaptedBackboneOptions } from '../fine-tune.js';

const evalOptions = { ...backboneRunOptions, head: { type: 'string' } } as const;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'score a head on a labelled folder or embedding set: accuracy, per-class results, confusion matrix',
  help: `Usage: edgetl eval <dir|embeddings-prefix> --head head.json [--backbone <id|path>] [--json]

Embeds a folder of class folders (through the embedding cache), or reads an embedding set, and scores the head.
The backbone defaults to the one the head names; a backbone whose sha256 differs from the head's is refused.
Classes the head does not know are refused. Photos the head rejects as unknown (unlike its training data) count
as wrong and appear in an "unknown" column; "closedSetAccuracy" gives the accuracy without rejection, and the open-set
figures beside it the share rejected, the accuracy on the accepted photos and the batch's drift (see \`edgetl drift\`).

With --json, stdout is one object:
  {"count","accuracy","balancedAccuracy","perClass":{"<label>":{"precision","recall","f1","support"}},
   "confusion":{"labels":[...],"matrix":[[...]]}, "logLoss","ece","rejected","closedSetAccuracy",
   "openSet":{"rejectedRate","acceptedAccuracy","threshold","drift":{...} | null}}
(matrix rows are true classes, columns predicted; with rejections "columns" adds "unknown").

${backboneFlagsHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, evalOptions);
    if (positionals.length !== 1)
      throw new EdgetlError(
        'usage',
        positionals.length === 0
          ? 'missing <dir|embeddings-prefix>: the labelled data to score'
          : `expected one folder or embedding set, got ${positionals.length}`,
      );
    if (!values.head) throw new EdgetlError('usage', 'missing --head <head.json>');
    const head = await loadHead(values.head);
    printHeadWarnings(head);
    const backbone = new LazyBackbone(values, head.backbone.id, adaptedBackboneOptions(head));
    try {
      if (backbone.explicit) {
        const given = await backbone.identify();
        if (given.sha256 !== head.backbone.sha256) {
          throw new EdgetlError(
            'head-backbone-mismatch',
            `${values.head} was trained on backbone ${head.backbone.id} (sha256 ${head.backbone.sha256.slice(0, 12)}...) but --backbone ${backbone.requested} is ${given.id} (sha256 ${given.sha256.slice(0, 12)}...): pass --backbone ${head.backbone.id} or retrain the head`,
            { file: values.head },
          );
        }
      }
      const data = await labelledEmbeddings(positionals[0]!, backbone, values, 'evaluation data');
      if (head.adaptedBlock && data.source === 'embeddings') {
        throw new EdgetlError(
          'usage',
          `${values.head} carries a fine-tuned last block, so it needs images (a folder of class folders), not the embedding set ${positionals[0]} made by the frozen backbone`,
        );
      }
      if (data.backbone.sha256 !== head.backbone.sha256) {
        throw new EdgetlError(
          'head-backbone-mismatch',
          `evaluation data ${positionals[0]} comes from backbone ${data.backbone.id} but ${values.head} was trained on ${head.backbone.id}: use embeddings of the head's backbone`,
        );
      }
      for (const warning of data.warnings) process.stderr.write(`note: ${terminalSafe(inCliTerms(warning))}\n`);
      const evaluation = evaluateHead(head, data, `evaluation data ${positionals[0]}`);
      const result = {
        ...classificationJson(evaluation.report, head.labels),
        logLoss: evaluation.metrics.logLoss,
        ece: evaluation.metrics.ece,
        rejected: evaluation.rejected,
        closedSetAccuracy: evaluation.closedSetAccuracy,
        openSet: {
          rejectedRate: evaluation.openSet.rejectedRate,
          acceptedAccuracy: evaluation.openSet.acceptedAccuracy,
          threshold: head.openSet?.threshold ?? null,
          drift: evaluation.openSet.drift ? driftJson(evaluation.openSet.drift) : null,
        },
        head: values.head,
        backbone: head.backbone.id,
        embedSeconds: Number(data.embedSeconds.toFixed(3)),
        skipped: data.skipped,
      };
      if (values.json) {
        printJson(result);
        return 0;
      }
      const lines = [
        `Evaluated ${shortPath(values.head)} (${head.type}, ${head.labels.length} classes) on ${data.labels.length} examples from ${shortPath(data.path)}`,
        `  closed set  accuracy ${(100 * evaluation.closedSetAccuracy).toFixed(1)}%  log loss ${evaluation.metrics.logLoss.toFixed(3)}  ECE ${evaluation.metrics.ece.toFixed(3)}`,
        `  open set    ${evaluation.rejected} rejected as unknown (${(100 * evaluation.openSet.rejectedRate).toFixed(1)}%), accuracy on the accepted ${(100 * evaluation.openSet.acceptedAccuracy).toFixed(1)}%; counting unknown as wrong: accuracy ${(100 * evaluation.report.accuracy).toFixed(1)}%, balanced ${(100 * evaluation.report.balancedAccuracy).toFixed(1)}%`,
        ...(evaluation.openSet.drift ? [`  drift       ${evaluation.openSet.drift.summary}`] : []),
      ].map((line) => terminalSafe(line));
      lines.push(
        '',
        formatClassificationReport(
          evaluation.report,
          head.labels.map((label) => terminalSafe(label)),
        ),
      );
      if (data.skipped.length > 0)
        lines.push('', `  ${data.skipped.length} unusable image(s) skipped (listed with --json)`);
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    } finally {
      await backbone.close();
    }
  },
};
