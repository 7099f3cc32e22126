/** Row-wise softmax of [rows, classes] logits, in place; returns the same array. */
export function softmaxRows(logits: Float32Array, rows: number, classes: number, temperature = 1): Float32Array {
  const inverse = 1 / temperature;
  for (let r = 0; r < rows; r++) {
    const o = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[o + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp((logits[o + c] - max) * inverse);
      logits[o + c] = e;
      sum += e;
    }
    const scale = 1 / sum;
    for (let c = 0; c < classes; c++) logits[o + c] *= scale;
  }
  return logits;
}

/**
 * Mean weighted cross-entropy of logits against integer targets (optionally label-smoothed), and its gradient
 * with respect to the logits, written into `gradient` ([rows, classes]).
 * loss = sum_i w_i * CE_i / sum_i w_i.
 */
export function crossEntropyWithGradient(
  logits: Float32Array,
  targets: Int32Array,
  weights: Float32Array | undefined,
  rows: number,
  classes: number,
  gradient: Float32Array,
  labelSmoothing = 0,
): number {
  let weightSum = 0;
  for (let r = 0; r < rows; r++) weightSum += weights ? weights[r] : 1;
  const onTarget = 1 - labelSmoothing + labelSmoothing / classes;
  const offTarget = labelSmoothing / classes;
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * classes;
    if (weights && weights[r] === 0) {
      // a row out of this model's training set (a fold's held-out rows, see shared-products.ts): no loss, no gradient
      for (let c = 0; c < classes; c++) gradient[o + c] = 0;
      continue;
    }
    let max = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[o + c] > max) max = logits[o + c];
    // one exp per entry, kept in the gradient buffer, then scaled into probabilities
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[o + c] - max);
      gradient[o + c] = e;
      sum += e;
    }
    const logSum = Math.log(sum) + max;
    const w = (weights ? weights[r] : 1) / weightSum;
    const target = targets[r];
    const scale = w / sum;
    if (labelSmoothing === 0) {
      loss += w * (logSum - logits[o + target]);
      for (let c = 0; c < classes; c++) gradient[o + c] *= scale;
      gradient[o + target] -= w;
    } else {
      let rowLoss = 0;
      for (let c = 0; c < classes; c++) {
        const q = c === target ? onTarget : offTarget;
        rowLoss += q * (logSum - logits[o + c]);
        gradient[o + c] = gradient[o + c] * scale - w * q;
      }
      loss += w * rowLoss;
    }
  }
  return loss;
}
