import { EdgetlError } from '../util/errors.js';
import { type DriftReport, driftReport } from './drift.js';
import type { Head } from './head.js';
import { argmaxRows, classificationReport, heldOutMetrics, type HeldOutMetrics } from './metrics.js';

export interface Evaluation {
  /** accuracy and balancedAccuracy count a rejected ("unknown") prediction as wrong; logLoss and ECE are closed-set. */
  metrics: HeldOutMetrics;
  /** Accuracy of the top class ignoring rejection (equals metrics.accuracy when the head never rejects). */
  closedSetAccuracy: number;
  report: ReturnType<typeof classificationReport>;
  rejected: number;
  /** Open-set figures: share rejected as unknown, accuracy on the accepted rows, and the drift of the batch. */
  openSet: OpenSetEvaluation;
}

export interface OpenSetEvaluation {
  rejectedRate: number;
  /** Accuracy of the rows not rejected (NaN when all were). */
  acceptedAccuracy: number;
  /** Drift of these rows against the training data (null: the head has no open-set data). */
  drift: DriftReport | null;
}

/**
 * How a head does on labelled embeddings (held-out rows, an evaluation set): calibrated metrics, the per-class report
 * and confusion matrix, how many rows it turned "unknown", accuracy on the rest, and the batch's drift. `what` names
 * the data in errors.
 */
export function evaluateHead(
  head: Head,
  data: { embeddings: Float32Array; labels: readonly string[] },
  what: string,
): Evaluation {
  const unknown = [...new Set(data.labels)].filter((l) => !head.labels.includes(l));
  if (unknown.length > 0) {
    throw new EdgetlError(
      'label-mismatch',
      `${what} has class${unknown.length > 1 ? 'es' : ''} ${unknown.map((c) => `"${c}"`).join(', ')} that the head does not know (head classes: ${head.labels.join(', ')})`,
    );
  }
  const rows = data.labels.length;
  const targets = data.labels.map((l) => head.labels.indexOf(l));
  const logits = head.logits(data.embeddings, rows);
  const metrics = heldOutMetrics(logits, targets, head.labels.length, head.temperature);
  const predicted = Array.from(argmaxRows(logits, head.labels.length));
  let rejected = 0;
  let acceptedCorrect = 0;
  head.predictMany(data.embeddings, rows).forEach((p, i) => {
    if (p.rejected) {
      predicted[i] = -1;
      rejected++;
    } else if (p.index === targets[i]) acceptedCorrect++;
  });
  const report = classificationReport(predicted, targets, head.labels.length);
  const openSet: OpenSetEvaluation = {
    rejectedRate: rows > 0 ? rejected / rows : Number.NaN,
    acceptedAccuracy: rows - rejected > 0 ? acceptedCorrect / (rows - rejected) : Number.NaN,
    drift: driftReport(head, data.embeddings, rows) ?? null,
  };
  return {
    metrics: { ...metrics, accuracy: report.accuracy, balancedAccuracy: report.balancedAccuracy },
    closedSetAccuracy: metrics.accuracy,
    report,
    rejected,
    openSet,
  };
}
