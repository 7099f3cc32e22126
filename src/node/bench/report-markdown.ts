import { describeHost } from './host.js';
import type { BenchResults, InferenceRun } from './results.js';
import type { ComparisonReport } from './compare.js';

/** Fixed-point with a sensible number of digits for the magnitude; '—' for missing. */
export function formatNumber(value: number | undefined, digits?: number): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  if (digits !== undefined) return value.toFixed(digits);
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return value.toFixed(0);
  if (magnitude >= 100) return value.toFixed(1);
  if (magnitude >= 10) return value.toFixed(2);
  if (magnitude >= 1) return value.toFixed(3);
  return value.toPrecision(3);
}

export function formatPercent(fraction: number | undefined, digits = 1): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return '—';
  return `${(fraction * 100).toFixed(digits)}%`;
}

function table(header: string[], rows: string[][]): string {
  const escapeCell = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
  ].join('\n');
}

export function runStatusText(run: InferenceRun): string {
  if (run.status !== 'ok') return run.status + (run.reason ? ` (${run.reason})` : '');
  if (!run.speedClaim)
    return run.provider?.software ? 'ok: software adapter, no speed claim' : 'ok: correctness only, no speed claim';
  return 'ok';
}

/** A section: its heading, one table and, where it needs one, the note that reads the table. */
function tableSection(title: string, header: string[], rows: string[][], note?: string): string[] {
  const lines = [`## ${title}`, '', table(header, rows), ''];
  if (note) lines.push(note, '');
  return lines;
}

/** Title (marked when incomplete), host, method and noise. */
function headerSection(results: BenchResults): string[] {
  const lines: string[] = [];
  const title = `# edgetl bench: ${results.profile.name} (${results.profile.deviceClass})`;
  lines.push(results.complete ? title : `${title} — INCOMPLETE: ${results.incompleteReason ?? 'interrupted'}`);
  lines.push('');
  lines.push(
    `- Host: ${describeHost(results.host)}; load average ${results.host.loadAverage.join(' / ')} at start, ${results.loadAverageAtEnd.join(' / ')} at end`,
  );
  lines.push(
    `- Started ${results.startedAt}, ${results.durationSeconds.toFixed(1)} s; profile ${results.profile.file} (sha256 ${results.profile.sha256.slice(0, 12)}…), purpose ${results.profile.purpose}`,
  );
  lines.push(`- Images: ${results.imageSource}`);
  lines.push(
    `- Method: warm-up ${results.method.warmupRuns} runs, then at least ${results.method.minRuns} runs AND ${results.method.minDurationMs} ms (cap ${results.method.maxDurationMs} ms), seed ${results.method.seed}. Percentiles: ${results.method.percentiles}.`,
  );
  lines.push(`- Noise (± on each median): ${results.method.noise}.`);
  const floor = results.profile.content?.measurement?.noiseFloor;
  if (floor)
    lines.push(
      `- Noise floor: ±${formatPercent(floor)} (this profile's measurement.noiseFloor: separate runs on its device class drift apart by this much beyond what one run's statistics show).`,
    );
  if (results.method.bestSession) lines.push(`- Best session: ${results.method.bestSession}.`);
  lines.push('');
  return lines;
}

