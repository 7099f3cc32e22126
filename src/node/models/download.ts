import http, { type IncomingMessage, type ClientRequest } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { open, rename, unlink, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { removeAbandonedTemporaries, temporarySibling, writeFully } from '../util/atomic-write.js';

export interface DownloadOptions extends TransferOptions {
  /** Expected sha256 (hex). The file is kept only when the received bytes hash to it. */
  sha256: string;
  /** Expected size in bytes, when known: a server announcing another size is refused before the body is read. */
  bytes?: number;
  /** Called as bytes arrive; `total` is the announced length (or `bytes`), undefined when neither is known. */
  onProgress?: (received: number, total: number | undefined) => void;
  /**
   * Longest silence tolerated, in milliseconds: no response headers within this time after the request, or no
   * body data for this long, abandons the download. Default 20000.
   */
  timeoutMs?: number;
  /** Limit for reaching the server and getting response headers (DNS, TCP, TLS, proxy). Default min(timeoutMs, 10000). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  /** Extra sentence appended to "cannot reach" errors, e.g. where else a hand-placed file would be found. */
  manualInstallHint?: string;
  /** Extra trusted certificates (PEM), e.g. a company proxy's or a test server's; system roots stay trusted. */
  extraCa?: string | Buffer;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** URL that finally served the bytes, after redirects. */
  finalUrl: string;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const DEFAULT_TIMEOUT_MS = 20_000;
const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EPROTO',
  'EADDRNOTAVAIL',
]);

/** Raised inside the request machinery; turned into an EdgetlError with the URL and advice at the top. */
class TransferFailure extends Error {
  constructor(
    readonly kind: 'unreachable' | 'interrupted' | 'aborted' | 'http' | 'proxy',
    message: string,
    readonly url: URL,
  ) {
    super(message);
  }
}

/**
 * Download `url` to `dest`: stream into a temporary sibling while hashing, check the sha256, fsync, then rename
 * over `dest`. Whatever goes wrong (server unreachable, redirect loop, HTTP error, connection cut, stall, wrong
 * checksum, abort) the temporary file is removed and `dest` is untouched. Follows redirects (GitHub -> its media
 * host). Honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY with an http:// proxy (CONNECT tunnel for https URLs);
 * loopback addresses never go through a proxy.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions): Promise<DownloadResult> {
  const parsed = parseHttpUrl(url);
  const expected = options.sha256.toLowerCase();
  const open_ = transferOptions(options);
  options.signal?.throwIfAborted?.();

  try {
    await mkdir(dirname(dest), { recursive: true });
  } catch (error) {
    throw new EdgetlError('download-write', `cannot create the folder for ${dest}: ${describeError(error)}`, {
      file: dest,
      cause: error,
    });
  }
  await removeAbandonedTemporaries(dest);
  const temporary = temporarySibling(dest);
  const progress: TransferProgress = { received: 0, total: undefined };
  try {
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headBytes = 0;
    let handle: FileHandle | undefined;
    let finalUrl: URL;
    try {
      ({ finalUrl } = await receive(parsed, open_, progress, {
        onHeaders: async (announced) => {
          if (announced !== undefined && options.bytes !== undefined && announced !== options.bytes) {
            throw new EdgetlError(
              'download-size',
              `${url} announces ${announced} bytes but the expected file is ${options.bytes} bytes: it is not the file ` +
                `edgetl expects (sha256 ${expected}); nothing was saved` +
                (announced < 1024
                  ? ` (a tiny answer like this is usually an error page or a Git LFS pointer instead of the file)`
                  : ''),
            );
          }
          progress.total = announced ?? options.bytes;
          handle = await open(temporary, 'wx');
          options.onProgress?.(0, progress.total);
        },
        onChunk: async (chunk) => {
          hash.update(chunk);
          if (headBytes < 256) {
            head.push(chunk);
            headBytes += chunk.length;
          }
          await writeFully(handle!, chunk);
          options.onProgress?.(progress.received + chunk.length, progress.total);
        },
      }));
      await handle!.sync();
    } finally {
      await handle?.close().catch(() => undefined);
    }

    const received = progress.received;
    const actual = hash.digest('hex');
    if (actual !== expected) {
      const sizeNote =
        options.bytes !== undefined && options.bytes !== received
          ? `; received ${received} bytes, expected ${options.bytes}`
          : `; received ${received} bytes`;
      throw new EdgetlError(
        'download-checksum',
        `checksum mismatch for ${url}: expected sha256 ${expected}, got ${actual}${sizeNote}. ` +
          `The file was not kept` +
          lfsAdvice(finalUrl, Buffer.concat(head)),
      );
    }
    await rename(temporary, dest);
    return { path: dest, bytes: received, sha256: actual, finalUrl: finalUrl.href };
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw toUserError(error, url, dest, progress.received, progress.total, options);
  }
}

export interface FetchBytesOptions extends TransferOptions {
  /** Largest body accepted: a larger announced length is refused before the body, a longer body when it passes. */
  maxBytes: number;
}

