/**
 * Training and prediction speed of heads on seeded synthetic embeddings (default ~2000 x 1280, 100 classes: the
 * issue's bar is "linear head with its CV sweep no slower than one scikit-learn lbfgs fit", ~3 s here).
 *
 *   node --loader ts-node/esm bench/heads-train.ts [--rows 2000] [--dim 1280] [--classes 100] [--head linear]
 *        [--math ort (as trainHead in Node)|ort-default-threads|js] [--seed 0] [--json]
 *   Writes the embeddings for bench/sklearn-compare.py with --save <prefix> (<prefix>.npy + <prefix>.labels.json).
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { trainHead } from '../src/core/heads/train.js';
import { jsDenseMath, type DenseMath } from '../src/core/heads/dense-math.js';
import { createOrtDenseMath } from '../src/node/execution/dense-math-ort.js';
import { nodeDenseMath } from '../src/node/train-head.js';
import { syntheticEmbeddings } from './heads-synthetic.js';
import type { HeadType } from '../src/core/formats/head-file.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000' },
    dim: { type: 'string', default: '1280' },
    classes: { type: 'string', default: '100' },
    head: { type: 'string', default: 'linear' },
    math: { type: 'string', default: 'ort' },
    seed: { type: 'string', default: '0' },
    save: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const dim = Number(values.dim);
const classes = Number(values.classes);
const seed = Number(values.seed);
const { data, labels } = syntheticEmbeddings(rows, dim, classes, seed);
if (values.save) {
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const padded = header.padEnd(Math.ceil((header.length + 11) / 64) * 64 - 11, ' ') + '\n';
  const head = new Uint8Array(10 + padded.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length & 255, padded.length >> 8]);
  head.set(new TextEncoder().encode(padded), 10);
  writeFileSync(`${values.save}.npy`, Buffer.concat([head, new Uint8Array(data.buffer)]));
  writeFileSync(`${values.save}.labels.json`, JSON.stringify(labels));
}
const math: DenseMath =
  values.math === 'js'
    ? jsDenseMath
    : values.math === 'ort-default-threads'
      ? await createOrtDenseMath()
      : await nodeDenseMath();
const t0 = performance.now();
const head = await trainHead(data, labels, { type: values.head as HeadType, seed, math });
const trainSeconds = (performance.now() - t0) / 1000;

// prediction: one embedding at a time, as an app would call it
const probe = data.subarray(0, dim);
for (let i = 0; i < 200; i++) head.predict(probe);
const predictions = Math.max(200, Math.min(5000, Math.round(2e9 / (classes * dim * 10))));
const t1 = performance.now();
for (let i = 0; i < predictions; i++) head.predict(data.subarray((i % rows) * dim, ((i % rows) + 1) * dim));
const predictMs = (performance.now() - t1) / predictions;
const serialized = head.serialize();
const result = {
  rows,
  dim,
  classes,
  head: values.head,
  math: math.name,
  trainSeconds,
  predictMsPerEmbedding: predictMs,
  headBytes: serialized.length,
  metrics: head.training.metrics,
  options: head.training.options,
};
await math.dispose?.();
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`${values.head} head, ${rows} x ${dim}, ${classes} classes, math ${math.name}`);
  console.log(
    `  train ${trainSeconds.toFixed(2)} s   predict ${(predictMs * 1000).toFixed(1)} us/embedding   file ${(serialized.length / 1024).toFixed(1)} KiB`,
  );
  console.log(`  options ${JSON.stringify(result.options)}`);
  const cv = (
    result.metrics as { crossValidation?: { candidates: { l2: number; accuracy: number; iterations: number }[] } }
  ).crossValidation;
  if (cv)
    for (const c of cv.candidates)
      console.log(`  l2 ${c.l2.toExponential(1)}  cv accuracy ${c.accuracy.toFixed(3)}  iterations ${c.iterations}`);
  console.log(`  held-out ${JSON.stringify((result.metrics as { heldOut?: unknown }).heldOut)}`);
  console.log(`  fit ${JSON.stringify((result.metrics as { fit?: unknown }).fit)}`);
}
