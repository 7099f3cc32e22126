/**
 * A 2-class embedding set from a labelled one, its classes merged into two groups, optionally subsampled: a real
 * 2-class set of a chosen size for bench/heads-vs-sklearn.ts (e.g. flowers5 as daisy+dandelion+sunflower against
 * rose+tulip, 2,000 photos: the "2-class set of 2,000 photos", from the photos ../shared holds).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/heads-merge-classes.ts \
 *     --from <prefix> --to <prefix> --group a,b,c --group d,e [--rows 2000] [--seed 0]
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { readEmbeddingSet } from '../src/node/embed/embedding-set.js';
import { writeNpyFile } from '../src/node/embed/npy-file.js';
import { Random } from '../src/core/heads/random.js';

const { values } = parseArgs({
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    group: { type: 'string', multiple: true, default: [] },
    rows: { type: 'string' },
    seed: { type: 'string', default: '0' },
  },
});
if (!values.from || !values.to || values.group.length !== 2)
  throw new Error('usage: --from <prefix> --to <prefix> --group a,b --group c,d [--rows N] [--seed S]');
const groups = values.group.map((g) => g.split(','));
const set = await readEmbeddingSet(values.from);
const groupOf = (label: string) => groups.findIndex((g) => g.includes(label));
let rows = set.items.flatMap((item, i) => (groupOf(item.label ?? '') >= 0 ? [i] : []));
if (values.rows && Number(values.rows) < rows.length) {
  const random = new Random(Number(values.seed));
  for (let i = rows.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  rows = rows.slice(0, Number(values.rows)).sort((a, b) => a - b);
}
const data = new Float32Array(rows.length * set.dim);
rows.forEach((i, r) => data.set(set.embeddings.subarray(i * set.dim, (i + 1) * set.dim), r * set.dim));
const names = groups.map((g) => g.join('+'));
await writeNpyFile(`${values.to}.npy`, data, [rows.length, set.dim]);
await writeFile(
  `${values.to}.json`,
  JSON.stringify({
    backbone: { id: set.backbone.id, sha256: set.backbone.sha256, embeddingDim: set.dim },
    executionProvider: 'none',
    classes: names,
    items: rows.map((i) => ({ path: set.items[i]!.path, label: names[groupOf(set.items[i]!.label ?? '')] })),
    skipped: [],
  }),
);
console.log(`${values.to}: ${rows.length} rows, ${names.join(' / ')}`);
