/**
 * Image decoding on worker threads, so the main thread stays free for bookkeeping and the JS parts of decoding
 * (the Pillow-exact resize) use every core. Falls back to decoding on the main thread when workers can't start
 * (e.g. a bundle built without dist/decode-worker.js), and says so.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  decodeToRgb,
  decodeToTensor,
  BadImageError,
  type RawImage,
  type DecodedImage,
  type DecodeOptions,
} from '../preprocess/node-image.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { EdgetlError } from '../../core/util/errors.js';

export interface DecodeRequest {
  id: number;
  input: Uint8Array | RawImage;
  spec: PreprocessSpec;
  options: DecodeOptions;
  /** Answer with the one-image model tensor (decodeToTensor) instead of the pixels. */
  tensor?: boolean;
}

export type DecodeResponse =
  | { id: number; ok: true; pixels: Uint8Array; width: number; height: number }
  | { id: number; ok: true; tensor: Float32Array }
  | { id: number; ok: false; badImage: boolean; reason: string; code?: string; message: string };

/** Something that turns encoded bytes or raw pixels into spec-sized RGB. */
export interface ImageDecoder {
  /** `transfer`: the caller gives up `input`'s buffer (it may be moved to a worker without a copy). */
  decode(input: Uint8Array | RawImage, spec: PreprocessSpec, transfer?: boolean): Promise<DecodedImage>;
  /** The same image as a one-image model tensor (decodeToTensor): the tensor write done where the decoding is. */
  decodeTensor(input: Uint8Array | RawImage, spec: PreprocessSpec, transfer?: boolean): Promise<Float32Array>;
  /** Where decoding runs, for reports: e.g. "2 worker threads" or "main thread (reason)". */
  readonly description: string;
  /** Images that can usefully be in flight at once. */
  readonly parallelism: number;
  close(): Promise<void>;
}

/** Decoding on the calling thread (sharp still runs on libuv threads; the JS resize does not). */
export class MainThreadDecoder implements ImageDecoder {
  readonly description: string;
  constructor(
    private readonly options: DecodeOptions = {},
    readonly parallelism = 2,
    why?: string,
  ) {
    this.description = why ? `main thread (${why})` : 'main thread';
  }
  decode(input: Uint8Array | RawImage, spec: PreprocessSpec): Promise<DecodedImage> {
    return decodeToRgb(input, spec, this.options);
  }
  decodeTensor(input: Uint8Array | RawImage, spec: PreprocessSpec): Promise<Float32Array> {
    return decodeToTensor(input, spec, this.options);
  }
  async close(): Promise<void> {}
}

