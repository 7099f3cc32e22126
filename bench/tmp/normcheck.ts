import { readEmbeddingSet } from '../../src/node/embed/embedding-set.js';
import { fitNormalization, applyNormalization } from '../../src/core/heads/normalization.js';
import { createHash } from 'node:crypto';
for (const p of ['/tmp/e/s2-train', '/tmp/e/hym-train', '/tmp/e/fl-train']) {
  const s = await readEmbeddingSet(p);
  for (const rows of [s.count, s.count - 1, s.count - 3]) {
    const n = fitNormalization('standardize', s.embeddings, rows, s.dim) as any;
    const out = applyNormalization(n, s.embeddings, rows, s.dim);
    const h = createHash('sha256').update(Buffer.from(n.mean.buffer)).update(Buffer.from(n.std.buffer)).update(Buffer.from(out.buffer)).digest('hex').slice(0, 16);
    const t = performance.now(); for (let i = 0; i < 5; i++) { const m = fitNormalization('standardize', s.embeddings, rows, s.dim); applyNormalization(m, s.embeddings, rows, s.dim); }
    console.log(p, rows, h, ((performance.now() - t) / 5).toFixed(1), 'ms');
  }
}
