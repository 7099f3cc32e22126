/**
 * Drift in the field: a batch of field embeddings compared with the training distribution through the head's
 * outlier scores. Runtime-neutral.
 */
import type { Head } from './head.js';

export interface DriftReport {
  rows: number;
  /** Share of the batch above the head's outlier threshold (null when the head has no threshold). */
  overThreshold: number | null;
  /** Share the threshold rejects of the head's own photos (its training out-of-fold rate). */
  expectedOverThreshold: number | null;
  threshold: number | null;
  meanOutlierScore: number;
  /** Mean out-of-fold outlier score of the training photos. */
  trainingMeanOutlierScore: number;
  trainingStdOutlierScore: number;
  /** (batch mean - training mean) / training std: how far the batch has moved, in training spreads. */
  shift: number;
  /**
   * True when the batch is clearly less like the training data than the head's own photos: more of it over the
   * threshold than the training rate plus three binomial standard errors (and at least twice that rate), or, for a
   * head without a threshold, a mean score more than one training spread above the training mean.
   */
  drifted: boolean;
  summary: string;
}

/** Compares `rows` raw field embeddings with the head's training data; undefined for a head without open-set data. */
export function driftReport(
  head: Head,
  embeddings: Float32Array,
  rows = embeddings.length / head.embeddingDim,
): DriftReport | undefined {
  const scores = head.outlierScores(embeddings, rows);
  const openSet = head.openSet;
  if (!scores || !openSet) return undefined;
  return driftFromScores(openSet, scores);
}

/** The same comparison from outlier scores already computed (a kiosk keeps the last frames' scores). */
export function driftFromScores(openSet: NonNullable<Head['openSet']>, scores: ArrayLike<number>): DriftReport {
  const rows = scores.length;
  let mean = 0;
  for (let r = 0; r < rows; r++) mean += scores[r];
  mean /= Math.max(1, rows);
  const threshold = openSet.threshold;
  const over = threshold === null ? null : Array.from(scores).filter((s) => s > threshold).length / Math.max(1, rows);
  const expected = threshold === null ? null : openSet.rate;
  const reference = openSet.reference;
  const shift = reference.std > 0 ? (mean - reference.mean) / reference.std : 0;
  let drifted: boolean;
  if (over !== null && expected !== null) {
    const standardError = Math.sqrt((expected * (1 - expected)) / Math.max(1, rows));
    drifted = rows > 0 && over > expected + 3 * standardError && over >= 2 * expected;
  } else {
    drifted = rows > 0 && shift > 1;
  }
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const summary =
    rows === 0
      ? 'no field photos'
      : `${over !== null ? `${pct(over)} over the outlier threshold (training: ${pct(expected!)}), ` : ''}mean outlier score ${mean.toFixed(3)} (training ${reference.mean.toFixed(3)} ± ${reference.std.toFixed(3)}): ${drifted ? 'the field has drifted from the training data' : 'no drift'}`;
  return {
    rows,
    overThreshold: over,
    expectedOverThreshold: expected,
    threshold,
    meanOutlierScore: mean,
    trainingMeanOutlierScore: reference.mean,
    trainingStdOutlierScore: reference.std,
    shift,
    drifted,
    summary,
  };
}