/**
 * GET `url` into memory with the same client as model downloads: redirects, proxies, the connect timeout (no
 * response headers within connectTimeoutMs, default 10 s) and the idle timeout (no body data for timeoutMs,
 * default 20 s), and a size limit. Errors are EdgetlErrors naming the URL.
 */
export async function fetchBytes(url: string, options: FetchBytesOptions): Promise<Uint8Array> {
  const parsed = parseHttpUrl(url);
  const progress: TransferProgress = { received: 0, total: undefined };
  const chunks: Buffer[] = [];
  const tooLarge = (size: string) =>
    new EdgetlError(
      'download-too-large',
      `${url} is ${size}, over the limit of ${options.maxBytes} bytes; nothing was read further`,
      { file: url },
    );
  try {
    await receive(parsed, transferOptions(options), progress, {
      onHeaders: (announced) => {
        if (announced !== undefined && announced > options.maxBytes) throw tooLarge(`${announced} bytes`);
        progress.total = announced;
      },
      onChunk: (chunk) => {
        if (progress.received + chunk.length > options.maxBytes) throw tooLarge(`more than ${options.maxBytes} bytes`);
        chunks.push(chunk);
      },
    });
  } catch (error) {
    throw toUserError(error, url, undefined, progress.received, progress.total, options);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** Shared by every transfer: timeouts, cancellation, extra trusted certificates. */
export interface TransferOptions {
  timeoutMs?: number;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  extraCa?: string | Buffer;
}

interface TransferProgress {
  received: number;
  total: number | undefined;
}

function parseHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EdgetlError('download-url', `cannot download "${url}": not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new EdgetlError('download-url', `cannot download ${url}: only http:// and https:// URLs are supported`);
  }
  return parsed;
}

function transferOptions(options: TransferOptions): OpenOptions {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return { ...options, timeoutMs, connectTimeoutMs: options.connectTimeoutMs ?? Math.min(timeoutMs, 10_000) };
}

/**
 * Opens `url` (following redirects) and streams its body to `sink` under the idle timeout; resolves once the
 * whole body arrived. A sink's error stops the transfer and propagates.
 */
async function receive(
  url: URL,
  options: OpenOptions,
  progress: TransferProgress,
  sink: {
    onHeaders(announced: number | undefined): void | Promise<void>;
    onChunk(chunk: Buffer): void | Promise<void>;
  },
): Promise<{ finalUrl: URL }> {
  const { response, request, finalUrl } = await openFollowingRedirects(url, options);
  const announced = parseContentLength(response.headers['content-length']);
  try {
    await sink.onHeaders(announced);
  } catch (error) {
    request.destroy();
    throw error;
  }
  // The idle timer runs for the whole body: a server that stops sending mid-file is abandoned, not waited on.
  // The response stream reports a generic "aborted" when we destroy the request; remember the real reason.
  let stopReason: TransferFailure | undefined;
  request.setTimeout(options.timeoutMs, () => {
    stopReason = new TransferFailure(
      'interrupted',
      `no data for ${seconds(options.timeoutMs)} after ${progress.received} bytes`,
      finalUrl,
    );
    request.destroy(stopReason);
  });
  request.on('error', (error) => {
    if (error instanceof TransferFailure) stopReason ??= error;
  });
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      try {
        await sink.onChunk(chunk);
      } catch (error) {
        request.destroy();
        throw error;
      }
      progress.received += chunk.length;
    }
  } catch (error) {
    if (error instanceof EdgetlError) throw error;
    throw stopReason ?? bodyFailure(error, finalUrl, progress.received, progress.total);
  }
  if (stopReason) throw stopReason;
  if (!response.complete || (announced !== undefined && progress.received !== announced)) {
    throw new TransferFailure(
      'interrupted',
      `the connection closed after ${progress.received} of ${announced ?? 'an unknown number of'} bytes`,
      finalUrl,
    );
  }
  return { finalUrl };
}

interface OpenOptions extends TransferOptions {
  timeoutMs: number;
  connectTimeoutMs: number;
}

