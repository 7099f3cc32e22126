/**
 * A self-contained HTML report: inline CSS and SVG charts, no script, no external resource (it opens offline and
 * can be attached to a ticket). Charts: latency distribution per run, throughput against batch size, time per
 * stage per image, and each session's median over the run's time (how much the machine's speed wandered).
 */
import { describeHost } from './host.js';
import { formatNumber, formatPercent, renderMarkdown } from './report-markdown.js';
import type { BenchResults, InferenceRun } from './results.js';
import { median, splitSessions } from '../../core/bench/stats.js';

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#17becf',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
];

export function niceLogTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  const start = Math.floor(Math.log10(min));
  const end = Math.ceil(Math.log10(max));
  for (let e = start; e <= end; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min / 1.01 && v <= max * 1.01) ticks.push(v);
    }
  }
  return ticks;
}

export function niceLinearTicks(max: number, count = 5): number[] {
  if (max <= 0) return [0];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [0];
  while (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks.length * step).toPrecision(6)));
  return ticks;
}

/** Tick labels without trailing zeros: 1, 2.5, 0.05. */
export function tickLabel(value: number): string {
  return String(Number(value.toPrecision(3)));
}

export function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeHtml(content)}</text>`;
}

/** A y-axis title, written bottom to top along the left edge, centred between `top` and `bottom`. */
export function verticalTitle(top: number, bottom: number, content: string): string {
  const middle = (top + bottom) / 2;
  return text(14, middle, content, `text-anchor="middle" class="axis" transform="rotate(-90 14 ${middle})"`);
}

/** One legend entry: a colour swatch and its name, `row` rows below `top`. */
export function legendEntry(
  x: number,
  top: number,
  row: number,
  rowHeight: number,
  colour: string,
  name: string,
): string {
  return `<rect x="${x}" y="${top + row * rowHeight}" width="12" height="12" fill="${colour}"/>${text(x + 17, top + row * rowHeight + 11, name, 'class="label"')}`;
}

/** Box plot per run of per-image latency on a log axis: whiskers min..max, box p25..p75, median, p99 tick. */
export function latencyChart(runs: InferenceRun[]): string {
  const measured = runs.filter((r) => r.latencyMsPerImage && r.speedClaim);
  if (measured.length === 0) return '<p>No run with a speed claim: no latency chart.</p>';
  const left = 260;
  const width = 900;
  const rowHeight = 26;
  const top = 20;
  const height = top + measured.length * rowHeight + 40;
  const min = Math.min(...measured.map((r) => r.latencyMsPerImage!.min));
  const max = Math.max(...measured.map((r) => r.latencyMsPerImage!.max));
  const lo = min / 1.2;
  const hi = max * 1.2;
  const x = (v: number) =>
    left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (width - left - 20);
  const parts: string[] = [];
  for (const tick of niceLogTicks(lo, hi)) {
    parts.push(
      `<line x1="${x(tick).toFixed(1)}" x2="${x(tick).toFixed(1)}" y1="${top - 5}" y2="${height - 35}" class="grid"/>`,
    );
    parts.push(text(x(tick), height - 20, tickLabel(tick), 'text-anchor="middle" class="tick"'));
  }
  parts.push(
    text(
      (left + width) / 2,
      height - 4,
      'latency per image, ms (log scale); box p25–p75, bar median, | p99, whiskers min–max',
      'text-anchor="middle" class="axis"',
    ),
  );
  measured.forEach((run, i) => {
    const s = run.latencyMsPerImage!;
    const y = top + i * rowHeight + rowHeight / 2;
    const colour = PALETTE[i % PALETTE.length];
    parts.push(
      text(
        left - 8,
        y + 4,
        `${run.backbone.id} ${run.provider?.used ?? run.providerRequested} b${run.batch}`,
        'text-anchor="end" class="label"',
      ),
    );
    parts.push(
      `<line x1="${x(s.min).toFixed(1)}" x2="${x(s.max).toFixed(1)}" y1="${y}" y2="${y}" stroke="${colour}"/>`,
    );
    parts.push(
      `<rect x="${x(s.p25).toFixed(1)}" y="${y - 8}" width="${Math.max(1, x(s.p75) - x(s.p25)).toFixed(1)}" height="16" fill="${colour}" fill-opacity="0.35" stroke="${colour}"/>`,
    );
    parts.push(
      `<line x1="${x(s.p50).toFixed(1)}" x2="${x(s.p50).toFixed(1)}" y1="${y - 9}" y2="${y + 9}" stroke="${colour}" stroke-width="3"/>`,
    );
    parts.push(
      `<line x1="${x(s.p99).toFixed(1)}" x2="${x(s.p99).toFixed(1)}" y1="${y - 6}" y2="${y + 6}" stroke="#000"/>`,
    );
    parts.push(
      `<title>${escapeHtml(`${run.id}: p50 ${formatNumber(s.p50)} ms, p99 ${formatNumber(s.p99)} ms per image`)}</title>`,
    );
  });
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="latency distribution">${parts.join('')}</svg>`;
}

