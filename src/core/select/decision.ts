/**
 * The statistics of backbone selection, runtime-neutral: held-out scores per fold, paired comparisons on the same
 * folds, the negative-transfer verdict against the raw-pixel baseline, the recommendation rule and the Pareto front.
 */
import type { HeldOutPredictions } from '../heads/train.js';
import { argmaxRows, classificationReport } from '../heads/metrics.js';

/** Held-out figures of one feature set (a backbone, or the raw-pixel baseline). */
export interface HeldOutScores {
  accuracy: number;
  balancedAccuracy: number;
  /** Accuracy of each fold (or of the single held-out split), in fold order. */
  foldAccuracy: number[];
  /** 1 where the held-out prediction of row r (training row order, see `rows`) is right, else 0. */
  correct: Uint8Array;
  /** Training rows the scores cover, sorted. */
  rows: number[];
  /** Which rows each fold held out (training row indices). */
  folds: number[][];
  /** e.g. "3-fold out-of-fold". */
  source: string;
}

/** Scores of `trainHead`'s held-out predictions, re-indexed by training row so two feature sets can be paired. */
export function scoreHeldOut(predictions: HeldOutPredictions): HeldOutScores {
  const { logits, targets, classCount } = predictions;
  const predicted = argmaxRows(logits, classCount);
  const report = classificationReport(predicted, targets, classCount);
  const order = predictions.rows.map((row, position) => ({ row, position })).sort((a, b) => a.row - b.row);
  const correct = new Uint8Array(order.length);
  order.forEach(({ position }, i) => (correct[i] = predicted[position] === targets[position] ? 1 : 0));
  const foldAccuracy = predictions.folds.map((fold) =>
    fold.length === 0 ? NaN : fold.filter((p) => predicted[p] === targets[p]).length / fold.length,
  );
  return {
    accuracy: report.accuracy,
    balancedAccuracy: report.balancedAccuracy,
    foldAccuracy,
    correct,
    rows: order.map((o) => o.row),
    folds: predictions.folds.map((fold) => fold.map((p) => predictions.rows[p]!).sort((a, b) => a - b)),
    source: predictions.source,
  };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Sample standard deviation (n - 1); 0 for fewer than two values. */
export function standardDeviation(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}

/** Accuracy of `a` minus accuracy of `b` on the same held-out rows, and how much of it is noise. */
export interface PairedDifference {
  /** Mean over folds of (accuracy a - accuracy b), as a fraction. */
  mean: number;
  /** Its standard error: fold-to-fold standard deviation / sqrt(folds), or per row for a single split. */
  standardError: number;
  perFold: number[];
  /** `folds` with two or more folds; `rows` for a single split (row-level paired standard error). */
  basis: 'folds' | 'rows';
}

/** Throws when a and b were not scored on the same rows and folds: a paired comparison would be meaningless. */
export function pairedDifference(a: HeldOutScores, b: HeldOutScores): PairedDifference {
  if (a.rows.length !== b.rows.length || a.rows.some((r, i) => r !== b.rows[i]) || a.folds.length !== b.folds.length) {
    throw new Error('paired comparison of scores on different rows or folds');
  }
  const perFold = a.foldAccuracy.map((v, f) => v - b.foldAccuracy[f]!);
  if (perFold.length >= 2) {
    return {
      mean: mean(perFold),
      standardError: standardDeviation(perFold) / Math.sqrt(perFold.length),
      perFold,
      basis: 'folds',
    };
  }
  const diffs = Array.from(a.correct, (v, i) => v - b.correct[i]!);
  return {
    mean: mean(diffs),
    standardError: standardDeviation(diffs) / Math.sqrt(diffs.length),
    perFold,
    basis: 'rows',
  };
}

/** Standard errors the gain over the baseline must exceed for a backbone to count as clearly better. */
export const NEGATIVE_TRANSFER_STANDARD_ERRORS = 2;

export interface TransferVerdict {
  negativeTransfer: boolean;
  /** Accuracy gain over the baseline in points, and its standard error in points. */
  gainPoints: number;
  standardErrorPoints: number;
  /** One sentence saying why (always set: also explains a clear gain). */
  reason: string;
}

/** Percentage points, with -0 shown as 0. */
const points = (fraction: number) => 100 * fraction + 0;
const pct = (fraction: number) => `${points(fraction).toFixed(1)}%`;

/**
 * A backbone clearly beats the baseline when its accuracy gain, paired fold by fold on the same folds, is more than
 * NEGATIVE_TRANSFER_STANDARD_ERRORS standard errors of that gain above zero. Otherwise its features do not help (or
 * hurt) on these photos: negative transfer.
 */
export function transferVerdict(
  candidate: HeldOutScores,
  baseline: HeldOutScores,
  baselineName: string,
): TransferVerdict {
  const d = pairedDifference(candidate, baseline);
  const gainPoints = Math.abs(d.mean) < 5e-5 ? 0 : points(d.mean);
  const standardErrorPoints = points(d.standardError);
  const spread =
    d.basis === 'folds'
      ? `the fold-to-fold standard error of the gain (±${standardErrorPoints.toFixed(1)} points over ${d.perFold.length} folds)`
      : `the standard error of the paired per-photo gain (±${standardErrorPoints.toFixed(1)} points)`;
  const clearly = d.mean > NEGATIVE_TRANSFER_STANDARD_ERRORS * d.standardError && d.mean > 0;
  let reason: string;
  if (clearly) {
    reason = `${pct(candidate.accuracy)} against ${pct(baseline.accuracy)} for the same head on ${baselineName}: ${gainPoints.toFixed(1)} points better, more than ${NEGATIVE_TRANSFER_STANDARD_ERRORS} x ${spread}.`;
  } else if (d.mean <= 0) {
    reason = `${pct(candidate.accuracy)} against ${pct(baseline.accuracy)} for the same head on ${baselineName}: no better than raw pixels (${gainPoints.toFixed(1)} points), so its features do not transfer to these photos (its input or source task is too far from them).`;
  } else {
    reason = `${pct(candidate.accuracy)} against ${pct(baseline.accuracy)} for the same head on ${baselineName}: only ${gainPoints.toFixed(1)} points better, within ${NEGATIVE_TRANSFER_STANDARD_ERRORS} x ${spread}, so its features do not clearly help on these photos (its input or source task is far from them).`;
  }
  return { negativeTransfer: !clearly, gainPoints, standardErrorPoints, reason };
}

/** What the recommendation needs to know of each candidate. */
export interface RankedCandidate {
  backbone: string;
  /** Short name for sentences (default: backbone). */
  label?: string;
  scores: HeldOutScores;
  /** ms per image on the device the budgets are for; null when unknown there. */
  msPerImage: number | null;
  /** Peak memory on that device, MB; null when unknown. */
  peakRssMb: number | null;
}

export interface Budgets {
  maxMsPerImage?: number;
  maxMemoryMb?: number;
}

export type BudgetStatus = 'within' | 'over' | 'unknown';

export interface BudgetCheck {
  status: BudgetStatus;
  /** Why a candidate is over or unknown (empty when within). */
  notes: string[];
}

export function checkBudgets(
  candidate: Pick<RankedCandidate, 'msPerImage' | 'peakRssMb'>,
  budgets: Budgets,
): BudgetCheck {
  const notes: string[] = [];
  let status: BudgetStatus = 'within';
  const judge = (value: number | null, limit: number | undefined, what: string, unit: string) => {
    if (limit === undefined) return;
    if (value === null || !Number.isFinite(value)) {
      if (status === 'within') status = 'unknown';
      notes.push(`${what} unknown: cannot confirm <= ${limit} ${unit}`);
    } else if (value > limit) {
      status = 'over';
      notes.push(`${what} ${value.toFixed(value < 10 ? 2 : 1)} ${unit} > ${limit} ${unit}`);
    }
  };
  judge(candidate.msPerImage, budgets.maxMsPerImage, 'ms per image', 'ms');
  judge(candidate.peakRssMb, budgets.maxMemoryMb, 'peak memory', 'MB');
  return { status, notes };
}

/** Candidates not beaten on both accuracy and ms per image by another (cost unknown: not on the front). */
export function paretoFront(candidates: readonly RankedCandidate[]): string[] {
  const known = candidates.filter((c) => c.msPerImage !== null && Number.isFinite(c.scores.accuracy));
  return known
    .filter(
      (c) =>
        !known.some(
          (o) =>
            o !== c &&
            o.scores.accuracy >= c.scores.accuracy &&
            o.msPerImage! <= c.msPerImage! &&
            (o.scores.accuracy > c.scores.accuracy || o.msPerImage! < c.msPerImage!),
        ),
    )
    .sort((a, b) => a.msPerImage! - b.msPerImage!)
    .map((c) => c.backbone);
}

/** Standard errors within which a less accurate candidate counts as tied with the most accurate one. */
export const TIE_STANDARD_ERRORS = 1;

export interface Recommendation {
  recommended: string | null;
  /** The most accurate eligible candidate (equals `recommended` unless a cheaper tied one was picked). */
  mostAccurate: string | null;
  /** Eligible candidates tied with the most accurate one (itself included). */
  tied: string[];
  /** The rule, in words, with the budgets it applied. */
  rule: string;
  /** One sentence: what was picked and why. */
  reason: string;
}

function describeBudgets(budgets: Budgets): string {
  const parts: string[] = [];
  if (budgets.maxMsPerImage !== undefined) parts.push(`<= ${budgets.maxMsPerImage} ms per image`);
  if (budgets.maxMemoryMb !== undefined) parts.push(`<= ${budgets.maxMemoryMb} MB peak memory`);
  return parts.length > 0 ? parts.join(' and ') : 'no budget given';
}

/**
 * The rule: among candidates within every budget (a cost unknown on the device cannot be within a budget on it),
 * take the most accurate by held-out accuracy (balanced accuracy breaks exact ties); a candidate whose accuracy is
 * within TIE_STANDARD_ERRORS standard error of the paired difference from it (the one-standard-error rule) counts
 * as tied, and the cheapest tied candidate (ms per image; unknown cost last) is recommended.
 */
export function recommend(candidates: readonly RankedCandidate[], budgets: Budgets): Recommendation {
  const rule = `the most accurate candidate by held-out accuracy among those within the budgets (${describeBudgets(budgets)}); a candidate within ${TIE_STANDARD_ERRORS} standard error of the paired fold-to-fold accuracy difference from it counts as tied (the one-standard-error rule), and the fastest tied candidate (ms per image) is recommended`;
  const eligible = candidates.filter(
    (c) => Number.isFinite(c.scores.accuracy) && checkBudgets(c, budgets).status === 'within',
  );
  if (eligible.length === 0) {
    const reason =
      candidates.length === 0
        ? 'No candidate could be evaluated.'
        : `No candidate is known to be within the budgets (${describeBudgets(budgets)}): nothing is recommended.`;
    return { recommended: null, mostAccurate: null, tied: [], rule, reason };
  }
  const best = eligible.reduce((a, b) =>
    b.scores.accuracy > a.scores.accuracy ||
    (b.scores.accuracy === a.scores.accuracy && b.scores.balancedAccuracy > a.scores.balancedAccuracy)
      ? b
      : a,
  );
  const tied = eligible.filter((c) => {
    if (c === best) return true;
    const d = pairedDifference(best.scores, c.scores);
    return d.mean <= TIE_STANDARD_ERRORS * d.standardError;
  });
  const cost = (c: RankedCandidate) => c.msPerImage ?? Infinity;
  const pick = tied.reduce((a, b) =>
    cost(b) < cost(a) || (cost(b) === cost(a) && b.scores.accuracy > a.scores.accuracy) ? b : a,
  );
  const name = (c: RankedCandidate) => c.label ?? c.backbone;
  let reason: string;
  if (pick === best) {
    reason = `${name(best)} is the most accurate within the budgets (${pct(best.scores.accuracy)} held-out accuracy${
      tied.length > 1
        ? `; tied with ${tied
            .filter((c) => c !== best)
            .map(name)
            .join(', ')}, and no slower than them`
        : ''
    }).`;
  } else {
    const d = pairedDifference(best.scores, pick.scores);
    reason = `${name(pick)} (${pct(pick.scores.accuracy)}) is within ${TIE_STANDARD_ERRORS} standard error of the most accurate, ${name(best)} (${pct(best.scores.accuracy)}; ${points(d.mean).toFixed(1)} ± ${points(d.standardError).toFixed(1)} points), and faster (${pick.msPerImage?.toFixed(2)} against ${best.msPerImage?.toFixed(2) ?? 'unknown'} ms per image).`;
  }
  return { recommended: pick.backbone, mostAccurate: best.backbone, tied: tied.map((c) => c.backbone), rule, reason };
}

/** Spearman rank correlation with average ranks for ties (for checks of a selection against a validation set). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const ranks = (values: readonly number[]) => {
    const order = values.map((v, i) => ({ v, i })).sort((x, y) => x.v - y.v);
    const r = new Array<number>(values.length);
    for (let s = 0; s < order.length; ) {
      let e = s;
      while (e + 1 < order.length && order[e + 1]!.v === order[s]!.v) e++;
      for (let k = s; k <= e; k++) r[order[k]!.i] = (s + e) / 2 + 1;
      s = e + 1;
    }
    return r;
  };
  const ra = ranks(a);
  const rb = ranks(b);
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return da === 0 || db === 0 ? NaN : num / Math.sqrt(da * db);
}
