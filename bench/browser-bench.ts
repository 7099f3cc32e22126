/**
 * Runs a browser device profile (browser-wasm, browser-webgpu, or a file with "runtime": "browser") headless in
 * Debian's chromium through `edgetl serve --bench`, and writes the same edgetl-bench/1 results as `edgetl bench`.
 *
 *   node --import=@tapjs/typescript/import bench/browser-bench.ts --profile browser-wasm [--out r.json] [--report r.html]
 *        [--webgpu swiftshader]   (WebGPU through SwiftShader: correctness only; a real GPU needs a real display)
 *
 * Needs `npm run build` first. The figures are the browser's, on this machine: run it on a quiet machine.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/shared.js';
import { chromiumSkip, launchChromium } from '../test/web/chromium.js';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', default: 'browser-wasm' },
    out: { type: 'string' },
    report: { type: 'string' },
    webgpu: { type: 'string' },
    timeout: { type: 'string', default: '900' },
  },
});
const skip = chromiumSkip();
if (skip) {
  console.error(skip);
  process.exit(2);
}
const args = [join(repoRoot, 'dist', 'cli.js'), 'serve', '--bench', values.profile!, '--port', '0', '--json'];
if (values.out) args.push('--out', values.out);
if (values.report) args.push('--report', values.report);
const server = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
const lines = createInterface({ input: server.stdout! });
const first = await new Promise<string>((resolve, reject) => {
  lines.once('line', resolve);
  server.once('exit', (code) => reject(new Error(`edgetl serve --bench exited (${code}) before it was ready`)));
});
const { url } = JSON.parse(first) as { url: string };
const browser = await launchChromium(
  values.webgpu === 'swiftshader' || values.profile!.includes('webgpu') ? 'webgpu' : 'wasm',
);
const timer = setTimeout(() => {
  console.error(`no results after ${values.timeout} s: stopping`);
  server.kill('SIGINT');
}, Number(values.timeout) * 1000);
try {
  await browser.page.goto(url);
  const results = await new Promise<string>((resolve) => {
    let text = '';
    lines.on('line', (line) => (text += line + '\n'));
    server.once('exit', () => resolve(text));
  });
  process.stdout.write(results);
  process.exitCode = server.exitCode ?? 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