/** Histogram of one run's per-batch samples (small multiple). */
export function histogram(run: InferenceRun, bins = 30): string {
  const samples = run.samplesMs ?? [];
  if (samples.length === 0 || !run.speedClaim) return '';
  const width = 280;
  const height = 90;
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  const span = max - min || 1;
  const counts = new Array<number>(bins).fill(0);
  for (const v of samples) counts[Math.min(bins - 1, Math.floor(((v - min) / span) * bins))]!++;
  const peak = Math.max(...counts);
  const barWidth = (width - 10) / bins;
  const bars = counts
    .map((c, i) => {
      const h = (c / peak) * (height - 30);
      return `<rect x="${(5 + i * barWidth).toFixed(1)}" y="${(height - 18 - h).toFixed(1)}" width="${(barWidth - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#1f77b4"/>`;
    })
    .join('');
  return `<figure class="hist"><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="latency histogram">${bars}${text(5, height - 4, `${formatNumber(min)} ms`, 'class="tick"')}${text(width - 5, height - 4, `${formatNumber(max)} ms`, 'text-anchor="end" class="tick"')}</svg><figcaption>${escapeHtml(`${run.id}: ${samples.length} runs, per batch`)}</figcaption></figure>`;
}

/** Images/s against batch size, one line per backbone x provider. */
export function throughputChart(runs: InferenceRun[]): string {
  const measured = runs.filter((r) => r.imagesPerSecond && r.speedClaim);
  if (measured.length === 0) return '<p>No throughput figures with a speed claim.</p>';
  const series = new Map<string, InferenceRun[]>();
  for (const run of measured) {
    const key = `${run.backbone.id} ${run.provider?.used ?? run.providerRequested}`;
    series.set(key, [...(series.get(key) ?? []), run]);
  }
  const batches = [...new Set(measured.map((r) => r.batch))].sort((a, b) => a - b);
  const width = 900;
  const height = 320;
  const left = 70;
  const right = 260;
  const top = 20;
  const bottom = 50;
  const maxY = Math.max(...measured.map((r) => r.imagesPerSecond!)) * 1.1;
  const ticks = niceLinearTicks(maxY);
  const yMax = ticks[ticks.length - 1]!;
  const x = (batch: number) =>
    left + (batches.length === 1 ? 0.5 : batches.indexOf(batch) / (batches.length - 1)) * (width - left - right);
  const y = (v: number) => height - bottom - (v / yMax) * (height - top - bottom);
  const parts: string[] = [];
  for (const t of ticks) {
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="grid"/>`,
    );
    parts.push(text(left - 6, y(t) + 4, tickLabel(t), 'text-anchor="end" class="tick"'));
  }
  for (const b of batches) parts.push(text(x(b), height - bottom + 18, String(b), 'text-anchor="middle" class="tick"'));
  parts.push(text((left + width - right) / 2, height - 8, 'batch size', 'text-anchor="middle" class="axis"'));
  parts.push(verticalTitle(top, height - bottom, 'images/s'));
  [...series.entries()].forEach(([name, list], i) => {
    const colour = PALETTE[i % PALETTE.length];
    const points = list
      .sort((a, b) => a.batch - b.batch)
      .map((r) => `${x(r.batch).toFixed(1)},${y(r.imagesPerSecond!).toFixed(1)}`);
    parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const r of list)
      parts.push(
        `<circle cx="${x(r.batch).toFixed(1)}" cy="${y(r.imagesPerSecond!).toFixed(1)}" r="4" fill="${colour}"><title>${escapeHtml(`${r.id}: ${formatNumber(r.imagesPerSecond)} images/s`)}</title></circle>`,
      );
    parts.push(legendEntry(width - right + 15, top, i, 20, colour!, name));
  });
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="throughput against batch size">${parts.join('')}</svg>`;
}

/**
 * Each session's median relative to its run's fastest session, at the time the session began: one line per run.
 * Runs that rise together at the same moments show the machine slowing down, not the model.
 */
export function sessionDriftChart(runs: InferenceRun[]): string {
  const series = runs
    .filter(
      (r) =>
        r.speedClaim &&
        r.samplesMs &&
        r.sessionSampleCounts &&
        r.sessionStartSeconds &&
        r.bestSession &&
        r.sessionSampleCounts.length > 1,
    )
    .map((r) => {
      const sessions = splitSessions(r.samplesMs!, r.sessionSampleCounts!);
      const points = sessions
        .map((samples, i) => ({
          t: r.sessionStartSeconds![i]!,
          ratio: samples.length > 0 ? median(samples) / r.bestSession!.medianMsPerBatch : NaN,
        }))
        .filter((p) => Number.isFinite(p.ratio) && p.t !== undefined);
      return { run: r, points };
    })
    .filter((s) => s.points.length > 1);
  if (series.length === 0) return '<p>Fewer than two sessions per run: no drift chart.</p>';
  const width = 900;
  const height = 300;
  const left = 60;
  const right = 300;
  const top = 20;
  const bottom = 45;
  const tMax = Math.max(...series.flatMap((s) => s.points.map((p) => p.t))) * 1.02 || 1;
  const rMax = Math.max(1.1, ...series.flatMap((s) => s.points.map((p) => p.ratio))) * 1.02;
  const x = (t: number) => left + (t / tMax) * (width - left - right);
  const y = (r: number) => height - bottom - ((r - 1) / (rMax - 1)) * (height - top - bottom);
  const parts: string[] = [];
  for (const tick of niceLinearTicks(rMax - 1)) {
    if (1 + tick > rMax) continue;
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(1 + tick).toFixed(1)}" y2="${y(1 + tick).toFixed(1)}" class="grid"/>`,
    );
    parts.push(text(left - 6, y(1 + tick) + 4, `${tickLabel(1 + tick)}×`, 'text-anchor="end" class="tick"'));
  }
  for (const tick of niceLinearTicks(tMax)) {
    if (tick > tMax) continue;
    parts.push(text(x(tick), height - bottom + 16, tickLabel(tick), 'text-anchor="middle" class="tick"'));
  }
  parts.push(
    text(
      (left + width - right) / 2,
      height - 6,
      'seconds since the benchmark started (session start)',
      'text-anchor="middle" class="axis"',
    ),
  );
  parts.push(verticalTitle(top, height - bottom, 'session median / best session'));
  series.forEach(({ run, points }, i) => {
    const colour = PALETTE[i % PALETTE.length];
    parts.push(
      `<polyline points="${points.map((p) => `${x(p.t).toFixed(1)},${y(p.ratio).toFixed(1)}`).join(' ')}" fill="none" stroke="${colour}" stroke-width="1.5"/>`,
    );
    for (const p of points)
      parts.push(
        `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.ratio).toFixed(1)}" r="3" fill="${colour}"><title>${escapeHtml(`${run.id} at ${p.t.toFixed(1)} s: ${p.ratio.toFixed(3)}× its best session`)}</title></circle>`,
      );
    parts.push(legendEntry(width - right + 15, top, i, 18, colour!, run.id));
  });
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="session medians over time">${parts.join('')}</svg>`;
}

/** Per image: preprocessing and inference measured alone, stacked, against the real end-to-end time. */
export function stageChart(results: BenchResults): string {
  const rows = results.endToEnd.filter(
    (e) => e.speedClaim && e.imagesPerSecond && e.preprocessImagesPerSecond && e.inferenceImagesPerSecond,
  );
  if (rows.length === 0) return '<p>No end-to-end runs with stage figures.</p>';
  const width = 900;
  const left = 260;
  const right = 110;
  const barHeight = 14;
  const group = 44;
  const top = 34;
  const height = top + rows.length * group + 50;
  const maxMs =
    Math.max(
      ...rows.map((e) =>
        Math.max(1000 / e.preprocessImagesPerSecond! + 1000 / e.inferenceImagesPerSecond!, 1000 / e.imagesPerSecond!),
      ),
    ) * 1.1;
  const ticks = niceLinearTicks(maxMs);
  const scaleMax = ticks[ticks.length - 1]!;
  const w = (ms: number) => (ms / scaleMax) * (width - left - right);
  const parts: string[] = [];
  for (const t of ticks) {
    parts.push(
      `<line x1="${(left + w(t)).toFixed(1)}" x2="${(left + w(t)).toFixed(1)}" y1="${top - 5}" y2="${height - 40}" class="grid"/>`,
    );
    parts.push(text(left + w(t), height - 26, tickLabel(t), 'text-anchor="middle" class="tick"'));
  }
  parts.push(
    text(
      (left + width) / 2,
      height - 8,
      'ms per image (whole machine): preprocessing + inference alone (upper bar) vs end to end (lower bar)',
      'text-anchor="middle" class="axis"',
    ),
  );
  rows.forEach((e, i) => {
    const y = top + i * group;
    const pre = 1000 / e.preprocessImagesPerSecond!;
    const inf = 1000 / e.inferenceImagesPerSecond!;
    const e2e = 1000 / e.imagesPerSecond!;
    parts.push(
      text(left - 8, y + barHeight + 4, `${e.backbone} ${e.provider} b${e.batch}`, 'text-anchor="end" class="label"'),
    );
    parts.push(
      `<rect x="${left}" y="${y}" width="${w(pre).toFixed(1)}" height="${barHeight}" fill="#ff7f0e"><title>preprocess ${formatNumber(pre)} ms/image</title></rect>`,
    );
    parts.push(
      `<rect x="${(left + w(pre)).toFixed(1)}" y="${y}" width="${w(inf).toFixed(1)}" height="${barHeight}" fill="#1f77b4"><title>inference ${formatNumber(inf)} ms/image</title></rect>`,
    );
    parts.push(
      `<rect x="${left}" y="${y + barHeight + 3}" width="${w(e2e).toFixed(1)}" height="${barHeight}" fill="#2ca02c"><title>end to end ${formatNumber(e2e)} ms/image</title></rect>`,
    );
    parts.push(
      text(
        left + w(Math.max(pre + inf, e2e)) + 6,
        y + barHeight + 4,
        `efficiency ${formatNumber(e.efficiency, 2)}`,
        'class="tick"',
      ),
    );
  });
  parts.push(
    `<rect x="${left}" y="4" width="10" height="10" fill="#ff7f0e"/>${text(left + 14, 13, 'preprocess', 'class="tick"')}`,
  );
  parts.push(
    `<rect x="${left + 90}" y="4" width="10" height="10" fill="#1f77b4"/>${text(left + 104, 13, 'inference', 'class="tick"')}`,
  );
  parts.push(
    `<rect x="${left + 180}" y="4" width="10" height="10" fill="#2ca02c"/>${text(left + 194, 13, 'end to end', 'class="tick"')}`,
  );
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="time per stage">${parts.join('')}</svg>`;
}

