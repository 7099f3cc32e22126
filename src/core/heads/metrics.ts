import { softmaxRows } from './softmax.js';

function argmaxRow(values: Float32Array, offset: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) if (values[offset + c] > values[offset + best]) best = c;
  return best;
}

export function argmaxRows(values: Float32Array, classes: number): Int32Array {
  const rows = values.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = argmaxRow(values, r * classes, classes);
  return out;
}

/** Fraction of rows whose largest score is the target (works on logits or probabilities). */
export function accuracy(scores: Float32Array, targets: ArrayLike<number>, classes: number): number {
  if (targets.length === 0) return NaN;
  let correct = 0;
  for (let r = 0; r < targets.length; r++) if (argmaxRow(scores, r * classes, classes) === targets[r]) correct++;
  return correct / targets.length;
}

/** Mean negative log-likelihood of the targets under softmax(logits / temperature). */
export function logLoss(logits: Float32Array, targets: ArrayLike<number>, classes: number, temperature = 1): number {
  if (targets.length === 0) return NaN;
  let total = 0;
  for (let r = 0; r < targets.length; r++) {
    const o = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[o + c] / temperature);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[o + c] / temperature - max);
    total += Math.log(sum) + max - logits[o + targets[r]] / temperature;
  }
  return total / targets.length;
}

/**
 * Expected calibration error of the top-label confidence: rows binned by confidence into `bins` equal-width bins,
 * sum over bins of (share of rows) * |accuracy - mean confidence|.
 */
export function expectedCalibrationError(
  probabilities: Float32Array,
  targets: ArrayLike<number>,
  classes: number,
  bins = 15,
): number {
  if (targets.length === 0) return NaN;
  const count = new Float64Array(bins);
  const confidence = new Float64Array(bins);
  const correct = new Float64Array(bins);
  for (let r = 0; r < targets.length; r++) {
    const top = argmaxRow(probabilities, r * classes, classes);
    const p = probabilities[r * classes + top];
    const bin = Math.min(bins - 1, Math.floor(p * bins));
    count[bin]++;
    confidence[bin] += p;
    if (top === targets[r]) correct[bin]++;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b] > 0) ece += Math.abs(correct[b] - confidence[b]) / targets.length;
  return ece;
}

export interface ClassReport {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  count: number;
  accuracy: number;
  /** Mean recall over the classes that have rows. */
  balancedAccuracy: number;
  perClass: ClassReport[];
  /** confusion[true][predicted]; a last column counts rows predicted "unknown" when any were rejected. */
  confusion: number[][];
  rejected: number;
}

/**
 * Per-class precision/recall/F1 and the confusion matrix from predicted indices (-1 = rejected as unknown, counted
 * as wrong). Precision of a class that was never predicted is 0, as scikit-learn reports it.
 */
export function classificationReport(
  predicted: ArrayLike<number>,
  targets: ArrayLike<number>,
  classes: number,
): ClassificationReport {
  const rejected = Array.from(predicted).filter((p) => p < 0).length;
  const columns = rejected > 0 ? classes + 1 : classes;
  const confusion = Array.from({ length: classes }, () => new Array<number>(columns).fill(0));
  let correct = 0;
  for (let i = 0; i < targets.length; i++) {
    const p = predicted[i];
    confusion[targets[i]][p < 0 ? classes : p]++;
    if (p === targets[i]) correct++;
  }
  const perClass: ClassReport[] = [];
  let recallSum = 0;
  let present = 0;
  for (let c = 0; c < classes; c++) {
    const support = confusion[c].reduce((a, b) => a + b, 0);
    let predictedAs = 0;
    for (let t = 0; t < classes; t++) predictedAs += confusion[t][c];
    const tp = confusion[c][c];
    const precision = predictedAs > 0 ? tp / predictedAs : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    if (support > 0) {
      recallSum += recall;
      present++;
    }
    perClass.push({ precision, recall, f1, support });
  }
  return {
    count: targets.length,
    accuracy: targets.length > 0 ? correct / targets.length : NaN,
    balancedAccuracy: present > 0 ? recallSum / present : NaN,
    perClass,
    confusion,
    rejected,
  };
}

/** The summary metrics reported for a held-out set: accuracy, balanced accuracy, log loss, ECE. */
export interface HeldOutMetrics {
  count: number;
  accuracy: number;
  balancedAccuracy: number;
  logLoss: number;
  ece: number;
}

export function heldOutMetrics(
  logits: Float32Array,
  targets: ArrayLike<number>,
  classes: number,
  temperature = 1,
): HeldOutMetrics {
  const probabilities = softmaxRows(Float32Array.from(logits), targets.length, classes, temperature);
  const report = classificationReport(argmaxRows(probabilities, classes), targets, classes);
  return {
    count: targets.length,
    accuracy: report.accuracy,
    balancedAccuracy: report.balancedAccuracy,
    logLoss: logLoss(logits, targets, classes, temperature),
    ece: expectedCalibrationError(probabilities, targets, classes),
  };
}

/**
 * Area under the ROC curve of scores where outliers should score higher than inliers: the probability that a random
 * outlier outscores a random inlier, ties counting half (so 0.5 is chance and 1 a perfect separation).
 */
export function outlierAuroc(inlierScores: ArrayLike<number>, outlierScores: ArrayLike<number>): number {
  if (inlierScores.length === 0 || outlierScores.length === 0) return Number.NaN;
  const inliers = Float64Array.from(inlierScores).sort();
  let wins = 0;
  for (let i = 0; i < outlierScores.length; i++) {
    const s = outlierScores[i];
    // inliers strictly below s, and those equal to it, by binary search
    let lo = 0;
    let hi = inliers.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (inliers[mid] < s) lo = mid + 1;
      else hi = mid;
    }
    let upper = lo;
    while (upper < inliers.length && inliers[upper] === s) upper++;
    wins += lo + 0.5 * (upper - lo);
  }
  return wins / (outlierScores.length * inliers.length);
}
