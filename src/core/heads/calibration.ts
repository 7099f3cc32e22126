import { softmaxRows } from './softmax.js';

/**
 * Temperature scaling (Guo et al. 2017): the T > 0 minimizing the log loss of softmax(logits / T) on held-out
 * rows. The loss is convex in b = 1/T (log-sum-exp of b*z minus b*z_y), so Newton's method on b converges in a
 * few passes; steps are damped to stay positive and checked to decrease the loss. T is kept within [0.01, 100].
 * As in Platt scaling, the targets are softened to (n+1)/(n+2) for the true class: when every held-out row is
 * right, plain log loss would drive T to 0 and claim certainty that a few rows cannot support.
 */
export function fitTemperature(logits: Float32Array, targets: ArrayLike<number>, classes: number): number {
  const rows = targets.length;
  if (rows === 0) return 1;
  const onTarget = (rows + 1) / (rows + 2);
  const offTarget = (1 - onTarget) / Math.max(1, classes - 1);
  const evaluate = (b: number) => {
    let loss = 0;
    let first = 0;
    let second = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * classes;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) if (logits[o + c] > max) max = logits[o + c];
      let sum = 0;
      let mean = 0;
      let meanSquare = 0;
      let zTarget = 0;
      for (let c = 0; c < classes; c++) {
        const z = logits[o + c] - max;
        zTarget += (c === targets[r] ? onTarget : offTarget) * z;
        const e = Math.exp(b * z);
        sum += e;
        mean += e * z;
        meanSquare += e * z * z;
      }
      mean /= sum;
      meanSquare /= sum;
      loss += Math.log(sum) - b * zTarget;
      first += mean - zTarget;
      second += meanSquare - mean * mean;
    }
    return { loss: loss / rows, first: first / rows, second: second / rows };
  };
  const lo = 0.01;
  const hi = 100;
  let b = 1;
  let current = evaluate(b);
  for (let iteration = 0; iteration < 50; iteration++) {
    let step = current.second > 1e-12 ? current.first / current.second : Math.sign(current.first) * b * 0.5;
    let next = b - step;
    if (next <= 0) next = b / 4;
    next = Math.min(hi, Math.max(lo, next));
    let candidate = evaluate(next);
    while (candidate.loss > current.loss + 1e-12 && Math.abs(next - b) > 1e-9 * b) {
      step /= 2;
      next = Math.min(hi, Math.max(lo, b - step));
      candidate = evaluate(next);
    }
    const moved = Math.abs(next - b);
    b = next;
    current = candidate;
    if (moved <= 1e-7 * b) break;
  }
  return 1 / b;
}

/**
 * Open-set rejection threshold on the top calibrated probability: the value below which `rate` of the held-out
 * known-class rows fall. A prediction whose top probability is below it is reported as "unknown".
 */
export function rejectionThreshold(
  logits: Float32Array,
  rows: number,
  classes: number,
  temperature: number,
  rate: number,
): number {
  if (rows === 0 || rate <= 0) return 0;
  const probabilities = softmaxRows(Float32Array.from(logits), rows, classes, temperature);
  const top = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < classes; c++) max = Math.max(max, probabilities[r * classes + c]);
    top[r] = max;
  }
  top.sort();
  const index = Math.min(rows - 1, Math.floor(rate * rows));
  return top[index];
}
