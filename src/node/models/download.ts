import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { createHash } from 'node:crypto';
import { open, rename, unlink, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { DEFAULT_ANSWER_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, seconds } from '../../core/util/fetch-limits.js';
import { removeAbandonedTemporaries, temporarySibling, writeFully } from '../util/atomic-write.js';

export interface DownloadOptions extends TransferOptions {
  /** Expected sha256 (hex). The file is kept only when the received bytes hash to it. */
  sha256: string;
  /** Expected size in bytes, when known: a server announcing another size is refused before the body is read. */
  bytes?: number;
  /** Called as bytes arrive; `total` is the announced length (or `bytes`), undefined when neither is known. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Extra sentence appended to "cannot reach" errors, e.g. where else a hand-placed file would be found. */
  manualInstallHint?: string;
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
/** Socket errors before the answer that mean "cannot reach" (the common ones get their own wording). */
const UNREACHABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EPROTO', 'EADDRNOTAVAIL']);

/**
 * undici is loaded at the first transfer: importing it takes 100-450 ms on the 2-core machine under load (a few
 * tens quiet), which every CLI start (`edgetl --version`, `predict`) would pay otherwise.
 */
let undici: Promise<typeof import('undici')> | undefined;
const loadUndici = () => {
  undici ??= import('undici');
  return undici;
};

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
    throw toUserError(error, url, dest, progress.received, options.manualInstallHint);
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
    throw toUserError(error, url, undefined, progress.received);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** Shared by every transfer (model downloads and head URLs): timeouts, cancellation, extra trusted certificates. */
export interface TransferOptions {
  /**
   * Idle timeout in milliseconds: no body data for this long abandons the transfer (undici's bodyTimeout, checked
   * about once a second, so it fires up to ~1 s late). Default 20000.
   */
  timeoutMs?: number;
  /** Limit for reaching the server and getting response headers (DNS, TCP, TLS, proxy). Default min(timeoutMs, 10000). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  /** Extra trusted certificates (PEM), e.g. a company proxy's or a test server's; system roots stay trusted. */
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
  const timeoutMs = options.timeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const connectTimeoutMs = options.connectTimeoutMs ?? Math.min(timeoutMs, DEFAULT_ANSWER_TIMEOUT_MS);
  return { ...options, timeoutMs, connectTimeoutMs };
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
  const { response, dispatcher, finalUrl } = await openFollowingRedirects(url, options);
  try {
    const announced = parseContentLength(response.headers['content-length']);
    await sink.onHeaders(announced);
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        await sink.onChunk(chunk);
        progress.received += chunk.length;
      }
    } catch (error) {
      if (error instanceof EdgetlError) throw error;
      throw bodyFailure(error, finalUrl, progress, options);
    }
    if (announced !== undefined && progress.received !== announced) {
      throw new TransferFailure(
        'interrupted',
        `the connection closed after ${progress.received} of ${announced} bytes`,
        finalUrl,
      );
    }
    return { finalUrl };
  } finally {
    // Also ends a body the sink refused (too large, wrong size): the socket goes, nothing more is read.
    await dispatcher.destroy().catch(() => undefined);
  }
}

interface OpenOptions extends TransferOptions {
  timeoutMs: number;
  connectTimeoutMs: number;
}

interface Opened {
  response: Dispatcher.ResponseData;
  dispatcher: Dispatcher;
}

async function openFollowingRedirects(start: URL, options: OpenOptions): Promise<Opened & { finalUrl: URL }> {
  let current = start;
  const visited: string[] = [];
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    visited.push(current.href);
    const { response, dispatcher } = await openOnce(current, options);
    const status = response.statusCode;
    if (status >= 200 && status < 300) return { response, dispatcher, finalUrl: current };
    await dispatcher.destroy().catch(() => undefined);
    const location = response.headers.location;
    if (!REDIRECT_STATUSES.has(status)) {
      throw new TransferFailure('http', `HTTP ${status} ${response.statusText ?? ''}`.trim(), current);
    }
    if (typeof location !== 'string')
      throw new TransferFailure('http', `HTTP ${status} redirect without a Location header`, current);
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new TransferFailure('http', `redirected to unsupported URL ${next.href}`, current);
    }
    current = next;
  }
  throw new TransferFailure(
    'http',
    `more than ${MAX_REDIRECTS} redirects (${visited.slice(0, 4).join(' -> ')} ...)`,
    current,
  );
}