/** Inference on ready tensors: one row per run; speed figures only where the run makes a claim. */
function inferenceSection(results: BenchResults): string[] {
  const rows = results.runs.map((run) => {
    const claim = run.speedClaim;
    const b = run.latencyMsPerBatch;
    const i = run.latencyMsPerImage;
    const hide = (v: number | undefined, digits?: number) => (claim ? formatNumber(v, digits) : '—');
    return [
      run.backbone.id,
      run.provider
        ? `${run.provider.used}${run.provider.intraOpThreads ? ` ×${run.provider.intraOpThreads}` : ''}${run.provider.software ? ' (software)' : ''}`
        : run.providerRequested,
      String(run.batch),
      runStatusText(run),
      hide(run.sessionCreateMs, 0),
      hide(run.firstRunMs),
      hide(b?.p50),
      hide(b?.p90),
      hide(b?.p99),
      hide(b?.min),
      hide(b?.max),
      hide(b?.mean),
      hide(i?.p50),
      hide(run.imagesPerSecond),
      run.backbone.macsPerImage ? formatNumber(run.backbone.macsPerImage / 1e6, 0) : '—',
      hide(run.achievedGflops),
      claim ? `±${formatPercent(run.noise?.relative)}` : '—',
      claim && run.bestSession
        ? `${formatNumber(run.bestSession.medianMsPerBatch)} ±${formatPercent(run.bestSession.noise.relative)} (${run.bestSession.session + 1} of ${run.bestSession.sessions})`
        : '—',
      formatNumber(run.memory?.peakRssMb, 0),
      run.backbone.runBytes ? formatNumber(run.backbone.runBytes / 2 ** 20, 1) : '—',
      run.correctness
        ? `${run.correctness.minCosine.toFixed(5)} (max |Δ| ${formatNumber(run.correctness.maxAbsDifference)})`
        : '',
    ];
  });
  return tableSection(
    'Inference on ready tensors',
    [
      'backbone',
      'provider',
      'batch',
      'status',
      'session ms',
      'first run ms',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'min ms',
      'max ms',
      'mean ms',
      'ms/image p50',
      'images/s',
      'MMAC/image',
      'GFLOP/s',
      'noise',
      'best session p50 ms',
      'peak RSS MB',
      'model MB',
      'cosine vs cpu',
    ],
    rows,
    'Latencies are per batch unless marked per image; p50 to mean are over every session of the run, "best session" is the median of its fastest session (the figure `bench compare` checks). GFLOP/s = 2 × MACs/image × images/s (MACs of Conv, Gemm and MatMul in the graph run). "—" where a run makes no speed claim.',
  );
}

/** Preprocessing alone, when measured. */
function preprocessSection(results: BenchResults): string[] {
  if (results.preprocess.length === 0) return [];
  return tableSection(
    'Preprocessing alone (decode + resize + normalize, real images)',
    [
      'backbone',
      'spec',
      'images',
      'status',
      'ms/image p50 (one at a time)',
      'p90',
      'p99',
      'images/s (whole machine)',
      'in flight',
    ],
    results.preprocess.map((p) => [
      p.backbone,
      p.spec,
      String(p.images),
      p.status + (p.reason ? ` (${p.reason})` : ''),
      formatNumber(p.msPerImage?.p50),
      formatNumber(p.msPerImage?.p90),
      formatNumber(p.msPerImage?.p99),
      formatNumber(p.imagesPerSecond),
      p.concurrency ? String(p.concurrency) : '—',
    ]),
  );
}

/** End to end through the real pipeline, when measured, with its efficiency against the stages alone. */
function endToEndSection(results: BenchResults): string[] {
  if (results.endToEnd.length === 0) return [];
  return tableSection(
    'End to end (image files to embeddings, the real pipeline)',
    [
      'backbone',
      'provider',
      'batch',
      'status',
      'images × passes',
      'images/s',
      'preprocess images/s',
      'inference images/s',
      'ideal images/s',
      'efficiency',
    ],
    results.endToEnd.map((e) => {
      const claim = e.speedClaim;
      return [
        e.backbone,
        e.provider,
        String(e.batch),
        e.status + (e.reason ? ` (${e.reason})` : ''),
        e.images ? `${e.images} × ${e.repeats}` : '—',
        claim ? formatNumber(e.imagesPerSecond) : '—',
        claim ? formatNumber(e.preprocessImagesPerSecond) : '—',
        claim ? formatNumber(e.inferenceImagesPerSecond) : '—',
        claim ? formatNumber(e.idealImagesPerSecond) : '—',
        claim ? formatNumber(e.efficiency, 2) : '—',
      ];
    }),
    'Ideal = 1 / (1/preprocess + 1/inference), each measured alone with the whole machine; efficiency = end-to-end / ideal (above 1 when the stages overlap on idle cores).',
  );
}

/** Head training and prediction on synthetic embeddings, when measured. */
function headsSection(results: BenchResults): string[] {
  if (results.heads.length === 0) return [];
  return tableSection(
    'Heads (synthetic embeddings)',
    [
      'head',
      'embeddings',
      'classes',
      'status',
      'train s (median)',
      'predict ms p50',
      'predict ms p99',
      'train-set accuracy',
    ],
    results.heads.map((h) => [
      h.type,
      `${h.samples} × ${h.dim}`,
      String(h.classes),
      h.status + (h.reason ? ` (${h.reason})` : ''),
      formatNumber(h.trainSecondsMedian),
      formatNumber(h.predictMsPerEmbedding?.p50),
      formatNumber(h.predictMsPerEmbedding?.p99),
      formatNumber(h.trainAccuracy, 3),
    ]),
  );
}

