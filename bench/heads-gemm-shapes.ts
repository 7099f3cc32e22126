/**
 * The few-column products of a small linear head's L2 sweep, in every layout onnxruntime's Gemm can be asked them,
 * on the default DenseMath: the measurement behind the one-column layout in src/core/heads/shared-products.ts.
 * A matrix of 2,000 x 1,280 (a 2-class set of MobileNetV2 embeddings) against 1, 3 and 6 model columns (one model,
 * three folds, two strengths of three folds).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/heads-gemm-shapes.ts [--rows 2000] \
 *     [--repeat 200] [--json]
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { nodeDenseMath } from '../src/node/train-head.js';
import { Random } from '../src/core/heads/random.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000' },
    dim: { type: 'string', default: '1280' },
    repeat: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const dim = Number(values.dim);
const repeat = Number(values.repeat);
const math = await nodeDenseMath();
const random = new Random(3);
const data = Float32Array.from({ length: rows * dim }, () => random.normal());

/** Median ms of `repeat` calls after a warm-up of a tenth as many. */
async function median(product: () => Promise<Float32Array>): Promise<number> {
  for (let i = 0; i < Math.max(5, repeat / 10); i++) await product();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await product();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

const results: { columns: number; product: string; layout: string; ms: number }[] = [];
for (const columns of [1, 3, 6]) {
  const weight = Float32Array.from({ length: columns * dim }, () => random.normal());
  const residual = Float32Array.from({ length: rows * columns }, () => random.normal());
  const layouts: [string, string, () => Promise<Float32Array>][] = [
    ['logits', `data . W^T -> [${rows}, ${columns}]`, () => math.gemm(data, weight, rows, dim, columns, false, true)],
    ['logits', `W . data^T -> [${columns}, ${rows}]`, () => math.gemm(weight, data, columns, dim, rows, false, true)],
    [
      'gradient',
      `R^T . data, R [${rows}, ${columns}]`,
      () => math.gemm(residual, data, columns, rows, dim, true, false),
    ],
    [
      'gradient',
      `R . data, R [${columns}, ${rows}]`,
      () => math.gemm(residual, data, columns, rows, dim, false, false),
    ],
    [
      'gradient',
      `data^T . R -> [${dim}, ${columns}]`,
      () => math.gemm(data, residual, dim, rows, columns, true, false),
    ],
  ];
  for (const [product, layout, run] of layouts) results.push({ columns, product, layout, ms: await median(run) });
}
await math.dispose?.();

const machine = { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, denseMath: math.name };
if (values.json) {
  console.log(JSON.stringify({ machine, rows, dim, repeat, results }, null, 2));
} else {
  console.log(`# Few-column products on ${math.name}, ${rows} x ${dim} (median of ${repeat})`);
  console.log(`Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}\n`);
  console.log('| model columns | product | layout | ms |\n|---:|---|---|---:|');
  for (const r of results) console.log(`| ${r.columns} | ${r.product} | ${r.layout} | ${r.ms.toFixed(3)} |`);
}
