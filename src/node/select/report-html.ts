/**
 * The selection as a self-contained HTML page (inline CSS and SVG, no script, no external resource), in the style of
 * the bench report: held-out accuracy against ms per image, one point per candidate with its fold-to-fold spread,
 * the Pareto front, the budget and the raw-pixel baseline as lines, then the table, the rule and the notes.
 */
import {
  PALETTE,
  escapeHtml,
  legendEntry,
  niceLinearTicks,
  niceLogTicks,
  text,
  tickLabel,
  verticalTitle,
} from '../bench/report-html.js';
import { standardDeviation } from '../../core/select/decision.js';
import type { CandidateResult, SelectResult } from './select.js';

const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);
const num = (v: number | null, digits = 2) => (v === null ? 'unknown' : v.toFixed(digits));

/** The chart's frame and its two scales: ms per image (log) across, held-out accuracy up. */
interface ChartFrame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  lo: number;
  hi: number;
  yLo: number;
  yHi: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

const foldSpread = (c: CandidateResult) => standardDeviation(c.foldAccuracy);

/** Ranges that hold every point with its spread, the budget and the baseline. */
function chartFrame(result: SelectResult, points: CandidateResult[]): ChartFrame {
  const width = 900;
  const height = 420;
  const left = 70;
  const right = 320;
  const top = 20;
  const bottom = 50;
  const msValues = points.map((c) => c.msPerImage!);
  if (result.budgets.maxMsPerImage !== undefined) msValues.push(result.budgets.maxMsPerImage);
  const lo = Math.min(...msValues) / 1.3;
  const hi = Math.max(...msValues) * 1.3;
  const accValues = points.flatMap((c) => [c.accuracy! - foldSpread(c), c.accuracy! + foldSpread(c)]);
  if (result.baseline.accuracy !== null) accValues.push(result.baseline.accuracy);
  const yLo = Math.max(0, Math.floor(Math.min(...accValues) * 20) / 20 - 0.05);
  const yHi = Math.min(1, Math.ceil(Math.max(...accValues) * 20) / 20 + 0.02);
  const x = (v: number) =>
    left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (width - left - right);
  const y = (v: number) => height - bottom - ((v - yLo) / (yHi - yLo)) * (height - top - bottom);
  return { width, height, left, right, top, bottom, lo, hi, yLo, yHi, x, y };
}

/** Grid lines, tick labels and the two axis titles. */
function chartAxes(frame: ChartFrame, result: SelectResult): string[] {
  const { width, height, left, right, top, bottom, lo, hi, yLo, yHi, x, y } = frame;
  const parts: string[] = [];
  for (const tick of niceLogTicks(lo, hi)) {
    parts.push(
      `<line x1="${x(tick).toFixed(1)}" x2="${x(tick).toFixed(1)}" y1="${top}" y2="${height - bottom}" class="grid"/>`,
    );
    parts.push(text(x(tick), height - bottom + 16, tickLabel(tick), 'text-anchor="middle" class="tick"'));
  }
  for (const tick of niceLinearTicks(yHi - yLo)) {
    const v = yLo + tick;
    if (v > yHi + 1e-9) continue;
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`,
    );
    parts.push(text(left - 6, y(v) + 4, `${tickLabel(100 * v)}%`, 'text-anchor="end" class="tick"'));
  }
  parts.push(
    text(
      (left + width - right) / 2,
      height - 8,
      `ms per image, preprocessing + batch-1 inference (log scale; ${result.device.costFrom})`,
      'text-anchor="middle" class="axis"',
    ),
  );
  parts.push(verticalTitle(top, height - bottom, `held-out accuracy (${result.head} head)`));
  return parts;
}

/** The raw-pixel baseline (dashed, across) and the ms budget (dashed red, up), when there are. */
function chartReferenceLines(frame: ChartFrame, result: SelectResult): string[] {
  const { width, height, left, right, top, bottom, x, y } = frame;
  const parts: string[] = [];
  if (result.baseline.accuracy !== null) {
    const yb = y(result.baseline.accuracy).toFixed(1);
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${yb}" y2="${yb}" stroke="#888" stroke-dasharray="6 4"/>`);
    parts.push(
      text(
        width - right - 4,
        Number(yb) - 5,
        `baseline: ${result.baseline.name} ${pct(result.baseline.accuracy)}`,
        'text-anchor="end" class="tick"',
      ),
    );
  }
  if (result.budgets.maxMsPerImage !== undefined) {
    const xb = x(result.budgets.maxMsPerImage).toFixed(1);
    parts.push(
      `<line x1="${xb}" x2="${xb}" y1="${top}" y2="${height - bottom}" stroke="#d62728" stroke-dasharray="4 3"/>`,
    );
    parts.push(
      text(Number(xb) + 4, top + 12, `budget ${result.budgets.maxMsPerImage} ms`, 'class="tick" fill="#d62728"'),
    );
  }
  return parts;
}

