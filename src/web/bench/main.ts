/**
 * The bench page (`edgetl serve --bench <profile>`, /bench): runs the profile in this browser and hands the figures
 * to the server, which writes the edgetl-bench/1 results file.
 */
import { runBrowserBench, type BenchPlan } from './runner.js';
import { BENCH_TOKEN_HEADER } from './protocol.js';
import { onnxruntimeWebVersion } from '../execution/web-session.js';
import { describeError } from '../../core/util/errors.js';

const status = document.getElementById('bench-status') as HTMLElement;
const log = document.getElementById('bench-log') as HTMLElement;

function say(text: string): void {
  status.textContent = text;
}

let token = '';

/** POST to the server that served this page, with the run's token (the server refuses anything else). */
function postResults(body: unknown): Promise<Response> {
  return fetch('/api/bench-results', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', [BENCH_TOKEN_HEADER]: token },
    body: JSON.stringify(body),
  });
}

async function main(): Promise<void> {
  const plan = (await (await fetch('/api/bench')).json()) as BenchPlan;
  token = plan.token;
  say(`Running ${plan.profile.name} in this browser. Keep this tab in front and the device otherwise idle.`);
  let last = '';
  const payload = await runBrowserBench(plan, (p) => {
    const line = p.total ? `${p.label} (${p.done}/${p.total})` : p.label;
    if (p.label !== last) {
      const item = document.createElement('li');
      item.textContent = p.label;
      log.append(item);
      last = p.label;
    }
    say(line);
  });
  payload.browser.onnxruntimeWeb = onnxruntimeWebVersion();
  const response = await postResults(payload);
  const reply = (await response.json()) as { ok: boolean; message: string };
  say(reply.message);
  document.body.dataset.done = reply.ok ? 'ok' : 'failed';
}

main().catch((error: unknown) => {
  say(`The benchmark failed: ${describeError(error)}`);
  document.body.dataset.done = 'failed';
  void postResults({ error: describeError(error) });
});
