/**
 * Node side of the kiosk: a small static server for the app, the feature-extractor model and onnxruntime-web's own
 * files, with the headers that make the page cross-origin isolated (COOP/COEP, so WASM can use threads). Nothing is
 * fetched from outside: every byte the page needs comes from this process.
 *
 * (Lives beside the browser code because it serves it; the browser bundles never import this file.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { prepareBackbone } from '../models/prepare-backbone.js';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { EDGETL_VERSION } from '../../core/version.js';
import { BENCH_TOKEN_HEADER } from '../../web/bench/protocol.js';

/** The model the page loads, already prepared (a feature extractor whose output is the embedding). */
export interface ServedBackbone {
  id: string;
  /** sha256 of the source model (heads name their backbone by it). */
  sha256: string;
  /** Feature-extractor ONNX bytes. */
  model: Uint8Array;
  outputName: string;
  embeddingDim: number;
  preprocess: PreprocessSpec;
  fixedBatch?: number;
  description?: string;
}

/**
 * Resolves a backbone (catalog id or path, as everywhere in edgetl), runs the feature-extractor surgery and returns
 * what the page loads. `notes` say how the preprocessing was chosen (catalog, sidecar or defaults).
 */
export async function prepareServedBackbone(
  idOrPath: string,
  options: { embeddingTensor?: string; download?: boolean; cacheDir?: string } = {},
): Promise<ServedBackbone & { path: string; notes: string[] }> {
  // The same cached extractor file the Node Backbone runs: browser and Node see byte-identical graphs.
  const { resolved, spec, extractor } = await prepareBackbone(idOrPath, options);
  return {
    id: resolved.id,
    sha256: resolved.sha256,
    model: new Uint8Array(await readFile(extractor.path)),
    outputName: 'embedding',
    embeddingDim: extractor.dim,
    preprocess: spec.preprocess,
    fixedBatch:
      resolved.entry?.fixedBatch ?? (typeof extractor.facts.batch === 'number' ? extractor.facts.batch : undefined),
    description: resolved.entry?.description,
    path: resolved.path,
    notes: spec.notes,
  };
}

export interface KioskServerOptions {
  backbone: ServedBackbone;
  /** Host to bind; default 127.0.0.1 (the camera needs a secure context: localhost or https). */
  host?: string;
  /** Port; 0 picks a free one. Default 8080. */
  port?: number;
  /** edgetl-head JSON text the page loads at start (from `--head`). */
  headJson?: string;
  /**
   * Several heads on the one backbone pass (`--head a.json --head b.json`): the page trains and shows the first,
   * and also shows what each other head predicts from the same embedding. Overrides `headJson` when given.
   */
  heads?: { name: string; json: string }[];
  /** Folder with the built browser bundles (dist/web); found beside the running code when omitted. */
  webRoot?: string;
  /** onnxruntime-web's dist folder; resolved from node_modules when omitted. */
  ortDir?: string;
  /** One line per request that failed (404/500), for the terminal. */
  onLog?: (line: string) => void;
  /**
   * Benchmark mode (`edgetl serve --bench`): /bench runs the profile in the browser, which POSTs its figures to
   * /api/bench-results.
   */
  bench?: {
    profile: unknown;
    backbones: { info: { id: string }; spec: PreprocessSpec; model: Uint8Array }[];
    onResults(body: unknown): Promise<{ ok: boolean; message: string }>;
  };
}

/** Largest results body accepted from the bench page (raw samples of every run). */
const MAX_BENCH_BODY = 64 * 1024 * 1024;

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new EdgetlError('body-too-large', `request body over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface KioskServer {
  url: string;
  host: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/** The headers cross-origin isolation needs, and no sniffing. Sent with every response. */
export const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** dist/web beside the running code: dist/cli.js -> dist/web; src/node/server/kiosk-server.ts (tests) -> <repo>/dist/web. */
export function findWebRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    for (const candidate of [join(dir, 'web'), join(dir, 'dist', 'web')]) {
      if (existsSync(join(candidate, 'app', 'index.html'))) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new EdgetlError(
    'no-web-build',
    `the kiosk app is not built (no dist/web/app/index.html near ${from}): run \`npm run build\` first`,
  );
}

