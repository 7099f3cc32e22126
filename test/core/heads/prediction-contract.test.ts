import t from 'tap';
import { trainHead } from '../../../src/core/heads/train.js';
import { Head, UNKNOWN_LABEL } from '../../../src/core/heads/head.js';
import { parseWebHead } from '../../../src/web/heads.js';
import { gaussianClusters } from './synthetic.js';

t.test(
  'Node and browser predictions say the same thing under the same names (label, closest, unknown, reason, score, outlierScore, topK)',
  async (t) => {
    const { data, labels } = gaussianClusters({ perClass: [20, 20, 20], dim: 5, separation: 2, seed: 3 });
    const backbone = { id: 'test', sha256: '12'.repeat(32), embeddingDim: 5, preprocess: null };
    const head = await trainHead(data, labels, { type: 'linear', backbone, seed: 1, rejectRate: 0.2 });
    // Both sides load the same head file (its weights as stored).
    const text = head.serialize();
    const web = parseWebHead(text);
    // New rows from the same classes: the training rows themselves sit on the open-set memory.
    const fresh = gaussianClusters({ perClass: [20, 20, 20], dim: 5, separation: 2, seed: 4 });
    const rows = fresh.labels.length;
    const node = Head.parse(text).predictMany(fresh.data, rows, { topK: 3 });
    t.ok(
      node.some((p) => p.unknown),
      'some new rows are refused at a 20% reject rate',
    );
    node.forEach((p, r) => {
      t.equal(p.unknown, p.rejected, `row ${r}: the deprecated name agrees`);
      if (p.unknown) t.equal(p.label, UNKNOWN_LABEL);
      const w = web.predict(fresh.data.subarray(r * 5, (r + 1) * 5));
      const fields = (q: {
        label: string;
        closest: string;
        unknown: boolean;
        reason?: string;
        score: number;
        outlierScore?: number;
        topK: unknown;
      }) => ({
        label: q.label,
        closest: q.closest,
        unknown: q.unknown,
        reason: q.reason,
        score: q.score,
        outlierScore: q.outlierScore,
        topK: q.topK,
      });
      t.same(fields(w), fields(p), `row ${r}`);
    });
  },
);
