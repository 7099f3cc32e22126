import t, { type Test } from 'tap';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { downloadFile, fetchBytes, proxyFor } from '../../../src/node/models/download.js';
import { sha256Bytes } from '../../../src/node/util/sha256.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

const payload = randomBytes(300_000);
const payloadSha = sha256Bytes(payload);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(t: Test, handler: Handler): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer(handler);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function freshDir(): string {
  return mkdtempSync(join(tmpdir(), 'edgetl-download-'));
}

async function rejection(promise: Promise<unknown>): Promise<EdgetlError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EdgetlError) return error;
    throw error;
  }
  throw new Error('expected the download to fail');
}

t.test('downloads a file, reports progress and leaves only the finished file', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': payload.length });
    // Several writes so progress is reported more than once.
    for (let offset = 0; offset < payload.length; offset += 50_000)
      res.write(payload.subarray(offset, offset + 50_000));
    res.end();
  });
  const dir = freshDir();
  const dest = join(dir, 'model.onnx');
  const progress: [number, number | undefined][] = [];
  const result = await downloadFile(`${base}/model.onnx`, dest, {
    sha256: payloadSha,
    bytes: payload.length,
    onProgress: (r, total) => progress.push([r, total]),
  });
  t.equal(result.sha256, payloadSha);
  t.equal(result.bytes, payload.length);
  t.ok(readFileSync(dest).equals(payload), 'content is byte-identical');
  t.same(readdirSync(dir), ['model.onnx'], 'no temporary file left behind');
  t.ok(progress.length >= 3, `progress reported ${progress.length} times`);
  t.same(progress.at(-1), [payload.length, payload.length], 'last progress call is complete');
  for (let i = 1; i < progress.length; i++) t.ok(progress[i]![0] >= progress[i - 1]![0], 'progress never goes back');
});

t.test('a bad checksum keeps nothing and names both hashes and the URL', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': payload.length });
    res.end(payload);
  });
  const dir = freshDir();
  const dest = join(dir, 'model.onnx');
  const wrong = 'ab'.repeat(32);
  const error = await rejection(downloadFile(`${base}/model.onnx`, dest, { sha256: wrong }));
  t.equal(error.code, 'download-checksum');
  t.match(error.message, wrong, 'names the expected hash');
  t.match(error.message, payloadSha, 'names the actual hash');
  t.match(error.message, `${base}/model.onnx`, 'names the URL');
  t.same(readdirSync(dir), [], 'nothing left in the folder');
});

t.test('an existing file is not replaced when the new download is bad', async (t) => {
  const base = await serve(t, (_req, res) => res.end(payload));
  const dir = freshDir();
  const dest = join(dir, 'model.onnx');
  writeFileSync(dest, 'previous');
  await rejection(downloadFile(`${base}/x`, dest, { sha256: 'cd'.repeat(32) }));
  t.equal(readFileSync(dest, 'utf8'), 'previous');
  t.same(readdirSync(dir), ['model.onnx']);
});

t.test('a connection cut mid-body fails clearly and keeps nothing', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': payload.length });
    res.write(payload.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  const dir = freshDir();
  const dest = join(dir, 'model.onnx');
  const error = await rejection(downloadFile(`${base}/model.onnx`, dest, { sha256: payloadSha }));
  t.equal(error.code, 'download-interrupted');
  t.match(error.message, /cut|closed/);
  t.match(error.message, `of ${payload.length} bytes`, 'says how much of the file arrived');
  t.same(readdirSync(dir), []);
});

t.test('a chunked body cut before its end is detected', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(payload.subarray(0, 70_000), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  const dir = freshDir();
  const error = await rejection(downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha }));
  t.equal(error.code, 'download-interrupted');
  t.same(readdirSync(dir), []);
});

t.test('a closed port fails at once with the URL, the offline hint and where to put the file', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const dir = freshDir();
  const dest = join(dir, 'model.onnx');
  const url = `http://127.0.0.1:${port}/model.onnx`;
  // Long timeouts: passing proves the failure comes from the refusal itself, not from a timer.
  const error = await rejection(
    downloadFile(url, dest, { sha256: payloadSha, timeoutMs: 600_000, connectTimeoutMs: 600_000 }),
  );
  t.equal(error.code, 'download-unreachable');
  t.match(error.message, url);
  t.match(error.message, /refused/);
  t.match(error.message, /offline/);
  t.match(error.message, dest, 'says where to place the file by hand');
  t.same(readdirSync(dir), []);
});

