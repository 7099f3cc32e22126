#!/usr/bin/env node
// The README table from an `edgetl bench` results file: one row per inference run (backbone x provider x batch),
// with the host and date it came from. Figures are read from the file, never typed in.
//   node bench/results-table.mjs bench/results/x86-cpu-<date>.json [--batch 1 --batch 8]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const batches = args.flatMap((a, i) => (a === '--batch' ? [Number(args[i + 1])] : []));
if (!file) {
  process.stderr.write('usage: node bench/results-table.mjs <results.json> [--batch N]...\n');
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
if (r.schema !== 'edgetl-bench/1') throw new Error(`${file} is not an edgetl bench results file`);
const f = (v, d) => (v === undefined || v === null ? '—' : Number(v).toFixed(d));
const h = r.host;
const isa = Object.entries(h.isa)
  .filter(([, on]) => on)
  .map(([k]) => k.toUpperCase())
  .join(' ');
console.log(
  `Measured ${r.startedAt.slice(0, 10)} on ${h.cpuModel} (${h.logicalCores} logical cores, ${isa}), ${Math.round(h.memoryMb / 1024)} GiB, ${h.os.distribution ?? h.os.platform}, Node ${h.node}, onnxruntime-node ${h.onnxruntime.node}; profile ${r.profile.name}${r.complete ? '' : ' (INCOMPLETE)'}; load average ${h.loadAverage[0]} at start.`,
);
console.log('');
console.log(
  '| backbone | provider | batch | best session ms/batch | ms/image | images/s | GFLOP/s | whole run p50 ms/batch | p99 | noise ± | end-to-end images/s | pipeline efficiency | peak RSS MB |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const run of r.runs) {
  if (batches.length && !batches.includes(run.batch)) continue;
  const e2e = r.endToEnd.find(
    (e) => e.backbone === run.backbone.id && e.provider === run.providerRequested && e.batch === run.batch,
  );
  if (!run.latencyMsPerBatch || !run.speedClaim) {
    console.log(
      `| ${run.backbone.id} | ${run.providerRequested} | ${run.batch} | ${run.status}${run.reason ? `: ${run.reason}` : ''} |||||||||||`,
    );
    continue;
  }
  // Files from before best sessions existed: the whole run's figures in those columns.
  const best = run.bestSession ?? {
    medianMsPerBatch: run.latencyMsPerBatch.p50,
    medianMsPerImage: run.latencyMsPerImage.p50,
    imagesPerSecond: run.imagesPerSecond,
    achievedGflops: run.achievedGflops,
    noise: run.noise,
  };
  console.log(
    `| ${run.backbone.id} | ${run.provider.used} | ${run.batch} | ${f(best.medianMsPerBatch, 2)} ±${f(best.noise.relative * 100, 1)}% | ${f(best.medianMsPerImage, 2)} | ${f(best.imagesPerSecond, 1)} | ${f(best.achievedGflops, 1)} | ${f(run.latencyMsPerBatch.p50, 2)} | ${f(run.latencyMsPerBatch.p99, 2)} | ${f(run.noise.relative * 100, 1)}% | ${f(e2e?.imagesPerSecond, 1)} | ${f(e2e?.efficiency, 2)} | ${f(run.memory?.peakRssMb, 0)} |`,
  );
}
console.log('');
console.log(
  `Best session: the median of the fastest of each run's ${r.profile.content?.measurement?.sessions ?? 2} fresh sessions, which take turns with every other run's over the whole benchmark; ± is its stated noise (95% bootstrap half-width, or half the gap to the second-fastest session). Whole run: every session's samples together, ± the run's stated noise.`,
);
