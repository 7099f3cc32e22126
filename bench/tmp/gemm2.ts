import { nodeDenseMath } from '../../src/node/train-head.js';
const math = await nodeDenseMath();
const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random());
const time = async (fn: () => Promise<unknown>) => { for (let i = 0; i < 5; i++) await fn(); const t = performance.now(); for (let i = 0; i < 30; i++) await fn(); return (performance.now() - t) / 30; };
for (const c of [2, 5, 10, 20, 102]) {
  const a13 = rand(1360 * 1280), a20 = rand(2040 * 1280), w = rand(c * 1280), w3 = rand(3 * c * 1280), g13 = rand(1360 * c), g20 = rand(2040 * 3 * c);
  const sep = await time(async () => { for (let f = 0; f < 3; f++) { await math.gemm(a13, w, 1360, 1280, c, false, true); await math.gemm(g13, a13, c, 1360, 1280, true, false); } });
  const joint = await time(async () => { await math.gemm(a20, w3, 2040, 1280, 3 * c, false, true); await math.gemm(g20, a20, 3 * c, 2040, 1280, true, false); });
  console.log(`classes ${c}: 3 folds separately ${sep.toFixed(2)} ms, joint ${joint.toFixed(2)} ms`);
}
