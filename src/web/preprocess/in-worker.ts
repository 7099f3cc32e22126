/**
 * Preprocessing off the page's main thread: the page hands an image to a dedicated Web Worker
 * (src/web/preprocess-worker.ts, served as /preprocess-worker.js by the kiosk server) and gets the tensor back.
 * The worker runs canvas.ts's own imageToTensor (decode on an OffscreenCanvas, the WebAssembly Pillow resize with the
 * tensor write fused), so its tensors are bit-identical to the main thread's and, where decoders agree, to Node's.
 *
 * What crosses the thread boundary: Blobs and Files as they are (the worker decodes them), ImageBitmaps, ImageData
 * and VideoFrames by structured clone (the caller keeps its own), a <video>'s current frame as a VideoFrame (no pixel
 * copy on this thread) where the browser has them, other elements and canvases as an ImageBitmap of their current
 * pixels (created here); what is created here is transferred, and the Float32Array comes back transferred too.
 */
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { EdgetlError } from '../../core/util/errors.js';
import type { BrowserImageSource, CanvasPreprocessOptions, CanvasResizeQuality } from './canvas.js';

/** What the worker receives: sources a worker can draw. */
export type WorkerImageSource = Blob | ImageBitmap | ImageData | VideoFrame;

/** Messages between the page and src/web/preprocess-worker.ts. */
export type PreprocessRequest =
  | { kind: 'hello'; id: number }
  | {
      kind: 'tensor';
      id: number;
      source: WorkerImageSource;
      spec: PreprocessSpec;
      name?: string;
      resizeQuality?: CanvasResizeQuality;
    };
export type PreprocessReply =
  | { kind: 'hello'; id: number; offscreenCanvas: boolean; resize: 'wasm-simd' | 'js' }
  | { kind: 'tensor'; id: number; tensor: Float32Array; workerMs: number }
  | { kind: 'error'; id: number; message: string; code?: string; file?: string };

/** Where preprocessing runs, with which resize kernel, and why not in a worker when it is not. */
export interface PreprocessingReport {
  where: 'worker' | 'main-thread';
  /** The Pillow resize's kernel where it runs: WebAssembly SIMD, or the JS port where SIMD is missing. */
  resize: 'wasm-simd' | 'js';
  /** Why preprocessing is on the main thread (absent in a worker). */
  reason?: string;
}

export interface WorkerTensor {
  tensor: Float32Array;
  /** Main-thread time this image cost: turning an element into a bitmap, posting it, taking the reply. */
  mainThreadMs: number;
  /** Preprocessing time inside the worker. */
  workerMs: number;
}

interface Pending {
  resolve: (reply: PreprocessReply) => void;
  reject: (error: Error) => void;
}

/** Sources that need an ImageBitmap of their current pixels before they can cross to a worker. */
function needsBitmap(source: BrowserImageSource): boolean {
  return (
    (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) ||
    (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) ||
    (typeof HTMLCanvasElement !== 'undefined' && source instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== 'undefined' && source instanceof OffscreenCanvas)
  );
}

/**
 * A <video>'s current frame as a VideoFrame: a reference to the decoded frame, not a copy of its pixels (which
 * createImageBitmap makes on this thread). Undefined where VideoFrame is missing or the video has no frame yet.
 */
function currentVideoFrame(source: BrowserImageSource): VideoFrame | undefined {
  if (typeof VideoFrame === 'undefined' || typeof HTMLVideoElement === 'undefined') return undefined;
  if (!(source instanceof HTMLVideoElement)) return undefined;
  try {
    return new VideoFrame(source);
  } catch {
    return undefined;
  }
}

/** Why this page cannot preprocess in a worker, or undefined where it can try. */
export function workerPreprocessingUnavailable(): string | undefined {
  if (typeof Worker === 'undefined') return 'this browser has no Web Workers';
  if (typeof OffscreenCanvas === 'undefined') return 'this browser has no OffscreenCanvas';
  if (typeof createImageBitmap === 'undefined') return 'this browser has no createImageBitmap';
  return undefined;
}

