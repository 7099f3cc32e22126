/**
 * The two-class case of the linear head's fit, solved as one logistic regression instead of a 2-row softmax.
 *
 * Why it is the same model: with the same L2 on both weight rows, the softmax optimum has w0 = -w1 (the data
 * gradients of the two rows sum to zero, so the penalty's must too), and its logits (-z/2, z/2) with z = v . x + c,
 * v = w1 - w0, give cross-entropy softplus(z) - y z, the logistic loss; the penalty l2/2 (|w0|^2 + |w1|^2) is
 * l2/4 |v|^2. Fitting v and c directly reaches that optimum with half the parameters, one product column per model
 * instead of two, and one exp per row: on 2,000 x 1,280 rows the sweep's rounds of products and L-BFGS bookkeeping
 * cost about half (bench/results/2026-12-01/throughput). The result is handed back in the softmax layout, so the
 * head file, warm starts and held-out logits are the same as the general path's.
 */
import type { LabelledMatrix } from './data.js';
import type { LinearProblem, SoftmaxRegressionOptions } from './linear.js';
import { directProducts } from './shared-products.js';

/** Whether fitSoftmaxRegression solves this problem as one logistic regression (see the module comment). */
export function solvesAsTwoClass(classes: number, options: Pick<SoftmaxRegressionOptions, 'preconditioner'>): boolean {
  // the spectral preconditioner is shaped for the softmax layout's class blocks
  return classes === 2 && !options.preconditioner;
}

/** Product columns one model needs: 1 for the two-class solve, else one per class. */
export function productColumns(classes: number, options: Pick<SoftmaxRegressionOptions, 'preconditioner'>): number {
  return solvesAsTwoClass(classes, options) ? 1 : classes;
}

/**
 * L2-regularized logistic regression of class 1 against class 0 in the variables [v (dim), c], as the equivalent
 * 2-class softmax regression (same objective value, weights w1 = v/2, w0 = -v/2, biases -c/2 and c/2). Options as
 * fitSoftmaxRegression's; `products` must serve one column (productColumns).
 */
export function twoClassProblem(matrix: LabelledMatrix, options: SoftmaxRegressionOptions): LinearProblem {
  const { rows, dim, data, targets } = matrix;
  const { math, l2, sampleWeights } = options;
  const products = options.products ?? directProducts(math, data, rows, dim, 1);
  let weightSum = 0;
  for (let r = 0; r < rows; r++) weightSum += sampleWeights ? sampleWeights[r] : 1;
  const residual = new Float32Array(rows);
  // a softmax-layout warm start is taken as its weight and bias differences
  const start = new Float64Array(dim + 1);
  if (options.start) {
    for (let i = 0; i < dim; i++) start[i] = options.start[dim + i] - options.start[i];
    start[dim] = options.start[2 * dim + 1] - options.start[2 * dim];
  }
  return {
    async evaluate(x) {
      const v = new Float32Array(dim);
      let norm = 0;
      for (let i = 0; i < dim; i++) {
        v[i] = x[i];
        norm += x[i] * x[i];
      }
      const c = x[dim];
      const z = await products.logits(v);
      let loss = 0;
      let biasGradient = 0;
      for (let r = 0; r < rows; r++) {
        const zr = z[r] + c;
        z[r] = zr;
        const weight = sampleWeights ? sampleWeights[r] / weightSum : 1 / weightSum;
        if (weight === 0) {
          residual[r] = 0;
          continue;
        }
        const positive = targets[r] === 1;
        // softplus(z) = max(z, 0) + log(1 + e^-|z|) and sigmoid(z) share the one exp, which never overflows
        const e = Math.exp(-Math.abs(zr));
        loss += weight * ((zr > 0 ? zr : 0) + Math.log1p(e) - (positive ? zr : 0));
        const sigmoid = zr >= 0 ? 1 / (1 + e) : e / (1 + e);
        const g = weight * (sigmoid - (positive ? 1 : 0));
        residual[r] = g;
        biasGradient += g;
      }
      const dataGradient = await products.weightGradient(residual);
      const gradient = new Float64Array(dim + 1);
      for (let i = 0; i < dim; i++) gradient[i] = dataGradient[i] + 0.5 * l2 * x[i];
      gradient[dim] = biasGradient;
      return { value: loss + 0.25 * l2 * norm, gradient, logits: z };
    },
    start,
    // the penalty's curvature is l2/2 per unit of l2 on v's coordinates, not on the bias
    penaltyCurvature: 0.5,
    penalized: dim,
    toSoftmax(x, z) {
      const flat = new Float64Array(2 * dim + 2);
      for (let i = 0; i < dim; i++) {
        flat[i] = -0.5 * x[i];
        flat[dim + i] = 0.5 * x[i];
      }
      flat[2 * dim] = -0.5 * x[dim];
      flat[2 * dim + 1] = 0.5 * x[dim];
      const logits = new Float32Array(2 * rows);
      for (let r = 0; r < rows; r++) {
        logits[2 * r] = -0.5 * z[r];
        logits[2 * r + 1] = 0.5 * z[r];
      }
      return { flat, logits };
    },
  };
}
