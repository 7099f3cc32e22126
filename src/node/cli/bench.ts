import { resolve } from 'node:path';
import { ProgressBar, abortOnCtrlC, parseCommandLine, parseNumberOption, printJson, type Command } from './common.js';
import { EdgetlError } from '../../core/util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { ExecutionProviderName } from '../../core/execution/types.js';
import { autotune } from '../bench/autotune.js';
import { failedVerdicts } from '../bench/budgets.js';
import { compareResults } from '../bench/compare.js';
import { createResults, finishResults, runBench, type BenchProgress } from '../bench/harness.js';
import { collectHostFacts } from '../bench/host.js';
import {
  backboneSettings,
  listProfiles,
  loadProfile,
  validateProfile,
  type DeviceProfile,
  type LoadedProfile,
} from '../bench/profile.js';
import { renderComparison, renderMarkdown } from '../bench/report-markdown.js';
import { renderHtml } from '../bench/report-html.js';
import { loadResults, type BenchResults } from '../bench/results.js';

const HELP = `edgetl bench: measure backbones on this device against a device profile

Usage:
  edgetl bench --profile <name|file.json> [options]
  edgetl bench --profile <name|file.json> --autotune [--tuned-out tuned.json]
  edgetl bench compare <a.json> <b.json> [--min-effect 0.02] [--json] [--check]
  edgetl bench --list

For each backbone x provider x batch size of the profile: session creation and cold first run, steady-state
latency (p50/p90/p99/min/max/mean; warm-up runs, then at least the profile's minimum count AND duration,
split over fresh sessions that take turns with every other run's, so each run samples the whole benchmark;
the median of the fastest session is reported too, as the most repeatable figure), images/s, MACs per image and achieved GFLOP/s, peak memory; preprocessing alone on real images; end-to-end
images/s through the real pipeline and its efficiency; head training and prediction; budget verdicts.
A Markdown summary goes to stdout; progress goes to stderr. Ctrl-C stops and writes what was measured so far,
marked incomplete (exit code 130).

Options:
  --profile <name|file>   device-profiles/<name>.json or a profile file (see --list)
  --backbone <id|path>    only these backbones (repeatable); ids not in the profile are added
  --provider <ep>         only these providers: cpu, webgpu, cuda (repeatable)
  --batch <n>             only these batch sizes (repeatable)
  --warmup <n>            override the profile's warm-up runs
  --min-runs <n>          override the profile's minimum timed runs
  --min-duration-ms <ms>  override the profile's minimum timed duration
  --sessions <n>          override the profile's fresh sessions per run (1-16)
  --inference-only        skip preprocessing, end-to-end and head stages
  --out <results.json>    write the results (schema edgetl-bench/1, see bench/README.md)
  --report <report.html>  write a self-contained HTML report with charts
  --json                  print the results JSON on stdout instead of the Markdown summary
  --check                 exit 1 when any budget fails
  --quiet                 no progress on stderr
  --autotune              search threads x batch size for the best images/s within the profile's p95 budgets
                          and write a tuned profile (--tuned-out, default <profile>-tuned.json)
  --list                  list the shipped device profiles

compare: per run, the ratio b/a of the best-session median latency with its bootstrap interval (and the
whole-run ratio for information); a change is flagged only when it exceeds both the minimum effect and the sum
of the two runs' stated noise. --check exits 1 on a regression.

Examples:
  edgetl bench --profile x86-cpu-quick --out results.json --report report.html
  edgetl bench --profile x86-cpu --backbone mobilenetv2-12-int8 --batch 8 --check
  edgetl bench compare bench/results/x86-cpu-a.json bench/results/x86-cpu-b.json
`;

const PROVIDERS: ExecutionProviderName[] = ['cpu', 'webgpu', 'cuda', 'wasm'];

function list(values: string | string[] | undefined): string[] {
  if (values === undefined) return [];
  return Array.isArray(values) ? values : [values];
}

