#!/usr/bin/env node
// A plain onnxruntime-node loop, independent of edgetl's code: the honesty check for `edgetl bench`'s raw inference
// figure. It opens the same model file with default session options (plus the same thread counts), feeds one fixed
// input of the same shape, and times `session.run` with the same window (warm-up, then at least N runs AND T ms),
// split over fresh sessions taken in turns over all models, as edgetl bench does.
//
//   node bench/raw-onnxruntime-loop.mjs --model <file.onnx> --dims 8,3,224,224 [--threads N] [--inter N]
//        [--warmup 10] [--min-runs 100] [--min-ms 10000] [--sessions 2]
//   node bench/raw-onnxruntime-loop.mjs --from results.json [--run <run id>]... [--min-ms 10000] [--sessions N]
//   node bench/raw-onnxruntime-loop.mjs --from results.json --paired
//
// With --from it repeats every CPU run of an `edgetl bench` results file (model = the run's backbone.runPath, the
// feature extractor edgetl ran) and prints both best-session medians, their ratio, and whether they agree within
// the noise both sides state; the whole-run medians are shown too. Exit code 1 when a run disagrees.
// With --paired it also times edgetl's own session (the built dist/index.js) in the same rounds, each run's edgetl
// and plain sessions back to back: a machine whose speed wanders between minutes then cannot open a gap between the
// two, which it can between a results file and a loop run later.
// See bench/README.md.
import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

function parseArgs(argv) {
  const options = { run: [] };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (!key.startsWith('--')) throw new Error(`unexpected argument ${key}`);
    const name = key.slice(2);
    if (name === 'help' || name === 'json' || name === 'paired') options[name] = true;
    else if (name === 'run') options.run.push(argv[++i]);
    else options[name] = argv[++i];
  }
  return options;
}

/** Differences below this are never called disagreements: the minimum effect `edgetl bench compare` flags by default. */
const MIN_EFFECT = 0.02;

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

function bootstrapHalfWidth(samples) {
  const center = median(samples);
  let state = 12345;
  const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296;
  const medians = [];
  for (let r = 0; r < 500; r++)
    medians.push(median(Array.from(samples, () => samples[Math.floor(random() * samples.length)])));
  return (percentile(medians, 0.975) - percentile(medians, 0.025)) / 2 / center;
}

/** The fastest session's median and its noise, by the definition edgetl states (written again here, independently). */
function bestSession(sessions) {
  const medians = sessions.map(median);
  const best = medians.indexOf(Math.min(...medians));
  const others = medians.filter((_, i) => i !== best);
  const gap = others.length ? (Math.min(...others) - medians[best]) / 2 / medians[best] : 0;
  return { session: best, median: medians[best], noise: Math.max(bootstrapHalfWidth(sessions[best]), gap) };
}

function inputFor(dims) {
  const count = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = ((i * 2654435761) % 1000) / 250 - 2;
  return new ort.Tensor('float32', data, dims);
}

/**
 * Times every job's sessions in turn (session 1 of each job, then session 2 of each...), like `edgetl bench`, so
 * each job samples the whole time the script runs. Each session: create, one cold run, warm-up, then at least
 * minRuns/sessions runs AND minMs/sessions ms, release.
 */
/** A plain onnxruntime session: `run()` is one awaited session.run on a fixed input. */
async function openRaw(job) {
  const options = { executionProviders: ['cpu'], graphOptimizationLevel: job.optimization ?? 'all' };
  if (job.threads) options.intraOpNumThreads = job.threads;
  if (job.inter) options.interOpNumThreads = job.inter;
  if (job.inter > 1) options.executionMode = 'parallel';
  const session = await ort.InferenceSession.create(job.model, options);
  const feeds = { [session.inputNames[0]]: inputFor(job.dims) };
  const fetches = [session.outputNames[0]];
  return { run: () => session.run(feeds, fetches), release: () => session.release() };
}

/** edgetl's own session (the built dist/index.js), as `edgetl bench` and `edgetl embed` run it: for --paired. */
async function openEdgetl(job) {
  const edgetl = await import(new URL('../dist/index.js', import.meta.url).href).catch((error) => {
    throw new Error(`--paired needs the built library (npm run build): ${error.message}`);
  });
  const options = { ep: 'cpu', strictEp: true, graphOptimizationLevel: job.optimization ?? 'all' };
  if (job.threads) options.intraOpThreads = job.threads;
  if (job.inter) options.interOpThreads = job.inter;
  const session = await edgetl.createSession(job.model, options);
  const input = inputFor(job.dims).data;
  return { run: () => session.run(input, job.dims), release: () => session.close() };
}

