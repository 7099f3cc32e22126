/**
 * The kiosk server answers only its own page: DNS-rebinding requests (a foreign Host) and forged benchmark
 * results (foreign Origin, text/plain "simple" requests, no per-run token) are refused with 4xx and write nothing.
 */
import t from 'tap';
import { request } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isAllowedHost,
  startKioskServer,
  type KioskServer,
  type ServedBackbone,
} from '../../src/node/server/kiosk-server.js';
import { BENCH_TOKEN_HEADER } from '../../src/web/bench/protocol.js';
import { IMAGENET_224 } from '../../src/core/preprocess/spec.js';

const backbone: ServedBackbone = {
  id: 'stand-in',
  sha256: 'ab'.repeat(32),
  model: new Uint8Array([1, 2, 3, 4]),
  outputName: 'embedding',
  embeddingDim: 4,
  preprocess: IMAGENET_224,
};

interface Reply {
  status: number;
  body: string;
}

/** A raw request, so Host and Origin can be anything (fetch would not let a test set Host). */
function send(
  server: KioskServer,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path,
        headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function benchServer(t: { teardown(fn: () => unknown): void }, host?: string) {
  const webRoot = await mkdtemp(join(tmpdir(), 'edgetl-webroot-'));
  await mkdir(join(webRoot, 'app'));
  await writeFile(join(webRoot, 'app', 'index.html'), '<!doctype html><title>kiosk</title>');
  await writeFile(join(webRoot, 'app', 'bench.html'), '<!doctype html><title>bench</title>');
  const received: unknown[] = [];
  const server = await startKioskServer({
    backbone,
    host,
    port: 0,
    webRoot,
    ortDir: webRoot,
    headJson: '{"format":"edgetl-head"}',
    bench: {
      profile: { name: 'test' },
      backbones: [],
      onResults: async (body) => {
        received.push(body);
        return { ok: true, message: 'written' };
      },
    },
  });
  t.teardown(async () => {
    await server.close();
    await rm(webRoot, { recursive: true, force: true });
  });
  return { server, received };
}

t.test('a foreign Host (DNS rebinding) is refused for every path', async (t) => {
  const { server } = await benchServer(t);
  const own = `127.0.0.1:${server.port}`;
  for (const path of ['/', '/api/config', '/api/head', `/models/${backbone.id}.features.onnx`, '/api/bench']) {
    t.equal((await send(server, 'GET', path, { host: own })).status, 200, `${path} answers its own host`);
    const rebinding = await send(server, 'GET', path, { host: `attacker.example:${server.port}` });
    t.equal(rebinding.status, 421, `${path} refuses Host attacker.example`);
    t.notMatch(rebinding.body, /edgetl-head|stand-in|token/, 'and leaks nothing');
  }
  for (const host of [
    `localhost:${server.port}`,
    `LOCALHOST.:${server.port}`,
    `[::1]:${server.port}`,
    `127.1.2.3:${server.port}`,
    'app.localhost',
  ]) {
    t.equal((await send(server, 'GET', '/api/config', { host })).status, 200, `loopback name ${host} is accepted`);
  }
  for (const host of [
    `127.0.0.1.attacker.example:${server.port}`,
    `192.168.1.20:${server.port}`,
    `localhost.attacker.example`,
  ]) {
    t.equal((await send(server, 'GET', '/api/config', { host })).status, 421, `Host "${host}" is refused`);
  }
});

t.test('isAllowedHost: the configured --host, and any IP literal when bound to every interface', async (t) => {
  t.ok(isAllowedHost('kiosk.lan:8080', 'kiosk.lan'));
  t.notOk(isAllowedHost('other.lan:8080', 'kiosk.lan'));
  t.ok(isAllowedHost('192.168.1.20:8080', '192.168.1.20'));
  t.ok(isAllowedHost('192.168.1.20:8080', '0.0.0.0'), 'a LAN address reaches a server bound to 0.0.0.0');
  t.ok(isAllowedHost('[fe80::1]:8080', '::'));
  t.notOk(isAllowedHost('evil.example:8080', '0.0.0.0'), 'names other than loopback are refused even on 0.0.0.0');
  t.notOk(isAllowedHost(undefined, '127.0.0.1'), 'no Host header: refused');
});

t.test('forged benchmark results are refused and write nothing', async (t) => {
  const { server, received } = await benchServer(t);
  const own = `127.0.0.1:${server.port}`;
  const plan = JSON.parse((await send(server, 'GET', '/api/bench', { host: own })).body) as { token: string };
  t.match(plan.token, /^[0-9a-f]{48}$/, 'the page learns a per-run token');
  const results = JSON.stringify({ runs: [] });
  const json = { 'content-type': 'application/json' };
  const forged: [string, Record<string, string>, number][] = [
    [
      'a foreign Origin (cross-site page)',
      { host: own, origin: 'http://attacker.example', ...json, [BENCH_TOKEN_HEADER]: plan.token },
      403,
    ],
    ['no Origin', { host: own, ...json, [BENCH_TOKEN_HEADER]: plan.token }, 403],
    [
      'another port on localhost',
      { host: own, origin: `http://127.0.0.1:${server.port + 1}`, ...json, [BENCH_TOKEN_HEADER]: plan.token },
      403,
    ],
    [
      'text/plain (a "simple" request, no preflight)',
      { host: own, origin: `http://${own}`, 'content-type': 'text/plain', [BENCH_TOKEN_HEADER]: plan.token },
      415,
    ],
    ['no token', { host: own, origin: `http://${own}`, ...json }, 403],
    ['a wrong token', { host: own, origin: `http://${own}`, ...json, [BENCH_TOKEN_HEADER]: '0'.repeat(48) }, 403],
    [
      'a rebinding Host with a matching Origin',
      {
        host: `attacker.example:${server.port}`,
        origin: `http://attacker.example:${server.port}`,
        ...json,
        [BENCH_TOKEN_HEADER]: plan.token,
      },
      421,
    ],
  ];
  for (const [what, headers, status] of forged) {
    t.equal((await send(server, 'POST', '/api/bench-results', headers, results)).status, status, `${what}: ${status}`);
  }
  t.same(received, [], 'no forged results reached the writer');
  const genuine = await send(
    server,
    'POST',
    '/api/bench-results',
    {
      host: own,
      origin: `http://${own}`,
      'content-type': 'application/json; charset=utf-8',
      [BENCH_TOKEN_HEADER]: plan.token,
    },
    results,
  );
  t.equal(genuine.status, 200, 'the page itself is accepted');
  t.same(received, [{ runs: [] }]);
});
