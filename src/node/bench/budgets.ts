import type { Budget } from './profile.js';
import type { BenchResults, BudgetVerdict, EndToEndRun, HeadRun, InferenceRun } from './results.js';

type Limit = Exclude<keyof Budget, 'name' | 'backbone' | 'provider' | 'batch'>;

interface MetricRule {
  comparison: '<=' | '>=';
  /** Which results the metric reads. */
  source: 'runs' | 'endToEnd' | 'heads';
  /** Speed figures are never judged on a software adapter. */
  speed: boolean;
  unit: string;
  read(item: InferenceRun | EndToEndRun | HeadRun): number | undefined;
}

const RULES: Record<Limit, MetricRule> = {
  p95LatencyMsPerImage: {
    comparison: '<=',
    source: 'runs',
    speed: true,
    unit: 'ms',
    read: (r) => (r as InferenceRun).latencyMsPerImage?.p95,
  },
  p95LatencyMsPerBatch: {
    comparison: '<=',
    source: 'runs',
    speed: true,
    unit: 'ms',
    read: (r) => (r as InferenceRun).latencyMsPerBatch?.p95,
  },
  minImagesPerSecond: {
    comparison: '>=',
    source: 'runs',
    speed: true,
    unit: 'images/s',
    read: (r) => (r as InferenceRun).imagesPerSecond,
  },
  maxPeakMemoryMb: {
    comparison: '<=',
    source: 'runs',
    speed: false,
    unit: 'MB',
    read: (r) => (r as InferenceRun).memory?.peakRssMb,
  },
  minEndToEndImagesPerSecond: {
    comparison: '>=',
    source: 'endToEnd',
    speed: true,
    unit: 'images/s',
    read: (r) => (r as EndToEndRun).imagesPerSecond,
  },
  minPipelineEfficiency: {
    comparison: '>=',
    source: 'endToEnd',
    speed: true,
    unit: '',
    read: (r) => (r as EndToEndRun).efficiency,
  },
  maxHeadTrainSeconds: {
    comparison: '<=',
    source: 'heads',
    speed: false,
    unit: 's',
    read: (r) => (r as HeadRun).trainSecondsMedian,
  },
  minOutputCosine: {
    comparison: '>=',
    source: 'runs',
    speed: false,
    unit: '',
    read: (r) => (r as InferenceRun).correctness?.minCosine,
  },
};

export const BUDGET_LIMITS = Object.keys(RULES) as Limit[];

function matchesBackbone(budget: Budget, reference: string, id: string): boolean {
  return budget.backbone === undefined || budget.backbone === reference || budget.backbone === id;
}

/**
 * One verdict per (budget limit, matching measured item). A limit that matches nothing measured is
 * `not-measured`; a speed limit on a software adapter is `not-applicable` (timings there are no speed claim).
 */
export function evaluateBudgets(
  budgets: Budget[],
  results: Pick<BenchResults, 'runs' | 'endToEnd' | 'heads'>,
): BudgetVerdict[] {
  const verdicts: BudgetVerdict[] = [];
  for (const budget of budgets) {
    for (const metric of BUDGET_LIMITS) {
      const limit = budget[metric];
      if (limit === undefined) continue;
      const rule = RULES[metric];
      const candidates: Array<{ id: string; item: InferenceRun | EndToEndRun | HeadRun; speedClaim: boolean }> = [];
      if (rule.source === 'runs') {
        for (const run of results.runs) {
          if (!matchesBackbone(budget, run.backbone.reference, run.backbone.id)) continue;
          if (budget.provider !== undefined && run.providerRequested !== budget.provider) continue;
          if (budget.batch !== undefined && run.batch !== budget.batch) continue;
          candidates.push({ id: run.id, item: run, speedClaim: run.speedClaim });
        }
      } else if (rule.source === 'endToEnd') {
        for (const run of results.endToEnd) {
          if (budget.backbone !== undefined && budget.backbone !== run.backbone) continue;
          if (budget.provider !== undefined && run.provider !== budget.provider) continue;
          if (budget.batch !== undefined && run.batch !== budget.batch) continue;
          candidates.push({ id: run.id, item: run, speedClaim: run.speedClaim });
        }
      } else {
        for (const head of results.heads) candidates.push({ id: `head/${head.type}`, item: head, speedClaim: true });
      }
      let judged = 0;
      for (const candidate of candidates) {
        const value = rule.read(candidate.item);
        if (value === undefined || !Number.isFinite(value)) continue;
        judged++;
        if (rule.speed && !candidate.speedClaim) {
          verdicts.push({
            budget: budget.name,
            run: candidate.id,
            metric,
            limit,
            comparison: rule.comparison,
            value,
            status: 'not-applicable',
            note: 'software adapter or correctness-only run: timings are not a speed claim',
          });
          continue;
        }
        const passed = rule.comparison === '<=' ? value <= limit : value >= limit;
        verdicts.push({
          budget: budget.name,
          run: candidate.id,
          metric,
          limit,
          comparison: rule.comparison,
          value,
          status: passed ? 'pass' : 'fail',
        });
      }
      if (judged === 0) {
        verdicts.push({
          budget: budget.name,
          metric,
          limit,
          comparison: rule.comparison,
          status: 'not-measured',
          note:
            candidates.length === 0
              ? 'no measured run matches this budget'
              : 'the matching runs have no figure for this metric',
        });
      }
    }
  }
  return verdicts;
}

export function failedVerdicts(verdicts: BudgetVerdict[]): BudgetVerdict[] {
  return verdicts.filter((v) => v.status === 'fail');
}
