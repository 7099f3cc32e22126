/**
 * Heads given as http(s) URLs go through the model downloader's client: connect and idle timeouts, a size limit.
 */
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { loadHead } from '../../src/node/head-io.js';
import { headCommand } from '../../src/node/cli/head.js';
import { trainHead } from '../../src/core/heads/train.js';
import { IMAGENET_224 } from '../../src/core/preprocess/spec.js';
import { run } from './cli/head-fixtures.js';

const backbone = { id: 'tiny-test', sha256: 'ab'.repeat(32), embeddingDim: 4, preprocess: IMAGENET_224 };

async function headText(): Promise<string> {
  const head = await trainHead([Float32Array.of(1, 0, 0, 0), Float32Array.of(0, 1, 0, 0)], ['a', 'b'], {
    type: 'prototype',
    backbone,
  });
  return head.serialize();
}

async function listen(
  server: Server | TcpServer,
  t: { teardown(fn: () => unknown): void },
  sockets: Socket[] = [],
): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    if ('closeAllConnections' in server) server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/head.json`;
}

/** Accepts connections and never answers (holding the sockets so they stay open). */
async function silentServer(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const sockets: Socket[] = [];
  const server = createTcpServer((socket) => sockets.push(socket));
  return listen(server, t, sockets);
}

t.test('a server that accepts and never answers fails within the connect timeout', async (t) => {
  const url = await silentServer(t);
  const started = Date.now();
  await t.rejects(loadHead(url, { http: { connectTimeoutMs: 500 } }), {
    code: 'download-unreachable',
    message: /127\.0\.0\.1.*no answer within 0\.5 s/,
  });
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 450 && elapsed < 5000, `failed after ${elapsed} ms`);
});

t.test('a server that stops sending mid-body fails within the idle timeout', async (t) => {
  const text = await headText();
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(text.length) });
    res.write(text.slice(0, 100)); // and nothing more
  });
  t.teardown(() => server.closeAllConnections());
  const url = await listen(server, t);
  const started = Date.now();
  await t.rejects(loadHead(url, { http: { timeoutMs: 500 } }), {
    code: 'download-interrupted',
    message: /no data for 0\.5 s after 100 bytes/,
  });
  t.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
});

t.test('a head URL larger than the limit is refused, announced or not', async (t) => {
  const text = await headText();
  let chunked = false;
  const server = createServer((_req, res) => {
    if (chunked) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const block = 'x'.repeat(64 * 1024);
      const send = () => (res.write(block) ? setImmediate(send) : res.once('drain', send));
      send();
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(200 * 1024 * 1024) });
      res.write(text);
    }
  });
  t.teardown(() => server.closeAllConnections());
  const url = await listen(server, t);
  await t.rejects(
    loadHead(url, { maxBytes: 1024 * 1024 }),
    { code: 'download-too-large', message: /is 209715200 bytes, over the limit of 1048576 bytes/ },
    'an announced length is refused before the body',
  );
  chunked = true;
  await t.rejects(
    loadHead(url, { maxBytes: 1024 * 1024 }),
    { code: 'download-too-large', message: /more than 1048576 bytes/ },
    'an endless body is cut at the limit',
  );
});

t.test('a served head loads, and head inspect reads a URL', async (t) => {
  const text = await headText();
  const server = createServer((_req, res) => res.end(text));
  const url = await listen(server, t);
  t.same((await loadHead(url)).labels, ['a', 'b']);
  const result = await run(headCommand, ['inspect', url, '--json']);
  t.equal(result.code, 0, result.error?.message ?? 'no error');
  t.equal(JSON.parse(result.stdout).bytes, Buffer.byteLength(text));
});

t.test('head inspect of a silent URL fails within the default 10 s connect timeout', async (t) => {
  const url = await silentServer(t);
  const started = Date.now();
  const result = await run(headCommand, ['inspect', url]);
  const elapsed = Date.now() - started;
  t.match(result.error, { code: 'download-unreachable', message: /no answer within 10 s/ });
  t.ok(elapsed >= 9500 && elapsed < 15_000, `failed after ${elapsed} ms`);
});
