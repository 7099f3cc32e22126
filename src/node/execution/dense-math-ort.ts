/**
 * DenseMath on onnxruntime-node: each (transA, transB) variant is a one-node Gemm graph with symbolic sizes, built
 * once and reused for every product. Measured here (2 cores, AVX-512): 2040x1280 by 1280x102 takes ~3 ms against
 * ~107 ms for the blocked plain-JS kernel, and a call costs ~30 us of overhead, so training a linear head with its
 * cross-validated sweep runs in about a second instead of about a minute (bench/heads-matmul.ts, bench/heads-train.ts).
 */
import ort from 'onnxruntime-node';
import { type DenseMath, gemmSync } from '../../core/heads/dense-math.js';
import { gemmModel } from '../../core/heads/dense-math-graph.js';
import { sessionOptionsFor } from './session.js';

export interface OrtDenseMathOptions {
  intraOpThreads?: number;
  /**
   * Let onnxruntime's pool threads spin between products (its default). Off is faster when several products run
   * concurrently on few cores: spinning threads take the cores the other products need.
   */
  allowSpinning?: boolean;
}

/** Products smaller than this many multiply-adds stay in JS: the session call overhead would dominate. */
const SMALL_PRODUCT = 20_000;

export async function createOrtDenseMath(options: OrtDenseMathOptions = {}): Promise<DenseMath> {
  const sessions = new Map<string, Promise<ort.InferenceSession>>();
  const session = (transA: boolean, transB: boolean) => {
    const key = `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
    let existing = sessions.get(key);
    if (!existing) {
      // onnxruntime's defaults unless asked otherwise: pool threads spin, warnings are logged
      existing = ort.InferenceSession.create(
        gemmModel(transA, transB),
        sessionOptionsFor('cpu', {
          ...(options.intraOpThreads ? { intraOpThreads: options.intraOpThreads } : {}),
          allowSpinning: options.allowSpinning ?? true,
          graphOptimizationLevel: 'all',
          logSeverityLevel: 2,
        }),
      );
      sessions.set(key, existing);
    }
    return existing;
  };
  return {
    name: 'onnxruntime-cpu',
    async gemm(a, b, m, k, n, transA, transB) {
      if (m * k * n < SMALL_PRODUCT) return gemmSync(a, b, m, k, n, transA, transB);
      const s = await session(transA, transB);
      const result = await s.run({
        A: new ort.Tensor('float32', a.length === m * k ? a : a.subarray(0, m * k), transA ? [k, m] : [m, k]),
        B: new ort.Tensor('float32', b.length === k * n ? b : b.subarray(0, k * n), transB ? [n, k] : [k, n]),
      });
      const y = result.Y;
      const data = y.data as Float32Array;
      // copy out so the caller owns a plain array independent of onnxruntime's buffer
      const out = Float32Array.from(data);
      y.dispose();
      return out;
    },
    async dispose() {
      for (const pending of sessions.values()) await (await pending).release();
      sessions.clear();
    },
  };
}
