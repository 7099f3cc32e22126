/**
 * The preprocessing Web Worker: images in, model-input tensors out, off the page's main thread. It runs the same
 * imageToTensor as the page would (preprocess/canvas.ts: OffscreenCanvas decode, the WebAssembly Pillow resize with
 * the tensor write fused), so where preprocessing runs never changes a value. The page side is preprocess/in-worker.ts.
 */
import { pillowResampleBackend } from '../core/preprocess/pillow-resample-wasm.js';
import { EdgetlError, describeError } from '../core/util/errors.js';
import { imageToTensor } from './preprocess/canvas.js';
import type { PreprocessReply, PreprocessRequest } from './preprocess/in-worker.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent<PreprocessRequest>) => void) | null;
  postMessage(message: PreprocessReply, transfer?: Transferable[]): void;
}
const scope = globalThis as unknown as WorkerScope;

function hasOffscreen2d(): boolean {
  try {
    return typeof OffscreenCanvas !== 'undefined' && new OffscreenCanvas(1, 1).getContext('2d') !== null;
  } catch {
    return false;
  }
}

/** Bitmaps and frames that arrived here are this worker's copies: free them once drawn. */
function release(source: unknown): void {
  if (typeof ImageBitmap !== 'undefined' && source instanceof ImageBitmap) source.close();
  else if (typeof VideoFrame !== 'undefined' && source instanceof VideoFrame) source.close();
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.kind === 'hello') {
    scope.postMessage({
      kind: 'hello',
      id: message.id,
      offscreenCanvas: hasOffscreen2d(),
      resize: pillowResampleBackend(),
    });
    return;
  }
  if (message.kind !== 'tensor') return;
  const started = performance.now();
  // Several images may be decoding at once; everything after the decode (draw, resize, tensor) is synchronous, so
  // the shared scratch canvases are never used by two images at a time.
  imageToTensor(message.source, message.spec, { name: message.name, resizeQuality: message.resizeQuality })
    .then((tensor) => {
      scope.postMessage({ kind: 'tensor', id: message.id, tensor, workerMs: performance.now() - started }, [
        tensor.buffer,
      ]);
    })
    .catch((error: unknown) => {
      scope.postMessage({
        kind: 'error',
        id: message.id,
        message: describeError(error),
        code: error instanceof EdgetlError ? error.code : undefined,
        file: error instanceof EdgetlError ? error.file : undefined,
      });
    })
    .finally(() => release(message.source));
};