/** onnxruntime-web's dist folder (its ESM bundle and .wasm files), from this package's node_modules. */
export function findOrtWebDir(): string {
  const require = createRequire(import.meta.url);
  try {
    // The package's `main` is dist/ort.node.min.js; its folder holds the browser files too.
    const dir = dirname(require.resolve('onnxruntime-web'));
    if (existsSync(join(dir, 'ort.min.mjs'))) return dir;
    throw new Error(`no ort.min.mjs in ${dir}`);
  } catch (error) {
    throw new EdgetlError(
      'no-ort-web',
      `onnxruntime-web is not installed where edgetl can find it (${describeError(error)}): run \`npm ci\``,
    );
  }
}

/** The name part of a Host header value ("[::1]:8080" -> "::1", "Example.COM.:80" -> "example.com"). */
function hostName(header: string): string {
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.replace(/:\d*$/, '');
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Whether a request's Host header names this server: the loopback names (localhost, *.localhost, 127.0.0.0/8,
 * ::1), the host it was bound to, and, when bound to every interface (0.0.0.0 or ::), any IP address. A DNS
 * rebinding page reaches the server under its own domain name, which is none of these, so it is refused.
 */
export function isAllowedHost(header: string | undefined, boundHost: string): boolean {
  if (!header) return false;
  const name = hostName(header);
  if (name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name))
    return true;
  const bound = hostName(boundHost.includes(':') && !boundHost.startsWith('[') ? `[${boundHost}]` : boundHost);
  if (name === bound) return true;
  return (bound === '0.0.0.0' || bound === '::') && isIP(name) !== 0;
}