/** The worker script beside this module: decode-worker.js in a build, decode-worker.ts when run from source. */
export function decodeWorkerUrl(): URL | undefined {
  for (const name of ['./decode-worker.js', './decode-worker.ts']) {
    const url = new URL(name, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

interface Pending {
  resolve(image: DecodedImage | Float32Array): void;
  reject(error: unknown): void;
  where: string;
}

interface PoolWorker {
  worker: Worker;
  inFlight: number;
}

/**
 * A fixed set of decode workers, started on first use, each taking several images at once (sharp is async inside).
 * Images are sent only after every worker has said it is ready; if one fails to start (no TypeScript loader, a
 * broken build), the pool decodes on the main thread instead, and `description` says why. A worker that dies
 * after starting fails the images it held, with the reason.
 */
export class WorkerDecodePool implements ImageDecoder {
  description: string;
  readonly parallelism: number;
  private readonly workers: PoolWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private ready: Promise<boolean> | undefined;
  private fallback: MainThreadDecoder | undefined;
  private startError: string | undefined;
  private failure: Error | undefined;
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly url: URL,
    private readonly size: number,
    private readonly options: DecodeOptions,
    perWorker: number,
  ) {
    this.description = `${size} worker thread${size === 1 ? '' : 's'}`;
    this.parallelism = size * perWorker;
  }

  /** A pool, or the reason there can't be one (no worker script beside this module). */
  static create(
    size: number,
    options: DecodeOptions = {},
    perWorker = 2,
    script: URL | null = decodeWorkerUrl() ?? null,
  ): { pool?: WorkerDecodePool; reason?: string } {
    const url = script;
    if (!url) return { reason: `decode-worker script not found beside ${fileURLToPath(import.meta.url)}` };
    return {
      pool: new WorkerDecodePool(url, Math.max(1, Math.floor(size)), options, Math.max(1, Math.floor(perWorker))),
    };
  }

  private start(): Promise<boolean> {
    if (this.ready) return this.ready;
    const readiness: Promise<boolean>[] = [];
    while (this.workers.length < this.size) {
      const worker = new Worker(this.url);
      // Never keep a process alive for idle decoders (close() is still the tidy way out).
      worker.unref();
      const entry: PoolWorker = { worker, inFlight: 0 };
      let isReady = false;
      readiness.push(
        new Promise<boolean>((resolve) => {
          worker.once('message', (message: { ready?: boolean }) => {
            isReady = message.ready === true;
            resolve(isReady);
          });
          worker.once('error', () => resolve(false));
          worker.once('exit', () => resolve(false));
        }),
      );
      worker.on('message', (response: DecodeResponse | { ready: true }) => {
        if (!('id' in response)) return;
        entry.inFlight--;
        const request = this.pending.get(response.id);
        if (!request) return;
        this.pending.delete(response.id);
        if (response.ok) {
          request.resolve(
            'tensor' in response
              ? response.tensor
              : { pixels: response.pixels, width: response.width, height: response.height, channels: 3 },
          );
        } else if (response.badImage) {
          request.reject(new BadImageError(request.where, response.reason));
        } else {
          request.reject(new EdgetlError(response.code ?? 'decode-failed', `${request.where}: ${response.message}`));
        }
      });
      worker.on('error', (error) => {
        this.startError ??= error.message;
        if (isReady) this.fail(error);
      });
      worker.on('exit', (code) => {
        if (isReady && !this.closed) this.fail(new Error(`a decode worker exited unexpectedly (code ${code})`));
      });
      this.workers.push(entry);
    }
    this.ready = Promise.all(readiness).then(async (states) => {
      if (states.every(Boolean)) return true;
      const why = `decode workers did not start: ${this.startError ?? 'no reason given'}`;
      this.fallback = new MainThreadDecoder(this.options, this.parallelism, why);
      this.description = this.fallback.description;
      await Promise.all(this.workers.map((w) => w.worker.terminate()));
      this.workers.length = 0;
      return false;
    });
    return this.ready;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const [id, request] of this.pending) {
      this.pending.delete(id);
      request.reject(
        new EdgetlError('decode-worker', `${request.where}: image decoding failed: ${error.message}`, { cause: error }),
      );
    }
  }

  async decode(input: Uint8Array | RawImage, spec: PreprocessSpec, transfer = false): Promise<DecodedImage> {
    return (await this.request(input, spec, transfer, false)) as DecodedImage;
  }

  async decodeTensor(input: Uint8Array | RawImage, spec: PreprocessSpec, transfer = false): Promise<Float32Array> {
    return (await this.request(input, spec, transfer, true)) as Float32Array;
  }

  private async request(
    input: Uint8Array | RawImage,
    spec: PreprocessSpec,
    transfer: boolean,
    tensor: boolean,
  ): Promise<DecodedImage | Float32Array> {
    if (this.closed) throw new EdgetlError('closed', 'the decode pool is closed');
    if (!(await this.start()))
      return tensor ? this.fallback!.decodeTensor(input, spec) : this.fallback!.decode(input, spec);
    if (this.failure) throw new EdgetlError('decode-worker', `image decoding is unavailable: ${this.failure.message}`);
    const id = this.nextId++;
    const where =
      input instanceof Uint8Array
        ? `image buffer (${input.byteLength} bytes)`
        : `raw ${input.width}x${input.height} image`;
    const target = this.workers.reduce((best, w) => (w.inFlight < best.inFlight ? w : best));
    target.inFlight++;
    return new Promise<DecodedImage | Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, where });
      const request: DecodeRequest = { id, input, spec, options: this.options, tensor };
      const view = input instanceof Uint8Array ? input : input.rgb;
      const movable =
        transfer &&
        view.buffer instanceof ArrayBuffer &&
        view.byteOffset === 0 &&
        view.byteLength === view.buffer.byteLength;
      target.worker.postMessage(request, movable ? [view.buffer as ArrayBuffer] : []);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('the decode pool was closed'));
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.workers.length = 0;
  }
}