t.test('a server that never answers is abandoned after the connect timeout', async (t) => {
  const base = await serve(t, () => {
    /* accept the request, never answer */
  });
  const dir = freshDir();
  const error = await rejection(
    downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha, connectTimeoutMs: 300 }),
  );
  t.equal(error.code, 'download-unreachable');
  t.match(error.message, /no answer within 0\.3 s/);
  t.same(readdirSync(dir), []);
});

t.test('a body that stalls is abandoned after the idle timeout', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': payload.length });
    res.write(payload.subarray(0, 1000));
  });
  const dir = freshDir();
  const error = await rejection(downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha, timeoutMs: 300 }));
  t.equal(error.code, 'download-interrupted');
  t.match(error.message, /no data for 0\.3 s after 1000 bytes/);
  t.same(readdirSync(dir), []);
});

t.test('redirects are followed, relative and absolute', async (t) => {
  const base = await serve(t, (req, res) => {
    if (req.url === '/raw/model.onnx') {
      res.writeHead(302, { location: '/media/model.onnx' });
      res.end();
    } else if (req.url === '/media/model.onnx') {
      res.writeHead(307, {
        location: `http://127.0.0.1:${(req.socket.localPort as number).toString()}/final/model.onnx`,
      });
      res.end();
    } else if (req.url === '/final/model.onnx') {
      res.end(payload);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const dir = freshDir();
  const result = await downloadFile(`${base}/raw/model.onnx`, join(dir, 'model.onnx'), { sha256: payloadSha });
  t.equal(result.finalUrl, `${base}/final/model.onnx`);
  t.ok(readFileSync(join(dir, 'model.onnx')).equals(payload));
});

t.test('a redirect loop stops with a clear error', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(302, { location: '/again' });
    res.end();
  });
  const dir = freshDir();
  const error = await rejection(downloadFile(`${base}/start`, join(dir, 'm.onnx'), { sha256: payloadSha }));
  t.equal(error.code, 'download-http');
  t.match(error.message, /more than 10 redirects/);
});

t.test('an HTTP error status is reported with the status and URL', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(404, 'Not Found');
    res.end('no such model');
  });
  const dir = freshDir();
  const error = await rejection(downloadFile(`${base}/missing.onnx`, join(dir, 'm.onnx'), { sha256: payloadSha }));
  t.equal(error.code, 'download-http');
  t.match(error.message, 'HTTP 404 Not Found');
  t.match(error.message, `${base}/missing.onnx`);
  t.same(readdirSync(dir), []);
});

t.test('a server announcing the wrong size is refused before the body is read', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 10 });
    res.end('0123456789');
  });
  const dir = freshDir();
  const error = await rejection(
    downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha, bytes: payload.length }),
  );
  t.equal(error.code, 'download-size');
  t.match(error.message, `announces 10 bytes but the expected file is ${payload.length} bytes`);
  t.match(error.message, /error page or a Git LFS pointer/);
  t.same(readdirSync(dir), []);
});