function sameSecret(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A file inside `root`, or undefined for anything that tries to leave it. */
function safeJoin(root: string, relative: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const full = resolve(root, '.' + sep + decoded);
  return full === root || full.startsWith(root + sep) ? full : undefined;
}

type KioskBench = NonNullable<KioskServerOptions['bench']>;

/** Everything a request can be answered from, decided once when the server starts. */
interface KioskSite {
  webRoot: string;
  ortDir: string;
  host: string;
  backbone: ServedBackbone;
  /** Where the page fetches the feature extractor. */
  modelPath: string;
  heads: { name: string; json: string }[];
  configJson: string;
  bench: KioskBench | undefined;
  benchPlan: string | undefined;
  /** Per-run secret the benchmark page must send back with its results. */
  benchToken: string;
  onLog: KioskServerOptions['onLog'];
}

/** What GET /api/config returns: the backbone, where to fetch it and the heads, and onnxruntime-web's folder. */
function kioskConfig(backbone: ServedBackbone, modelPath: string, heads: KioskSite['heads']) {
  return {
    version: EDGETL_VERSION,
    backbone: {
      id: backbone.id,
      sha256: backbone.sha256,
      modelUrl: modelPath,
      outputName: backbone.outputName,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
      fixedBatch: backbone.fixedBatch,
      description: backbone.description,
    },
    headUrl: heads.length === 0 ? undefined : '/api/head',
    heads: heads.map((h, i) => ({ name: h.name, url: `/api/heads/${i}` })),
    ortUrl: '/ort/',
  };
}

function kioskSite(options: KioskServerOptions): KioskSite {
  const backbone = options.backbone;
  const modelPath = `/models/${encodeURIComponent(backbone.id)}.features.onnx`;
  const heads = options.heads ?? (options.headJson === undefined ? [] : [{ name: 'head', json: options.headJson }]);
  const bench = options.bench;
  // Results are accepted only from the page this run served: it learns the token from /api/bench, which other
  // origins cannot read (same-origin policy, CORP) and rebinding pages cannot reach (Host check).
  const benchToken = randomBytes(24).toString('hex');
  const benchPlan = bench
    ? JSON.stringify({
        profile: bench.profile,
        backbones: bench.backbones.map((b, i) => ({ info: b.info, spec: b.spec, modelUrl: `/bench-models/${i}.onnx` })),
        workerUrl: '/worker.js',
        wasmPaths: '/ort/',
        token: benchToken,
      })
    : undefined;
  return {
    webRoot: resolve(options.webRoot ?? findWebRoot()),
    ortDir: resolve(options.ortDir ?? findOrtWebDir()),
    host: options.host ?? '127.0.0.1',
    backbone,
    modelPath,
    heads,
    configJson: JSON.stringify(kioskConfig(backbone, modelPath, heads)),
    bench,
    benchPlan,
    benchToken,
    onLog: options.onLog,
  };
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Uint8Array,
  extra: Record<string, string> = {},
) {
  res.writeHead(status, {
    ...ISOLATION_HEADERS,
    'Content-Type': type,
    'Content-Length': String(Buffer.byteLength(body)),
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function notFound(site: KioskSite, res: ServerResponse, what: string): void {
  site.onLog?.(`404 ${what}`);
  send(res, 404, 'text/plain; charset=utf-8', `not found: ${what}\n`);
}

function refuse(site: KioskSite, res: ServerResponse, status: number, why: string): void {
  site.onLog?.(`${status} ${res.req.method} ${res.req.url}: ${why}`);
  send(res, status, 'text/plain; charset=utf-8', `${why}\n`);
}

async function sendFile(
  site: KioskSite,
  res: ServerResponse,
  path: string | undefined,
  urlPath: string,
  cache: string,
): Promise<void> {
  if (!path) return notFound(site, res, urlPath);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    return notFound(site, res, urlPath);
  }
  if (!info.isFile()) return notFound(site, res, urlPath);
  const type = CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
  send(res, 200, type, await readFile(path), { 'Cache-Control': cache });
}

/** POST /api/bench-results: only from this run's benchmark page (Origin, content type, token), handed to `bench`. */
async function receiveBenchResults(
  site: KioskSite,
  bench: KioskBench,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.headers.origin !== `http://${req.headers.host}`)
    return refuse(site, res, 403, 'results are accepted only from the benchmark page this server served (Origin)');
  if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/json')
    return refuse(site, res, 415, 'results must be sent as application/json');
  if (!sameSecret(req.headers[BENCH_TOKEN_HEADER.toLowerCase()], site.benchToken))
    return refuse(site, res, 403, `results must carry this run's token (${BENCH_TOKEN_HEADER})`);
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req, MAX_BENCH_BODY));
  } catch (error) {
    send(
      res,
      400,
      CONTENT_TYPES['.json'],
      JSON.stringify({ ok: false, message: `unreadable results: ${describeError(error)}` }),
    );
    return;
  }
  const reply = await bench.onResults(body).catch((error: unknown) => ({ ok: false, message: describeError(error) }));
  send(res, reply.ok ? 200 : 422, CONTENT_TYPES['.json'], JSON.stringify(reply));
}

