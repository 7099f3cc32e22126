/**
 * How the default head's open-set figures (issue 12's "Done when") move with the training seed: the seed picks the
 * cross-validation folds, the k-means seeds of the open-set memory and the fold splits its threshold comes from.
 * For each seed and each rejection setting: own val photos kept, accuracy on the accepted against closed-set, and for
 * each outlier set the AUROC and the share accepted at the head's threshold.
 *
 * Embed first (edgetl embed <dir> --out <prefix>): the head's train and val, then one or more outlier sets.
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/open-set-seeds.ts \
 *     <train-prefix> <val-prefix> <name>=<outlier-prefix>... [--seeds 8] [--variant name='{"ambiguousShare":0}'] [--json]
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { readEmbeddingSet } from '../src/node/embed/embedding-set.js';
import { trainHead, type TrainHeadOptions } from '../src/core/heads/train.js';
import { nodeDenseMath } from '../src/node/train-head.js';
import { outlierAuroc } from '../src/core/heads/metrics.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seeds: { type: 'string', default: '8' },
    variant: { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});
const [trainPrefix, valPrefix, ...outlierArgs] = positionals;
if (!trainPrefix || !valPrefix || outlierArgs.length === 0) {
  console.error('usage: open-set-seeds.ts <train-prefix> <val-prefix> <name>=<outlier-prefix>... [--seeds N]');
  process.exit(2);
}
const variants: { name: string; options: TrainHeadOptions }[] = [
  { name: 'default', options: {} },
  ...values.variant.map((v) => {
    const at = v.indexOf('=');
    return { name: v.slice(0, at), options: JSON.parse(v.slice(at + 1)) as TrainHeadOptions };
  }),
];
const math = await nodeDenseMath();
const train = await readEmbeddingSet(trainPrefix);
const val = await readEmbeddingSet(valPrefix);
const outliers = await Promise.all(
  outlierArgs.map(async (arg) => {
    const [name, prefix] = arg.split('=');
    return { name: name!, set: await readEmbeddingSet(prefix!) };
  }),
);
const trainLabels = train.items.map((i) => i.label ?? '');
const rows = [];
for (const variant of variants) {
  for (let seed = 0; seed < Number(values.seeds); seed++) {
    const head = await trainHead(train.embeddings, trainLabels, { ...variant.options, math, seed });
    const own = head.predictMany(val.embeddings, val.count);
    const accepted = own.filter((p) => !p.unknown);
    const right = (p: (typeof own)[number]) => p.closest === val.items[own.indexOf(p)]!.label;
    const ownScores = own.map((p) => p.outlierScore ?? 0);
    const row = {
      variant: variant.name,
      seed,
      kept: accepted.length / own.length,
      closedSetAccuracy: own.filter(right).length / own.length,
      acceptedAccuracy: accepted.filter(right).length / Math.max(1, accepted.length),
      outlierThreshold: head.openSet?.threshold ?? null,
      confidenceThreshold: head.rejection?.threshold ?? null,
      outliers: outliers.map(({ name, set }) => {
        const predictions = head.predictMany(set.embeddings, set.count);
        return {
          name,
          auroc: outlierAuroc(
            ownScores,
            predictions.map((p) => p.outlierScore ?? 0),
          ),
          accepted: predictions.filter((p) => !p.unknown).length / set.count,
        };
      }),
    };
    rows.push(row);
    if (!values.json)
      console.log(
        `${variant.name} seed ${seed}: kept ${(100 * row.kept).toFixed(1)}%, accepted accuracy ${(100 * row.acceptedAccuracy).toFixed(2)}% vs closed-set ${(100 * row.closedSetAccuracy).toFixed(2)}%; ` +
          row.outliers
            .map((o) => `${o.name} AUROC ${o.auroc.toFixed(4)}, accepted ${(100 * o.accepted).toFixed(1)}%`)
            .join('; '),
      );
  }
}
await math.dispose?.();
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, loadAverage: loadavg() };
if (values.json) console.log(JSON.stringify({ machine, train: trainPrefix, val: valPrefix, rows }, null, 2));
