/**
 * The two products of a linear model's L-BFGS evaluation (logits = data . weight^T, weight gradient =
 * gradLogits^T . data), served for several models at once over one data matrix.
 *
 * Why: with few classes these products are bound by reading the matrix, not by arithmetic. The L2 sweep fits one
 * model per fold; on the full matrix, each fold's held-out rows given weight 0, the folds' products stack into one
 * product that reads the matrix once. On 2,040 x 1,280 rows and 3 folds (bench/results/2026-12-01/throughput), one
 * round of both products takes 0.51 ms stacked against 0.98 ms fold by fold for 2 classes, 0.81 against 0.95 for 5,
 * and loses from 10 classes on (1.16 against 1.03), where the held-out rows' wasted arithmetic starts to count.
 *
 * How the models meet: each model joins as a lane, and a round runs when every lane still in has asked for its
 * next product. The folds' L-BFGS loops run concurrently and ask in step (every evaluation asks for logits, then
 * for the gradient), so no timer is needed and the order of results never depends on timing. A lane must leave
 * when its model is done, or the others wait for it.
 */
import type { DenseMath } from './dense-math.js';

/** The products one model's evaluation needs. */
export interface LinearProducts {
  /** [rows, classes] = data . weight^T, weight [classes, dim]; no bias. */
  logits(weight: Float32Array): Promise<Float32Array>;
  /** [classes, dim] = gradLogits^T . data, gradLogits [rows, classes]. */
  weightGradient(gradLogits: Float32Array): Promise<Float32Array>;
}

/** The default: each product on its own. */
export function directProducts(
  math: DenseMath,
  data: Float32Array,
  rows: number,
  dim: number,
  classes: number,
): LinearProducts {
  // One column is laid out alike as [rows, 1] and [1, rows]; asked with one row, onnxruntime takes its matrix-vector
  // path: 0.09 ms against 0.23 ms for 2,000 x 1,280 (bench/results/2026-12-01/throughput/heads-gemm-shapes.md).
  if (classes === 1)
    return {
      logits: (weight) => math.gemm(weight, data, 1, dim, rows, false, true),
      weightGradient: (gradLogits) => math.gemm(gradLogits, data, 1, rows, dim, false, false),
    };
  return {
    logits: (weight) => math.gemm(data, weight, rows, dim, classes, false, true),
    weightGradient: (gradLogits) => math.gemm(gradLogits, data, classes, rows, dim, true, false),
  };
}

/** Above this many classes the stacked products cost more than fold-by-fold ones (see the module comment). */
export const SHARED_PRODUCTS_MAX_CLASSES = 5;

interface Request {
  kind: 'logits' | 'gradient';
  operand: Float32Array;
  resolve(value: Float32Array): void;
  reject(error: unknown): void;
}

export interface ProductLane extends LinearProducts {
  /** This model asks for nothing more: the others no longer wait for it. */
  leave(): void;
}

export class SharedMatrixProducts {
  private lanes = 0;
  private waiting: Request[] = [];
  /** A round with one model needs no stacking. */
  private readonly single: LinearProducts;

  constructor(
    private readonly math: DenseMath,
    private readonly data: Float32Array,
    private readonly rows: number,
    private readonly dim: number,
    private readonly classes: number,
  ) {
    this.single = directProducts(math, data, rows, dim, classes);
  }

  /** A lane for one more model. Join every model before any of them asks, so the first round includes them all. */
  join(): ProductLane {
    this.lanes++;
    let left = false;
    const ask = (kind: Request['kind'], operand: Float32Array) =>
      new Promise<Float32Array>((resolve, reject) => {
        if (left) throw new Error('internal: a lane asked for a product after leaving');
        this.waiting.push({ kind, operand, resolve, reject });
        this.runWhenAllAsked();
      });
    return {
      logits: (weight) => ask('logits', weight),
      weightGradient: (gradLogits) => ask('gradient', gradLogits),
      leave: () => {
        if (left) return;
        left = true;
        this.lanes--;
        this.runWhenAllAsked();
      },
    };
  }

  private runWhenAllAsked(): void {
    if (this.waiting.length === 0 || this.waiting.length < this.lanes) return;
    const round = this.waiting;
    this.waiting = [];
    this.run(round).catch((error: unknown) => {
      for (const request of round) request.reject(error);
    });
  }

  private async run(round: Request[]): Promise<void> {
    const logits = round.filter((r) => r.kind === 'logits');
    const gradients = round.filter((r) => r.kind === 'gradient');
    if (logits.length > 0) this.settle(logits, await this.stackedLogits(logits));
    if (gradients.length > 0) this.settle(gradients, await this.stackedGradients(gradients));
  }

  private settle(requests: Request[], results: Float32Array[]): void {
    requests.forEach((request, i) => request.resolve(results[i]!));
  }

  /** Weights stacked as [models * classes, dim]: one product, then each model's columns copied out. */
  private async stackedLogits(requests: Request[]): Promise<Float32Array[]> {
    const { rows, dim, classes } = this;
    if (requests.length === 1) return [await this.single.logits(requests[0]!.operand)];
    const width = requests.length * classes;
    const stacked = new Float32Array(width * dim);
    requests.forEach((r, i) => stacked.set(r.operand, i * classes * dim));
    const all = await this.math.gemm(this.data, stacked, rows, dim, width, false, true);
    return requests.map((_, i) => {
      const out = new Float32Array(rows * classes);
      for (let row = 0; row < rows; row++) {
        const from = row * width + i * classes;
        for (let c = 0; c < classes; c++) out[row * classes + c] = all[from + c]!;
      }
      return out;
    });
  }

  /** Gradients side by side as [rows, models * classes]: one product, each model's rows of the result its own. */
  private async stackedGradients(requests: Request[]): Promise<Float32Array[]> {
    const { rows, dim, classes } = this;
    if (requests.length === 1) return [await this.single.weightGradient(requests[0]!.operand)];
    const width = requests.length * classes;
    const stacked = new Float32Array(rows * width);
    requests.forEach((r, i) => {
      const g = r.operand;
      for (let row = 0; row < rows; row++) {
        const to = row * width + i * classes;
        for (let c = 0; c < classes; c++) stacked[to + c] = g[row * classes + c]!;
      }
    });
    const all = await this.math.gemm(stacked, this.data, width, rows, dim, true, false);
    return requests.map((_, i) => all.slice(i * classes * dim, (i + 1) * classes * dim));
  }
}
