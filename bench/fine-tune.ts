/**
 * Frozen linear head vs last-block fine-tuning (`fineTuneHead`), accuracy on the untouched val split and seconds.
 * The val accuracy of the fine-tuned head is measured through the adapted ONNX graph (what `edgetl eval` runs) and,
 * independently, through the training-time forward pass on cut activations; both are printed.
 *
 *   EDGETL_MODEL_PATH=../shared/models node --import @tapjs/typescript/import bench/fine-tune.ts \
 *     <train-dir> <val-dir> [--backbone mobilenetv2-12-int8] [--flip] [--epochs 8] [--block-lr X | --block-rel-lr X]
 *     [--head-lr X] [--batch N] [--out head.json] [--json]
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { Backbone } from '../src/node/embed/backbone.js';
import { embedFolder } from '../src/node/embed/embed-folder.js';
import { flippedEmbeddings } from '../src/node/embed/augment.js';
import { trainHead } from '../src/node/train-head.js';
import { fineTuneHead, adaptedBackboneOptions } from '../src/node/fine-tune.js';
import { saveHead } from '../src/node/head-io.js';
import { heldOutMetrics } from '../src/core/heads/metrics.js';
import type { Head } from '../src/core/heads/head.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backbone: { type: 'string', default: 'mobilenetv2-12-int8' },
    flip: { type: 'boolean', default: false },
    epochs: { type: 'string' },
    'block-lr': { type: 'string' },
    'block-rel-lr': { type: 'string' },
    'head-lr': { type: 'string' },
    batch: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const [trainDir, valDir] = positionals;
if (!trainDir || !valDir) {
  console.error(
    'usage: fine-tune.ts <train-dir> <val-dir> [--backbone id] [--flip] [--epochs N] [--out head.json] [--json]',
  );
  process.exit(2);
}
const log = (line: string) => process.stderr.write(line + '\n');
const load = loadavg()[0];
const t0 = performance.now();
const backbone = await Backbone.load(values.backbone!);
const train = await embedFolder(backbone, trainDir);
const val = await embedFolder(backbone, valDir);
let embeddings = train.embeddings;
let labels = train.items.map((i) => i.label!);
let groups: Int32Array | undefined;
const paths = train.items.map((i) => i.path);
if (values.flip) {
  const flipped = await flippedEmbeddings(backbone, paths, { useCache: true });
  const kept = flipped.ok.map((ok, i) => (ok ? i : -1)).filter((i) => i >= 0);
  embeddings = new Float32Array((paths.length + kept.length) * train.dim);
  embeddings.set(train.embeddings);
  kept.forEach((row, i) =>
    embeddings.set(flipped.embeddings.subarray(row * train.dim, (row + 1) * train.dim), (paths.length + i) * train.dim),
  );
  labels = [...labels, ...kept.map((r) => labels[r])];
  groups = Int32Array.from([...paths.keys(), ...kept]);
}
const embedSeconds = (performance.now() - t0) / 1000;
const t1 = performance.now();
const frozen = await trainHead(embeddings, labels, {
  classes: train.classes!,
  groups,
  backbone: {
    id: backbone.id,
    sha256: backbone.sha256,
    embeddingDim: backbone.embeddingDim,
    preprocess: backbone.preprocess,
  },
});
const frozenSeconds = (performance.now() - t1) / 1000;
const valLabels = val.items.map((i) => i.label!);
const score = (head: Head, data: Float32Array) =>
  heldOutMetrics(
    head.logits(data, valLabels.length),
    valLabels.map((l) => head.labels.indexOf(l)),
    head.labels.length,
    head.temperature,
  );
const frozenVal = score(frozen, val.embeddings);
log(
  `frozen: val ${(100 * frozenVal.accuracy).toFixed(2)}%  (embed ${embedSeconds.toFixed(1)} s, train ${frozenSeconds.toFixed(1)} s)`,
);

const t2 = performance.now();
let lastLog = 0;
const { head, report } = await fineTuneHead({
  backbone,
  paths,
  labels: train.items.map((i) => i.label!),
  frozen,
  flip: values.flip,
  ...(values.epochs ? { epochs: Number(values.epochs) } : {}),
  ...(values['block-lr'] ? { blockLearningRate: Number(values['block-lr']) } : {}),
  ...(values['block-rel-lr'] ? { blockRelativeLearningRate: Number(values['block-rel-lr']) } : {}),
  ...(values['head-lr'] ? { headLearningRate: Number(values['head-lr']) } : {}),
  ...(values.batch ? { batchSize: Number(values.batch) } : {}),
  onProgress: (stage, done, total) => {
    const now = performance.now();
    if (now - lastLog < 10_000 && done !== total) return;
    lastLog = now;
    const elapsed = (now - t2) / 1000;
    log(`  ${stage} ${done}/${total}  ${elapsed.toFixed(0)} s`);
  },
});
const fineTuneSeconds = (performance.now() - t2) / 1000;
for (const e of report.epochs ?? [])
  log(`  epoch ${e.epoch}: out-of-fold accuracy ${(100 * e.accuracy).toFixed(2)}%  log loss ${e.logLoss.toFixed(4)}`);
log(`  ${report.reason}`);

let adaptedVal = frozenVal;
if (head.adaptedBlock) {
  const adapted = await Backbone.load(values.backbone!, adaptedBackboneOptions(head));
  const embedded = await embedFolder(adapted, valDir);
  adaptedVal = score(head, embedded.embeddings);
  await adapted.close();
}
let headBytes: number | null = null;
if (values.out) headBytes = await saveHead(head, values.out);
await backbone.close();
const result = {
  backbone: values.backbone,
  train: trainDir,
  val: valDir,
  trainImages: paths.length,
  valImages: valLabels.length,
  flip: values.flip,
  frozen: { valAccuracy: frozenVal.accuracy, valLogLoss: frozenVal.logLoss, embedSeconds, trainSeconds: frozenSeconds },
  fineTune: {
    outcome: report.outcome,
    valAccuracy: adaptedVal.accuracy,
    valLogLoss: adaptedVal.logLoss,
    seconds: fineTuneSeconds,
    activationSeconds: report.activationSeconds,
    trainSeconds: report.trainSeconds,
    chosenEpochs: report.chosenEpochs,
    crossValidation: report.crossValidation,
    epochs: report.epochs,
    memory: report.memory,
    settings: report.settings,
    reason: report.reason,
  },
  totalSeconds: (performance.now() - t0) / 1000,
  headBytes,
  host: { cpu: cpus()[0]?.model, cores: cpus().length, loadAverageAtStart: load, loadAverageAtEnd: loadavg()[0] },
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(
    `${values.backbone} on ${trainDir} (${paths.length}) -> ${valDir} (${valLabels.length})${values.flip ? ' with flips' : ''}`,
  );
  console.log(
    `  frozen      val ${(100 * frozenVal.accuracy).toFixed(2)}%  (embedding ${embedSeconds.toFixed(1)} s, head ${frozenSeconds.toFixed(1)} s)`,
  );
  console.log(
    `  fine-tune   ${report.outcome}: val ${(100 * adaptedVal.accuracy).toFixed(2)}%  (${fineTuneSeconds.toFixed(1)} s: activations ${report.activationSeconds.toFixed(1)} s, training ${report.trainSeconds.toFixed(1)} s)`,
  );
  console.log(
    `  total ${result.totalSeconds.toFixed(1)} s; load average ${load.toFixed(2)} -> ${loadavg()[0].toFixed(2)}${headBytes ? `; head ${(headBytes / 1024).toFixed(0)} KiB` : ''}`,
  );
}
