import t from 'tap';
import { renderMarkdown, renderComparison } from '../../../src/node/bench/report-markdown.js';
import { renderHtml } from '../../../src/node/bench/report-html.js';
import { compareResults } from '../../../src/node/bench/compare.js';
import { evaluateBudgets } from '../../../src/node/bench/budgets.js';
import { summarize } from '../../../src/core/bench/stats.js';
import { latencySamples, results, run } from './fixtures.js';

function softwareRun() {
  const samples = latencySamples(987.654, 20, 2);
  const r = run('m/webgpu/b8', samples, {
    providerRequested: 'webgpu',
    provider: {
      requested: 'webgpu',
      used: 'webgpu',
      fallbacks: [],
      software: true,
      adapter: { vendor: 'google', device: 'SwiftShader Device (Subzero)', software: true },
    },
    speedClaim: false,
    correctness: { reference: 'cpu', minCosine: 0.99998, maxAbsDifference: 0.0001, rows: 8 },
  });
  r.latencyMsPerImage = summarize(samples.map((v) => v / 8));
  return r;
}

t.test('a software adapter run is marked and makes no speed claim in either report', async (t) => {
  const cpu = run('m/cpu/b8', latencySamples(12.5, 100, 1));
  cpu.latencyMsPerImage = summarize(cpu.samplesMs!.map((v) => v / 8));
  const software = softwareRun();
  const r = results([cpu, software]);
  r.budgets = evaluateBudgets([{ name: 'latency', p95LatencyMsPerImage: 1000 }], r);
  const markdown = renderMarkdown(r);
  const row = markdown.split('\n').find((line) => line.startsWith('| m | webgpu'))!;
  t.match(row, /software adapter, no speed claim/);
  t.notMatch(row, /98\d\.\d/, 'no latency figure printed for it');
  t.match(row, /0\.99998/, 'its correctness figure is shown');
  t.match(markdown, /latency \| m\/webgpu\/b8 .* NOT-APPLICABLE/);
  const html = renderHtml(r);
  t.match(html, /Software adapter \(SwiftShader Device \(Subzero\)\)/);
  t.match(html, /make no speed claim/);
  const charts = html.slice(0, html.indexOf('<h2>Inference on ready tensors'));
  t.notMatch(charts, /m\/webgpu\/b8|m webgpu b8/, 'left out of every chart');
  t.match(charts, /m cpu b8/, 'the CPU run is charted');
});

t.test('an incomplete run says so at the top of both reports', async (t) => {
  const r = results([run('m/cpu/b8', latencySamples(5, 30, 3), { status: 'interrupted' })]);
  r.complete = false;
  r.incompleteReason = 'interrupted (SIGINT)';
  t.match(renderMarkdown(r).split('\n')[0], /INCOMPLETE: interrupted \(SIGINT\)/);
  t.match(renderHtml(r), /class="banner">INCOMPLETE: interrupted \(SIGINT\)/);
});

t.test('the comparison report states the method and the verdicts', async (t) => {
  const a = results([run('m/cpu/b8', latencySamples(20, 200, 1))]);
  const b = results([run('m/cpu/b8', latencySamples(26, 200, 2))]);
  const text = renderComparison(compareResults(a, b, { a: 'a.json', b: 'b.json' }));
  t.match(text, /\| m\/cpu\/b8 \| medianLatencyMsPerBatch \| 20\.\d+ \| 2[56]\.\d+ \| 1\.[23]\d+ \|.*REGRESSION/);
  t.match(text, /bootstrap/);
  t.match(text, /1 regression\(s\)/);
});
