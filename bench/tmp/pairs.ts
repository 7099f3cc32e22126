import { readEmbeddingSet } from '../../src/node/embed/embedding-set.js';
import { trainHead } from '../../src/core/heads/train.js';
import { nodeDenseMath } from '../../src/node/train-head.js';
import { heldOutMetrics } from '../../src/core/heads/metrics.js';
const math = await nodeDenseMath();
const train = await readEmbeddingSet('/tmp/e/fl-train');
const val = await readEmbeddingSet('/tmp/e/fl-val');
const classes = [...new Set(train.items.map((i) => i.label!))].sort();
const pick = (set: typeof train, keep: string[]) => {
  const idx = set.items.map((it, i) => [it.label!, i] as const).filter(([l]) => keep.includes(l));
  const data = new Float32Array(idx.length * set.dim);
  idx.forEach(([, i], r) => data.set(set.embeddings.subarray(i * set.dim, (i + 1) * set.dim), r * set.dim));
  return { data, labels: idx.map(([l]) => l), count: idx.length };
};
const starts = process.argv.slice(2).map(Number);
const totals = new Map<number, { acc: number; ms: number; n: number }>();
for (let a = 0; a < classes.length; a++) for (let b = a + 1; b < classes.length; b++) {
  const keep = [classes[a]!, classes[b]!];
  const tr = pick(train, keep), va = pick(val, keep);
  const line: string[] = [`${keep.join('/')} ${tr.count} rows`];
  for (const start of starts) {
    const t0 = performance.now();
    const head = await trainHead(tr.data, tr.labels, { math, openSet: false, l2Start: start });
    const ms = performance.now() - t0;
    const m = heldOutMetrics(head.logits(va.data, va.count), va.labels.map((l) => head.labels.indexOf(l)), 2, head.temperature);
    const cv = (head.training.metrics as any).crossValidation;
    line.push(`start ${start}: acc ${m.accuracy.toFixed(4)} l2 ${cv.chosenL2.toExponential(1)} cands ${cv.candidates.length} ${ms.toFixed(0)} ms`);
    const t = totals.get(start) ?? { acc: 0, ms: 0, n: 0 };
    t.acc += m.accuracy; t.ms += ms; t.n++; totals.set(start, t);
  }
  console.log(line.join(' | '));
}
for (const [s, t] of totals) console.log(`start ${s}: mean acc ${(t.acc / t.n).toFixed(4)}, mean ${(t.ms / t.n).toFixed(0)} ms`);
