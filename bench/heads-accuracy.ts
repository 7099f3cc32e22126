/**
 * Accuracy of edgetl heads on real embeddings against scikit-learn (bench/sklearn-compare.py) on the same files.
 * Embed first:  edgetl embed ../shared/datasets/hymenoptera/train --backbone mobilenetv2-12-int8 --out /tmp/hym-train
 *               (and /val, and flowers5), then:
 *
 *   node --loader ts-node/esm bench/heads-accuracy.ts <train-prefix> <val-prefix> [--head linear|mlp|prototype]
 *        [--math ort|node|js] [--criterion accuracy|logLoss] [--seed 0] [--no-precondition] [--json]
 */
import { parseArgs } from 'node:util';
import { readEmbeddingSet } from '../src/node/embed/embedding-set.js';
import { trainHead } from '../src/core/heads/train.js';
import { jsDenseMath, type DenseMath } from '../src/core/heads/dense-math.js';
import { createOrtDenseMath } from '../src/node/execution/dense-math-ort.js';
import { nodeDenseMath } from '../src/node/train-head.js';
import { heldOutMetrics } from '../src/core/heads/metrics.js';
import type { HeadType } from '../src/core/formats/head-file.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    head: { type: 'string', default: 'linear' },
    math: { type: 'string', default: 'ort' },
    criterion: { type: 'string', default: 'accuracy' },
    seed: { type: 'string', default: '0' },
    precondition: { type: 'boolean', default: true },
    json: { type: 'boolean', default: false },
  },
});
const [trainPrefix, valPrefix] = positionals;
if (!trainPrefix || !valPrefix) {
  console.error('usage: heads-accuracy.ts <train-prefix> <val-prefix> [--head linear] [--math ort|js]');
  process.exit(2);
}
const train = await readEmbeddingSet(trainPrefix);
const val = await readEmbeddingSet(valPrefix);
// ort: one thread (as this bench always ran); node: what trainHead in Node uses (all cores, no spinning)
const math: DenseMath =
  values.math === 'js'
    ? jsDenseMath
    : values.math === 'node'
      ? await nodeDenseMath()
      : await createOrtDenseMath({ intraOpThreads: 1 });
const t0 = performance.now();
const head = await trainHead(
  train.embeddings,
  train.items.map((i) => i.label ?? ''),
  {
    type: values.head as HeadType,
    seed: Number(values.seed),
    math,
    l2Criterion: values.criterion as 'logLoss' | 'accuracy',
    precondition: values.precondition,
  },
);
const trainSeconds = (performance.now() - t0) / 1000;
const targets = val.items.map((i) => head.labels.indexOf(i.label ?? ''));
const metrics = heldOutMetrics(head.logits(val.embeddings, val.count), targets, head.labels.length, head.temperature);
await math.dispose?.();
const result = {
  train: trainPrefix,
  val: valPrefix,
  head: values.head,
  trainRows: train.count,
  valRows: val.count,
  trainSeconds,
  val_: metrics,
  options: head.training.options,
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(
    `${values.head} head on ${trainPrefix} (${train.count} rows) -> ${valPrefix} (${val.count} rows), math ${math.name}`,
  );
  console.log(
    `  val accuracy ${metrics.accuracy.toFixed(4)}  balanced ${metrics.balancedAccuracy.toFixed(4)}  log loss ${metrics.logLoss.toFixed(4)}  ECE ${metrics.ece.toFixed(4)}`,
  );
  console.log(`  train ${trainSeconds.toFixed(2)} s  options ${JSON.stringify(head.training.options)}`);
  const cv = (
    head.training.metrics as { crossValidation?: { candidates: { l2: number; accuracy: number; logLoss: number }[] } }
  ).crossValidation;
  if (cv)
    console.log(
      '  cv: ' +
        cv.candidates.map((c) => `${c.l2.toExponential(1)}:${c.accuracy.toFixed(3)}/${c.logLoss.toFixed(3)}`).join(' '),
    );
}
