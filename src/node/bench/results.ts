import { readFileSync } from 'node:fs';
import type {
  ExecutionProviderName,
  ExecutionProviderRequest,
  ProviderFallback,
  AdapterInfo,
} from '../../core/execution/types.js';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import type { HostFacts } from './host.js';
import {
  assertSupportedSchema,
  formatViolations,
  validateJson,
  type JsonSchema,
} from '../../core/bench/json-schema.js';
import { resultsSchemaPath } from './paths.js';
import type { Budget, DeviceProfile } from './profile.js';
import type { NoiseEstimate, SampleSummary } from '../../core/bench/stats.js';

export const RESULTS_SCHEMA = 'edgetl-bench/1';

export type RunStatus = 'ok' | 'short' | 'interrupted' | 'skipped' | 'unavailable' | 'failed';

export interface BackboneFacts {
  /** What the profile asked for (catalog id or path). */
  reference: string;
  id: string;
  /** The source model file and its sha256. */
  path: string;
  sha256: string;
  modelBytes: number;
  /** The model actually run: the feature extractor edgetl derives from the source (classifier removed). */
  runPath: string;
  runBytes: number;
  inputName?: string;
  outputName?: string;
  inputDims?: number[];
  embeddingDim?: number;
  /** Multiply-accumulates per image of the source graph (Conv, Gemm, MatMul), from the graph. */
  macsPerImage?: number;
  /** "dynamic" or the fixed batch size. */
  batch: 'dynamic' | number;
  quantization?: string;
}

export interface ProviderFacts {
  requested: ExecutionProviderRequest;
  used: ExecutionProviderName;
  fallbacks: ProviderFallback[];
  adapter?: AdapterInfo;
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: string;
  /** True when the adapter is a software one: the run's timings are not speed figures. */
  software: boolean;
  /** What the execution layer reported about the session (e.g. nodes a provider leaves to the CPU). */
  notes?: string[];
}

export interface MemoryFacts {
  /** Resident set size just before the session was created, MB. */
  rssBeforeMb: number;
  /** Highest resident set size sampled from session creation to the end of the run, MB (process-wide). */
  peakRssMb: number;
  /** peakRssMb - rssBeforeMb: what this backbone and provider added. */
  addedMb: number;
}

export interface CorrectnessCheck {
  reference: 'cpu';
  /** Lowest cosine similarity between this provider's output rows and the CPU provider's on the same input. */
  minCosine: number;
  maxAbsDifference: number;
  rows: number;
}

/** The fastest session of a run and the noise stated on its median (see `bestSessionFigure` in stats.ts). */
export interface BestSession {
  /** Its index among the run's sessions, and how many there were. */
  session: number;
  sessions: number;
  samples: number;
  medianMsPerBatch: number;
  medianMsPerImage: number;
  imagesPerSecond: number;
  achievedGflops?: number;
  noise: {
    /** Half-width of the 95% bootstrap interval of its median, relative. */
    intervalHalfWidth: number;
    /** Half the gap to the second-fastest session's median, relative. */
    gapHalfWidth: number;
    /** The profile's noise floor, when it set the stated noise higher than the two measured terms. */
    floor?: number;
    /** The larger of the two: the stated noise of this figure. */
    relative: number;
  };
}

/** One backbone x provider x batch size. */
export interface InferenceRun {
  id: string;
  backbone: BackboneFacts;
  provider?: ProviderFacts;
  providerRequested: ExecutionProviderName;
  batch: number;
  status: RunStatus;
  /** Why the run is not `ok`. */
  reason?: string;
  sessionCreateMs?: number;
  firstRunMs?: number;
  warmupRuns?: number;
  /** Per-batch latency of the timed runs, in time order (ms). */
  samplesMs?: number[];
  measuredMs?: number;
  latencyMsPerBatch?: SampleSummary;
  latencyMsPerImage?: SampleSummary;
  /** batch * timed runs / time spent in them. */
  imagesPerSecond?: number;
  /** 2 * MACs per image * images/s / 1e9. */
  achievedGflops?: number;
  noise?: NoiseEstimate;
  /** Timed samples of each fresh session, in the order they ran: samplesMs is their concatenation. */
  sessionSampleCounts?: number[];
  /** When each session began, seconds since the benchmark started: every run's sessions spread over the whole run. */
  sessionStartSeconds?: number[];
  /** The fastest session: the run's most repeatable figure, the one `bench compare` and the raw loop check. */
  bestSession?: BestSession;
  memory?: MemoryFacts;
  correctness?: CorrectnessCheck;
  /** False for software adapters and correctness profiles: timings are recorded, never claimed as speed. */
  speedClaim: boolean;
}

