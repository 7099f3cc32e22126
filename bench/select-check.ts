/**
 * The checks of `edgetl select` on a real dataset (<root>/train, <root>/val), each from the built CLI in its own
 * process, so every figure is a wall-clock time a user would see:
 *   1. embedding the train folder once per candidate (`edgetl embed --no-cache`, a fresh cache), wall and CPU time;
 *   2. `edgetl select train` with a fresh cache, timed the same way: its total against the sum of (1) (select, embeds,
 *      select, embeds: the means of both, since the machine's load drifts);
 *   3. each candidate's accuracy on the untouched val split (`edgetl train --backbone <it> --val val`): the pick's
 *      val accuracy against the best candidate's, and Spearman's rank correlation of selection accuracy with val;
 *   4. `edgetl select` again with --max-ms-per-image between the fastest and the slowest candidate of (2): the
 *      pick must be within it.
 *
 * --cost-only stops after 2.
 *
 *   npm run build && npx esbuild bench/select-check.ts --bundle --platform=node --format=esm --packages=external \
 *     --outfile=dist/select-check.mjs && node dist/select-check.mjs ../shared/datasets/flowers5 [--out report.md]
 *
 * Timings are disturbed by whatever else runs on the machine: the load average is printed beside them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spearman } from '../src/core/select/decision.js';
import type { SelectResult } from '../src/node/select/select.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, backbones: { type: 'string' }, 'cost-only': { type: 'boolean' } },
});
const root = resolve(positionals[0] ?? '../shared/datasets/flowers5');
const trainDir = join(root, 'train');
const valDir = join(root, 'val');
const cli = resolve('dist/cli.js');
const scratch = mkdtempSync(join(tmpdir(), 'edgetl-select-check-'));
const lines: string[] = [];
const log = (line: string) => {
  lines.push(line);
  process.stderr.write(line + '\n');
};

/**
 * Runs the CLI; wall seconds, and CPU seconds (user + system of it and the processes it waited for, from GNU time
 * when it is installed): CPU time barely moves with other load on the machine, wall time does.
 */