async function rawLoops(jobs, { warmup, minRuns, minMs, sessions }) {
  const state = jobs.map(() => ({ sessions: [], createMs: undefined, firstMs: undefined }));
  for (let s = 0; s < sessions; s++) {
    const order = jobs.map((_, j) => j);
    // Paired jobs (a run's raw and edgetl sessions, next to each other) swap every other session: neither always goes first.
    if (s % 2 === 1) {
      for (let j = 0; j + 1 < order.length; j += 2) {
        if (jobs[j].pair !== undefined && jobs[j].pair === jobs[j + 1].pair)
          [order[j], order[j + 1]] = [order[j + 1], order[j]];
      }
    }
    for (const j of order) {
      const job = jobs[j];
      const t0 = performance.now();
      const session = job.kind === 'edgetl' ? await openEdgetl(job) : await openRaw(job);
      state[j].createMs ??= performance.now() - t0;
      const t1 = performance.now();
      await session.run();
      state[j].firstMs ??= performance.now() - t1;
      for (let w = 0; w < warmup; w++) await session.run();
      const mine = [];
      const start = performance.now();
      while (mine.length < Math.ceil(minRuns / sessions) || performance.now() - start < minMs / sessions) {
        const t = performance.now();
        await session.run();
        mine.push(performance.now() - t);
      }
      await session.release();
      state[j].sessions.push(mine);
      process.stderr.write(
        `raw loop: session ${s + 1}/${sessions} ${job.label}: median ${median(mine).toFixed(3)} ms\n`,
      );
    }
  }
  return jobs.map((job, j) => {
    const samples = state[j].sessions.flat();
    const best = bestSession(state[j].sessions);
    const batch = job.dims[0];
    return {
      runs: samples.length,
      sessions: state[j].sessions.length,
      sessionCreateMs: state[j].createMs,
      firstRunMs: state[j].firstMs,
      p50: median(samples),
      p90: percentile(samples, 0.9),
      p99: percentile(samples, 0.99),
      imagesPerSecond: (batch * samples.length) / (samples.reduce((a, b) => a + b, 0) / 1000),
      bestSessionMedian: best.median,
      bestSessionNoise: best.noise,
    };
  });
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
    const [result] = await rawLoops(
      [
        {
          label: args.model,
          model: args.model,
          dims,
          threads: args.threads ? Number(args.threads) : undefined,
          inter: args.inter ? Number(args.inter) : undefined,
          optimization: args.optimization,
        },
      ],
      {
        warmup: Number(args.warmup ?? 10),
        minRuns: Number(args['min-runs'] ?? 100),
        minMs: Number(args['min-ms'] ?? 10000),
        sessions: Number(args.sessions ?? 2),
      },
    );
    process.stdout.write(
      JSON.stringify(
        { model: args.model, dims, onnxruntime: ort.env.versions?.node ?? 'unknown', ...result },
        null,
        1,
      ) + '\n',
    );
    return 0;
  }

  const results = JSON.parse(readFileSync(args.from, 'utf8'));
  if (results.schema !== 'edgetl-bench/1') throw new Error(`${args.from} is not an edgetl bench results file`);
  const method = results.method;
  const runs = results.runs.filter(
    (r) => r.samplesMs?.length && r.provider?.used === 'cpu' && (args.run.length === 0 || args.run.includes(r.id)),
  );
  if (runs.length === 0)
    throw new Error(`no measured CPU run${args.run.length ? ` named ${args.run.join(', ')}` : ''} in ${args.from}`);
  const sessions =
    args.sessions !== undefined ? Number(args.sessions) : (results.profile.content?.measurement?.sessions ?? 2);
  // The profile's noise floor applies to every figure measured on its device class, these included.
  const floor = results.profile.content?.measurement?.noiseFloor ?? 0;
  const jobs = runs.map((run) => {
    const inputDims = run.backbone.inputDims?.length ? run.backbone.inputDims : [-1, 3, 224, 224];
    const dims = inputDims.map((d, i) => (i === 0 ? run.batch : d));
    if (dims.some((d) => !(d > 0)))
      throw new Error(`${run.id}: input dims ${JSON.stringify(inputDims)} have free sizes besides the batch`);
    process.stderr.write(`raw loop: ${run.id} (${run.backbone.runPath}, dims ${dims.join('x')})\n`);
    return {
      label: run.id,
      kind: 'raw',
      model: run.backbone.runPath,
      dims,
      threads: run.provider.intraOpThreads,
      inter: run.provider.interOpThreads,
      optimization: run.provider.graphOptimizationLevel,
    };
  });
  const paired = args.paired === true;
  const timed = paired
    ? jobs.flatMap((job, i) => [
        { ...job, pair: i },
        { ...job, kind: 'edgetl', pair: i, label: `${job.label} (edgetl)` },
      ])
    : jobs;
  const measured = await rawLoops(timed, {
    warmup: method.warmupRuns,
    minRuns: method.minRuns,
    minMs: args['min-ms'] !== undefined ? Number(args['min-ms']) : method.minDurationMs,
    sessions,
  });
  const rows = [];
  let disagreements = 0;
  const f = (v, d = 3) => v.toFixed(d);
  if (paired) {
    for (const [i, run] of runs.entries()) {
      const raw = measured[2 * i];
      const mine = measured[2 * i + 1];
      const ratio = raw.bestSessionMedian / mine.bestSessionMedian;
      const allowed = Math.max(raw.bestSessionNoise, floor) + Math.max(mine.bestSessionNoise, floor);
      const agree = Math.abs(ratio - 1) <= Math.max(MIN_EFFECT, allowed);
      if (!agree) disagreements++;
      rows.push({
        run: run.id,
        edgetlBest: mine.bestSessionMedian,
        rawBest: raw.bestSessionMedian,
        ratio,
        allowed,
        agree,
        edgetlP50: mine.p50,
        rawP50: raw.p50,
        fileBest: run.bestSession?.medianMsPerBatch,
      });
    }
    process.stdout.write(
      `| run | edgetl session best-session p50 ms | raw onnxruntime best-session p50 ms | raw / edgetl | allowed (noise both sides) | agree | whole-run p50 ms, edgetl / raw | results file best-session p50 ms (measured earlier) |\n|---|---|---|---|---|---|---|---|\n`,
    );
    for (const r of rows)
      process.stdout.write(
        `| ${r.run} | ${f(r.edgetlBest)} | ${f(r.rawBest)} | ${f(r.ratio)} | ±${f(r.allowed * 100, 1)}% | ${r.agree ? 'yes' : 'NO'} | ${f(r.edgetlP50)} / ${f(r.rawP50)} | ${r.fileBest !== undefined ? f(r.fileBest) : '—'} |\n`,
      );
    process.stdout.write(
      `\n${rows.length - disagreements} of ${rows.length} runs agree. Paired: each of ${sessions} rounds runs, for every run, one fresh edgetl session (createSession + run, as edgetl bench times it) and one fresh plain onnxruntime session back to back, in alternating order, so both see the same state of the machine. Both sides: the median of the fastest session; noise = the larger of its 95% bootstrap half-width and half the gap to the second-fastest session; each at least the profile's noise floor (±${f(floor * 100, 1)}%); they agree when the ratio is within the sum of both noises, or within 2% (the minimum effect bench compare flags).\n`,
    );
    if (args.json) process.stdout.write(JSON.stringify(rows) + '\n');
    return disagreements > 0 ? 1 : 0;
  }
  for (const [i, run] of runs.entries()) {
    const raw = measured[i];
    // Files written before best sessions existed: the whole run's median and stated noise.
    const harness = run.bestSession?.medianMsPerBatch ?? median(run.samplesMs);
    const harnessNoise = run.bestSession?.noise.relative ?? run.noise?.relative ?? 0;
    const ratio = raw.bestSessionMedian / harness;
    const allowed = Math.max(harnessNoise, floor) + Math.max(raw.bestSessionNoise, floor);
    const agree = Math.abs(ratio - 1) <= Math.max(MIN_EFFECT, allowed);
    if (!agree) disagreements++;
    rows.push({
      run: run.id,
      harnessBest: harness,
      rawBest: raw.bestSessionMedian,
      ratio,
      allowed,
      agree,
      harnessP50: median(run.samplesMs),
      rawP50: raw.p50,
      harnessImagesPerSecond: run.imagesPerSecond,
      rawImagesPerSecond: raw.imagesPerSecond,
    });
  }
  process.stdout.write(
    `| run | edgetl bench best-session p50 ms | raw onnxruntime best-session p50 ms | raw / bench | allowed (noise both sides) | agree | whole-run p50 ms, bench / raw |\n|---|---|---|---|---|---|---|\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.run} | ${f(r.harnessBest)} | ${f(r.rawBest)} | ${f(r.ratio)} | ±${f(r.allowed * 100, 1)}% | ${r.agree ? 'yes' : 'NO'} | ${f(r.harnessP50)} / ${f(r.rawP50)} |\n`,
    );
  process.stdout.write(
    `\n${rows.length - disagreements} of ${rows.length} runs agree. Both sides: the median of the fastest of ${sessions} fresh sessions, taken in turns over all runs; noise = the larger of its 95% bootstrap half-width and half the gap to the second-fastest session.\n`,
  );
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