export interface PreprocessRun {
  backbone: string;
  spec: string;
  images: number;
  source: string;
  status: RunStatus;
  reason?: string;
  /** Decode + resize + normalize of one image at a time (ms). */
  msPerImage?: SampleSummary;
  /** With `concurrency` images in flight (the whole machine). */
  imagesPerSecond?: number;
  concurrency?: number;
}

export interface EndToEndRun {
  id: string;
  backbone: string;
  provider: ExecutionProviderName;
  batch: number;
  status: RunStatus;
  reason?: string;
  images?: number;
  repeats?: number;
  /** Seconds of each pass, image files to embeddings. */
  passSeconds?: number[];
  imagesPerSecond?: number;
  preprocessImagesPerSecond?: number;
  /** Inference alone at this batch size: the fastest session of the matching run (images/s). */
  inferenceImagesPerSecond?: number;
  /** 1 / (1 / preprocess + 1 / inference): both stages one after the other, each using the whole machine. */
  idealImagesPerSecond?: number;
  /** imagesPerSecond / idealImagesPerSecond. */
  efficiency?: number;
  speedClaim: boolean;
}

export interface HeadRun {
  type: string;
  samples: number;
  dim: number;
  classes: number;
  status: RunStatus;
  reason?: string;
  trainSeconds?: number[];
  trainSecondsMedian?: number;
  /** Training-set accuracy on the synthetic classes: shows the head learned, not a quality claim. */
  trainAccuracy?: number;
  predictMsPerEmbedding?: SampleSummary;
}

export type VerdictStatus = 'pass' | 'fail' | 'not-measured' | 'not-applicable';

export interface BudgetVerdict {
  budget: string;
  /** Run id (or head type) the verdict is about; absent when nothing matched. */
  run?: string;
  metric: string;
  limit: number;
  comparison: '<=' | '>=';
  value?: number;
  status: VerdictStatus;
  note?: string;
}

export interface BenchResults {
  schema: typeof RESULTS_SCHEMA;
  complete: boolean;
  incompleteReason?: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  profile: { name: string; file: string; sha256: string; deviceClass: string; purpose: string; content: DeviceProfile };
  host: HostFacts;
  method: {
    warmupRuns: number;
    minRuns: number;
    minDurationMs: number;
    maxDurationMs: number;
    seed: number;
    percentiles: string;
    noise: string;
    timing: string;
    /** How the best-session figure and its noise are derived (absent in files written before it existed). */
    bestSession?: string;
    memory: string;
  };
  imageSource: string;
  runs: InferenceRun[];
  preprocess: PreprocessRun[];
  endToEnd: EndToEndRun[];
  heads: HeadRun[];
  budgets: BudgetVerdict[];
  /** Host load average at the end: compare with host.loadAverage to see if the machine was busy. */
  loadAverageAtEnd: number[];
  warnings: string[];
}

let cachedSchema: JsonSchema | undefined;

export function resultsSchema(): JsonSchema {
  if (cachedSchema) return cachedSchema;
  const path = resultsSchemaPath();
  const schema = JSON.parse(readFileSync(path, 'utf8')) as JsonSchema;
  assertSupportedSchema(schema);
  cachedSchema = schema;
  return schema;
}

/** Reads and validates a results file (for `bench compare`). */
export function loadResults(file: string): BenchResults {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new EdgetlError('results-unreadable', `cannot read bench results ${file}: ${describeError(error)}`, { file });
  }
  const schema = (value as { schema?: unknown } | null)?.schema;
  if (schema !== RESULTS_SCHEMA) {
    throw new EdgetlError(
      'results-invalid',
      `${file} is not an edgetl bench results file: schema is ${JSON.stringify(schema)}, expected "${RESULTS_SCHEMA}"`,
      { file },
    );
  }
  const violations = validateJson(value, resultsSchema());
  if (violations.length > 0)
    throw new EdgetlError('results-invalid', `bench results ${file} are invalid: ${formatViolations(violations)}`, {
      file,
    });
  return value as BenchResults;
}

export type { Budget };