async function openFollowingRedirects(
  start: URL,
  options: OpenOptions,
): Promise<{ response: IncomingMessage; request: ClientRequest; finalUrl: URL }> {
  let current = start;
  const visited: string[] = [];
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    visited.push(current.href);
    const { response, request } = await openOnce(current, options);
    const status = response.statusCode ?? 0;
    if (REDIRECT_STATUSES.has(status)) {
      const location = response.headers.location;
      response.resume();
      request.destroy();
      if (!location) throw new TransferFailure('http', `HTTP ${status} redirect without a Location header`, current);
      const next = new URL(location, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new TransferFailure('http', `redirected to unsupported URL ${next.href}`, current);
      }
      current = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      response.resume();
      request.destroy();
      throw new TransferFailure('http', `HTTP ${status} ${response.statusMessage ?? ''}`.trim(), current);
    }
    return { response, request, finalUrl: current };
  }
  throw new TransferFailure(
    'http',
    `more than ${MAX_REDIRECTS} redirects (${visited.slice(0, 4).join(' -> ')} ...)`,
    current,
  );
}

/** One GET, resolved at the response headers. Rejects on network errors and after `connectTimeoutMs` of silence. */
function openOnce(url: URL, options: OpenOptions): Promise<{ response: IncomingMessage; request: ClientRequest }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    };
    const timer = setTimeout(() => {
      const failure = new TransferFailure('unreachable', `no answer within ${seconds(options.connectTimeoutMs)}`, url);
      request?.destroy(failure);
      fail(failure);
    }, options.connectTimeoutMs);
    const onAbort = () => {
      const failure = new TransferFailure('aborted', 'download cancelled', url);
      request?.destroy(failure);
      fail(failure);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });

    let request: ClientRequest | undefined;
    const headers = { 'user-agent': 'edgetl (model download)', accept: '*/*' };
    const onResponse = (response: IncomingMessage) => {
      if (settled) {
        response.resume();
        return;
      }
      settled = true;
      clearTimeout(timer);
      // Abort during the body destroys the request; the body loop sees the error.
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal) {
        const abortBody = () => request?.destroy(new TransferFailure('aborted', 'download cancelled', url));
        options.signal.addEventListener('abort', abortBody, { once: true });
        response.once('close', () => options.signal?.removeEventListener('abort', abortBody));
      }
      resolve({ response, request: request as ClientRequest });
    };

    const proxy = proxyFor(url);
    try {
      if (!proxy) {
        const client = url.protocol === 'https:' ? https : http;
        request = client.request(url, { method: 'GET', headers, agent: false, ca: caList(options) }, onResponse);
      } else if (url.protocol === 'http:') {
        // Plain HTTP through a proxy: absolute-form request line, sent to the proxy.
        request = http.request(
          {
            host: proxy.hostname,
            port: proxy.port || 80,
            method: 'GET',
            path: url.href,
            headers: { ...headers, host: url.host, ...proxyAuth(proxy) },
            agent: false,
          },
          onResponse,
        );
      } else {
        request = https.request(
          url,
          { method: 'GET', headers, ca: caList(options), createConnection: tunnelThrough(proxy, url, options, fail) },
          onResponse,
        );
      }
    } catch (error) {
      fail(error);
      return;
    }
    request.on('error', (error) => fail(error));
    request.end();
  });
}

/** createConnection for https.request that first opens a CONNECT tunnel through an http:// proxy. */
type CreateConnection = NonNullable<http.RequestOptions['createConnection']>;

function tunnelThrough(
  proxy: URL,
  target: URL,
  options: OpenOptions,
  fail: (error: unknown) => void,
): CreateConnection {
  return (_opts, onCreate) => {
    const refuse = (error: Error) => (onCreate as (error: Error) => void)(error);
    const authority = `${target.hostname}:${target.port || 443}`;
    const connect = http.request({
      host: proxy.hostname,
      port: proxy.port || 80,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...proxyAuth(proxy) },
      agent: false,
    });
    connect.on('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        const failure = new TransferFailure(
          'proxy',
          `proxy ${proxy.host} refused the tunnel: HTTP ${response.statusCode}`,
          target,
        );
        refuse(failure);
        fail(failure);
        return;
      }
      const secure = tls.connect({ socket, servername: target.hostname, ca: caList(options) });
      onCreate(null, secure);
    });
    connect.on('error', (error) => {
      refuse(error);
      fail(error);
    });
    connect.end();
    return undefined;
  };
}

function caList(options: TransferOptions): (string | Buffer)[] | undefined {
  if (options.extraCa === undefined) return undefined;
  return [...tls.rootCertificates, options.extraCa];
}

