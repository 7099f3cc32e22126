import { nodeDenseMath } from '../../src/node/train-head.js';
const math = await nodeDenseMath();
const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random());
for (const [m, k, n] of [[1333, 1280, 2], [2000, 1280, 6], [2000, 1280, 2], [1333, 1280, 102]]) {
  const a = rand(m * k), b = rand(n * k), g = rand(m * n);
  for (let i = 0; i < 20; i++) { await math.gemm(a, b, m, k, n, false, true); await math.gemm(g, a, n, m, k, true, false); }
  let t = performance.now(); const c0 = process.cpuUsage();
  for (let i = 0; i < 100; i++) await math.gemm(a, b, m, k, n, false, true);
  const f = (performance.now() - t) / 100; t = performance.now();
  for (let i = 0; i < 100; i++) await math.gemm(g, a, n, m, k, true, false);
  const gr = (performance.now() - t) / 100; const c = process.cpuUsage(c0);
  // 3 concurrent
  t = performance.now();
  for (let i = 0; i < 50; i++) await Promise.all([0, 1, 2].map(() => math.gemm(a, b, m, k, n, false, true)));
  const conc = (performance.now() - t) / 50;
  console.log(`${m}x${k}x${n}: forward ${f.toFixed(3)} ms, gradient ${gr.toFixed(3)} ms, cpu ${((c.user + c.system) / 1000 / 200).toFixed(3)} ms/op, 3 concurrent forwards ${conc.toFixed(3)} ms`);
}
// JS baseline for forward with n=2
{
  const m = 1333, k = 1280; const a = rand(m * k), b = rand(2 * k); const out = new Float32Array(m * 2);
  let t = performance.now();
  for (let it = 0; it < 100; it++) for (let r = 0; r < m; r++) { let s0 = 0, s1 = 0; const o = r * k; for (let j = 0; j < k; j++) { const x = a[o + j]; s0 += x * b[j]; s1 += x * b[k + j]; } out[r * 2] = s0; out[r * 2 + 1] = s1; }
  console.log('js forward n=2', ((performance.now() - t) / 100).toFixed(3));
}