/** Each candidate: its fold spread, its mark (the pick larger, negative transfer an open square), its legend entry. */
function chartPoints(frame: ChartFrame, result: SelectResult, points: CandidateResult[]): string[] {
  const { width, right, top, x, y } = frame;
  const parts: string[] = [];
  points.forEach((c, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const cx = x(c.msPerImage!);
    const s = foldSpread(c);
    parts.push(
      `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(c.accuracy! - s).toFixed(1)}" y2="${y(c.accuracy! + s).toFixed(1)}" stroke="${colour}"/>`,
    );
    const recommended = c.backbone === result.recommended;
    const shape = c.negativeTransfer
      ? `<rect x="${(cx - 5).toFixed(1)}" y="${(y(c.accuracy!) - 5).toFixed(1)}" width="10" height="10" fill="#fff" stroke="${colour}" stroke-width="2"/>`
      : `<circle cx="${cx.toFixed(1)}" cy="${y(c.accuracy!).toFixed(1)}" r="${recommended ? 8 : 5}" fill="${colour}"${recommended ? ' stroke="#000" stroke-width="2"' : ''}/>`;
    parts.push(
      `<g>${shape}<title>${escapeHtml(`${c.id}: ${pct(c.accuracy)} (folds ${c.foldAccuracy.map((v) => pct(v)).join(', ')}), ${num(c.msPerImage)} ms per image${c.negativeTransfer ? ', negative transfer' : ''}`)}</title></g>`,
    );
    parts.push(
      legendEntry(
        width - right + 15,
        top,
        i,
        20,
        colour,
        `${c.id}${recommended ? ' (pick)' : ''}${c.negativeTransfer ? ' (neg. transfer)' : ''}`,
      ),
    );
  });
  return parts;
}

