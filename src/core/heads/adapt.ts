/**
 * Adapting a head to the field without labels, as feature-statistics methods do (AdaBN, Li et al. 2016; CORAL,
 * Sun et al. 2016, here its diagonal form): the field embeddings' per-dimension mean and spread are re-estimated and
 * mapped onto the training ones, x -> (x - mean_field) / std_field * std_train + mean_train, before the head (its
 * normalization, classifier and open-set memory) sees them. The head's weights do not change.
 *
 * It is kept only where it helps: the statistics are fitted on half of the field rows and judged on the other half
 * by the outlier scores (labels are not needed); if the held-out half does not come closer to the training data,
 * the head is returned unchanged. Runtime-neutral.
 */
import { EdgetlError } from '../util/errors.js';
import { type DriftReport, driftReport } from './drift.js';
import { Head } from './head.js';
import { columnStats } from './open-set.js';

export interface AdaptResult {
  /** The adapted head, or the input head unchanged when adaptation did not help. */
  head: Head;
  adapted: boolean;
  /** Held-out half of the field, before and after (statistics fitted on the other half). */
  heldOutBefore: DriftReport;
  heldOutAfter: DriftReport;
  reason: string;
}

export const MIN_ADAPT_ROWS = 16;

function alignment(head: Head, field: Float32Array, rows: number): { scale: Float32Array; shift: Float32Array } {
  const openSet = head.openSet!;
  const dim = head.embeddingDim;
  const { mean, std } = columnStats(field, rows, dim);
  const scale = new Float32Array(dim);
  const shift = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    scale[d] = openSet.featureStd[d] / std[d];
    shift[d] = openSet.featureMean[d] - mean[d] * scale[d];
  }
  return { scale, shift };
}

/** A copy of the head without field adaptation. */
function withoutAdaptation(head: Head): Head {
  const content = head.toFileContent();
  return Head.fromFileContent({
    ...content,
    adaptation: null,
    tensors: content.tensors.filter((t) => !t.name.startsWith('adaptation.')),
  });
}

function withAdaptation(head: Head, adaptation: { scale: Float32Array; shift: Float32Array }, rows: number): Head {
  const copy = withoutAdaptation(head);
  copy.adaptation = {
    spec: { method: 'feature-statistics', rows, createdAt: new Date().toISOString() },
    ...adaptation,
  };
  return copy;
}

function rowsAt(data: Float32Array, indices: number[], dim: number): Float32Array {
  const out = new Float32Array(indices.length * dim);
  indices.forEach((r, i) => out.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

/** Re-estimates the head's feature statistics from `rows` raw field embeddings (any earlier adaptation is replaced). */
export function adaptHead(head: Head, field: Float32Array, rows = field.length / head.embeddingDim): AdaptResult {
  if (!head.openSet)
    throw new EdgetlError(
      'head-type',
      'this head has no open-set data (a version 1 file): retrain it with this edgetl before adapting it',
    );
  if (rows < MIN_ADAPT_ROWS)
    throw new EdgetlError(
      'adapt-input',
      `adapting needs at least ${MIN_ADAPT_ROWS} field photos to estimate their statistics, got ${rows}`,
    );
  const dim = head.embeddingDim;
  // alternate rows: a field folder's order (time, camera) falls evenly on both halves
  const even = Array.from({ length: rows }, (_, i) => i).filter((i) => i % 2 === 0);
  const odd = Array.from({ length: rows }, (_, i) => i).filter((i) => i % 2 === 1);
  const fitHalf = rowsAt(field, even, dim);
  const judgeHalf = rowsAt(field, odd, dim);
  const unadapted = head.adaptation ? withoutAdaptation(head) : head;
  const heldOutBefore = driftReport(unadapted, judgeHalf, odd.length)!;
  const trial = withAdaptation(unadapted, alignment(unadapted, fitHalf, even.length), even.length);
  const heldOutAfter = driftReport(trial, judgeHalf, odd.length)!;
  const before = heldOutBefore.overThreshold ?? heldOutBefore.shift;
  const after = heldOutAfter.overThreshold ?? heldOutAfter.shift;
  const helps = heldOutAfter.meanOutlierScore < heldOutBefore.meanOutlierScore && after <= before;
  if (!helps) {
    return {
      head: unadapted,
      adapted: false,
      heldOutBefore,
      heldOutAfter,
      reason:
        'the field statistics did not bring held-out field photos closer to the training data; the head is unchanged',
    };
  }
  const adapted = withAdaptation(unadapted, alignment(unadapted, field, rows), rows);
  return {
    head: adapted,
    adapted: true,
    heldOutBefore,
    heldOutAfter,
    reason: 'held-out field photos came closer to the training data',
  };
}
