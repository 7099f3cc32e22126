/**
 * The dense products a linear head's training runs, in plain JS and on onnxruntime (1 thread and default threads):
 * the measurement behind src/node/execution/dense-math-ort.ts.
 *
 *   node --loader ts-node/esm bench/heads-matmul.ts [--repeat 10] [--json]
 */
import { parseArgs } from 'node:util';
import { jsDenseMath, type DenseMath } from '../src/core/heads/dense-math.js';
import { createOrtDenseMath } from '../src/node/execution/dense-math-ort.js';
import { Random } from '../src/core/heads/random.js';

const { values } = parseArgs({
  options: { repeat: { type: 'string', default: '10' }, json: { type: 'boolean', default: false } },
});
const repeat = Number(values.repeat);
const shapes: { name: string; m: number; k: number; n: number; transA: boolean; transB: boolean }[] = [
  { name: 'logits 2040x1280 . (102x1280)^T', m: 2040, k: 1280, n: 102, transA: false, transB: true },
  { name: 'gradient (2040x102)^T . 2040x1280', m: 102, k: 2040, n: 1280, transA: true, transB: false },
  { name: 'logits 3431x1280 . (5x1280)^T', m: 3431, k: 1280, n: 5, transA: false, transB: true },
  { name: 'mlp batch 64x1280 . (256x1280)^T', m: 64, k: 1280, n: 256, transA: false, transB: true },
];
const random = new Random(1);
const engines: [string, DenseMath][] = [
  ['js', jsDenseMath],
  ['ort-1-thread', await createOrtDenseMath({ intraOpThreads: 1 })],
  ['ort-default', await createOrtDenseMath()],
];
const rows: { shape: string; engine: string; ms: number; gflops: number }[] = [];
for (const shape of shapes) {
  const a = Float32Array.from({ length: shape.m * shape.k }, () => random.normal());
  const b = Float32Array.from({ length: shape.k * shape.n }, () => random.normal());
  for (const [engine, math] of engines) {
    await math.gemm(a, b, shape.m, shape.k, shape.n, shape.transA, shape.transB);
    const times: number[] = [];
    const count = engine === 'js' ? Math.max(2, Math.round(repeat / 4)) : repeat;
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await math.gemm(a, b, shape.m, shape.k, shape.n, shape.transA, shape.transB);
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    const ms = times[Math.floor(times.length / 2)];
    rows.push({ shape: shape.name, engine, ms, gflops: (2 * shape.m * shape.k * shape.n) / ms / 1e6 });
  }
}
for (const [, math] of engines) await math.dispose?.();
if (values.json) console.log(JSON.stringify(rows));
else
  for (const r of rows)
    console.log(
      `${r.shape.padEnd(40)} ${r.engine.padEnd(14)} ${r.ms.toFixed(2).padStart(8)} ms  ${r.gflops.toFixed(1).padStart(6)} GFLOP/s (median)`,
    );
