import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseCommandLine, parseNumberOption, printJson, type Command } from './common.js';
import { DEFAULT_BACKBONE_ID } from '../../core/models/catalog.js';
import { Head } from '../../core/heads/head.js';
import { Classifier } from '../classifier.js';
import { printHeadWarnings } from './head-shared.js';
import {
  prepareServedBackbone,
  startKioskServer,
  type KioskServer,
  type KioskServerOptions,
} from '../server/kiosk-server.js';
import { assembleBrowserResults, prepareBrowserBench, type PreparedBrowserBench } from '../server/browser-bench.js';
import type { BrowserBenchPayload } from '../../web/bench/runner.js';
import { renderMarkdown } from '../bench/report-markdown.js';
import { renderHtml } from '../bench/report-html.js';
import { failedVerdicts } from '../bench/budgets.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EdgetlError, describeError } from '../../core/util/errors.js';

const help = `edgetl serve: the kiosk app in a browser, fully offline

Usage: edgetl serve [--port 8080] [--host 127.0.0.1] [--backbone <id|path>] [--head head.json] [--json]
       edgetl serve --bench <browser-wasm|browser-webgpu|profile.json> [--out results.json] [--report report.html] [--check]

Serves the kiosk page, the backbone as a feature extractor, and onnxruntime-web's own files from this machine
(no CDN, no internet), with the Cross-Origin-Opener/Embedder-Policy headers that let WebAssembly use threads.
Open the printed URL in Chrome or Edge: add example photos per class (files, drag and drop, or the camera),
train a head in the page, watch live predictions, export the head as edgetl-head v2 JSON (the same file
\`edgetl predict\` and the Node API load). The page keeps the last head and the examples in the browser
(IndexedDB), so a reload or a power cut loses nothing.

Options:
  --port <n>          port to listen on (default 8080; 0 picks a free one)
  --host <addr>       address to bind (default 127.0.0.1). The camera only works on a secure origin, which
                      http://localhost and http://127.0.0.1 are; other hosts need https in front (a reverse proxy).
  --backbone <id|path> catalog id or .onnx file (default ${DEFAULT_BACKBONE_ID}); the classifier is cut off here
                      and the page receives the feature extractor
  --embedding <tensor> embedding tensor name, when automatic discovery picks the wrong one
  --head <file>       an edgetl-head file (v2, or v1) the page starts with (it must match the backbone); repeat
                      it to serve several heads on the one embedding pass: the page trains and shows the first
                      and lists what each other head predicts beside it
  --json              print one JSON line {"url","port","backbone":{...}} when ready (for scripts)

Browser benchmark (device-profiles with "runtime": "browser"):
  --bench <profile>   serve <url>/bench, which runs the profile's measurements in the browser that opens it (same
                      method, run ids and results schema edgetl-bench/1 as \`edgetl bench\`); when the page is done,
                      the results are written, the Markdown summary printed, and the server stops
  --out <file>        results JSON (default bench-<profile>.json)
  --report <file>     self-contained HTML report
  --check             exit 1 when a budget failed
  bench/browser-bench.ts drives it headless with Debian's chromium (WASM or WebGPU).

On a kiosk screen: chromium --kiosk --app=http://127.0.0.1:8080/ (full screen, no browser UI).
Add ?ep=wasm or ?ep=webgpu to the URL to force a provider; the default tries WebGPU on a hardware adapter, then
WebAssembly, and the page's device panel says which ran and why. Stop with Ctrl-C.
`;

const serveOptions = {
  port: { type: 'string' },
  host: { type: 'string' },
  backbone: { type: 'string' },
  embedding: { type: 'string' },
  head: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  bench: { type: 'string' },
  out: { type: 'string' },
  report: { type: 'string' },
  check: { type: 'boolean' },
} as const;

type ServeValues = ReturnType<typeof parseCommandLine<typeof serveOptions>>['values'];
type ServedBackboneFile = Awaited<ReturnType<typeof prepareServedBackbone>>;

/**
 * What the server does with the benchmark page's results: writes them (and the report), prints the summary, and
 * ends the run through `exit` with the exit code (1 when the page failed, or with --check a budget did).
 */
function browserBenchHandler(
  prepared: PreparedBrowserBench,
  values: ServeValues,
  exit: (code: number) => void,
): NonNullable<KioskServerOptions['bench']> {
  const out = resolve(values.out ?? `bench-${prepared.loaded.profile.name}.json`);
  return {
    profile: prepared.loaded.profile,
    backbones: prepared.backbones,
    onResults: async (body) => {
      if (body && typeof body === 'object' && 'error' in body) {
        process.stderr.write(
          `edgetl serve: the browser benchmark failed: ${String((body as { error: unknown }).error)}\n`,
        );
        exit(1);
        return { ok: false, message: 'noted' };
      }
      const results = assembleBrowserResults(prepared, body as BrowserBenchPayload);
      await writeFileAtomic(out, JSON.stringify(results, null, 1) + '\n');
      if (values.report) await writeFileAtomic(resolve(values.report), renderHtml(results));
      if (values.json) printJson(results);
      else
        process.stdout.write(
          `${renderMarkdown(results)}\nresults: ${out}${values.report ? `, report: ${resolve(values.report)}` : ''}\n`,
        );
      const failed = failedVerdicts(results.budgets);
      setTimeout(() => exit(values.check && failed.length > 0 ? 1 : 0), 100);
      return { ok: true, message: `Done: results written to ${out} on the server. You can close this tab.` };
    },
  };
}

