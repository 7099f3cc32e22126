/**
 * The block products of last-block fine-tuning (MobileNetV2: a batch of 32 images x 49 pixels, 320 -> 1280), timed
 * on the three DenseMath implementations, interleaved so that a shared machine's load falls on all alike: the
 * plain-JS kernel and onnxruntime-web WASM (both what the browser worker can run; here in Node's V8, onnxruntime-web
 * on one thread as a 2-core browser gives it) and onnxruntime-node (what Node's fineTuneHead runs).
 *
 *   node --import @tapjs/typescript/import bench/web-dense-math.ts [--rounds 5] [--json]
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-web';
import { jsDenseMath, type DenseMath } from '../src/core/heads/dense-math.js';
import { ortWebDenseMath } from '../src/web/execution/dense-math-web.js';
import { gemmModels } from '../src/core/heads/dense-math-graph.js';
import { createOrtDenseMath } from '../src/node/execution/dense-math-ort.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, json: { type: 'boolean' } } });
const rounds = Number(values.rounds);
ort.env.wasm.numThreads = 1;
const loadAtStart = loadavg()[0];
const maths: DenseMath[] = [
  jsDenseMath,
  ortWebDenseMath(ort, gemmModels()),
  await createOrtDenseMath({ intraOpThreads: cpus().length, allowSpinning: false }),
];
const rows = 32 * 49;
const inputs = 320;
const outputs = 1280;
const x = Float32Array.from({ length: rows * inputs }, (_, i) => Math.sin(i) * 3);
const w = Float32Array.from({ length: outputs * inputs }, (_, i) => Math.cos(i) * 0.3);
const dz = Float32Array.from({ length: rows * outputs }, (_, i) => Math.sin(i * 0.7) * 1e-3);
const products = {
  'forward z = x . W^T (1568x320 by 320x1280)': (m: DenseMath) => m.gemm(x, w, rows, inputs, outputs, false, true),
  'gradient dW = dz^T . x (1280x1568 by 1568x320)': (m: DenseMath) => m.gemm(dz, x, outputs, rows, inputs, true, false),
};
const times = new Map<string, number[]>();
const reference = new Map<string, Float32Array>();
const worstDifference = new Map<string, number>();
for (const m of maths) for (const run of Object.values(products)) await run(m); // warm-up: sessions, JIT
for (let round = 0; round < rounds; round++) {
  for (const m of maths) {
    for (const [name, run] of Object.entries(products)) {
      const t0 = performance.now();
      const out = await run(m);
      const ms = performance.now() - t0;
      const key = `${m.name}\t${name}`;
      times.set(key, [...(times.get(key) ?? []), ms]);
      const ref = reference.get(name) ?? out;
      reference.set(name, ref);
      let worst = 0;
      for (let i = 0; i < out.length; i++)
        worst = Math.max(worst, Math.abs(out[i] - ref[i]) / (1e-6 + Math.abs(ref[i])));
      worstDifference.set(key, Math.max(worstDifference.get(key) ?? 0, worst));
    }
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const result = [...times].map(([key, v]) => {
  const [math, product] = key.split('\t');
  const flops = product.startsWith('forward') ? 2 * rows * inputs * outputs : 2 * outputs * rows * inputs;
  return {
    math,
    product,
    medianMs: median(v),
    gflops: flops / (median(v) * 1e6),
    allMs: v,
    worstRelativeDifferenceFromJs: worstDifference.get(key),
  };
});
for (const m of maths) await m.dispose?.();
const host = {
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  loadAverageAtStart: loadAtStart,
  loadAverageAtEnd: loadavg()[0],
};
if (values.json) console.log(JSON.stringify({ rounds, result, host }, null, 2));
else {
  for (const r of result)
    console.log(
      `${r.math.padEnd(22)} ${r.product.padEnd(50)} ${r.medianMs.toFixed(1).padStart(8)} ms  ${r.gflops.toFixed(2)} GFLOP/s`,
    );
  console.log(
    `${rounds} rounds interleaved; load average ${loadAtStart.toFixed(1)} -> ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`,
  );
}
