#!/usr/bin/env node
// A plain onnxruntime-node loop, independent of edgetl's code: the honesty check for `edgetl bench`'s raw inference
// figure. It opens the same model file with default session options (plus the same thread counts), feeds one fixed
// input of the same shape, and times `session.run` with the same window (warm-up, then at least N runs AND T ms).
//
//   node bench/raw-onnxruntime-loop.mjs --model <file.onnx> --dims 8,3,224,224 [--threads N] [--inter N]
//        [--warmup 10] [--min-runs 100] [--min-ms 10000] [--sessions 2]
//   node bench/raw-onnxruntime-loop.mjs --from results.json [--run <run id>]... [--min-ms 10000]
//
// With --from it repeats every CPU run of an `edgetl bench` results file (model = the run's backbone.runPath, the
// feature extractor edgetl ran) and prints both medians, their ratio, and whether they agree within the noise both
// sides state. Exit code 1 when a run disagrees. See bench/README.md.
import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

function parseArgs(argv) {
  const options = { run: [] };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (!key.startsWith('--')) throw new Error(`unexpected argument ${key}`);
    const name = key.slice(2);
    if (name === 'help' || name === 'json') options[name] = true;
    else if (name === 'run') options.run.push(argv[++i]);
    else options[name] = argv[++i];
  }
  return options;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = (sorted.length - 1) / 2;
  return (sorted[Math.floor(mid)] + sorted[Math.ceil(mid)]) / 2;
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * p;
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, sorted.length - 1);
  return sorted[lower] + (position - lower) * (sorted[upper] - sorted[lower]);
}

/** Same definition as edgetl's stated noise, written again here: bootstrap CI of the median, block drift, session spread. */
function noise(samples, sessionMedians) {
  const center = median(samples);
  let state = 12345;
  const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296);
  const medians = [];
  for (let r = 0; r < 500; r++) {
    const resample = Array.from(samples, () => samples[Math.floor(random() * samples.length)]);
    medians.push(median(resample));
  }
  const interval = (percentile(medians, 0.975) - percentile(medians, 0.025)) / 2 / center;
  const blocks = [];
  if (samples.length >= 20) {
    for (let b = 0; b < 5; b++) blocks.push(median(samples.slice(Math.floor((b * samples.length) / 5), Math.floor(((b + 1) * samples.length) / 5))));
  }
  const drift = blocks.length ? (Math.max(...blocks) - Math.min(...blocks)) / 2 / center : 0;
  const session = sessionMedians.length > 1 ? (Math.max(...sessionMedians) - Math.min(...sessionMedians)) / 2 / center : 0;
  return Math.max(interval, drift, session);
}

async function rawLoop({ model, dims, threads, inter, optimization, warmup, minRuns, minMs, sessions }) {
  const options = { executionProviders: ['cpu'], graphOptimizationLevel: optimization ?? 'all' };
  if (threads) options.intraOpNumThreads = threads;
  if (inter) options.interOpNumThreads = inter;
  const count = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = ((i * 2654435761) % 1000) / 250 - 2;
  const samples = [];
  const sessionMedians = [];
  let createMs;
  let firstMs;
  for (let s = 0; s < sessions; s++) {
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(model, options);
    createMs ??= performance.now() - t0;
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
    const fetches = [session.outputNames[0]];
    const t1 = performance.now();
    await session.run(feeds, fetches);
    firstMs ??= performance.now() - t1;
    for (let w = 0; w < warmup; w++) await session.run(feeds, fetches);
    const mine = [];
    const start = performance.now();
    while (mine.length < Math.ceil(minRuns / sessions) || performance.now() - start < minMs / sessions) {
      const t = performance.now();
      await session.run(feeds, fetches);
      mine.push(performance.now() - t);
    }
    await session.release();
    samples.push(...mine);
    sessionMedians.push(median(mine));
  }
  const batch = dims[0];
  const busy = samples.reduce((a, b) => a + b, 0);
  return {
    runs: samples.length,
    sessionCreateMs: createMs,
    firstRunMs: firstMs,
    p50: median(samples),
    p90: percentile(samples, 0.9),
    p99: percentile(samples, 0.99),
    imagesPerSecond: (batch * samples.length) / (busy / 1000),
    noise: noise(samples, sessionMedians),
  };
}