/** Accuracy (y, linear) against ms per image (x, log); error bars: ± fold-to-fold standard deviation. */
export function accuracyCostChart(result: SelectResult): string {
  const points = result.candidates.filter((c) => c.accuracy !== null && c.msPerImage !== null);
  if (points.length === 0) return '<p>No candidate has both an accuracy and a cost: no chart.</p>';
  const frame = chartFrame(result, points);
  const { width, height, right, top, x, y } = frame;
  const parts = [...chartAxes(frame, result), ...chartReferenceLines(frame, result)];
  const front = points.filter((c) => c.pareto).sort((a, b) => a.msPerImage! - b.msPerImage!);
  if (front.length > 1) {
    parts.push(
      `<polyline points="${front.map((c) => `${x(c.msPerImage!).toFixed(1)},${y(c.accuracy!).toFixed(1)}`).join(' ')}" fill="none" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="2 3"/>`,
    );
  }
  parts.push(...chartPoints(frame, result, points));
  const legendBottom = top + points.length * 20 + 10;
  parts.push(text(width - right + 15, legendBottom + 12, 'bars: ± fold-to-fold std. dev.', 'class="tick"'));
  parts.push(text(width - right + 15, legendBottom + 28, 'open square: negative transfer', 'class="tick"'));
  parts.push(text(width - right + 15, legendBottom + 44, 'green dotted: Pareto front', 'class="tick"'));
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="accuracy against ms per image">${parts.join('')}</svg>`;
}

function candidateRow(c: CandidateResult, recommended: string | null): string {
  const cells = [
    `${escapeHtml(c.id)}${c.backbone === recommended ? ' <strong>(recommended)</strong>' : ''}`,
    c.status === 'ok' ? pct(c.accuracy) : escapeHtml(c.status),
    pct(c.balancedAccuracy),
    c.foldAccuracy.map((v) => pct(v)).join(' / ') || '–',
    num(c.msPerImage),
    num(c.imagesPerSecond, 1),
    num(c.peakRssMb, 0),
    c.modelBytes === null ? '–' : `${(c.modelBytes / 2 ** 20).toFixed(2)} MiB`,
    c.headBytes === null ? '–' : `${(c.headBytes / 1024).toFixed(1)} KiB`,
    c.negativeTransfer === null ? '–' : c.negativeTransfer ? 'yes' : 'no',
    c.withinBudget ?? '–',
    c.pareto ? 'yes' : '',
  ];
  const cls = c.negativeTransfer ? ' class="fail"' : c.backbone === recommended ? ' class="pass"' : '';
  return `<tr${cls}>${cells.map((v) => `<td>${v}</td>`).join('')}</tr>`;
}

export function renderSelectionHtml(result: SelectResult): string {
  const style = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}table{border-collapse:collapse;margin:8px 0 20px;font-size:12px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.fail td{background:#fdd}tr.pass td{background:#dfd}.banner{background:#fff3cd;border:1px solid #e0c36b;padding:8px}.grid{stroke:#e4e4e4}.tick{font-size:11px;fill:#555}.axis{font-size:12px;fill:#333}.label{font-size:12px;fill:#222}svg{max-width:100%;height:auto}`;
  const header = [
    'backbone',
    'accuracy',
    'balanced',
    'folds',
    'ms/image',
    'images/s',
    'peak MB',
    'model',
    'head',
    'negative transfer',
    'budget',
    'Pareto',
  ];
  const banner = result.interrupted
    ? `<p class="banner">INTERRUPTED: only the candidates finished before the interruption are compared.</p>`
    : '';
  const notes = [
    ...result.candidates.filter((c) => c.negativeTransferReason).map((c) => `${c.id}: ${c.negativeTransferReason}`),
    ...result.candidates.filter((c) => c.error).map((c) => `${c.id}: ${c.error}`),
    ...result.candidates.filter((c) => c.budgetNotes.length > 0).map((c) => `${c.id}: ${c.budgetNotes.join('; ')}`),
    ...result.candidates.map((c) => `${c.id} cost: ${c.cost.note}`),
    ...result.excluded.map((e) => `excluded ${e.backbone}: ${e.reason}`),
    ...result.warnings,
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`edgetl select ${result.dir}`)}</title><style>${style}</style></head>
<body>
<h1>${escapeHtml(`edgetl select: ${result.dir}`)}</h1>
${banner}
<p><strong>Recommended:</strong> ${escapeHtml(result.recommended ?? 'none')}. ${escapeHtml(result.reason)}</p>
<p><strong>Rule:</strong> ${escapeHtml(result.rule)}.</p>
<p>${result.images} photos, ${result.classes.length} classes (${escapeHtml(result.classes.join(', '))}); ${escapeHtml(result.crossValidation)}. Budgets: ${escapeHtml(result.budgets.sources.join('; ') || 'none')}. Device: ${escapeHtml(result.device.note)}.</p>
<h2>Accuracy against cost</h2>
${accuracyCostChart(result)}
<h2>Candidates</h2>
<table><thead><tr>${header.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>
${result.candidates.map((c) => candidateRow(c, result.recommended)).join('\n')}
<tr><td>${escapeHtml(`baseline: ${result.baseline.name}`)}</td><td>${pct(result.baseline.accuracy)}</td><td>${pct(result.baseline.balancedAccuracy)}</td><td>${result.baseline.foldAccuracy.map((v) => pct(v)).join(' / ')}</td><td colspan="8"></td></tr>
</tbody></table>
<p>Pareto front (no other candidate both more accurate and faster): ${escapeHtml(result.pareto.map((b) => result.candidates.find((c) => c.backbone === b)?.id ?? b).join(', ') || 'none')}.</p>
<h2>Notes</h2>
<ul>${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>
<p class="tick">Host: ${escapeHtml(`${result.host.cpu}, ${result.host.logicalCores} logical cores, load average ${result.host.loadAverageStart.join(' ')} at the start and ${result.host.loadAverageEnd.join(' ')} at the end`)}. Times: ${escapeHtml(`${result.seconds.total.toFixed(1)} s in all (embedding ${result.seconds.embedding.toFixed(1)} s, cross-validation ${result.seconds.crossValidation.toFixed(1)} s, cost ${result.seconds.cost.toFixed(1)} s, baseline ${result.seconds.baseline.toFixed(1)} s)`)}.</p>
</body></html>
`;
}
