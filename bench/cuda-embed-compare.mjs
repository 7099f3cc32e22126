#!/usr/bin/env node
// Compares two embedding sets row by row (edgetl embed --out ..., e.g. --ep cuda against --ep cpu): the cosine
// of each image's two vectors, their min and mean, the largest absolute difference. Prints one JSON object; exit 1
// when the smallest cosine is below --min-cosine. --embed-json adds what the first run reported (provider, where
// the nodes ran). Usage: node bench/cuda-embed-compare.mjs a.npy b.npy [--min-cosine 0.9999] [--label x] [--embed-json a.json]
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readEmbeddingSet } from '../dist/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'min-cosine': { type: 'string' }, label: { type: 'string' }, 'embed-json': { type: 'string' } },
});
if (positionals.length !== 2) {
  process.stderr.write(
    'usage: node bench/cuda-embed-compare.mjs a.npy b.npy [--min-cosine 0.9999] [--label name] [--embed-json a-run.json]\n',
  );
  process.exit(2);
}
const threshold = Number(values['min-cosine'] ?? '0.9999');
let a;
let b;
try {
  // Each .npy with the .json beside it, as `edgetl embed --out` writes them (the public API reads both).
  [a, b] = (await Promise.all(positionals.map((p) => readEmbeddingSet(p)))).map((set) => ({
    shape: [set.count, set.dim],
    data: set.embeddings,
  }));
} catch (error) {
  // The run that should have written it failed (its own log says why): one line, no stack.
  process.stdout.write(
    JSON.stringify({ label: values.label ?? positionals[0], pass: false, error: error.message }) + '\n',
  );
  process.exit(1);
}
if (a.shape.join('x') !== b.shape.join('x')) {
  process.stderr.write(`shapes differ: ${a.shape.join('x')} vs ${b.shape.join('x')}\n`);
  process.exit(1);
}
const [rows, dim] = a.shape;
let min = Infinity;
let sum = 0;
let worst = -1;
let maxAbs = 0;
for (let r = 0; r < rows; r++) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = r * dim; i < (r + 1) * dim; i++) {
    dot += a.data[i] * b.data[i];
    na += a.data[i] * a.data[i];
    nb += b.data[i] * b.data[i];
    maxAbs = Math.max(maxAbs, Math.abs(a.data[i] - b.data[i]));
  }
  const cos = na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
  sum += cos;
  if (cos < min) {
    min = cos;
    worst = r;
  }
}
let run;
if (values['embed-json']) {
  const j = JSON.parse(await readFile(values['embed-json'], 'utf8'));
  run = {
    executionProvider: j.executionProvider,
    fallbacks: j.fallbacks,
    providerNotes: j.providerNotes,
    imagesPerSecond: j.imagesPerSecond,
    backbone: j.backbone,
  };
}
const result = {
  label: values.label ?? positionals[0],
  a: positionals[0],
  b: positionals[1],
  rows,
  dim,
  minCosine: min,
  meanCosine: sum / rows,
  worstRow: worst,
  maxAbsDiff: maxAbs,
  threshold,
  pass: rows > 0 && min >= threshold,
  ...(run ? { run } : {}),
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
process.exitCode = result.pass ? 0 : 1;