function proxyAuth(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** The proxy for `url` from the usual environment variables, or undefined for a direct connection. */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1' || /^127\./.test(host)) return undefined;
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? '';
  for (const rawEntry of noProxy.split(/[,\s]+/)) {
    const entry = rawEntry.trim().toLowerCase().replace(/:\d+$/, '');
    if (!entry) continue;
    if (entry === '*') return undefined;
    const suffix = entry.replace(/^\*?\./, '');
    if (host === suffix || host.endsWith('.' + suffix)) return undefined;
  }
  const raw =
    url.protocol === 'https:'
      ? (env.HTTPS_PROXY ?? env.https_proxy ?? env.ALL_PROXY ?? env.all_proxy)
      : (env.HTTP_PROXY ?? env.http_proxy ?? env.ALL_PROXY ?? env.all_proxy);
  if (!raw) return undefined;
  let proxy: URL;
  try {
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new EdgetlError('download-proxy', `the proxy setting "${raw}" is not a valid URL`);
  }
  if (proxy.protocol !== 'http:') {
    throw new EdgetlError(
      'download-proxy',
      `proxy ${proxy.href}: only http:// proxies are supported (${proxy.protocol} given)`,
    );
  }
  return proxy;
}

function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

function bodyFailure(error: unknown, url: URL, received: number, total: number | undefined): unknown {
  if (error instanceof TransferFailure || error instanceof EdgetlError) return error;
  return new TransferFailure(
    'interrupted',
    `the connection was cut after ${received} of ${total ?? 'an unknown number of'} bytes (${describeError(error)})`,
    url,
  );
}

function toUserError(
  error: unknown,
  url: string,
  dest: string | undefined,
  received: number,
  total: number | undefined,
  options: TransferOptions & { manualInstallHint?: string },
): EdgetlError {
  if (error instanceof EdgetlError) return error;
  // Files fetched into memory (head URLs) have no install-by-hand advice.
  const byHand =
    dest === undefined
      ? ''
      : `To install it by hand, fetch ${url} on a connected machine and copy it to ${dest}` +
        (options.manualInstallHint ? ` (${options.manualInstallHint})` : '') +
        '.';
  if (error instanceof TransferFailure) {
    const where = error.url.href === url ? url : `${url} (at ${error.url.href})`;
    switch (error.kind) {
      case 'aborted':
        return new EdgetlError(
          'download-aborted',
          `download of ${url} cancelled after ${received} bytes; nothing was kept`,
          { cause: error },
        );
      case 'interrupted':
        return new EdgetlError(
          'download-interrupted',
          `download of ${where} failed: ${error.message}. Nothing was kept; run again to retry. ${byHand}`,
          { cause: error },
        );
      case 'http':
        return new EdgetlError('download-http', `download of ${where} failed: ${error.message}. ${byHand}`, {
          cause: error,
        });
      case 'proxy':
        return new EdgetlError('download-proxy', `download of ${where} failed: ${error.message}. ${byHand}`, {
          cause: error,
        });
      case 'unreachable':
        return new EdgetlError(
          'download-unreachable',
          `cannot reach ${where}: ${error.message}; this machine may be offline or a firewall blocks it. ${byHand}`,
          { cause: error },
        );
    }
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code && UNREACHABLE_CODES.has(code)) {
    const host = safeHost(url);
    const reason =
      code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL'
        ? `cannot resolve the host name ${host} (${code})`
        : code === 'ECONNREFUSED'
          ? `connection refused by ${host} (${code})`
          : code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENETDOWN' || code === 'EHOSTDOWN'
            ? `no route to ${host} (${code})`
            : `${describeError(error)} (${code})`;
    return new EdgetlError(
      'download-unreachable',
      `cannot reach ${url}: ${reason}; this machine may be offline or a firewall blocks it. ${byHand}`,
      {
        cause: error,
      },
    );
  }
  if (code === 'EEXIST' || code === 'EACCES' || code === 'EROFS' || code === 'ENOSPC') {
    return new EdgetlError('download-write', `cannot write ${dest}: ${describeError(error)}`, {
      file: dest,
      cause: error,
    });
  }
  if (total !== undefined && received > 0) {
    return new EdgetlError(
      'download-interrupted',
      `download of ${url} failed after ${received} of ${total} bytes: ${describeError(error)}. Nothing was kept.`,
      {
        cause: error,
      },
    );
  }
  return new EdgetlError('download-failed', `download of ${url} failed: ${describeError(error)}. ${byHand}`, {
    cause: error,
  });
}

/** A Git LFS pointer instead of the file is the usual mistake with GitHub "raw" URLs: say so. */
function lfsAdvice(url: URL, head: Buffer): string {
  const text = head.subarray(0, 64).toString('latin1');
  if (text.startsWith('version https://git-lfs')) {
    return ` (${url.host} served a Git LFS pointer, not the file: use the repository's media URL, e.g. https://github.com/<owner>/<repo>/raw/<ref>/<path>)`;
  }
  return '';
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
