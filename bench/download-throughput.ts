/**
 * What the download client costs: MB/s and client CPU-ms per MB of `downloadFile` (stream to a temporary file,
 * sha256, fsync, rename) for a large file, and ms per request of `fetchBytes` for a head-sized one, from a local
 * server in a child process (so the CPU time measured is the client's alone).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/download-throughput.ts \
 *     [--mb 256] [--rounds 5] [--small 200] [--variants ../src/node/models/download.ts,<other module>] [--json]
 *
 * Each variant is a module exporting downloadFile and fetchBytes (e.g. an older download.ts copied beside the
 * current one, to compare clients). Rounds interleave the variants so a neighbour's load falls on all alike; each
 * figure is the median over rounds, with the range. Loopback only: this measures the client's overhead, not a network.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
};
const megabytes = Number(option('--mb', '256'));
const rounds = Number(option('--rounds', '5'));
const smallRequests = Number(option('--small', '200'));
const variants = option('--variants', '../src/node/models/download.ts').split(',');
const json = args.includes('--json');

interface Client {
  downloadFile(url: string, dest: string, options: { sha256: string; bytes?: number }): Promise<unknown>;
  fetchBytes(url: string, options: { maxBytes: number }): Promise<Uint8Array>;
}

// The server: a seeded payload (the same bytes in parent and child), written in 64 KiB pieces with backpressure.
const seed = randomBytes(16).toString('hex');
const serverSource = `
const http = require('node:http');
const { createHash } = require('node:crypto');
const size = ${megabytes} * 1024 * 1024;
const block = Buffer.alloc(64 * 1024);
for (let i = 0; i < block.length; i += 32) createHash('sha256').update('${seed}' + i).digest().copy(block, i);
const small = Buffer.alloc(4096, 7);
http.createServer((req, res) => {
  if (req.url === '/small') { res.writeHead(200, { 'content-length': small.length }); res.end(small); return; }
  res.writeHead(200, { 'content-length': size });
  let sent = 0;
  const pump = () => {
    while (sent < size) { sent += block.length; if (!res.write(block)) return res.once('drain', pump); }
    res.end();
  };
  pump();
}).listen(0, '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); });
`;
const block = Buffer.alloc(64 * 1024);
for (let i = 0; i < block.length; i += 32)
  createHash('sha256')
    .update(seed + i)
    .digest()
    .copy(block, i);
const hash = createHash('sha256');
for (let sent = 0; sent < megabytes * 1024 * 1024; sent += block.length) hash.update(block);
const sha256 = hash.digest('hex');

const server = spawn(process.execPath, ['-e', serverSource], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => server.stdout.once('data', (d) => resolve(Number(String(d)))));
const base = `http://127.0.0.1:${port}`;

const clients: { name: string; client: Client }[] = [];
for (const variant of variants) {
  const client = (await import(pathToFileURL(join(import.meta.dirname, variant)).href)) as Client;
  clients.push({ name: variant, client });
}

const dir = mkdtempSync(join(tmpdir(), 'edgetl-download-bench-'));
const samples = new Map<string, { mbPerS: number[]; cpuMsPerMb: number[]; smallMs: number[] }>();
for (const { name } of clients) samples.set(name, { mbPerS: [], cpuMsPerMb: [], smallMs: [] });
const loadStart = loadavg();
for (let round = 0; round < rounds; round++) {
  for (const { name, client } of clients) {
    const s = samples.get(name)!;
    const cpu = process.cpuUsage();
    const started = performance.now();
    await client.downloadFile(`${base}/big`, join(dir, 'big.bin'), { sha256, bytes: megabytes * 1024 * 1024 });
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    s.mbPerS.push(megabytes / seconds);
    s.cpuMsPerMb.push((used.user + used.system) / 1000 / megabytes);
    const smallStarted = performance.now();
    for (let i = 0; i < smallRequests; i++) await client.fetchBytes(`${base}/small`, { maxBytes: 1 << 20 });
    s.smallMs.push((performance.now() - smallStarted) / smallRequests);
  }
}
server.kill();
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`;
const rows = clients.map(({ name }) => {
  const s = samples.get(name)!;
  return {
    variant: name,
    mbPerS: median(s.mbPerS),
    mbPerSRange: range(s.mbPerS, 0),
    cpuMsPerMb: median(s.cpuMsPerMb),
    cpuMsPerMbRange: range(s.cpuMsPerMb, 2),
    smallMs: median(s.smallMs),
    smallMsRange: range(s.smallMs, 2),
  };
});
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} logical cores, Node ${process.version}`;
const load = `load average ${loadStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')} at the end`;
if (json) {
  console.log(JSON.stringify({ megabytes, rounds, smallRequests, machine, load, rows }, null, 2));
} else {
  console.log(`${megabytes} MiB file x ${rounds} rounds, ${smallRequests} x 4 KiB per round; ${machine}; ${load}`);
  console.log('variant | MB/s (range) | client CPU ms/MB (range) | ms per 4 KiB request (range)');
  for (const r of rows)
    console.log(
      `${r.variant} | ${r.mbPerS.toFixed(0)} (${r.mbPerSRange}) | ` +
        `${r.cpuMsPerMb.toFixed(2)} (${r.cpuMsPerMbRange}) | ${r.smallMs.toFixed(2)} (${r.smallMsRange})`,
    );
}
