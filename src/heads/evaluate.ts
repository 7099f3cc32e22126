import { EdgetlError } from '../util/errors.js';
import type { Head } from './head.js';
import { argmaxRows, classificationReport, heldOutMetrics, type HeldOutMetrics } from './metrics.js';

export interface Evaluation {
  /** accuracy and balancedAccuracy count a rejected ("unknown") prediction as wrong; logLoss and ECE are closed-set. */
  metrics: HeldOutMetrics;
  /** Accuracy of the top class ignoring rejection (equals metrics.accuracy when the head never rejects). */
  closedSetAccuracy: number;
  report: ReturnType<typeof classificationReport>;
  rejected: number;
}

/**
 * How a head does on labelled embeddings (held-out rows, an evaluation set): calibrated metrics, the per-class report
 * and confusion matrix, and how many rows the rejection threshold turned "unknown". `what` names the data in errors.
 */
export function evaluateHead(head: Head, data: { embeddings: Float32Array; labels: readonly string[] }, what: string): Evaluation {
  const unknown = [...new Set(data.labels)].filter((l) => !head.labels.includes(l));
  if (unknown.length > 0) {
    throw new EdgetlError('label-mismatch', `${what} has class${unknown.length > 1 ? 'es' : ''} ${unknown.map((c) => `"${c}"`).join(', ')} that the head does not know (head classes: ${head.labels.join(', ')})`);
  }
  const rows = data.labels.length;
  const targets = data.labels.map((l) => head.labels.indexOf(l));
  const logits = head.logits(data.embeddings, rows);
  const metrics = heldOutMetrics(logits, targets, head.labels.length, head.temperature);
  const predicted = Array.from(argmaxRows(logits, head.labels.length));
  let rejected = 0;
  if (head.rejection) {
    head.predictMany(data.embeddings, rows).forEach((p, i) => {
      if (p.rejected) {
        predicted[i] = -1;
        rejected++;
      }
    });
  }
  const report = classificationReport(predicted, targets, head.labels.length);
  return { metrics: { ...metrics, accuracy: report.accuracy, balancedAccuracy: report.balancedAccuracy }, closedSetAccuracy: metrics.accuracy, report, rejected };
}
