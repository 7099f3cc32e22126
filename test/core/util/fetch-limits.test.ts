/**
 * The fetch-only client (what `Head.load(url)` uses where fetch is the only HTTP client, as in the browser) gives up
 * on a silent server, a stalled body and an oversized body with the Node downloader's codes. Run here on Node's
 * global fetch against real local servers; test/web/head-url.test.ts runs Head.load in Chromium.
 */
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket, type AddressInfo } from 'node:net';
import { fetchWithLimits } from '../../../src/core/util/fetch-limits.js';
import { Head } from '../../../src/core/heads/head.js';

async function serve(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/head.json`;
}

async function silentServer(t: Test): Promise<string> {
  const sockets: Socket[] = [];
  const server = createTcpServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/head.json`;
}

t.test('a server that accepts and never answers fails after the answer timeout, naming the URL', async (t) => {
  const url = await silentServer(t);
  const started = Date.now();
  await t.rejects(fetchWithLimits(url, { connectTimeoutMs: 300 }), {
    code: 'download-unreachable',
    message: `cannot reach ${url}: no answer within 0.3 s`,
  });
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 250 && elapsed < 5000, `failed after ${elapsed} ms`);
});

t.test('a body that stops mid-way fails after the idle timeout, saying how much arrived', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.write('x'.repeat(100));
  });
  await t.rejects(fetchWithLimits(url, { timeoutMs: 300 }), {
    code: 'download-interrupted',
    message: `${url}: no data for 0.3 s after 100 bytes`,
  });
});

t.test('a body that keeps coming slowly is not cut by the idle timeout', async (t) => {
  const url = await serve(t, (_req, res) => {
    let sent = 0;
    const tick = setInterval(() => {
      res.write('y'.repeat(10));
      if (++sent === 8) {
        clearInterval(tick);
        res.end();
      }
    }, 100);
  });
  // 8 pieces 100 ms apart: 800 ms in all, longer than the 400 ms idle limit, never silent for that long.
  const bytes = await fetchWithLimits(url, { timeoutMs: 400 });
  t.equal(bytes.length, 80);
});

t.test('oversized bodies are refused, announced or not', async (t) => {
  let announce = true;
  const url = await serve(t, (_req, res) => {
    // Without a length Node sends the body chunked.
    if (announce) res.writeHead(200, { 'content-length': String(10_000) });
    res.write('z'.repeat(5_000));
    res.end('z'.repeat(5_000));
  });
  await t.rejects(fetchWithLimits(url, { maxBytes: 1000 }), {
    code: 'download-too-large',
    message: /is 10000 bytes, over the limit of 1000 bytes/,
  });
  announce = false;
  await t.rejects(fetchWithLimits(url, { maxBytes: 1000 }), {
    code: 'download-too-large',
    message: /more than 1000 bytes/,
  });
});

t.test('an HTTP error and a refused connection are named with the URL', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(404, 'Not Found');
    res.end('no');
  });
  await t.rejects(fetchWithLimits(url), { code: 'download-http', message: `${url}: HTTP 404 Not Found` });
  const closed = url.replace(/:\d+\//, ':1/');
  await t.rejects(fetchWithLimits(closed), { code: 'download-unreachable', message: `cannot reach ${closed}` });
});

t.test('an abort signal cancels the request', async (t) => {
  const url = await silentServer(t);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await t.rejects(fetchWithLimits(url, { signal: controller.signal }), { code: 'download-aborted' });
});

t.test('Head.load from a URL without the Node storage goes through these limits', async (t) => {
  // This file imports core only, so Head's default (fetch) storage is the one in use, as in the browser.
  const url = await serve(t, (_req, res) => {
    res.writeHead(404, 'Not Found');
    res.end();
  });
  await t.rejects(Head.load(url), { code: 'download-http', message: `${url}: HTTP 404 Not Found` });
});