/** Markdown tables to HTML tables (the subset renderMarkdown emits: headings, bullets, pipe tables, paragraphs). */
function markdownToHtml(markdown: string): string {
  const out: string[] = [];
  const lines = markdown.split('\n');
  let i = 0;
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => escapeHtml(c.trim().replace(/\\\|/g, '|')));
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith('|')) {
      const header = cells(line);
      i += 2;
      const body: string[][] = [];
      while (i < lines.length && lines[i]!.startsWith('|')) body.push(cells(lines[i++]!));
      out.push(
        `<table><thead><tr>${header.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td${/^(FAIL)/.test(c) ? ' class="fail"' : /^PASS/.test(c) ? ' class="pass"' : ''}>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`,
      );
      continue;
    }
    if (line.startsWith('# ')) out.push(`<h1>${escapeHtml(line.slice(2))}</h1>`);
    else if (line.startsWith('## ')) out.push(`<h2>${escapeHtml(line.slice(3))}</h2>`);
    else if (line.startsWith('- ')) {
      const items: string[] = [];
      while (i < lines.length && lines[i]!.startsWith('- ')) items.push(`<li>${escapeHtml(lines[i++]!.slice(2))}</li>`);
      out.push(`<ul>${items.join('')}</ul>`);
      continue;
    } else if (line.trim()) out.push(`<p>${escapeHtml(line)}</p>`);
    i++;
  }
  return out.join('\n');
}

