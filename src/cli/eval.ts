import { loadHead } from '../head-io.js';
import { EdgetlError } from '../util/errors.js';
import { type Command, parseCommandLine, printJson } from './common.js';
import { embedRunHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, classificationJson, formatClassificationReport, labelledEmbeddings, shortPath } from './head-shared.js';
import { evaluateHead } from '../heads/evaluate.js';

const evalOptions = { ...backboneRunOptions, head: { type: 'string' } } as const;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'score a head on a labelled folder or embedding set: accuracy, per-class results, confusion matrix',
  help: `Usage: edgetl eval <dir|embeddings-prefix> --head head.json [--backbone <id|path>] [--json]

Embeds a folder of class folders (through the embedding cache), or reads an embedding set, and scores the head.
The backbone defaults to the one the head names; a backbone whose sha256 differs from the head's is refused.
Classes the head does not know are refused; predictions below the head's rejection threshold count as wrong
and appear in an "unknown" column ("closedSetAccuracy" gives the accuracy without rejection).

With --json, stdout is one object:
  {"count","accuracy","balancedAccuracy","perClass":{"<label>":{"precision","recall","f1","support"}},
   "confusion":{"labels":[...],"matrix":[[...]]}, "logLoss","ece","rejected"}
(matrix rows are true classes, columns predicted; with rejections "columns" adds "unknown").

${embedRunHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, evalOptions);
    if (positionals.length !== 1) throw new EdgetlError('usage', positionals.length === 0 ? 'missing <dir|embeddings-prefix>: the labelled data to score' : `expected one folder or embedding set, got ${positionals.length}`);
    if (!values.head) throw new EdgetlError('usage', 'missing --head <head.json>');
    const head = await loadHead(values.head);
    const backbone = new LazyBackbone(values, head.backbone.id);
    try {
      if (backbone.explicit) {
        const given = await backbone.identify();
        if (given.sha256 !== head.backbone.sha256) {
          throw new EdgetlError('head-backbone-mismatch', `${values.head} was trained on backbone ${head.backbone.id} (sha256 ${head.backbone.sha256.slice(0, 12)}...) but --backbone ${backbone.requested} is ${given.id} (sha256 ${given.sha256.slice(0, 12)}...): pass --backbone ${head.backbone.id} or retrain the head`, { file: values.head });
        }
      }
      const data = await labelledEmbeddings(positionals[0]!, backbone, values, 'evaluation data');
      if (data.backbone.sha256 !== head.backbone.sha256) {
        throw new EdgetlError('head-backbone-mismatch', `evaluation data ${positionals[0]} comes from backbone ${data.backbone.id} but ${values.head} was trained on ${head.backbone.id}: use embeddings of the head's backbone`);
      }
      const evaluation = evaluateHead(head, data, `evaluation data ${positionals[0]}`);
      const result = {
        ...classificationJson(evaluation.report, head.labels),
        logLoss: evaluation.metrics.logLoss,
        ece: evaluation.metrics.ece,
        rejected: evaluation.rejected,
        closedSetAccuracy: evaluation.closedSetAccuracy,
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
        `  accuracy ${(100 * evaluation.report.accuracy).toFixed(1)}%  balanced ${(100 * evaluation.report.balancedAccuracy).toFixed(1)}%  log loss ${evaluation.metrics.logLoss.toFixed(3)}  ECE ${evaluation.metrics.ece.toFixed(3)}${head.rejection ? `  rejected ${evaluation.rejected} (counted wrong; ${(100 * evaluation.closedSetAccuracy).toFixed(1)}% without rejection)` : ''}`,
        '',
        formatClassificationReport(evaluation.report, head.labels),
      ];
      if (data.skipped.length > 0) lines.push('', `  ${data.skipped.length} unusable image(s) skipped (listed with --json)`);
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    } finally {
      await backbone.close();
    }
  },
};