t.test('a Git LFS pointer served instead of the file is named as such', async (t) => {
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${payloadSha}\nsize ${payload.length}\n`;
  const base = await serve(t, (_req, res) => res.end(pointer));
  const dir = freshDir();
  const error = await rejection(downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha }));
  t.equal(error.code, 'download-checksum');
  t.match(error.message, /Git LFS pointer/);
});

t.test('an abort signal cancels mid-body and keeps nothing', async (t) => {
  const controller = new AbortController();
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': payload.length });
    res.write(payload.subarray(0, 1000));
  });
  const dir = freshDir();
  const pending = downloadFile(`${base}/m`, join(dir, 'm.onnx'), {
    sha256: payloadSha,
    signal: controller.signal,
    onProgress: (received) => {
      if (received > 0) controller.abort();
    },
  });
  const error = await rejection(pending);
  t.equal(error.code, 'download-aborted');
  t.same(readdirSync(dir), []);
});

t.test('proxy selection follows HTTPS_PROXY, HTTP_PROXY and NO_PROXY and skips loopback', async (t) => {
  const env = {
    HTTPS_PROXY: 'http://proxy.corp:3128',
    HTTP_PROXY: 'proxy.corp:8080',
    NO_PROXY: 'internal.corp,.example.org',
  };
  t.equal(proxyFor(new URL('https://github.com/x'), env)?.host, 'proxy.corp:3128');
  t.equal(proxyFor(new URL('http://github.com/x'), env)?.host, 'proxy.corp:8080');
  t.equal(proxyFor(new URL('https://models.internal.corp/x'), env), undefined);
  t.equal(proxyFor(new URL('https://a.example.org/x'), env), undefined);
  t.equal(proxyFor(new URL('http://127.0.0.1:9/x'), env), undefined);
  t.equal(proxyFor(new URL('http://localhost/x'), env), undefined);
  t.equal(proxyFor(new URL('https://github.com/x'), {}), undefined);
  t.throws(
    () => proxyFor(new URL('https://github.com/x'), { HTTPS_PROXY: 'socks5://p:1080' }),
    /only http:\/\/ proxies/,
  );
});

function withEnv(t: Test, vars: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

t.test('plain http downloads go through HTTP_PROXY', async (t) => {
  const seen: string[] = [];
  const proxy = await serve(t, (req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host} auth=${req.headers['proxy-authorization'] ?? ''}`);
    res.end(payload);
  });
  withEnv(t, { HTTP_PROXY: proxy.replace('http://', 'http://user:secret@'), NO_PROXY: '' });
  const dir = freshDir();
  await downloadFile('http://models.example.invalid/m.onnx', join(dir, 'm.onnx'), { sha256: payloadSha });
  t.same(seen, [
    `GET http://models.example.invalid/m.onnx host=models.example.invalid auth=Basic ${Buffer.from('user:secret').toString('base64')}`,
  ]);
  // A user name alone (a token proxy) is sent too, with an empty password.
  process.env.HTTP_PROXY = proxy.replace('http://', 'http://token%40corp@');
  await downloadFile('http://models.example.invalid/m.onnx', join(dir, 'm.onnx'), { sha256: payloadSha });
  t.equal(
    seen[1],
    `GET http://models.example.invalid/m.onnx host=models.example.invalid auth=Basic ${Buffer.from('token@corp:').toString('base64')}`,
  );
});

const certDir = freshDir();
const keyPath = join(certDir, 'key.pem');
const certPath = join(certDir, 'cert.pem');
let certificateSkip: string | false = false;
try {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=models.example.invalid',
      '-addext',
      'subjectAltName=DNS:models.example.invalid,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
} catch {
  certificateSkip = 'needs openssl to make a test certificate';
}

t.test('https downloads tunnel through HTTPS_PROXY with CONNECT', { skip: certificateSkip }, async (t) => {
  const dir = freshDir();
  const cert = readFileSync(certPath);
  const origin = https.createServer({ key: readFileSync(keyPath), cert }, (_req, res) => res.end(payload));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as AddressInfo).port;
  const tunnels: string[] = [];
  const proxy = http.createServer();
  proxy.on('connect', (req: IncomingMessage, client: net.Socket) => {
    tunnels.push(req.url ?? '');
    const upstream = net.connect(originPort, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    origin.closeAllConnections();
    proxy.closeAllConnections();
    origin.close();
    proxy.close();
  });
  withEnv(t, { HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, NO_PROXY: '' });
  const dest = join(dir, 'm.onnx');
  await downloadFile('https://models.example.invalid/m.onnx', dest, { sha256: payloadSha, extraCa: cert });
  t.same(tunnels, ['models.example.invalid:443']);
  t.ok(existsSync(dest) && readFileSync(dest).equals(payload));
});

t.test(
  'direct https trusts extraCa beside the system roots, and refuses an unknown certificate',
  { skip: certificateSkip },
  async (t) => {
    const cert = readFileSync(certPath);
    const origin = https.createServer({ key: readFileSync(keyPath), cert }, (_req, res) => res.end(payload));
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      origin.closeAllConnections();
      origin.close();
    });
    const url = `https://127.0.0.1:${(origin.address() as AddressInfo).port}/m.onnx`;
    const dir = freshDir();
    await downloadFile(url, join(dir, 'm.onnx'), { sha256: payloadSha, extraCa: cert });
    t.ok(readFileSync(join(dir, 'm.onnx')).equals(payload), 'trusted through extraCa');
    const error = await rejection(downloadFile(url, join(dir, 'n.onnx'), { sha256: payloadSha }));
    t.equal(error.code, 'download-failed');
    t.match(error.message, `download of ${url} failed: self-signed certificate`);
    t.same(readdirSync(dir), ['m.onnx']);
  },
);