export function renderHtml(results: BenchResults): string {
  const software = results.runs.filter((r) => r.provider?.software);
  const noClaim = results.runs.filter((r) => !r.speedClaim && r.latencyMsPerBatch);
  const banner: string[] = [];
  if (!results.complete)
    banner.push(
      `<p class="banner">INCOMPLETE: ${escapeHtml(results.incompleteReason ?? 'interrupted')}. The figures below are what was measured before.</p>`,
    );
  if (software.length > 0)
    banner.push(
      `<p class="banner">Software adapter (${escapeHtml(software[0]!.provider?.adapter?.description ?? software[0]!.provider?.adapter?.device ?? 'CPU-emulated GPU')}): ${software.length} run(s) are correctness checks only. Their timings are in results.json and make no speed claim; they are left out of every chart.</p>`,
    );
  else if (noClaim.length > 0)
    banner.push(
      `<p class="banner">Correctness profile: timings make no speed claim and are left out of the charts.</p>`,
    );
  const histograms = results.runs
    .map((r) => histogram(r))
    .filter(Boolean)
    .join('');
  const style = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}table{border-collapse:collapse;margin:8px 0 20px;font-size:12px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}td.fail{background:#fdd;font-weight:bold}td.pass{background:#dfd}.banner{background:#fff3cd;border:1px solid #e0c36b;padding:8px}.grid{stroke:#e4e4e4}.tick{font-size:11px;fill:#555}.axis{font-size:12px;fill:#333}.label{font-size:12px;fill:#222}.hists{display:flex;flex-wrap:wrap;gap:8px}.hist{margin:0}.hist figcaption{font-size:11px;color:#555}svg{max-width:100%;height:auto}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`edgetl bench ${results.profile.name} ${results.startedAt}`)}</title><style>${style}</style></head>
<body>
<h1>${escapeHtml(`edgetl bench: ${results.profile.name} (${results.profile.deviceClass})`)}</h1>
${banner.join('\n')}
<p><strong>Host:</strong> ${escapeHtml(describeHost(results.host))}</p>
<h2>Latency distribution (per image)</h2>
${latencyChart(results.runs)}
<div class="hists">${histograms}</div>
<h2>Sessions over time</h2>
<p>Each point is one fresh session's median latency divided by its run's fastest session, placed at the time the session began. The sessions of all runs take turns, so runs that rise together show the machine slowing down (other work on it), not the model.</p>
${sessionDriftChart(results.runs)}
<h2>Throughput against batch size</h2>
${throughputChart(results.runs)}
<h2>Time per stage</h2>
${stageChart(results)}
${markdownToHtml(renderMarkdown(results).replace(/^# .*\n/, ''))}
<p class="tick">Noise: each run states ±${escapeHtml(formatPercent(Math.max(0, ...results.runs.map((r) => (r.speedClaim ? (r.noise?.relative ?? 0) : 0)))))} at most on its median (${escapeHtml(results.method.noise)}). Generated by edgetl ${escapeHtml(results.host.edgetl)}; raw samples in results.json (schema ${escapeHtml(results.schema)}).</p>
</body></html>
`;
}