/**
 * One GET through undici, resolved at the response headers. One timer covers everything before them (DNS, TCP,
 * TLS, the proxy's CONNECT, the server's answer): connectTimeoutMs. After them undici's bodyTimeout is the idle
 * timeout. Each hop gets its own dispatcher (a redirect may lead to a host with another proxy rule); the caller
 * destroys it.
 */
async function openOnce(url: URL, options: OpenOptions): Promise<Opened> {
  const lib = await loadUndici();
  const dispatcher = dispatcherFor(url, options, lib);
  const answered = new AbortController();
  const timer = setTimeout(
    () =>
      answered.abort(new TransferFailure('unreachable', `no answer within ${seconds(options.connectTimeoutMs)}`, url)),
    options.connectTimeoutMs,
  );
  const signal = options.signal ? AbortSignal.any([options.signal, answered.signal]) : answered.signal;
  // undici honours the signal only once the request is on a socket: a connection still being opened (a silent
  // proxy's CONNECT waits 300 s) is ended by destroying the dispatcher, which fails the request at once.
  signal.addEventListener('abort', () => dispatcher.destroy().catch(() => undefined), { once: true });
  try {
    const response = await lib.request(url, {
      method: 'GET',
      headers: { 'user-agent': 'edgetl (model download)', accept: '*/*' },
      dispatcher,
      signal,
      // undici's own wait for the headers (300 s) off: the timer above is the one limit before the answer.
      headersTimeout: 0,
      bodyTimeout: options.timeoutMs,
    });
    return { response, dispatcher };
  } catch (error) {
    await dispatcher.destroy().catch(() => undefined);
    if (options.signal?.aborted) throw new TransferFailure('aborted', 'download cancelled', url);
    if (answered.signal.aborted) throw answered.signal.reason;
    throw connectFailure(error, url);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A direct connection, or undici's ProxyAgent for the proxy proxyFor picks: plain http goes to the proxy as an
 * absolute-form request (proxies often allow CONNECT only to port 443), https through a CONNECT tunnel.
 */
function dispatcherFor(url: URL, options: TransferOptions, lib: typeof import('undici')): Dispatcher {
  // timeout 0: undici's own connect timers (10 s) off, openOnce's timer is the one limit before the answer.
  const tls = { timeout: 0, ...(options.extraCa === undefined ? {} : { ca: [...rootCertificates, options.extraCa] }) };
  const proxy = proxyFor(url);
  if (!proxy) return new lib.Agent({ connect: tls });
  // Credentials from the proxy URL sent as given, a user name without a password too (undici needs both).
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return new lib.ProxyAgent({
    uri: proxy.href,
    ...(proxy.username ? { token: `Basic ${Buffer.from(credentials).toString('base64')}` } : {}),
    proxyTunnel: url.protocol === 'https:',
    proxyTls: { timeout: 0 },
    requestTls: tls,
  });
}

/** Errors before the response headers (undici's and the socket's), in our terms. */
function connectFailure(error: unknown, url: URL): unknown {
  const message = describeError(error);
  const proxy = proxyFor(url)?.host;
  const tunnel = /^Proxy response \((\d+)\)/.exec(message);
  if (tunnel) return new TransferFailure('proxy', `proxy ${proxy} refused the tunnel: HTTP ${tunnel[1]}`, url);
  if (/\(407\)/.test(message))
    return new TransferFailure('proxy', `proxy ${proxy} asks for credentials (HTTP 407)`, url);
  const code = (error as { code?: string } | undefined)?.code ?? '';
  const host = proxy ? `the proxy ${proxy}` : url.host;
  const reason = /^(ENOTFOUND|EAI_AGAIN|EAI_FAIL)$/.test(code)
    ? `cannot resolve the host name ${proxy ?? url.hostname} (${code})`
    : code === 'ECONNREFUSED'
      ? `connection refused by ${host} (${code})`
      : /^(EHOSTUNREACH|ENETUNREACH|ENETDOWN|EHOSTDOWN)$/.test(code)
        ? `no route to ${host} (${code})`
        : code === 'UND_ERR_SOCKET'
          ? `${host} closed the connection without answering (${message})`
          : UNREACHABLE_CODES.has(code)
            ? `${message} (${code})`
            : undefined;
  return reason === undefined ? error : new TransferFailure('unreachable', reason, url);
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

function parseContentLength(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

function bodyFailure(error: unknown, url: URL, progress: TransferProgress, options: OpenOptions): TransferFailure {
  if (error instanceof TransferFailure) return error;
  if (options.signal?.aborted) return new TransferFailure('aborted', 'download cancelled', url);
  if ((error as { code?: string } | undefined)?.code === 'UND_ERR_BODY_TIMEOUT')
    return new TransferFailure(
      'interrupted',
      `no data for ${seconds(options.timeoutMs)} after ${progress.received} bytes`,
      url,
    );
  return new TransferFailure(
    'interrupted',
    `the connection was cut after ${progress.received} of ${progress.total ?? 'an unknown number of'} bytes ` +
      `(${describeError(error)})`,
    url,
  );
}

function toUserError(
  error: unknown,
  url: string,
  dest: string | undefined,
  received: number,
  manualInstallHint?: string,
): EdgetlError {
  if (error instanceof EdgetlError) return error;
  // Files fetched into memory (head URLs) have no install-by-hand advice.
  const byHand =
    dest === undefined
      ? ''
      : `To install it by hand, fetch ${url} on a connected machine and copy it to ${dest}` +
        (manualInstallHint ? ` (${manualInstallHint})` : '') +
        '.';
  const cause = { cause: error };
  if (error instanceof TransferFailure) {
    const where = error.url.href === url ? url : `${url} (at ${error.url.href})`;
    if (error.kind === 'aborted')
      return new EdgetlError(
        'download-aborted',
        `download of ${url} cancelled after ${received} bytes; nothing was kept`,
        cause,
      );
    if (error.kind === 'unreachable') {
      const offline = 'this machine may be offline or a firewall blocks it';
      return new EdgetlError(
        'download-unreachable',
        `cannot reach ${where}: ${error.message}; ${offline}. ${byHand}`,
        cause,
      );
    }
    const retry = error.kind === 'interrupted' ? ' Nothing was kept; run again to retry.' : '';
    return new EdgetlError(
      `download-${error.kind}`,
      `download of ${where} failed: ${error.message}.${retry} ${byHand}`,
      cause,
    );
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (/^(EEXIST|EACCES|EROFS|ENOSPC|EDQUOT|EIO)$/.test(code))
    return new EdgetlError('download-write', `cannot write ${dest}: ${describeError(error)}`, { file: dest, ...cause });
  return new EdgetlError('download-failed', `download of ${url} failed: ${describeError(error)}. ${byHand}`, cause);
}

/** A Git LFS pointer instead of the file is the usual mistake with GitHub "raw" URLs: say so. */
function lfsAdvice(url: URL, head: Buffer): string {
  const text = head.subarray(0, 64).toString('latin1');
  if (text.startsWith('version https://git-lfs')) {
    return ` (${url.host} served a Git LFS pointer, not the file: use the repository's media URL, e.g. https://github.com/<owner>/<repo>/raw/<ref>/<path>)`;
  }
  return '';
}