export class PreprocessWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Set once the worker itself failed (not one image): every later call is refused with it. */
  private failure: string | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly resize: 'wasm-simd' | 'js',
  ) {}

  /**
   * Starts the worker and waits for it to say what it can do. Fails (EdgetlError 'worker') where the script does
   * not load, the worker has no 2D OffscreenCanvas, or it does not answer within `timeoutMs`.
   */
  static async start(url: string | URL, options: { timeoutMs?: number } = {}): Promise<PreprocessWorker> {
    const unavailable = workerPreprocessingUnavailable();
    if (unavailable) throw new EdgetlError('worker', unavailable);
    let worker: Worker;
    try {
      worker = new Worker(url, { type: 'module', name: 'edgetl-preprocess' });
    } catch (error) {
      throw new EdgetlError('worker', `could not start the preprocessing worker (${String(url)}): ${String(error)}`);
    }
    const hello = await new Promise<PreprocessReply>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new EdgetlError('worker', `the preprocessing worker (${String(url)}) did not answer`)),
        options.timeoutMs ?? 10_000,
      );
      worker.onmessage = (event: MessageEvent<PreprocessReply>) => {
        clearTimeout(timer);
        resolve(event.data);
      };
      worker.onerror = (event) => {
        clearTimeout(timer);
        event.preventDefault();
        reject(
          new EdgetlError(
            'worker',
            `the preprocessing worker did not start: ${event.message || `could not load ${String(url)}`}`,
          ),
        );
      };
      const message: PreprocessRequest = { kind: 'hello', id: 0 };
      worker.postMessage(message);
    }).catch((error: unknown) => {
      worker.terminate();
      throw error;
    });
    if (hello.kind !== 'hello') {
      worker.terminate();
      throw new EdgetlError('worker', 'the preprocessing worker answered something else than its greeting');
    }
    if (!hello.offscreenCanvas) {
      worker.terminate();
      throw new EdgetlError('worker', 'workers in this browser have no 2D OffscreenCanvas');
    }
    const started = new PreprocessWorker(worker, hello.resize);
    worker.onmessage = (event: MessageEvent<PreprocessReply>) => started.receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      started.fail(`the preprocessing worker stopped: ${event.message || 'unknown error'}`);
    };
    return started;
  }

  /** Why the worker stopped, once it has (undefined while it works). */
  get failed(): string | undefined {
    return this.failure;
  }

  /** One image's tensor (one image's worth of values), preprocessed in the worker. */
  async imageToTensor(
    source: BrowserImageSource,
    spec: PreprocessSpec,
    options: CanvasPreprocessOptions = {},
  ): Promise<WorkerTensor> {
    if (this.failure) throw new EdgetlError('worker', this.failure);
    const t0 = performance.now();
    let mainThreadMs = 0;
    let payload: WorkerImageSource;
    const transfer: Transferable[] = [];
    const frame = currentVideoFrame(source);
    if (frame) {
      payload = frame;
      transfer.push(frame);
      mainThreadMs += performance.now() - t0;
    } else if (needsBitmap(source)) {
      // Only the bitmap's creation is the page's: the copy itself completes off this thread.
      const pending = createImageBitmap(source as ImageBitmapSource);
      mainThreadMs += performance.now() - t0;
      const bitmap = await pending;
      payload = bitmap;
      transfer.push(bitmap);
    } else {
      payload = source as WorkerImageSource;
    }
    const t1 = performance.now();
    const id = this.nextId++;
    const reply = new Promise<PreprocessReply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const message: PreprocessRequest = {
      kind: 'tensor',
      id,
      source: payload,
      spec,
      name: options.name,
      resizeQuality: options.resizeQuality,
    };
    try {
      this.worker.postMessage(message, transfer);
    } catch (error) {
      this.pending.delete(id);
      if (transfer.length) (payload as ImageBitmap | VideoFrame).close();
      throw new EdgetlError('worker', `could not hand the image to the preprocessing worker: ${String(error)}`);
    }
    mainThreadMs += performance.now() - t1;
    const answer = await reply;
    const t2 = performance.now();
    if (answer.kind === 'error')
      throw new EdgetlError(answer.code ?? 'preprocess-failed', answer.message, { file: answer.file });
    if (answer.kind !== 'tensor') throw new EdgetlError('worker', 'the preprocessing worker answered out of turn');
    mainThreadMs += performance.now() - t2;
    return { tensor: answer.tensor, mainThreadMs, workerMs: answer.workerMs };
  }

  /** Ends the worker; images still in flight fail. Safe to call twice. */
  close(): void {
    this.fail('the preprocessing worker was closed');
    this.worker.terminate();
  }

  private receive(reply: PreprocessReply): void {
    const waiting = this.pending.get(reply.id);
    if (!waiting) return;
    this.pending.delete(reply.id);
    waiting.resolve(reply);
  }

  private fail(reason: string): void {
    this.failure ??= reason;
    for (const waiting of this.pending.values()) waiting.reject(new EdgetlError('worker', this.failure));
    this.pending.clear();
  }
}