const HELP = readFileSync(new URL(import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => line.startsWith('//'))
  .map((line) => line.slice(3))
  .join('\n');

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || (!args.model && !args.from)) {
    process.stdout.write(HELP + '\n');
    return args.help ? 0 : 2;
  }
  if (args.model) {
    const dims = (args.dims ?? '1,3,224,224').split(',').map(Number);
    const result = await rawLoop({
      model: args.model,
      dims,
      threads: args.threads ? Number(args.threads) : undefined,
      inter: args.inter ? Number(args.inter) : undefined,
      optimization: args.optimization,
      warmup: Number(args.warmup ?? 10),
      minRuns: Number(args['min-runs'] ?? 100),
      minMs: Number(args['min-ms'] ?? 10000),
      sessions: Number(args.sessions ?? 2),
    });
    process.stdout.write(JSON.stringify({ model: args.model, dims, onnxruntime: ort.env.versions?.node ?? 'unknown', ...result }, null, 1) + '\n');
    return 0;
  }

  const results = JSON.parse(readFileSync(args.from, 'utf8'));
  if (results.schema !== 'edgetl-bench/1') throw new Error(`${args.from} is not an edgetl bench results file`);
  const method = results.method;
  const runs = results.runs.filter((r) => r.samplesMs?.length && r.provider?.used === 'cpu' && (args.run.length === 0 || args.run.includes(r.id)));
  if (runs.length === 0) throw new Error(`no measured CPU run${args.run.length ? ` named ${args.run.join(', ')}` : ''} in ${args.from}`);
  const sessions = results.profile.content?.measurement?.sessions ?? 2;
  const rows = [];
  let disagreements = 0;
  for (const run of runs) {
    const inputDims = run.backbone.inputDims?.length ? run.backbone.inputDims : [-1, 3, 224, 224];
    const dims = inputDims.map((d, i) => (i === 0 ? run.batch : d));
    if (dims.some((d) => !(d > 0))) throw new Error(`${run.id}: input dims ${JSON.stringify(inputDims)} have free sizes besides the batch`);
    process.stderr.write(`raw loop: ${run.id} (${run.backbone.runPath}, dims ${dims.join('x')})\n`);
    const raw = await rawLoop({
      model: run.backbone.runPath,
      dims,
      threads: run.provider.intraOpThreads,
      inter: run.provider.interOpThreads,
      optimization: run.provider.graphOptimizationLevel,
      warmup: method.warmupRuns,
      minRuns: method.minRuns,
      minMs: args['min-ms'] !== undefined ? Number(args['min-ms']) : method.minDurationMs,
      sessions,
    });
    const harness = median(run.samplesMs);
    const ratio = raw.p50 / harness;
    const allowed = (run.noise?.relative ?? 0) + raw.noise;
    const agree = Math.abs(ratio - 1) <= allowed;
    if (!agree) disagreements++;
    rows.push({ run: run.id, harnessP50: harness, rawP50: raw.p50, ratio, allowed, agree, harnessImagesPerSecond: run.imagesPerSecond, rawImagesPerSecond: raw.imagesPerSecond });
  }
  const f = (v, d = 3) => v.toFixed(d);
  process.stdout.write(`| run | edgetl bench p50 ms | raw onnxruntime p50 ms | raw / bench | allowed (noise both sides) | agree |\n|---|---|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.run} | ${f(r.harnessP50)} | ${f(r.rawP50)} | ${f(r.ratio)} | ±${f(r.allowed * 100, 1)}% | ${r.agree ? 'yes' : 'NO'} |\n`);
  if (args.json) process.stdout.write(JSON.stringify(rows) + '\n');
  return disagreements > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`raw-onnxruntime-loop: ${error.message}\n`);
    process.exitCode = 1;
  },
);