t.test('head URLs (fetchBytes) use the same client: HTTP_PROXY applies to them too', async (t) => {
  const seen: string[] = [];
  const proxy = await serve(t, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('{"head":true}');
  });
  withEnv(t, { HTTP_PROXY: proxy, NO_PROXY: '' });
  const bytes = await fetchBytes('http://heads.example.invalid/head.json', { maxBytes: 1024 });
  t.equal(Buffer.from(bytes).toString(), '{"head":true}');
  t.same(seen, ['GET http://heads.example.invalid/head.json']);
});

/** An http:// proxy whose CONNECT handler is `onConnect`; HTTPS_PROXY points at it for the test. */
async function tunnelProxy(t: Test, onConnect: (client: net.Socket) => void): Promise<string> {
  const proxy = http.createServer();
  const clients = new Set<net.Socket>();
  proxy.on('connect', (_req: IncomingMessage, client: net.Socket) => {
    clients.add(client);
    client.on('error', () => undefined);
    onConnect(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const client of clients) client.destroy();
    proxy.close();
  });
  const address = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  withEnv(t, { HTTPS_PROXY: `http://${address}`, NO_PROXY: '' });
  return address;
}

t.test('a proxy refusing the tunnel is named with its answer', async (t) => {
  const address = await tunnelProxy(t, (client) => client.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
  const dir = freshDir();
  const url = 'https://models.example.invalid/m.onnx';
  const error = await rejection(downloadFile(url, join(dir, 'm.onnx'), { sha256: payloadSha }));
  t.equal(error.code, 'download-proxy');
  t.match(error.message, `download of ${url} failed: proxy ${address} refused the tunnel: HTTP 403`);
  t.same(readdirSync(dir), []);
});

t.test('a proxy that never answers the CONNECT is abandoned after the connect timeout', async (t) => {
  await tunnelProxy(t, () => {
    /* hold the tunnel request, never answer */
  });
  const dir = freshDir();
  const started = Date.now();
  const error = await rejection(
    downloadFile('https://models.example.invalid/m.onnx', join(dir, 'm.onnx'), {
      sha256: payloadSha,
      connectTimeoutMs: 300,
    }),
  );
  t.equal(error.code, 'download-unreachable');
  t.match(error.message, /no answer within 0\.3 s/);
  t.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
  t.same(readdirSync(dir), []);
});

t.test('a server that closes the connection without answering is reported as unreachable', async (t) => {
  const base = await serve(t, (req) => req.socket.destroy());
  const dir = freshDir();
  const error = await rejection(downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha }));
  t.equal(error.code, 'download-unreachable');
  t.match(error.message, /closed the connection without answering/);
  t.same(readdirSync(dir), []);
});

t.test('temporaries abandoned by a dead process are removed; live ones are left alone', async (t) => {
  const base = await serve(t, (_req, res) => res.end(payload));
  const dir = freshDir();
  // A pid far above any pid_max in use stands for a process that no longer exists.
  const dead = join(dir, '.m.onnx.999999999.abcd1234.tmp');
  const live = join(dir, `.m.onnx.${process.ppid}.abcd1234.tmp`);
  const unrelated = join(dir, '.other.onnx.999999999.abcd1234.tmp');
  for (const path of [dead, live, unrelated]) writeFileSync(path, 'partial');
  await downloadFile(`${base}/m`, join(dir, 'm.onnx'), { sha256: payloadSha });
  t.same(
    readdirSync(dir).sort(),
    ['.m.onnx.' + process.ppid + '.abcd1234.tmp', '.other.onnx.999999999.abcd1234.tmp', 'm.onnx'].sort(),
  );
});

t.test('an unwritable destination is reported with the path', async (t) => {
  const base = await serve(t, (_req, res) => res.end(payload));
  const dir = freshDir();
  writeFileSync(join(dir, 'file'), 'x');
  const dest = join(dir, 'file', 'm.onnx');
  const error = await rejection(downloadFile(`${base}/m`, dest, { sha256: payloadSha }));
  t.equal(error.code, 'download-write');
  t.match(error.message, dest);
});