/** The profile with command-line overrides applied (re-validated, so a bad override is reported like a bad file). */
export function applyOverrides(
  loaded: LoadedProfile,
  overrides: {
    backbones: string[];
    providers: string[];
    batches: number[];
    warmup?: number;
    minRuns?: number;
    minDurationMs?: number;
    sessions?: number;
  },
): { loaded: LoadedProfile; notes: string[] } {
  const notes: string[] = [];
  const profile: DeviceProfile = JSON.parse(JSON.stringify(loaded.profile)) as DeviceProfile;
  if (overrides.backbones.length > 0) {
    const settings = backboneSettings(loaded.profile);
    profile.backbones = overrides.backbones.map((id) => {
      const index = settings.findIndex((s) => s.id === id);
      return index >= 0 ? loaded.profile.backbones[index]! : id;
    });
    notes.push(`backbones limited to ${overrides.backbones.join(', ')} by --backbone`);
  }
  if (overrides.providers.length > 0) {
    for (const p of overrides.providers) {
      if (!PROVIDERS.includes(p as ExecutionProviderName))
        throw new EdgetlError('usage', `--provider must be one of ${PROVIDERS.join(', ')}, got "${p}"`);
    }
    profile.execution.providers = overrides.providers as ExecutionProviderName[];
    notes.push(`providers set to ${overrides.providers.join(', ')} by --provider`);
  }
  if (overrides.batches.length > 0) {
    profile.batchSizes = overrides.batches;
    profile.backbones = profile.backbones.map((b) =>
      typeof b === 'string' ? b : { ...b, batchSizes: overrides.batches },
    );
    if (profile.endToEnd?.batchSizes) profile.endToEnd.batchSizes = overrides.batches;
    notes.push(`batch sizes set to ${overrides.batches.join(', ')} by --batch`);
  }
  if (overrides.warmup !== undefined) profile.measurement.warmupRuns = overrides.warmup;
  if (overrides.minRuns !== undefined) profile.measurement.minRuns = overrides.minRuns;
  if (overrides.minDurationMs !== undefined) {
    profile.measurement.minDurationMs = overrides.minDurationMs;
    if (profile.measurement.maxDurationMs !== undefined && profile.measurement.maxDurationMs < overrides.minDurationMs)
      profile.measurement.maxDurationMs = overrides.minDurationMs * 4;
  }
  if (overrides.sessions !== undefined) profile.measurement.sessions = overrides.sessions;
  if (
    overrides.warmup !== undefined ||
    overrides.minRuns !== undefined ||
    overrides.minDurationMs !== undefined ||
    overrides.sessions !== undefined
  ) {
    notes.push(
      `measurement windows overridden on the command line (warm-up ${profile.measurement.warmupRuns}, min runs ${profile.measurement.minRuns}, min duration ${profile.measurement.minDurationMs} ms, sessions ${profile.measurement.sessions ?? 2})`,
    );
  }
  if (notes.length === 0) return { loaded, notes };
  // Budgets that name a backbone, provider or batch no longer measured are dropped rather than failing validation.
  const ids = backboneSettings(profile).map((s) => s.id);
  const batches = new Set(backboneSettings(profile).flatMap((s) => s.batchSizes));
  const kept = (profile.budgets ?? []).filter(
    (b) =>
      (b.backbone === undefined || ids.includes(b.backbone)) &&
      (b.provider === undefined || profile.execution.providers.includes(b.provider)) &&
      (b.batch === undefined || batches.has(b.batch)),
  );
  const dropped = (profile.budgets ?? []).length - kept.length;
  if (dropped > 0)
    notes.push(`${dropped} budget(s) dropped: they name a backbone, provider or batch size the overrides removed`);
  profile.budgets = kept;
  return {
    loaded: { ...loaded, profile: validateProfile(profile, `${loaded.file} (with command-line overrides)`) },
    notes,
  };
}

/** A live bar on a terminal; in logs, one line when each measurement starts and one when it ends. */
class ProgressPrinter {
  private readonly bar: ProgressBar | undefined;
  private readonly terminal = process.stderr.isTTY === true;
  private lastStarted = '';
  constructor(private readonly quiet: boolean) {
    this.bar = quiet ? undefined : new ProgressBar('bench');
  }
  handle(event: BenchProgress): void {
    if (this.quiet) return;
    if (!event.finished) {
      if (this.terminal)
        this.bar?.update(event.done ?? 0, event.total, `${event.label}${event.message ? ` ${event.message}` : ''}`);
      else if (event.label !== this.lastStarted && event.stage !== 'prepare')
        process.stderr.write(`bench: ${event.label}: measuring\n`);
      this.lastStarted = event.label;
      return;
    }
    this.bar?.finish();
    process.stderr.write(`bench: ${event.label}${event.message ? `: ${event.message}` : ''}\n`);
  }
}

