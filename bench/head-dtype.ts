/**
 * What storing head weights as float16 or int8 (per-row scales) costs against float32: file size, validation
 * accuracy and log loss, how far probabilities move, and how many predictions change. Real embeddings
 * (MobileNetV2-int8) of hymenoptera and flowers5, every head type, the same trained head stored three ways.
 *
 *   EDGETL_MODEL_PATH=../shared/models node --import=@tapjs/typescript/import bench/head-dtype.ts
 *        [--data ../shared/datasets] [--backbone mobilenetv2-12-int8] [--json]
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { Backbone } from '../src/node/embed/backbone.js';
import { scanImageFolder } from '../src/node/embed/dataset.js';
import { trainHead } from '../src/node/train-head.js';
import { Head } from '../src/core/heads/head.js';
import type { HeadType, WeightDType } from '../src/core/formats/head-file.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets' },
    backbone: { type: 'string', default: 'mobilenetv2-12-int8' },
    json: { type: 'boolean', default: false },
  },
});

const backbone = await Backbone.load(values.backbone!, { ep: 'cpu' });
async function embed(dir: string) {
  const scan = await scanImageFolder(dir);
  const result = await backbone.embedMany(scan.items.map((i) => i.path));
  return { embeddings: result.embeddings, labels: result.items.map((item) => scan.items[item.index].label!) };
}

const rows: Record<string, unknown>[] = [];
for (const dataset of ['hymenoptera', 'flowers5']) {
  const train = await embed(resolve(values.data!, dataset, 'train'));
  const val = await embed(resolve(values.data!, dataset, 'val'));
  const ref = {
    id: backbone.id,
    sha256: backbone.sha256,
    embeddingDim: backbone.embeddingDim,
    preprocess: backbone.preprocess,
  };
  for (const type of ['linear', 'mlp', 'prototype'] as HeadType[]) {
    const head = await trainHead(train.embeddings, train.labels, { type, backbone: ref, seed: 0 });
    const targets = val.labels.map((l) => head.labels.indexOf(l));
    const classes = head.classCount;
    const reference = Head.parse(head.serialize({ dtype: 'float32' })).probabilities(val.embeddings);
    for (const dtype of ['float32', 'float16', 'int8'] as WeightDType[]) {
      const text = head.serialize({ dtype });
      const p = Head.parse(text).probabilities(val.embeddings);
      let correct = 0;
      let logLoss = 0;
      let changed = 0;
      let maxShift = 0;
      for (let r = 0; r < targets.length; r++) {
        const row = p.subarray(r * classes, (r + 1) * classes);
        const base = reference.subarray(r * classes, (r + 1) * classes);
        const best = row.indexOf(Math.max(...row));
        if (best === targets[r]) correct++;
        if (best !== base.indexOf(Math.max(...base))) changed++;
        logLoss -= Math.log(Math.max(row[targets[r]], 1e-12));
        for (let c = 0; c < classes; c++) maxShift = Math.max(maxShift, Math.abs(row[c] - base[c]));
      }
      rows.push({
        dataset,
        head: type,
        dtype,
        fileBytes: Buffer.byteLength(text),
        weightBytes: JSON.parse(text).weights.byteLength,
        valImages: targets.length,
        accuracy: Number((correct / targets.length).toFixed(4)),
        logLoss: Number((logLoss / targets.length).toFixed(4)),
        predictionsChanged: changed,
        maxProbabilityShift: Number(maxShift.toExponential(2)),
      });
    }
  }
}
await backbone.close();

if (values.json)
  console.log(
    JSON.stringify({ machine: `${cpus().length} x ${cpus()[0]?.model}`, backbone: values.backbone, rows }, null, 1),
  );
else {
  console.log(`backbone ${values.backbone}; ${cpus().length} x ${cpus()[0]?.model}`);
  console.log(
    '| dataset | head | dtype | file | weights | val accuracy | val log loss | predictions changed vs float32 | max probability shift |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.dataset} | ${r.head} | ${r.dtype} | ${((r.fileBytes as number) / 1024).toFixed(1)} KiB | ${((r.weightBytes as number) / 1024).toFixed(1)} KiB | ${r.accuracy} | ${r.logLoss} | ${r.predictionsChanged} of ${r.valImages} | ${r.maxProbabilityShift} |`,
    );
  }
}
