import { resolve } from 'node:path';
import { selectBackbone, type SelectOptions, type SelectProgress, type SelectResult } from '../select/select.js';
import { renderSelectionHtml } from '../select/report-html.js';
import { standardDeviation } from '../../core/select/decision.js';
import type { HeadType } from '../../core/formats/head-file.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EdgetlError } from '../../core/util/errors.js';
import {
  type Command,
  abortOnCtrlC,
  inCliTerms,
  parseCommandLine,
  parseNumberOption,
  printJson,
  ProgressBar,
} from './common.js';
import { loadOptionsFromFlags } from './embed.js';
import { shortPath } from './head-shared.js';

/** The flags `select` takes, and `train --backbone best` passes on. */
export const selectFlagOptions = {
  backbones: { type: 'string' },
  profile: { type: 'string' },
  'max-ms-per-image': { type: 'string' },
  'max-memory-mb': { type: 'string' },
  head: { type: 'string' },
  folds: { type: 'string' },
  seed: { type: 'string' },
  ep: { type: 'string' },
  threads: { type: 'string' },
  'decode-threads': { type: 'string' },
  'no-cache': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const selectOptions = { ...selectFlagOptions, report: { type: 'string' }, debug: { type: 'boolean' } } as const;

type SelectFlagValues = {
  [K in keyof typeof selectFlagOptions]?: (typeof selectFlagOptions)[K]['type'] extends 'boolean' ? boolean : string;
};

export function selectOptionsFromFlags(values: SelectFlagValues): Omit<SelectOptions, 'signal' | 'onProgress'> {
  const head = values.head ?? 'linear';
  if (!['linear', 'mlp', 'prototype'].includes(head))
    throw new EdgetlError('usage', `--head must be one of linear, mlp, prototype, got "${head}"`);
  const backbones = values.backbones
    ?.split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (values.backbones !== undefined && backbones!.length === 0)
    throw new EdgetlError(
      'usage',
      '--backbones needs at least one backbone, e.g. --backbones mobilenetv2-12-int8,resnet8-cifar10.fp32',
    );
  return {
    backbones,
    profile: values.profile,
    maxMsPerImage:
      values['max-ms-per-image'] === undefined
        ? undefined
        : parseNumberOption(values['max-ms-per-image'], 'max-ms-per-image', 0, { min: 0.001 }),
    maxMemoryMb:
      values['max-memory-mb'] === undefined
        ? undefined
        : parseNumberOption(values['max-memory-mb'], 'max-memory-mb', 0, { min: 1 }),
    head: head as HeadType,
    folds:
      values.folds === undefined
        ? undefined
        : parseNumberOption(values.folds, 'folds', 3, { integer: true, min: 2, max: 20 }),
    seed: parseNumberOption(values.seed, 'seed', 0, { integer: true, min: 0 }),
    useCache: values['no-cache'] !== true,
    load: loadOptionsFromFlags({
      ep: values.ep,
      threads: values.threads,
      'decode-threads': values['decode-threads'],
      'no-download': true,
    }),
  };
}

/** One progress bar per candidate on stderr (a terminal only), and a line as each one finishes. */
class SelectionProgress {
  private bar: ProgressBar | undefined;
  private current = '';
  constructor(private readonly enabled: boolean) {}
  handle(event: SelectProgress): void {
    const label =
      event.backbone === 'baseline' ? 'baseline (raw pixels)' : `[${event.index}/${event.count}] ${event.backbone}`;
    if (event.stage === 'done') {
      this.bar?.finish();
      this.bar = undefined;
      this.current = '';
      if (this.enabled) process.stderr.write(`${label}: ${event.message ?? 'done'}\n`);
      return;
    }
    if (this.current !== label) {
      this.bar?.finish();
      this.bar = new ProgressBar(label, this.enabled);
      this.current = label;
    }
    this.bar!.update(event.done ?? 0, event.total, event.stage);
  }
  finish(): void {
    this.bar?.finish();
  }
}

/** selectBackbone with a progress bar per candidate and Ctrl-C reporting what was done (a second Ctrl-C quits). */
export async function runSelection(
  dir: string,
  options: Omit<SelectOptions, 'signal' | 'onProgress'>,
  showProgress: boolean,
): Promise<SelectResult> {
  const ctrlC = abortOnCtrlC('select', 'finishing the current step, then reporting what was done');
  const progress = new SelectionProgress(showProgress);
  try {
    return await selectBackbone(dir, { ...options, signal: ctrlC.signal, onProgress: (e) => progress.handle(e) });
  } finally {
    progress.finish();
    ctrlC.dispose();
  }
}

const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
const fixed = (v: number | null, digits = 2) => (v === null ? '?' : v.toFixed(digits));

/** The text report: a table, the recommendation in one sentence, the rule, and the notes. */
export function formatSelection(result: SelectResult): string {
  const rows = result.candidates.map((c) => [
    `${c.backbone === result.recommended ? '* ' : '  '}${c.id}`,
    c.status === 'ok' || c.accuracy !== null ? pct(c.accuracy) : c.status,
    pct(c.balancedAccuracy),
    c.foldAccuracy.length > 0 ? `±${(100 * standardDeviation(c.foldAccuracy)).toFixed(1)}` : '-',
    fixed(c.msPerImage),
    fixed(c.imagesPerSecond, 1),
    fixed(c.peakRssMb, 0),
    c.modelBytes === null ? '-' : `${(c.modelBytes / 2 ** 20).toFixed(1)}M`,
    c.headBytes === null ? '-' : `${(c.headBytes / 1024).toFixed(1)}K`,
    c.negativeTransfer === null ? '-' : c.negativeTransfer ? 'NEGATIVE' : `+${c.gainOverBaseline!.points.toFixed(1)}`,
    c.withinBudget ?? '-',
    c.pareto ? 'pareto' : '',
  ]);
  rows.push([
    `  baseline: ${result.baseline.name}`,
    pct(result.baseline.accuracy),
    pct(result.baseline.balancedAccuracy),
    result.baseline.foldAccuracy.length > 0
      ? `±${(100 * standardDeviation(result.baseline.foldAccuracy)).toFixed(1)}`
      : '-',
    '',
    '',
    '',
    '',
    '',
    '',
    '',
    '',
  ]);
  const header = [
    '  backbone',
    'accuracy',
    'balanced',
    'folds',
    'ms/img',
    'img/s',
    'peak MB',
    'model',
    'head',
    'vs pixels',
    'budget',
    '',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  out.push(
    `${result.interrupted ? 'INTERRUPTED: partial selection' : 'Backbone selection'} for ${shortPath(result.dir)}: ${result.images} photos, ${result.classes.length} classes; ${result.crossValidation}.`,
  );
  out.push(`Cost: ${result.device.note}. Budgets: ${result.budgets.sources.join('; ') || 'none'}.`);
  out.push('');
  out.push(line(header));
  for (const r of rows) out.push(line(r));
  out.push('');
  const idOf = (backbone: string) => result.candidates.find((c) => c.backbone === backbone)?.id ?? backbone;
  out.push(result.recommended ? `Recommended: ${result.recommended}. ${result.reason}` : result.reason);
  out.push(`Rule: ${result.rule}.`);
  out.push(`Pareto front (accuracy against ms per image): ${result.pareto.map(idOf).join(', ') || 'none'}.`);
  for (const c of result.candidates) {
    if (c.negativeTransfer) out.push(`  negative transfer  ${c.id}: ${c.negativeTransferReason}`);
    if (c.error) out.push(`  ${c.status.padEnd(17)}  ${c.id}: ${c.error}`);
    if (c.budgetNotes.length > 0) out.push(`  budget             ${c.id}: ${c.budgetNotes.join('; ')}`);
    if (c.cost.source !== 'measured here') out.push(`  cost               ${c.id}: ${c.cost.note}`);
  }
  const measured = result.candidates.find((c) => c.cost.source === 'measured here');
  if (measured)
    out.push(
      `  cost               ${measured.cost.note.replace(/^measured here/, 'measured here for every candidate')}`,
    );
  for (const e of result.excluded) out.push(`  excluded           ${e.backbone}: ${e.reason}`);
  for (const w of result.warnings) out.push(`  note               ${inCliTerms(w)}`);
  const s = result.seconds;
  out.push(
    `  time               ${s.total.toFixed(1)} s (embedding ${s.embedding.toFixed(1)} s, cross-validation ${s.crossValidation.toFixed(1)} s, cost ${s.cost.toFixed(1)} s, baseline ${s.baseline.toFixed(1)} s)`,
  );
  return out.join('\n') + '\n';
}

export const selectCommand: Command = {
  name: 'select',
  summary: 'choose the backbone for your photos and device: held-out accuracy against measured cost, negative transfer',
  help: `Usage: edgetl select <dir> [--backbones a,b,...] [--profile P] [--max-ms-per-image X] [--max-memory-mb M]
                     [--head linear|mlp|prototype] [--report select.html] [--json]

Compares backbones on your training photos (<dir>/<class>/*.jpg; never give it the validation set) and recommends
one. For each candidate, on <dir> alone:
  - embeddings, once, through the embedding cache (a second run is fast);
  - held-out accuracy and balanced accuracy with the protocol \`edgetl train\` uses (its own trainer: 3-fold
    stratified cross-validation with out-of-fold predictions for linear and prototype heads, the 15% early-stopping
    split for mlp), and the size of the head file it would write;
  - the cost: preprocessing + batch-1 inference ms per image (the bench harness in small, on a few of your photos),
    images/s one after another, peak memory of a fresh process running it, model and head bytes.
A baseline, the same head on raw 16x16 RGB pixels with the same folds, tells whether a backbone's features help:
one that does not beat it by more than twice the fold-to-fold standard error of the gain gets
"negativeTransfer": true and a sentence why (e.g. a CIFAR 32x32 model on flower photos).

The recommendation: the most accurate candidate within the budgets; candidates within one standard error of its
accuracy (paired over the same folds) count as tied and the fastest of them wins. The rule is printed with the
result, and the Pareto front (accuracy against ms per image).

Options:
  --backbones a,b,...        catalog ids, .onnx paths, or file names in a model folder (default: every pretrained
                             backbone on this machine; architecture-only graphs are left out and listed)
  --profile P                device profile (name in device-profiles/ or a file). A CPU profile this machine
                             matches: cost measured here with its settings. Another device: cost from committed
                             bench results for that profile (bench/results/<date>/<P>-*.json), else unknown.
                             Its budgets that hold for every backbone apply unless the flags below say otherwise.
  --max-ms-per-image X       budget on preprocessing + inference per image
  --max-memory-mb M          budget on peak memory
  --head linear|mlp|prototype  head trained on each candidate (default linear)
  --folds K  --seed N        cross-validation folds (default 3) and seed (default 0), as \`train\`
  --ep, --threads N, --decode-threads N   execution of the embedding runs (see \`edgetl embed --help\`)
  --no-cache                 recompute every embedding
  --report FILE.html         write a self-contained HTML page charting accuracy against ms per image
  --json                     one JSON object on stdout:
    {"candidates":[{"backbone","id","accuracy","balancedAccuracy","foldAccuracy","msPerImage","imagesPerSecond",
      "peakRssMb","modelBytes","headBytes","negativeTransfer","negativeTransferReason","withinBudget","pareto",
      "cost":{"source","note"},"seconds",...}],
     "baseline":{"name","accuracy","balancedAccuracy","foldAccuracy"},"recommended":"<the backbone as given>",
     "rule","reason","pareto":[...],"budgets","excluded","warnings","seconds","interrupted"}

Ctrl-C stops after the current step and reports the candidates finished so far (exit code 130).
Times are measured while anything else on the machine runs too: the load average is reported with them.

Examples:
  edgetl select photos/train
  edgetl select photos/train --max-ms-per-image 5 --report select.html
  edgetl select photos/train --backbones mobilenetv2-12-int8,resnet8-cifar10.fp32 --json
  edgetl train photos/train --backbone best --out head.json     (selects, then trains on the pick)
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, selectOptions);
    if (positionals.length !== 1) {
      throw new EdgetlError(
        'usage',
        positionals.length === 0
          ? 'missing <dir>: the labelled training photos (<dir>/<class>/*.jpg; see --help)'
          : `expected one folder, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    }
    const report = values.report;
    if (report !== undefined && !report.toLowerCase().endsWith('.html'))
      throw new EdgetlError('usage', `--report writes an HTML page: give a file name ending in .html, got "${report}"`);
    const options = selectOptionsFromFlags(values);
    const result = await runSelection(positionals[0]!, options, values.json !== true && process.stderr.isTTY === true);
    if (report) await writeFileAtomic(resolve(report), renderSelectionHtml(result));
    if (values.json) printJson(result);
    else
      process.stdout.write(
        formatSelection(result) + (report ? `  wrote              ${shortPath(resolve(report))}\n` : ''),
      );
    return result.interrupted ? 130 : 0;
  },
};