async function runCompare(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    'min-effect': { type: 'string' },
    json: { type: 'boolean' },
    check: { type: 'boolean' },
  });
  if (positionals.length !== 2)
    throw new EdgetlError('usage', `bench compare needs two results files, got ${positionals.length} (see --help)`);
  const minEffect = parseNumberOption(values['min-effect'], 'min-effect', 0.02, { min: 0, max: 1 });
  const [fileA, fileB] = positionals as [string, string];
  const report = compareResults(loadResults(fileA), loadResults(fileB), { a: fileA, b: fileB }, minEffect);
  if (values.json) printJson(report);
  else process.stdout.write(renderComparison(report));
  return values.check && report.regressions > 0 ? 1 : 0;
}

async function writeOutputs(results: BenchResults, out: string | undefined, report: string | undefined): Promise<void> {
  if (out) await writeFileAtomic(resolve(out), JSON.stringify(results, null, 1) + '\n');
  if (report) await writeFileAtomic(resolve(report), renderHtml(results));
}

const benchOptions = {
  profile: { type: 'string' },
  backbone: { type: 'string', multiple: true },
  provider: { type: 'string', multiple: true },
  batch: { type: 'string', multiple: true },
  warmup: { type: 'string' },
  'min-runs': { type: 'string' },
  'min-duration-ms': { type: 'string' },
  sessions: { type: 'string' },
  'inference-only': { type: 'boolean' },
  out: { type: 'string' },
  report: { type: 'string' },
  json: { type: 'boolean' },
  check: { type: 'boolean' },
  quiet: { type: 'boolean' },
  autotune: { type: 'boolean' },
  'tuned-out': { type: 'string' },
  list: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const;

type BenchValues = ReturnType<typeof parseCommandLine<typeof benchOptions>>['values'];

/** `--list`: the shipped profiles, one a line, with what they are for. */
function printProfileList(): void {
  for (const name of listProfiles()) {
    const { profile } = loadProfile(name);
    process.stdout.write(
      `${name.padEnd(20)} ${profile.deviceClass}${profile.purpose === 'correctness' && !/correctness/.test(profile.deviceClass) ? ' (correctness only)' : ''}${profile.runtime === 'browser' ? ' [browser runtime]' : ''}\n`,
    );
  }
}

/** The profile named by --profile (a Node one), narrowed by the other flags; notes say what the overrides dropped. */
function benchProfile(values: BenchValues): { loaded: LoadedProfile; notes: string[] } {
  if (!values.profile)
    throw new EdgetlError('usage', `--profile is required: one of ${listProfiles().join(', ')}, or a profile file`);
  const original = loadProfile(values.profile);
  if (original.profile.runtime === 'browser') {
    throw new EdgetlError(
      'usage',
      `profile ${original.profile.name} (${original.file}) is for the browser runtime (runtime "browser", providers ${original.profile.execution.providers.join(', ')}): the Node CLI cannot run it`,
      { file: original.file },
    );
  }
  const batches = list(values.batch).map((b) => parseNumberOption(b, 'batch', 1, { integer: true, min: 1 }));
  return applyOverrides(original, {
    backbones: list(values.backbone),
    providers: list(values.provider),
    batches,
    warmup:
      values.warmup === undefined
        ? undefined
        : parseNumberOption(values.warmup, 'warmup', 0, { integer: true, min: 0 }),
    minRuns:
      values['min-runs'] === undefined
        ? undefined
        : parseNumberOption(values['min-runs'], 'min-runs', 1, { integer: true, min: 1 }),
    minDurationMs:
      values['min-duration-ms'] === undefined
        ? undefined
        : parseNumberOption(values['min-duration-ms'], 'min-duration-ms', 0, { min: 0 }),
    sessions:
      values.sessions === undefined
        ? undefined
        : parseNumberOption(values.sessions, 'sessions', 2, { integer: true, min: 1, max: 16 }),
  });
}

/** `--autotune`: the search, the tuned profile written, its choices printed. Returns the exit code. */
async function runAutotune(
  loaded: LoadedProfile,
  values: BenchValues,
  signal: AbortSignal,
  printer: ProgressPrinter,
): Promise<number> {
  if (loaded.profile.purpose === 'correctness') {
    throw new EdgetlError(
      'usage',
      `--autotune makes speed choices, and profile ${loaded.profile.name} is correctness-only (${loaded.file})`,
      { file: loaded.file },
    );
  }
  const host = collectHostFacts();
  const tuned = await autotune(loaded, host, { signal, onProgress: (e) => printer.handle(e) });
  const target = resolve(values['tuned-out'] ?? `${loaded.profile.name}-tuned.json`);
  if (tuned.choices.length === 0)
    throw new EdgetlError('bench-failed', 'autotune measured nothing usable: no tuned profile written');
  await writeFileAtomic(target, JSON.stringify({ $schema: './profile.schema.json', ...tuned.profile }, null, 2) + '\n');
  const summary = tuned.choices.map(
    (c) =>
      `${c.backbone}: ${c.provider}, ${c.intraOpThreads || 'default'} threads, batch ${c.batch}: ${c.imagesPerSecond.toFixed(1)} images/s, p95 ${c.p95LatencyMsPerBatch.toFixed(2)} ms per batch${c.withinBudget ? '' : ' (NO setting met the p95 budget)'}`,
  );
  if (values.json)
    printJson({
      tunedProfile: target,
      complete: tuned.complete,
      choices: tuned.choices,
      trials: tuned.trials.map((t) => ({
        backbone: t.backbone,
        intraOpThreads: t.intraOpThreads,
        batch: t.batch,
        imagesPerSecond: t.run.imagesPerSecond,
        p95LatencyMsPerBatch: t.run.latencyMsPerBatch?.p95,
        withinBudget: t.withinBudget,
        missed: t.missed,
        status: t.run.status,
      })),
    });
  else
    process.stdout.write(
      `# edgetl bench --autotune: ${loaded.profile.name}${tuned.complete ? '' : ' (INCOMPLETE: interrupted)'}\n\n${summary.map((s) => `- ${s}`).join('\n')}\n\nTuned profile written to ${target}\n`,
    );
  return tuned.complete ? 0 : 130;
}

/** The measurement itself; on an unexpected error, what was measured is still written (marked incomplete). */
async function measure(
  loaded: LoadedProfile,
  notes: string[],
  values: BenchValues,
  signal: AbortSignal,
  printer: ProgressPrinter,
): Promise<BenchResults> {
  const results = createResults(loaded);
  results.warnings.push(...notes);
  let finished = false;
  try {
    await runBench(loaded, results, {
      signal,
      onProgress: (e) => printer.handle(e),
      inferenceOnly: values['inference-only'] === true,
    });
    finished = true;
  } finally {
    if (!finished) {
      // An unexpected error: still keep what was measured.
      results.complete = false;
      results.incompleteReason = 'stopped by an error; see the message on stderr';
      finishResults(results, loaded.profile);
      await writeOutputs(results, values.out, values.report).catch(() => undefined);
    }
  }
  return results;
}

/** 130 when interrupted, 1 when nothing was measured or (with --check) a budget failed, else 0; says why on stderr. */
function benchExitCode(results: BenchResults, values: BenchValues): number {
  if (!results.complete) return 130;
  if (!results.runs.some((r) => r.samplesMs?.length)) {
    process.stderr.write(
      `bench: nothing was measured: ${[...new Set(results.runs.map((r) => r.reason ?? r.status))].join('; ')}\n`,
    );
    return 1;
  }
  const failed = failedVerdicts(results.budgets);
  if (values.check && failed.length > 0) {
    process.stderr.write(
      `bench: ${failed.length} budget verdict(s) failed: ${failed.map((f) => `${f.budget} (${f.run ?? '-'} ${f.metric} ${f.value?.toFixed(3)} ${f.comparison === '<=' ? '>' : '<'} ${f.limit})`).join('; ')}\n`,
    );
    return 1;
  }
  return 0;
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure latency, throughput, memory and training time against a device profile',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    if (argv[0] === 'compare') return runCompare(argv.slice(1));
    const { values, positionals } = parseCommandLine(argv, benchOptions);
    if (positionals.length > 0)
      throw new EdgetlError('usage', `unexpected argument "${positionals[0]}" (did you mean "edgetl bench compare"?)`);
    if (values.list) {
      printProfileList();
      return 0;
    }
    const { loaded, notes } = benchProfile(values);
    const printer = new ProgressPrinter(values.quiet === true);
    const ctrlC = abortOnCtrlC(
      'bench',
      'finishing the current sample, then writing what was measured',
      'quitting without writing',
    );
    try {
      if (values.autotune) return await runAutotune(loaded, values, ctrlC.signal, printer);
      const results = await measure(loaded, notes, values, ctrlC.signal, printer);
      await writeOutputs(results, values.out, values.report);
      if (values.json) printJson(results);
      else process.stdout.write(renderMarkdown(results));
      if (!values.quiet) {
        if (values.out)
          process.stderr.write(
            `bench: results written to ${resolve(values.out)}${results.complete ? '' : ' (incomplete)'}\n`,
          );
        if (values.report) process.stderr.write(`bench: report written to ${resolve(values.report)}\n`);
      }
      return benchExitCode(results, values);
    } finally {
      ctrlC.dispose();
    }
  },
};
