/**
 * Worker-thread entry for DecodePool (decode-pool.ts): decodes images with decodeToRgb off the main thread.
 * Built by esbuild as dist/decode-worker.js; in source runs it is loaded as this .ts file.
 *
 * Why a worker: small and medium images are resized by the bit-exact Pillow resampler (WebAssembly, on the calling
 * thread) with the tensor write fused in (decodeToTensor), which would otherwise run on the one main thread for
 * every image while onnxruntime and libvips use the other cores. In workers that work spreads over all cores too.
 */
import { parentPort } from 'node:worker_threads';
import { decodeToRgb, decodeToTensor, BadImageError } from '../preprocess/node-image.js';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import type { DecodeRequest, DecodeResponse } from './decode-pool.js';

if (parentPort) {
  const port = parentPort;
  // Imports are loaded by now: tell the pool this worker can take images.
  port.postMessage({ ready: true });
  port.on('message', (request: DecodeRequest) => {
    const failed = (error: unknown) => {
      const response: DecodeResponse = {
        id: request.id,
        ok: false,
        badImage: error instanceof BadImageError,
        reason: error instanceof BadImageError ? error.reason : describeError(error),
        code: error instanceof EdgetlError ? error.code : undefined,
        message: describeError(error),
      };
      port.postMessage(response);
    };
    if (request.tensor) {
      decodeToTensor(request.input, request.spec, request.options).then((tensor) => {
        const response: DecodeResponse = { id: request.id, ok: true, tensor };
        port.postMessage(response, [tensor.buffer as ArrayBuffer]);
      }, failed);
      return;
    }
    decodeToRgb(request.input, request.spec, request.options).then((image) => {
      const pixels = image.pixels;
      // Transfer when the pixels own their buffer; otherwise copy once into one that does.
      const owned = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength ? pixels : pixels.slice();
      const response: DecodeResponse = {
        id: request.id,
        ok: true,
        pixels: owned,
        width: image.width,
        height: image.height,
      };
      port.postMessage(response, [owned.buffer as ArrayBuffer]);
    }, failed);
  });
}