/** What a head trained with `--backbone best` records about the selection that picked its backbone. */
export interface SelectionRecord {
  picked: string;
  reason: string;
  rule: string;
  crossValidation: string;
  budgets: string[];
  device: string;
  baseline: { name: string; accuracy: number | null };
  candidates: Array<
    Pick<
      CandidateSummary,
      | 'backbone'
      | 'accuracy'
      | 'balancedAccuracy'
      | 'msPerImage'
      | 'peakRssMb'
      | 'negativeTransfer'
      | 'withinBudget'
      | 'status'
    >
  >;
}

type CandidateSummary = SelectResult['candidates'][number];

/**
 * `train --backbone best`: run the selection on the training folder with train's head, folds and seed, and return
 * the file to train on with the record the head keeps. Refuses when nothing can be recommended.
 */
export async function pickBackboneForTraining(
  input: string,
  values: SelectFlagValues,
  showProgress: boolean,
): Promise<{ backbone: string; record: SelectionRecord }> {
  const result = await runSelection(input, selectOptionsFromFlags(values), showProgress);
  if (result.interrupted) throw new EdgetlError('aborted', 'the selection was interrupted: no head trained');
  const picked = result.candidates.find((c) => c.backbone === result.recommended);
  if (!picked?.path) throw new EdgetlError('no-recommendation', `--backbone best: ${result.reason}`);
  if (showProgress) process.stderr.write(`selected ${picked.id}: ${result.reason}\n`);
  return {
    backbone: picked.path,
    record: {
      picked: picked.backbone,
      reason: result.reason,
      rule: result.rule,
      crossValidation: result.crossValidation,
      budgets: result.budgets.sources,
      device: result.device.note,
      baseline: { name: result.baseline.name, accuracy: result.baseline.accuracy },
      candidates: result.candidates.map((c) => ({
        backbone: c.backbone,
        status: c.status,
        accuracy: c.accuracy,
        balancedAccuracy: c.balancedAccuracy,
        msPerImage: c.msPerImage,
        peakRssMb: c.peakRssMb,
        negativeTransfer: c.negativeTransfer,
        withinBudget: c.withinBudget,
      })),
    },
  };
}
