/**
 * The linear head on every 2-class pair of a labelled embedding set: val accuracy, the chosen L2 strength, the
 * candidates tried and the time, for each sweep start given. How the 2-class sweep start was chosen
 * (UNPRECONDITIONED_L2_START in src/core/heads/linear.ts).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/heads-pairs.ts \
 *     --train <prefix> --val <prefix> [--start 1e-2,1]
 * Prefixes are `edgetl embed` outputs (<prefix>.npy + <prefix>.json) of class folders.
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { readEmbeddingSet, type EmbeddingSet } from '../src/node/embed/embedding-set.js';
import { trainHead } from '../src/core/heads/train.js';
import { nodeDenseMath } from '../src/node/train-head.js';
import { heldOutMetrics } from '../src/core/heads/metrics.js';

const { values } = parseArgs({
  options: {
    train: { type: 'string' },
    val: { type: 'string' },
    start: { type: 'string', default: '1e-2,1' },
  },
});
if (!values.train || !values.val) throw new Error('usage: --train <prefix> --val <prefix> [--start 1e-2,1]');
const starts = values.start.split(',').map(Number);
const math = await nodeDenseMath();
const train = await readEmbeddingSet(values.train);
const val = await readEmbeddingSet(values.val);
const classes = [...new Set(train.items.map((i) => i.label ?? ''))].sort();

function subset(set: EmbeddingSet, keep: string[]): { data: Float32Array; labels: string[]; count: number } {
  const rows = set.items.flatMap((item, i) => (keep.includes(item.label ?? '') ? [i] : []));
  const data = new Float32Array(rows.length * set.dim);
  rows.forEach((i, r) => data.set(set.embeddings.subarray(i * set.dim, (i + 1) * set.dim), r * set.dim));
  return { data, labels: rows.map((i) => set.items[i]!.label ?? ''), count: rows.length };
}

console.log(`# Linear head on every 2-class pair: ${values.train} / ${values.val}`);
console.log(`Machine: ${cpus()[0]?.model}, ${cpus().length} cores, Node ${process.version}\n`);
console.log(`| pair | train rows | ${starts.map((s) => `start ${s}: val acc, L2, candidates, ms`).join(' | ')} |`);
console.log(`|---|---:|${starts.map(() => '---|').join('')}`);
const totals = starts.map(() => ({ accuracy: 0, ms: 0, pairs: 0 }));
for (let a = 0; a < classes.length; a++) {
  for (let b = a + 1; b < classes.length; b++) {
    const keep = [classes[a]!, classes[b]!];
    const tr = subset(train, keep);
    const va = subset(val, keep);
    const cells: string[] = [];
    for (const [s, start] of starts.entries()) {
      const t0 = performance.now();
      const head = await trainHead(tr.data, tr.labels, { math, openSet: false, l2Start: start });
      const ms = performance.now() - t0;
      const targets = va.labels.map((l) => head.labels.indexOf(l));
      const { accuracy } = heldOutMetrics(head.logits(va.data, va.count), targets, 2, head.temperature);
      const cv = head.training.metrics.crossValidation as { chosenL2: number; candidates: unknown[] };
      cells.push(`${accuracy.toFixed(4)}, ${cv.chosenL2.toExponential(1)}, ${cv.candidates.length}, ${ms.toFixed(0)}`);
      totals[s]!.accuracy += accuracy;
      totals[s]!.ms += ms;
      totals[s]!.pairs++;
    }
    console.log(`| ${keep.join(' / ')} | ${tr.count} | ${cells.join(' | ')} |`);
  }
}
console.log(
  `| **mean** | | ${totals.map((t) => `**${(t.accuracy / t.pairs).toFixed(4)}**, , , ${(t.ms / t.pairs).toFixed(0)}`).join(' | ')} |`,
);
await math.dispose?.();
