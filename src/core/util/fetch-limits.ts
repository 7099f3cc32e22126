/**
 * fetch with the limits the Node downloader (src/node/models/download.ts, on undici) applies, for runtimes whose only
 * HTTP client is fetch (the browser): without them a server that accepts and never answers, or stops mid-body,
 * leaves `Head.load(url)` pending forever. Errors are EdgetlErrors with the Node downloader's codes, naming the URL.
 */
import { EdgetlError, describeError } from './errors.js';

/** No response headers within this long abandons a request (DNS, TCP, TLS, proxy, the server's answer). */
export const DEFAULT_ANSWER_TIMEOUT_MS = 10_000;
/** No body data for this long abandons a transfer. */
export const DEFAULT_IDLE_TIMEOUT_MS = 20_000;

export interface FetchLimits {
  /** Limit for getting the response headers; default min(timeoutMs, DEFAULT_ANSWER_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Longest silence mid-body; default DEFAULT_IDLE_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Largest body accepted: a larger announced length is refused before the body, a longer body when it passes. */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** GET `url` into memory within `limits`. */
export async function fetchWithLimits(url: string, limits: FetchLimits = {}): Promise<Uint8Array> {
  const timeoutMs = limits.timeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const connectTimeoutMs = limits.connectTimeoutMs ?? Math.min(timeoutMs, DEFAULT_ANSWER_TIMEOUT_MS);
  const fail = (code: string, message: string, cause?: unknown) =>
    new EdgetlError(code, message, { file: url, ...(cause === undefined ? {} : { cause }) });
  const tooLarge = (size: string) =>
    fail(
      'download-too-large',
      `${url} is ${size}, over the limit of ${limits.maxBytes} bytes; nothing was read further`,
    );
  // The first reason to stop wins; fetch and the body reader then reject with it (or with a generic AbortError).
  const controller = new AbortController();
  let stopped: EdgetlError | undefined;
  const stop = (reason: EdgetlError) => {
    stopped ??= reason;
    controller.abort(reason);
  };
  const onAbort = () => stop(fail('download-aborted', `fetching ${url} was cancelled`));
  if (limits.signal?.aborted) onAbort();
  limits.signal?.addEventListener('abort', onAbort, { once: true });
  let received = 0;
  let timer = setTimeout(
    () => stop(fail('download-unreachable', `cannot reach ${url}: no answer within ${seconds(connectTimeoutMs)}`)),
    connectTimeoutMs,
  );
  const idle = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () => stop(fail('download-interrupted', `${url}: no data for ${seconds(timeoutMs)} after ${received} bytes`)),
      timeoutMs,
    );
  };
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal });
    } catch (error) {
      // Browsers say only "Failed to fetch": offline, refused, DNS, TLS and CORS all look alike to the page.
      throw (
        stopped ??
        fail(
          'download-unreachable',
          `cannot reach ${url}: ${describeError(error)} (offline, the server is down, or it does not allow this ` +
            `page's origin)`,
          error,
        )
      );
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw fail('download-http', `${url}: HTTP ${response.status} ${response.statusText}`.trim());
    }
    const announced = Number(response.headers.get('content-length') ?? Number.NaN);
    if (limits.maxBytes !== undefined && announced > limits.maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw tooLarge(`${announced} bytes`);
    }
    const chunks: Uint8Array[] = [];
    const reader = response.body?.getReader();
    idle();
    try {
      for (;;) {
        const next = await reader?.read();
        if (!next || next.done) break;
        received += next.value.length;
        if (limits.maxBytes !== undefined && received > limits.maxBytes) {
          await reader?.cancel().catch(() => undefined);
          throw tooLarge(`more than ${limits.maxBytes} bytes`);
        }
        chunks.push(next.value);
        idle();
      }
    } catch (error) {
      if (error instanceof EdgetlError) throw error;
      throw (
        stopped ??
        fail('download-interrupted', `${url}: the connection was cut after ${received} bytes (${describeError(error)})`)
      );
    }
    const bytes = new Uint8Array(received);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return bytes;
  } finally {
    clearTimeout(timer);
    limits.signal?.removeEventListener('abort', onAbort);
  }
}

/** "10 s", "0.3 s". */
export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