/** A GET or HEAD: the page, its config and heads, the models, onnxruntime-web and the bundles. */
function serveGet(site: KioskSite, res: ServerResponse, path: string): void | Promise<void> {
  const { webRoot, heads, bench, benchPlan } = site;
  if (path === '/' || path === '/index.html')
    return sendFile(site, res, join(webRoot, 'app', 'index.html'), path, 'no-cache');
  if (path === '/api/config')
    return send(res, 200, CONTENT_TYPES['.json'], site.configJson, { 'Cache-Control': 'no-store' });
  if (path === '/api/head') {
    if (heads.length === 0) return notFound(site, res, path);
    return send(res, 200, CONTENT_TYPES['.json'], heads[0].json, { 'Cache-Control': 'no-store' });
  }
  const servedHead = /^\/api\/heads\/(\d+)$/.exec(path);
  if (servedHead) {
    const head = heads[Number(servedHead[1])];
    if (!head) return notFound(site, res, path);
    return send(res, 200, CONTENT_TYPES['.json'], head.json, { 'Cache-Control': 'no-store' });
  }
  if (path === site.modelPath)
    return send(res, 200, CONTENT_TYPES['.onnx'], site.backbone.model, { 'Cache-Control': 'no-cache' });
  if (bench && benchPlan) {
    if (path === '/bench') return sendFile(site, res, join(webRoot, 'app', 'bench.html'), path, 'no-cache');
    if (path === '/api/bench')
      return send(res, 200, CONTENT_TYPES['.json'], benchPlan, { 'Cache-Control': 'no-store' });
    const match = /^\/bench-models\/(\d+)\.onnx$/.exec(path);
    const model = match ? bench.backbones[Number(match[1])] : undefined;
    if (model) return send(res, 200, CONTENT_TYPES['.onnx'], model.model, { 'Cache-Control': 'no-cache' });
  }
  // onnxruntime-web's ESM bundle, its emscripten glue (.mjs) and .wasm binaries: flat files of one folder.
  if (path.startsWith('/ort/')) {
    const name = path.slice('/ort/'.length);
    if (!/^[\w.-]+\.(mjs|js|wasm|map)$/.test(name)) return notFound(site, res, path);
    return sendFile(site, res, safeJoin(site.ortDir, name), path, 'max-age=3600');
  }
  if (path.startsWith('/app/'))
    return sendFile(site, res, safeJoin(join(webRoot, 'app'), path.slice('/app/'.length)), path, 'no-cache');
  // The browser library and its workers (dist/web/index.js, worker.js, preprocess-worker.js) and their source maps.
  if (/^\/[\w.-]+\.(js|map)$/.test(path))
    return sendFile(site, res, safeJoin(webRoot, path.slice(1)), path, 'no-cache');
  return notFound(site, res, path);
}

async function handleRequest(site: KioskSite, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!isAllowedHost(req.headers.host, site.host)) {
    return refuse(
      site,
      res,
      421,
      `this server answers to localhost, 127.0.0.1, [::1] and ${site.host} only (Host: ${String(req.headers.host ?? 'none').slice(0, 100)})`,
    );
  }
  if (site.bench && req.method === 'POST' && req.url === '/api/bench-results')
    return receiveBenchResults(site, site.bench, req, res);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', { Allow: 'GET, HEAD' });
    return;
  }
  return serveGet(site, res, new URL(req.url ?? '/', 'http://localhost').pathname);
}

/** Listens on host:port; the errors say what to change (a port in use, a privileged port). */
function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolveListen, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE')
        reject(
          new EdgetlError(
            'port-in-use',
            `port ${port} on ${host} is already in use: pass another \`port\` (0 picks any free one)`,
          ),
        );
      else if (error.code === 'EACCES')
        reject(
          new EdgetlError(
            'port-denied',
            `not allowed to listen on ${host}:${port} (ports below 1024 need privileges): pass a \`port\` of 1024 or above (e.g. 8080)`,
          ),
        );
      else reject(new EdgetlError('listen-failed', `cannot listen on ${host}:${port}: ${describeError(error)}`));
    });
    server.listen(port, host, () => resolveListen());
  });
}

export async function startKioskServer(options: KioskServerOptions): Promise<KioskServer> {
  const site = kioskSite(options);
  const { host } = site;
  const server = createServer((req, res) => {
    handleRequest(site, req, res).catch((error: unknown) => {
      options.onLog?.(`500 ${req.url}: ${describeError(error)}`);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `server error: ${describeError(error)}\n`);
      else res.destroy();
    });
  });
  await listen(server, host, options.port ?? 8080);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8080);
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    server,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}