/** The --head files, read and checked against the backbone here, at the terminal, rather than on the kiosk screen. */
async function servedHeads(
  given: string[] | undefined,
  backbone: ServedBackboneFile,
): Promise<{ name: string; json: string }[]> {
  const heads: { name: string; json: string }[] = [];
  const parsedHeads: Head[] = [];
  for (const name of given ?? []) {
    const file = resolve(name);
    let json: string;
    try {
      json = await readFile(file, 'utf8');
    } catch (error) {
      throw new EdgetlError('head-read', `cannot read head file ${file}: ${describeError(error)}`, { file });
    }
    // Refuse here, at the terminal, rather than on the kiosk screen.
    const parsed = Head.parse(json, {
      file,
      backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: backbone.embeddingDim },
    });
    printHeadWarnings(parsed);
    parsedHeads.push(parsed);
    heads.push({ name: basename(name), json });
  }
  if (parsedHeads.length > 1) Classifier.checkShareable(parsedHeads, given);
  return heads;
}

/** Bench mode: says where to open the page, then waits for its results (or Ctrl-C: 130) and stops the server. */
async function awaitBrowserBench(
  server: KioskServer,
  prepared: PreparedBrowserBench,
  values: ServeValues,
  done: Promise<number>,
  exit: (code: number) => void,
): Promise<number> {
  if (values.json) printJson({ url: `${server.url}bench`, port: server.port, profile: prepared.loaded.profile.name });
  else
    process.stdout.write(
      `edgetl browser benchmark ${prepared.loaded.profile.name}: open ${server.url}bench in the browser to measure (Ctrl-C stops)\n`,
    );
  const stop = () => exit(130);
  process.on('SIGINT', stop);
  const code = await done;
  process.off('SIGINT', stop);
  await server.close();
  return code;
}

/** The ready line (--json) or the lines a person reads: the URL, the backbone, the heads, the camera caveat. */
function printKioskReady(server: KioskServer, backbone: ServedBackboneFile, values: ServeValues, host: string): void {
  if (values.json) {
    printJson({
      url: server.url,
      port: server.port,
      host: server.host,
      backbone: {
        id: backbone.id,
        sha256: backbone.sha256,
        embeddingDim: backbone.embeddingDim,
        path: backbone.path,
      },
      head: values.head?.[0] ?? null,
      heads: values.head ?? [],
    });
    return;
  }
  process.stdout.write(
    [
      `edgetl kiosk: ${server.url}`,
      `  backbone ${backbone.id} (${backbone.embeddingDim}-d embedding, ${(backbone.model.byteLength / 1e6).toFixed(1)} MB feature extractor) from ${backbone.path}`,
      ...(values.head ?? []).map(
        (h, i) =>
          `  head ${h}${i === 0 && (values.head?.length ?? 0) > 1 ? ' (trained and shown in the page; the others predict beside it)' : ''}`,
      ),
      ...(host !== '127.0.0.1' && host !== 'localhost' && host !== '::1'
        ? [
            `  note: on ${host} the camera needs https in front of this server (browsers allow it only on secure origins)`,
          ]
        : []),
      '  Ctrl-C stops the server.',
      '',
    ].join('\n'),
  );
}

/** Serves until Ctrl-C or SIGTERM, then closes the server. */
function untilStopped(server: KioskServer): Promise<void> {
  return new Promise<void>((resolveStop) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(resolveStop);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve the kiosk app (train and predict in a browser) on localhost, offline',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, serveOptions, false);
    const port = parseNumberOption(values.port, 'port', 8080, { integer: true, min: 0, max: 65535 });
    const host = values.host ?? '127.0.0.1';
    const benchPrepared = values.bench ? await prepareBrowserBench(values.bench) : undefined;
    // In bench mode the page's own backbone is the profile's first one (present, since the bench needs it).
    const backbone = await prepareServedBackbone(
      values.backbone ?? benchPrepared?.backbones[0]?.info.path ?? DEFAULT_BACKBONE_ID,
      { embeddingTensor: values.embedding },
    );
    let benchExit: ((code: number) => void) | undefined;
    const benchDone = new Promise<number>((resolveDone) => (benchExit = resolveDone));
    const exit = (code: number) => benchExit?.(code);
    const bench = benchPrepared ? browserBenchHandler(benchPrepared, values, exit) : undefined;
    const heads = await servedHeads(values.head, backbone);

    const server = await startKioskServer({
      backbone,
      host,
      port,
      heads,
      bench,
      onLog: values.debug ? (line) => process.stderr.write(`${line}\n`) : undefined,
    });
    if (benchPrepared) return awaitBrowserBench(server, benchPrepared, values, benchDone, exit);
    printKioskReady(server, backbone, values, host);
    await untilStopped(server);
    return 0;
  },
};
