/**
 * The linear head's whole training (L2 sweep by cross-validation, final fit, calibration) against one scikit-learn
 * lbfgs fit (StandardScaler + LogisticRegression(C=1, max_iter=100)), time and held-out accuracy, on the same files,
 * interleaved round by round (sklearn fit, then each edgetl variant) so a shared machine's load falls on all alike.
 * The accuracy bar is scikit-learn's best C chosen on val (an oracle sweep by bench/sklearn-compare.py).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/heads-vs-sklearn.ts \
 *     [--set name=trainPrefix,valPrefix[,saved-sklearn-compare.json] ...] [--synthetic] [--rounds 3] [--variant name='{"precondition":false}' ...] \
 *     [--out results.json]
 *
 * --synthetic adds seeded synthetic sets: 2,040 x 1,280 with 102 classes (+1,020 val) and 2,000 x 1,280 with 2
 * classes (+1,000 val), written under $TMPDIR. Needs /usr/bin/python3 with scikit-learn (apt-get install python3-sklearn).
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { readEmbeddingSet } from '../src/node/embed/embedding-set.js';
import { trainHead, type TrainHeadOptions } from '../src/core/heads/train.js';
import { nodeDenseMath } from '../src/node/train-head.js';
import { heldOutMetrics } from '../src/core/heads/metrics.js';
import { writeSyntheticSplit } from './heads-synthetic.js';

const { values } = parseArgs({
  options: {
    set: { type: 'string', multiple: true, default: [] },
    synthetic: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    variant: { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const rounds = Number(values.rounds);
const script = join(import.meta.dirname ?? '.', 'sklearn-compare.py');
const sets: { name: string; train: string; val: string; oracle?: string }[] = values.set.map((s) => {
  const [name, prefixes] = s.split('=');
  const [train, val, oracle] = (prefixes ?? '').split(',');
  if (!name || !train || !val)
    throw new Error(`--set ${s}: expected name=trainPrefix,valPrefix[,sklearn-compare.json]`);
  return { name, train, val, oracle };
});
if (values.synthetic) {
  const dir = mkdtempSync(join(tmpdir(), 'edgetl-heads-'));
  sets.push({
    name: 'synthetic 102-class 2040x1280',
    ...(await writeSyntheticSplit(join(dir, 's102'), 2040, 1020, 1280, 102, 0)),
  });
  sets.push({
    name: 'synthetic 2-class 2000x1280',
    ...(await writeSyntheticSplit(join(dir, 's2'), 2000, 1000, 1280, 2, 0)),
  });
}
const variants: { name: string; options: TrainHeadOptions }[] = values.variant.length
  ? values.variant.map((v) => {
      const at = v.indexOf('=');
      return { name: v.slice(0, at), options: JSON.parse(v.slice(at + 1)) as TrainHeadOptions };
    })
  : [{ name: 'default', options: {} }];

function python(args: string[]): unknown {
  const run = spawnSync(values.python, [script, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`sklearn-compare.py ${args.join(' ')} failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!);
}

const math = await nodeDenseMath();
// Warm the onnxruntime sessions and the JIT outside the timings.
{
  // 200 rows spread over the set: a set sorted by class would give its first 200 rows one class
  const warm = await readEmbeddingSet(sets[0]!.train);
  const step = Math.max(1, Math.floor(warm.count / 200));
  const picked = Array.from({ length: Math.min(200, warm.count) }, (_, i) => i * step);
  const rows = new Float32Array(picked.length * warm.dim);
  picked.forEach((i, r) => rows.set(warm.embeddings.subarray(i * warm.dim, (i + 1) * warm.dim), r * warm.dim));
  await trainHead(
    rows,
    picked.map((i) => warm.items[i]!.label ?? ''),
    { math, calibrate: false, l2: 1e-2 },
  );
}

const range = (xs: number[]) => ({
  min: Math.min(...xs),
  median: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!,
  max: Math.max(...xs),
});
const results = [];
for (const set of sets) {
  const train = await readEmbeddingSet(set.train);
  const val = await readEmbeddingSet(set.val);
  const labels = train.items.map((i) => i.label ?? '');
  // the oracle sweep is slow (13 fits to convergence): a saved `sklearn-compare.py train val --json` output may stand in
  const oracle = (set.oracle ? JSON.parse(readFileSync(set.oracle, 'utf8')) : python([set.train, set.val])) as {
    bestC: number;
    bestValAccuracy: number;
    defaultCValAccuracy: number;
  };
  const sklearnSeconds: number[] = [];
  const edgetl = new Map(
    variants.map((v) => [
      v.name,
      { seconds: [] as number[], accuracy: [] as number[], options: {} as Record<string, unknown> },
    ]),
  );
  for (let r = 0; r < rounds; r++) {
    const fit = python(['--time-fit', set.train, '--repeat', '1']) as { fitSeconds: number[] };
    sklearnSeconds.push(fit.fitSeconds[0]!);
    for (const variant of variants) {
      const t0 = performance.now();
      const head = await trainHead(train.embeddings, labels, { ...variant.options, math });
      const seconds = (performance.now() - t0) / 1000;
      const targets = val.items.map((i) => head.labels.indexOf(i.label ?? ''));
      const metrics = heldOutMetrics(
        head.logits(val.embeddings, val.count),
        targets,
        head.labels.length,
        head.temperature,
      );
      const entry = edgetl.get(variant.name)!;
      entry.seconds.push(seconds);
      entry.accuracy.push(metrics.accuracy);
      entry.options = head.training.options;
    }
  }
  const sk = range(sklearnSeconds);
  const row = {
    set: set.name,
    trainRows: train.count,
    valRows: val.count,
    dim: train.dim,
    classes: new Set(labels).size,
    sklearn: {
      fitSeconds: sk,
      fitSecondsPerRound: sklearnSeconds,
      bestC: oracle.bestC,
      bestValAccuracy: oracle.bestValAccuracy,
      c1ValAccuracy: oracle.defaultCValAccuracy,
    },
    edgetl: variants.map((v) => {
      const e = edgetl.get(v.name)!;
      const seconds = range(e.seconds);
      return {
        variant: v.name,
        trainSeconds: seconds,
        trainSecondsPerRound: e.seconds,
        // each round's time over the same round's sklearn fit: the ratio the bar is stated in
        ratioToOneFit: range(e.seconds.map((s, i) => s / sklearnSeconds[i]!)),
        valAccuracy: range(e.accuracy),
        accuracyMinusSklearnBest: Math.min(...e.accuracy) - oracle.bestValAccuracy,
        options: e.options,
      };
    }),
  };
  results.push(row);
  console.log(`${set.name}: ${train.count} train / ${val.count} val rows, ${row.classes} classes`);
  console.log(
    `  sklearn one fit (C=1): ${sk.median.toFixed(2)} s (${sk.min.toFixed(2)}-${sk.max.toFixed(2)}); best C ${oracle.bestC.toPrecision(3)} val accuracy ${oracle.bestValAccuracy.toFixed(4)} (C=1: ${oracle.defaultCValAccuracy.toFixed(4)})`,
  );
  for (const e of row.edgetl) {
    console.log(
      `  edgetl ${e.variant}: ${e.trainSeconds.median.toFixed(2)} s (${e.trainSeconds.min.toFixed(2)}-${e.trainSeconds.max.toFixed(2)}), ` +
        `${e.ratioToOneFit.median.toFixed(2)}x one fit (${e.ratioToOneFit.min.toFixed(2)}-${e.ratioToOneFit.max.toFixed(2)}), ` +
        `val accuracy ${e.valAccuracy.median.toFixed(4)} (${e.accuracyMinusSklearnBest >= 0 ? '+' : ''}${e.accuracyMinusSklearnBest.toFixed(4)} vs sklearn best)`,
    );
  }
}
await math.dispose?.();
const report = { machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, rounds, results };
if (values.out) writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
