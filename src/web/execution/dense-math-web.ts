/**
 * DenseMath on onnxruntime-web (WASM), for the training worker: the same one-node Gemm graphs as Node's
 * (core/heads/dense-math-graph.ts, built on the page, which carries the ONNX protobuf code anyway, and handed over
 * as bytes). The worker is a module worker, which import maps do not reach, so it is handed the onnxruntime-web
 * module the page itself uses (its URL) instead of importing the bare name; only the type is imported here, so the
 * worker bundle carries no onnxruntime or protobuf code of its own.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { type DenseMath, gemmSync, jsDenseMath } from '../../core/heads/dense-math.js';
import { describeError } from '../../core/util/errors.js';

/** Where the worker finds onnxruntime-web, and how it runs it. */
export interface WebDenseMathSpec {
  /** URL of the onnxruntime-web ES module (the page's: `import.meta.resolve('onnxruntime-web')`). */
  moduleUrl: string;
  /** URL prefix of its .wasm files. */
  wasmPaths?: string;
  numThreads?: number;
  /** The Gemm graphs by transposition (`gemmModels()`): key `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`. */
  models: Record<string, Uint8Array>;
}

/** Products smaller than this many multiply-adds stay in JS: a session call costs more than they do. */
const SMALL_PRODUCT = 100_000;

/** Gemm sessions on `ort` (WASM), one per transposition variant, built on first use. */
export function ortWebDenseMath(ort: typeof OrtWeb, models: Record<string, Uint8Array>): DenseMath {
  const sessions = new Map<string, Promise<OrtWeb.InferenceSession>>();
  const session = (transA: boolean, transB: boolean) => {
    const key = `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
    let existing = sessions.get(key);
    if (!existing) {
      const model = models[key];
      if (!model) throw new Error(`no Gemm graph for ${key}`);
      existing = ort.InferenceSession.create(model, {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
      sessions.set(key, existing);
    }
    return existing;
  };
  // onnxruntime-web runs one call at a time ("Session already started" otherwise), and the folds' products come
  // concurrently: they queue here
  let queue: Promise<unknown> = Promise.resolve();
  const product: DenseMath['gemm'] = async (a, b, m, k, n, transA, transB) => {
    const s = await session(transA, transB);
    const result = await s.run({
      A: new ort.Tensor('float32', a.length === m * k ? a : a.subarray(0, m * k), transA ? [k, m] : [m, k]),
      B: new ort.Tensor('float32', b.length === k * n ? b : b.subarray(0, k * n), transB ? [n, k] : [k, n]),
    });
    const y = result.Y;
    // copied out: the caller owns a plain array independent of the WASM heap
    const out = Float32Array.from(y.data as Float32Array);
    y.dispose();
    return out;
  };
  return {
    name: 'onnxruntime-web-wasm',
    gemm(a, b, m, k, n, transA, transB) {
      if (m * k * n < SMALL_PRODUCT) return Promise.resolve(gemmSync(a, b, m, k, n, transA, transB));
      const next = queue.then(() => product(a, b, m, k, n, transA, transB));
      queue = next.catch(() => undefined);
      return next;
    },
    async dispose() {
      for (const pending of sessions.values()) await (await pending).release();
      sessions.clear();
    },
  };
}

/**
 * The worker's DenseMath: onnxruntime-web when `spec` names it and it loads and multiplies correctly (checked on one
 * small product against the JS kernel), else the plain-JS one; `note` says why when it fell back.
 */
export async function workerDenseMath(spec: WebDenseMathSpec | undefined): Promise<{ math: DenseMath; note?: string }> {
  if (!spec) return { math: jsDenseMath };
  try {
    const ort = (await import(/* webpackIgnore: true */ spec.moduleUrl)) as typeof OrtWeb;
    // a worker runs onnxruntime-web in place: its proxy worker would be one more thread for nothing
    ort.env.wasm.proxy = false;
    if (spec.wasmPaths) ort.env.wasm.wasmPaths = spec.wasmPaths;
    if (spec.numThreads) ort.env.wasm.numThreads = spec.numThreads;
    const math = ortWebDenseMath(ort, spec.models);
    const m = 64;
    const k = 48;
    const n = 40;
    const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i));
    const got = await math.gemm(a, b, m, k, n, false, true);
    const want = gemmSync(a, b, m, k, n, false, true);
    const worst = got.reduce((w, v, i) => Math.max(w, Math.abs(v - want[i])), 0);
    if (!(worst < 1e-3)) throw new Error(`a test product differs from the JS kernel by ${worst}`);
    return { math };
  } catch (error) {
    return {
      math: jsDenseMath,
      note: `onnxruntime-web (${spec.moduleUrl}) did not run in the worker (${describeError(error)}): plain-JS products`,
    };
  }
}
