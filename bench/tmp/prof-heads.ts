import { readEmbeddingSet } from '../../src/node/embed/embedding-set.js';
import { trainHead } from '../../src/core/heads/train.js';
import { nodeDenseMath } from '../../src/node/train-head.js';
const math = await nodeDenseMath();
const sets = process.argv.slice(2);
{
  const warm = await readEmbeddingSet(sets[0]!);
  await trainHead(warm.embeddings.subarray(0, 200 * warm.dim), warm.items.slice(0, 200).map((i) => i.label ?? ''), { math, calibrate: false, l2: 1e-2 });
}
for (const prefix of sets) {
  const train = await readEmbeddingSet(prefix);
  const labels = train.items.map((i) => i.label ?? '');
  for (let r = 0; r < 4; r++) {
    if (process.env.XX_SLEEP) await new Promise((res) => setTimeout(res, Number(process.env.XX_SLEEP)));
    const stamps: [string, number][] = [];
    const t0 = performance.now();
    let last = '';
    const head = await trainHead(train.embeddings, labels, { math, openSet: false, onProgress: (stage: string, d: number, t: number) => { if (stage !== last) { stamps.push([stage, performance.now() - t0]); last = stage; } } } as never);
    const total = performance.now() - t0;
    const m = head.training.metrics as any;
    console.log(prefix.split('/').pop(), 'total ms', total.toFixed(0), JSON.stringify(stamps.map(([s, t]) => `${s}@${t.toFixed(0)}`)), 'candidates', m.crossValidation?.candidates.map((c: any) => `${c.l2.toExponential(1)}:${c.accuracy.toFixed(3)}:${c.iterations}`).join(' '), 'fit it', m.fit?.iterations);
  }
}