/** Budget verdicts and their tally. */
function budgetsSection(results: BenchResults): string[] {
  const lines: string[] = [];
  lines.push('## Budgets');
  lines.push('');
  if (results.budgets.length === 0) {
    lines.push('The profile sets no budgets.');
  } else {
    lines.push(
      table(
        ['budget', 'run', 'metric', 'limit', 'value', 'verdict'],
        results.budgets.map((v) => [
          v.budget,
          v.run ?? '—',
          v.metric,
          `${v.comparison} ${formatNumber(v.limit)}`,
          formatNumber(v.value),
          v.status.toUpperCase() + (v.note ? ` (${v.note})` : ''),
        ]),
      ),
    );
    const count = (s: string) => results.budgets.filter((v) => v.status === s).length;
    lines.push('');
    lines.push(
      `${count('pass')} passed, ${count('fail')} failed, ${count('not-measured')} not measured, ${count('not-applicable')} not applicable.`,
    );
  }
  return lines;
}

/** Warnings, when any. */
function warningsSection(results: BenchResults): string[] {
  if (results.warnings.length === 0) return [];
  const lines: string[] = [];
  lines.push('');
  lines.push('## Warnings');
  lines.push('');
  for (const warning of results.warnings) lines.push(`- ${warning}`);
  return lines;
}

/** The Markdown summary `edgetl bench` prints on stdout. */
export function renderMarkdown(results: BenchResults): string {
  const lines = [
    ...headerSection(results),
    ...inferenceSection(results),
    ...preprocessSection(results),
    ...endToEndSection(results),
    ...headsSection(results),
    ...budgetsSection(results),
    ...warningsSection(results),
  ];
  return lines.join('\n') + '\n';
}

/** Markdown for `edgetl bench compare`. */
export function renderComparison(report: ComparisonReport): string {
  const lines: string[] = [];
  lines.push(`# edgetl bench compare`);
  lines.push('');
  lines.push(
    `- a: ${report.a.file} (${report.a.profile}, ${report.a.host}, ${report.a.startedAt}${report.a.complete ? '' : ', INCOMPLETE'})`,
  );
  lines.push(
    `- b: ${report.b.file} (${report.b.profile}, ${report.b.host}, ${report.b.startedAt}${report.b.complete ? '' : ', INCOMPLETE'})`,
  );
  lines.push(`- Method: ${report.method} Minimum effect flagged: ${formatPercent(report.minEffect)}.`);
  for (const warning of report.warnings) lines.push(`- Warning: ${warning}`);
  lines.push('');
  lines.push(
    table(
      [
        'run',
        'metric',
        'a',
        'b',
        'b / a',
        '95% interval',
        'noise a',
        'noise b',
        'threshold',
        'verdict',
        'whole-run p50 b / a (threshold)',
      ],
      report.comparisons.map((c) => [
        c.id,
        c.metric,
        formatNumber(c.a),
        formatNumber(c.b),
        c.ratio !== undefined ? c.ratio.toFixed(3) : '—',
        c.ratioInterval ? `${c.ratioInterval.low.toFixed(3)}–${c.ratioInterval.high.toFixed(3)}` : '—',
        c.noiseA !== undefined ? `±${formatPercent(c.noiseA)}` : '—',
        c.noiseB !== undefined ? `±${formatPercent(c.noiseB)}` : '—',
        c.threshold !== undefined ? formatPercent(c.threshold) : '—',
        c.verdict.toUpperCase() + (c.note ? ` (${c.note})` : ''),
        c.wholeRunRatio !== undefined
          ? `${c.wholeRunRatio.toFixed(3)}${c.wholeRunThreshold !== undefined ? ` (±${formatPercent(c.wholeRunThreshold)})` : ''}`
          : '—',
      ]),
    ),
  );
  lines.push('');
  lines.push(`${report.regressions} regression(s), ${report.improvements} improvement(s) beyond the noise.`);
  return lines.join('\n') + '\n';
}