function edgetl(args: string[], cacheDir: string): { seconds: number; cpuSeconds: number | null; stdout: string } {
  const started = performance.now();
  const timeFile = join(scratch, 'time.txt');
  const withTime = existsSync('/usr/bin/time');
  const command = withTime ? '/usr/bin/time' : process.execPath;
  const argv = withTime ? ['-f', '%U %S', '-o', timeFile, process.execPath, cli, ...args] : [cli, ...args];
  const run = spawnSync(command, argv, {
    env: { ...process.env, EDGETL_CACHE_DIR: cacheDir },
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`edgetl ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
  const cpuSeconds = withTime
    ? readFileSync(timeFile, 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number)
        .reduce((a, b) => a + b, 0)
    : null;
  return { seconds, cpuSeconds, stdout: run.stdout };
}

const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

log(`# edgetl select on ${root}`);
log('');
log(
  `${new Date().toISOString()}; load average at the start ${load()} (other work on the machine disturbs every time below)`,
);
log('');

// 2 first, to learn the candidate set (the default: every pretrained backbone here), then 1.
const selectCache = join(scratch, 'select-cache');
const selectArgs = ['select', trainDir, '--json', ...(values.backbones ? ['--backbones', values.backbones] : [])];
const selected = edgetl([...selectArgs, '--report', join(scratch, 'select.html')], selectCache);
const result = JSON.parse(selected.stdout) as SelectResult;
const candidates = result.candidates.filter((c) => c.status === 'ok');

// Embedding once per candidate, before and after the selection: the machine's load drifts, and the selection is
// compared with the mean of the two rounds.
const embedRounds: { seconds: number; cpuSeconds: number | null }[][] = [[], []];
const embedRound = (round: number) => {
  candidates.forEach((c, i) => {
    const cache = join(scratch, `embed-cache-${round}-${i}`);
    embedRounds[round]!.push(
      edgetl(
        ['embed', trainDir, '--backbone', c.path!, '--no-cache', '--out', join(scratch, `e${i}`), '--json'],
        cache,
      ),
    );
    rmSync(cache, { recursive: true, force: true });
  });
};
embedRound(0);
const selectedAgain = edgetl([...selectArgs], join(scratch, 'select-cache-2'));
rmSync(join(scratch, 'select-cache-2'), { recursive: true, force: true });
embedRound(1);
const meanOf = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const embedSeconds = candidates.map((_, i) => meanOf(embedRounds.map((r) => r[i]!.seconds)));
const embedCpu = candidates.map((_, i) => meanOf(embedRounds.map((r) => r[i]!.cpuSeconds ?? NaN)));
const embedTotal = embedSeconds.reduce((a, b) => a + b, 0);
const embedCpuTotal = embedCpu.reduce((a, b) => a + b, 0);
const selectSeconds = (selected.seconds + selectedAgain.seconds) / 2;
const selectCpu = ((selected.cpuSeconds ?? NaN) + (selectedAgain.cpuSeconds ?? NaN)) / 2;
log('## Cost of the selection');
log('');
log(
  'Order: select (fresh cache), embed once per candidate, select again (fresh cache), embed again; means of the two.',
);
log('');
log(
  '| candidate | `edgetl embed` once: wall s | CPU s | inside select (1st run): embedding s | cross-validation s | cost s |',
);
log('|---|---|---|---|---|---|');
candidates.forEach((c, i) =>
  log(
    `| ${c.id} | ${embedSeconds[i]!.toFixed(1)} | ${embedCpu[i]!.toFixed(1)} | ${c.seconds.embedding.toFixed(1)} | ${c.seconds.crossValidation.toFixed(1)} | ${c.seconds.cost.toFixed(1)} |`,
  ),
);
log('');
log(
  `\`edgetl select\` (fresh cache): ${selected.seconds.toFixed(1)} s and ${selectedAgain.seconds.toFixed(1)} s wall, ${selectCpu.toFixed(1)} s CPU; embedding the folder once per candidate: ${embedTotal.toFixed(1)} s wall (rounds ${embedRounds.map((r) => r.reduce((a, b) => a + b.seconds, 0).toFixed(1)).join(' and ')}), ${embedCpuTotal.toFixed(1)} s CPU. Ratio **${(selectSeconds / embedTotal).toFixed(2)} wall, ${(selectCpu / embedCpuTotal).toFixed(2)} CPU** (limit 1.5). Baseline (raw pixels) ${result.seconds.baseline.toFixed(1)} s. Load average now ${load()}.`,
);
log('');

if (values['cost-only']) {
  if (values.out) writeFileSync(values.out, lines.join('\n') + '\n');
  rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
}

// 3. val accuracy per candidate (train on the whole train folder, evaluate on val).
const valAccuracy: number[] = [];
for (const c of candidates) {
  const out = edgetl(
    [
      'train',
      trainDir,
      '--backbone',
      c.path!,
      '--val',
      valDir,
      '--head',
      result.head,
      '--out',
      join(scratch, 'head.json'),
      '--json',
    ],
    selectCache,
  );
  valAccuracy.push((JSON.parse(out.stdout) as { val: { accuracy: number } }).val.accuracy);
}
const selectionAccuracy = candidates.map((c) => c.accuracy!);
const rho = spearman(selectionAccuracy, valAccuracy);
const bestVal = Math.max(...valAccuracy);
const pickIndex = candidates.findIndex((c) => c.backbone === result.recommended);
log('## Selection against the untouched val split');
log('');
log(`| candidate | held-out accuracy (select, train only) | val accuracy | ms/image | negative transfer |`);
log('|---|---|---|---|---|');
candidates.forEach((c, i) =>
  log(
    `| ${c.id}${i === pickIndex ? ' (pick)' : ''} | ${pct(c.accuracy!)} | ${pct(valAccuracy[i]!)} | ${c.msPerImage?.toFixed(2) ?? '?'} | ${c.negativeTransfer ? 'yes' : 'no'} |`,
  ),
);
log(`| baseline: ${result.baseline.name} | ${pct(result.baseline.accuracy!)} | | | |`);
log('');
log(`Pick: ${result.recommended} (${result.reason})`);
log(
  `Pick's val accuracy ${pct(valAccuracy[pickIndex]!)}, best candidate's ${pct(bestVal)}: ${(100 * (bestVal - valAccuracy[pickIndex]!)).toFixed(1)} points behind (limit 1). Spearman(select accuracy, val accuracy) = **${rho.toFixed(3)}** (limit 0.8).`,
);
log('');

// 4. latency budgets between the fastest and the slowest candidate (a quarter, half and three quarters of the way,
// on a log scale). Each run measures the costs afresh: the pick must be within the budget by that run's figures.
const costs = candidates.map((c) => c.msPerImage!).filter((v) => Number.isFinite(v));
const fastest = Math.min(...costs);
const slowest = Math.max(...costs);
log('## With a latency budget');
log('');
log(`Fastest ${fastest.toFixed(2)} ms, slowest ${slowest.toFixed(2)} ms per image in the first run.`);
log('');
log('| --max-ms-per-image | pick | its ms/image in that run | within | over the budget in that run |');
log('|---|---|---|---|---|');
for (const share of [0.25, 0.5, 0.75]) {
  const budget = Number((fastest * (slowest / fastest) ** share).toFixed(2));
  const budgeted = JSON.parse(
    edgetl([...selectArgs, '--max-ms-per-image', String(budget)], selectCache).stdout,
  ) as SelectResult;
  const pick = budgeted.candidates.find((c) => c.backbone === budgeted.recommended);
  const over = budgeted.candidates
    .filter((c) => c.withinBudget === 'over')
    .map((c) => `${c.id} (${c.msPerImage?.toFixed(2)})`);
  log(
    `| ${budget} | ${pick?.id ?? 'none'} | ${pick?.msPerImage?.toFixed(2) ?? '-'} | ${pick ? (pick.msPerImage! <= budget ? 'yes' : 'NO') : '-'} | ${over.join(', ') || 'none'} |`,
  );
}
log('');
log(`Load average at the end ${load()}.`);

if (values.out) writeFileSync(values.out, lines.join('\n') + '\n');
rmSync(scratch, { recursive: true, force: true });
