import type { DenseMath } from './dense-math.js';
import { type LabelledMatrix, selectRows, stratifiedFolds } from './data.js';
import { crossEntropyWithGradient } from './softmax.js';
import { minimizeLbfgs } from './lbfgs.js';
import { type LinearCurvature, curvatureAt } from './curvature.js';
import { productColumns, solvesAsTwoClass, twoClassProblem } from './two-class.js';
import { accuracy, logLoss } from './metrics.js';
import { inverseCurvature, type SpectralPreconditioner } from './preconditioner.js';
import {
  directProducts,
  SHARED_PRODUCTS_MAX_CLASSES,
  SharedMatrixProducts,
  type LinearProducts,
  type ProductLane,
} from './shared-products.js';

/** Weights of a multinomial logistic regression: logits = weight . x + bias, weight [classes, dim]. */
export interface LinearParameters {
  weight: Float32Array;
  bias: Float32Array;
}

export interface SoftmaxRegressionOptions {
  /** L2 strength on the mean loss: objective = mean_w CE + l2/2 * ||W||^2 (scikit-learn's C = 1 / (l2 * rows)). */
  l2: number;
  math: DenseMath;
  sampleWeights?: Float32Array;
  maxIterations?: number;
  gradientTolerance?: number;
  relativeTolerance?: number;
  /** Warm start: flat [weight (classes*dim), bias (classes)]. */
  start?: Float64Array;
  /** The warm start's fit's curvature (its `curvature`): L-BFGS starts from it, moved to this fit's `l2`. */
  curvature?: LinearCurvature;
  /** Shapes L-BFGS's initial inverse Hessian (see preconditioner.ts); the objective and its optimum are unchanged. */
  preconditioner?: SpectralPreconditioner;
  /** Where the two products over `matrix.data` run (default: `math`, one at a time; see shared-products.ts). */
  products?: LinearProducts;
}

export interface SoftmaxRegressionFit extends LinearParameters {
  flat: Float64Array;
  /** The solver's curvature at the end: a warm start's `curvature` for a neighbouring fit. */
  curvature: LinearCurvature;
  /** Logits of every row of the matrix at the returned weights (from the evaluation there), bias included. */
  logits: Float32Array;
  iterations: number;
  evaluations: number;
  converged: boolean;
  objective: number;
}

export function unpackLinear(flat: Float64Array, classes: number, dim: number): LinearParameters {
  return {
    weight: Float32Array.from(flat.subarray(0, classes * dim)),
    bias: Float32Array.from(flat.subarray(classes * dim)),
  };
}

/** logits [rows, classes] = data . weight^T + bias. */
export async function linearLogits(
  data: Float32Array,
  rows: number,
  dim: number,
  params: LinearParameters,
  math: DenseMath,
): Promise<Float32Array> {
  const classes = params.bias.length;
  return addBias(await math.gemm(data, params.weight, rows, dim, classes, false, true), params.bias, rows);
}

/** logits [rows, classes] += bias, in place. */
function addBias(logits: Float32Array, bias: Float32Array, rows: number): Float32Array {
  const classes = bias.length;
  for (let r = 0; r < rows; r++) {
    const o = r * classes;
    for (let c = 0; c < classes; c++) logits[o + c] += bias[c];
  }
  return logits;
}

/**
 * What L-BFGS solves for one linear fit, in the problem's own variables, and how a point maps back to the softmax
 * layout. The general problem has a weight row per class; the two-class one a single weight difference
 * (two-class.ts). Both are run by `fitLinear`, with one set of solver defaults.
 */
export interface LinearProblem {
  /** Value and gradient at x, and the logits there in the problem's own layout. */
  evaluate(x: Float64Array): Promise<{ value: number; gradient: Float64Array; logits: Float32Array }>;
  start: Float64Array;
  precondition?: (vector: Float64Array) => Promise<void>;
  /** How the L2 penalty enters the curvature pairs (see LinearCurvature). */
  penaltyCurvature: number;
  penalized: number;
  /** The softmax-layout weights [weight, bias] and [rows, classes] logits of x, from its logits. */
  toSoftmax(x: Float64Array, logits: Float32Array): { flat: Float64Array; logits: Float32Array };
}

/** Solves `problem` by L-BFGS (warm-started from `options.curvature` when given) and returns it as a softmax fit. */
async function fitLinear(
  matrix: LabelledMatrix,
  options: SoftmaxRegressionOptions,
  problem: LinearProblem,
): Promise<SoftmaxRegressionFit> {
  // logits of each evaluated point, so the returned point's need no extra product (dropped with the point)
  const evaluated = new WeakMap<Float64Array, Float32Array>();
  const objective = async (x: Float64Array) => {
    const { value, gradient, logits } = await problem.evaluate(x);
    evaluated.set(x, logits);
    return { value, gradient };
  };
  const { l2 } = options;
  const result = await minimizeLbfgs(objective, problem.start, {
    maxIterations: options.maxIterations ?? 500,
    gradientTolerance: options.gradientTolerance ?? 1e-5,
    relativeTolerance: options.relativeTolerance ?? 1e-9,
    precondition: problem.precondition,
    initialPairs: options.curvature ? curvatureAt(options.curvature, l2) : undefined,
  });
  // minimizeLbfgs returns a point it evaluated: the start or an accepted step
  const logits = evaluated.get(result.x);
  if (!logits) throw new Error('internal: the linear solver returned a point it never evaluated');
  const softmax = problem.toSoftmax(result.x, logits);
  return {
    ...unpackLinear(softmax.flat, matrix.classCount, matrix.dim),
    flat: softmax.flat,
    logits: softmax.logits,
    curvature: { pairs: result.pairs, l2, penaltyCurvature: problem.penaltyCurvature, penalized: problem.penalized },
    iterations: result.iterations,
    evaluations: result.evaluations,
    converged: result.converged,
    objective: result.value,
  };
}

/**
 * Full-batch L-BFGS fit of L2-regularized multinomial logistic regression (bias not regularized). Two classes
 * without a preconditioner are solved as one logistic regression, the same optimum (two-class.ts).
 */
export function fitSoftmaxRegression(
  matrix: LabelledMatrix,
  options: SoftmaxRegressionOptions,
): Promise<SoftmaxRegressionFit> {
  return fitLinear(
    matrix,
    options,
    solvesAsTwoClass(matrix.classCount, options)
      ? twoClassProblem(matrix, options)
      : multinomialProblem(matrix, options),
  );
}

/** fitSoftmaxRegression on the general problem whatever the class count (to compare the two-class one with). */
export function fitMultinomialRegression(
  matrix: LabelledMatrix,
  options: SoftmaxRegressionOptions,
): Promise<SoftmaxRegressionFit> {
  return fitLinear(matrix, options, multinomialProblem(matrix, options));
}

/** The general problem: every class's weight row a variable, flat [weight (classes*dim), bias (classes)]. */
function multinomialProblem(matrix: LabelledMatrix, options: SoftmaxRegressionOptions): LinearProblem {
  const { rows, dim, classCount: classes, data, targets } = matrix;
  const { math, l2 } = options;
  const products = options.products ?? directProducts(math, data, rows, dim, classes);
  const size = classes * dim;
  const gradLogits = new Float32Array(rows * classes);
  return {
    async evaluate(flat) {
      const params = unpackLinear(flat, classes, dim);
      const logits = addBias(await products.logits(params.weight), params.bias, rows);
      let value = crossEntropyWithGradient(logits, targets, options.sampleWeights, rows, classes, gradLogits);
      const gradWeight = await products.weightGradient(gradLogits);
      const gradient = new Float64Array(size + classes);
      let norm = 0;
      for (let i = 0; i < size; i++) {
        const w = flat[i];
        norm += w * w;
        gradient[i] = gradWeight[i] + l2 * w;
      }
      value += 0.5 * l2 * norm;
      for (let r = 0; r < rows; r++) {
        const o = r * classes;
        for (let c = 0; c < classes; c++) gradient[size + c] += gradLogits[o + c];
      }
      return { value, gradient, logits };
    },
    start: options.start ?? new Float64Array(size + classes),
    precondition: options.preconditioner ? inverseCurvature(options.preconditioner, classes, l2, math) : undefined,
    penaltyCurvature: 1,
    penalized: size,
    toSoftmax: (flat, logits) => ({ flat, logits }),
  };
}

export interface L2SearchOptions {
  math: DenseMath;
  folds: number;
  seed: number;
  sampleWeights?: Float32Array;
  /** Rows sharing a group id stay in the same fold (augmented views of one image). */
  groups?: ArrayLike<number>;
  /** Strongest to weakest candidate (mean-loss units). Default decades 100 .. 1e-6, then half-decade refinement. */
  grid?: number[];
  /** Iteration cap per candidate and fold (warm-started, so few are needed). */
  maxIterations?: number;
  /**
   * How candidates are ranked on the held-out folds. `accuracy` (default, as scikit-learn's LogisticRegressionCV
   * and the CLIP protocol) breaks ties by the held-out log loss, and perfect scores by the stronger regularization;
   * `logLoss` is smooth and proper, so a single lucky row on a small fold cannot decide.
   */
  criterion?: L2Criterion;
  /** Where the walk over the default grid starts (a decade from 100 to 1e-6; default DEFAULT_L2_START). */
  start?: number;
  /** For every fit of the sweep (see SoftmaxRegressionOptions.preconditioner). */
  preconditioner?: SpectralPreconditioner;
  /**
   * Fit the folds on the whole matrix with their products stacked (shared-products.ts). Default: with at most
   * SHARED_PRODUCTS_MAX_CLASSES classes, where it is faster; the chosen strength is the same either way.
   */
  stackFolds?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface L2Candidate {
  l2: number;
  accuracy: number;
  logLoss: number;
  iterations: number;
}

export interface L2SearchResult {
  /** Chosen strength for the fold size; see `refitL2` for the full training set. */
  l2: number;
  candidates: L2Candidate[];
  /** Logits of every training row from the fold model that did not see it, at the chosen strength. */
  outOfFoldLogits: Float32Array;
  /** Mean of the fold solutions at the chosen strength: a warm start for the final fit. */
  warmStart: Float64Array;
  /** The first fold's curvature at the chosen strength: the final fit's solver starts from it. */
  warmCurvature?: LinearCurvature;
  folds: number;
  /** The rows each fold held out (sorted), in fold order. */
  heldOutFolds: number[][];
}

export type L2Criterion = 'logLoss' | 'accuracy';

/**
 * The L2 sweep's first candidate. With the preconditioned solver, 1e-3 (C about 1.5 for 700 rows per fold) costs a
 * third of the iterations 1e-2 did on 102-class embeddings at the same held-out accuracy, and picks the same or a
 * better strength on the shared sets (bench/results/2026-12-01/heads-vs-sklearn.md). Walks go both ways from it.
 */
export const DEFAULT_L2_START = 1e-3;
/**
 * Without the preconditioner (two classes by default) the sweep starts at 1: on the ten 2-class pairs of flowers5
 * (1,181-1,625 rows, MobileNetV2-int8) it picked the same strength as from 1e-2 on 7 pairs, and its val accuracy was
 * 0.8899 on average against 0.8880 from 1e-2 (one pair 0.3 points lower, two 0.3 and 2.0 higher), with 6 candidates
 * instead of 6-8 and 10% less time; hymenoptera and the synthetic 2-class set pick the same strength either way
 * (bench/results/2026-12-01/throughput/heads-pairs.md).
 */
export const UNPRECONDITIONED_L2_START = 1;

function isBetter(a: L2Candidate, b: L2Candidate, criterion: L2Criterion): boolean {
  if (criterion === 'accuracy') {
    if (Math.abs(a.accuracy - b.accuracy) > 1e-9) return a.accuracy > b.accuracy;
    // Equally accurate: the held-out log loss, which scores the same predictions finer, unless both are perfect (a
    // separable set, where the weaker the strength the lower the loss, and the walk would go down the whole grid).
    if (a.accuracy < 1 - 1e-9 && Math.abs(a.logLoss - b.logLoss) > 1e-9) return a.logLoss < b.logLoss;
    // the stronger regularization, the simpler model
    return a.l2 > b.l2;
  }
  if (Math.abs(a.logLoss - b.logLoss) > 1e-9) return a.logLoss < b.logLoss;
  return a.accuracy > b.accuracy;
}

/**
 * How far each sweep fit is solved: enough to rank the candidates, not to ship (the final fit goes to 1e-5). Few
 * classes on many rows tolerate looser fits: on the ten 2-class pairs of flowers5, 3e-4 / 1e-5 gave a mean val
 * accuracy of 0.8910 against 0.8897 at 1e-4 / 1e-6, in 18% less time; many classes do not (on 102 classes a looser
 * sweep lost 8 points, bench/results/2026-12-01/quiet).
 */
const SWEEP_TOLERANCE = { gradientTolerance: 1e-4, relativeTolerance: 1e-6 };
/**
 * Small sets keep the tight sweep: they are cheap to fit (hymenoptera's 244 rows train in ~40 ms), and their
 * held-out accuracy moves in steps of one photo, where a looser fit can flip a tie (hymenoptera picked a 3x stronger
 * L2 and lost one val photo of 153).
 */
const LOOSE_SWEEP_MIN_ROWS = 1000;
const FEW_CLASS_SWEEP_TOLERANCE = { gradientTolerance: 3e-4, relativeTolerance: 1e-5 };

/**
 * A neighbouring strength's solution as a warm start, its weights scaled by the factor that minimizes the new
 * objective along them (bias kept). A stronger L2 mostly shrinks the weights and a weaker one grows them, so the
 * scale alone takes up most of the move; it costs no product, because logits scale with the weights. Newton steps
 * on a convex function of one variable, from a scale of 1.
 */
export function rescaledWarmStart(
  start: Float64Array,
  logits: Float32Array,
  matrix: LabelledMatrix,
  weights: Float32Array | undefined,
  l2: number,
): Float64Array {
  const { rows, classCount: classes, targets, dim } = matrix;
  const size = classes * dim;
  let squaredNorm = 0;
  for (let i = 0; i < size; i++) squaredNorm += start[i] * start[i];
  if (!(squaredNorm > 0)) return start;
  let weightSum = 0;
  for (let r = 0; r < rows; r++) weightSum += weights ? weights[r] : 1;
  const bias = start.subarray(size);
  const p = new Float64Array(classes);
  let scale = 1;
  for (let step = 0; step < 8; step++) {
    let slope = l2 * scale * squaredNorm;
    let curvature = l2 * squaredNorm;
    for (let r = 0; r < rows; r++) {
      const w = (weights ? weights[r] : 1) / weightSum;
      if (w === 0) continue;
      const o = r * classes;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        p[c] = scale * (logits[o + c] - bias[c]) + bias[c];
        if (p[c] > max) max = p[c];
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        p[c] = Math.exp(p[c] - max);
        sum += p[c];
      }
      let meanZ = 0;
      let meanZ2 = 0;
      for (let c = 0; c < classes; c++) {
        const z = logits[o + c] - bias[c];
        const q = p[c] / sum;
        meanZ += q * z;
        meanZ2 += q * z * z;
      }
      slope += w * (meanZ - (logits[o + targets[r]] - bias[targets[r]]));
      curvature += w * (meanZ2 - meanZ * meanZ);
    }
    const next = Math.min(20, Math.max(0.05, scale - slope / curvature));
    const moved = Math.abs(next - scale);
    scale = next;
    if (moved < 1e-3 * scale) break;
  }
  const out = Float64Array.from(start);
  for (let i = 0; i < size; i++) out[i] *= scale;
  return out;
}

/** A fold's fit at one strength: its weights, and with few classes its logits on the fold's training matrix. */
interface FoldSolution {
  flat: Float64Array;
  trainLogits?: Float32Array;
  curvature?: LinearCurvature;
}

/** A strength to fit every fold at, and each fold's warm start (a neighbouring strength's solution). */
interface StrengthRequest {
  l2: number;
  starts: (FoldSolution | undefined)[];
}

/** One cross-validation fold: the rows its model trains on (with weights), the rows it is scored on. */
interface Fold {
  heldOut: number[];
  train: LabelledMatrix;
  weights: Float32Array | undefined;
  validationTargets: Int32Array;
  /** The held-out rows themselves, when the fold's model does not see the whole matrix. */
  validation?: LabelledMatrix;
}

/** The fold on its own copy of its training rows. */
function ownFold(matrix: LabelledMatrix, heldOut: number[], sampleWeights: Float32Array | undefined): Fold {
  const inFold = new Uint8Array(matrix.rows);
  for (const i of heldOut) inFold[i] = 1;
  const train: number[] = [];
  for (let i = 0; i < matrix.rows; i++) if (!inFold[i]) train.push(i);
  const validation = selectRows(matrix, heldOut);
  return {
    heldOut,
    train: selectRows(matrix, train),
    weights: sampleWeights ? Float32Array.from(train, (i) => sampleWeights[i]) : undefined,
    validationTargets: validation.targets,
    validation,
  };
}

/**
 * The fold on the whole matrix, its held-out rows weighted 0: the same weighted-mean objective as on a copy of
 * its training rows (crossEntropyWithGradient divides by the weights' sum), so the same optimum.
 */
function sharedFold(matrix: LabelledMatrix, heldOut: number[], sampleWeights: Float32Array | undefined): Fold {
  const weights = sampleWeights ? Float32Array.from(sampleWeights) : new Float32Array(matrix.rows).fill(1);
  for (const i of heldOut) weights[i] = 0;
  return { heldOut, train: matrix, weights, validationTargets: Int32Array.from(heldOut, (i) => matrix.targets[i]) };
}

/** The rows `heldOut` of logits [rows, classes]. */
function heldOutLogits(logits: Float32Array, heldOut: number[], classes: number): Float32Array {
  const out = new Float32Array(heldOut.length * classes);
  heldOut.forEach((row, r) => out.set(logits.subarray(row * classes, (row + 1) * classes), r * classes));
  return out;
}

/**
 * Choose the L2 strength by stratified k-fold cross-validation on the training rows only (the CLIP linear-probe
 * protocol: a log-spaced sweep by decades, then half-decade refinement around the best). Each fold is
 * warm-started from its solution at the neighbouring strength, and the walk towards weaker regularization stops
 * once two candidates in a row are worse than the best, so few candidates need many iterations.
 * Candidates are ranked by mean held-out accuracy by default (see `criterion`).
 */
export async function searchL2(matrix: LabelledMatrix, options: L2SearchOptions): Promise<L2SearchResult> {
  const { classCount: classes, dim } = matrix;
  const foldCount = options.folds;
  const heldOutFolds = stratifiedFolds(matrix.targets, classes, foldCount, options.seed, options.groups);
  // Few classes: every fold fits on the whole matrix with its held-out rows weighted 0, and the folds' products are
  // stacked into one (see shared-products.ts). More: each fold gets its own copy of its rows.
  const fewClasses = classes <= SHARED_PRODUCTS_MAX_CLASSES;
  const shared =
    (options.stackFolds ?? fewClasses)
      ? new SharedMatrixProducts(options.math, matrix.data, matrix.rows, dim, productColumns(classes, options))
      : undefined;
  const tolerance = fewClasses && matrix.rows >= LOOSE_SWEEP_MIN_ROWS ? FEW_CLASS_SWEEP_TOLERANCE : SWEEP_TOLERANCE;
  const folds = heldOutFolds.map((heldOut) =>
    shared ? sharedFold(matrix, heldOut, options.sampleWeights) : ownFold(matrix, heldOut, options.sampleWeights),
  );
  const coarse = options.grid ?? [1e2, 1e1, 1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
  const maxIterations = options.maxIterations ?? 60;
  const candidates: L2Candidate[] = [];
  const solutions = new Map<number, FoldSolution[]>();
  const validationLogits = new Map<number, Float32Array[]>();
  const criterion = options.criterion ?? 'accuracy';
  const better = (a: L2Candidate, b: L2Candidate) => isBetter(a, b, criterion);
  // Ranked by accuracy, a candidate that scores every held-out row right can only be tied by a weaker one, and a
  // perfect tie goes to the stronger: weaker candidates need not be fitted at all (separable sets stop at once).
  const unbeatableByWeaker = (candidate: L2Candidate) => criterion === 'accuracy' && candidate.accuracy >= 1 - 1e-9;
  let done = 0;
  const total = (coarse.length + 2) * foldCount;

  // A neighbouring strength's solution, rescaled with the logits its fit's last evaluation left (no extra product).
  // Few classes only: on the synthetic 102-class set the rescaled starts led the preconditioned sweep to a worse
  // strength (val 0.906 against 0.962), while on 2 classes they cut the sweep's iterations by 15% at the same choices.
  const warmStartFrom = (start: FoldSolution | undefined, fold: Fold, l2: number) =>
    start?.trainLogits ? rescaledWarmStart(start.flat, start.trainLogits, fold.train, fold.weights, l2) : start?.flat;

  /** One strength's folds, fitted on the lanes given (one per fold; none without stacked products). */
  const fitStrength = async (
    { l2, starts }: StrengthRequest,
    lanes: (ProductLane | undefined)[],
  ): Promise<L2Candidate> => {
    let correct = 0;
    let lossSum = 0;
    let count = 0;
    let iterations = 0;
    // Folds run concurrently: while one fold's L-BFGS bookkeeping runs in JS, another's products run on the
    // DenseMath backend's threads (onnxruntime), or all folds' products run as one. Results are order-independent.
    const fits = await Promise.all(
      folds.map(async (fold, f) => {
        const lane = lanes[f];
        try {
          const fit = await fitSoftmaxRegression(fold.train, {
            l2,
            math: options.math,
            sampleWeights: fold.weights,
            start: warmStartFrom(starts[f], fold, l2),
            curvature: starts[f]?.curvature,
            preconditioner: options.preconditioner,
            maxIterations,
            ...tolerance,
            products: lane,
          });
          // on the whole matrix, the last evaluation already scored the held-out rows
          const logits = lane
            ? heldOutLogits(fit.logits, fold.heldOut, classes)
            : await linearLogits(fold.validation!.data, fold.heldOut.length, dim, fit, options.math);
          options.onProgress?.(++done, total);
          return { fit, logits };
        } finally {
          lane?.leave();
        }
      }),
    );
    const foldSolutions: FoldSolution[] = fits.map(({ fit }) => ({
      flat: fit.flat,
      curvature: fit.curvature,
      ...(fewClasses ? { trainLogits: fit.logits } : {}),
    }));
    const foldLogits = fits.map((r) => r.logits);
    fits.forEach(({ fit, logits }, f) => {
      const { validationTargets } = folds[f];
      const heldOutRows = validationTargets.length;
      iterations += fit.iterations;
      correct += accuracy(logits, validationTargets, classes) * heldOutRows;
      lossSum += logLoss(logits, validationTargets, classes) * heldOutRows;
      count += heldOutRows;
    });
    solutions.set(l2, foldSolutions);
    validationLogits.set(l2, foldLogits);
    return { l2, accuracy: correct / count, logLoss: lossSum / count, iterations };
  };
  /**
   * Strengths fitted at once: with stacked products their folds share every round (a round for 6 models costs about
   * what one for 3 does). Every lane joins before any fold asks, so the first round holds them all.
   */
  const evaluateTogether = (requests: StrengthRequest[]): Promise<L2Candidate[]> => {
    const lanes = requests.map(() => folds.map(() => shared?.join()));
    return Promise.all(requests.map((request, i) => fitStrength(request, lanes[i]!)));
  };
  const evaluate = async (l2: number, starts: (FoldSolution | undefined)[]): Promise<L2Candidate> =>
    (await evaluateTogether([{ l2, starts }]))[0]!;
  /** A candidate of the walk: listed in the summary, in the order the walk takes them. */
  const take = (candidate: L2Candidate): L2Candidate => {
    candidates.push(candidate);
    return candidate;
  };

  // Start in the middle of the grid, where standardized embeddings usually land, walk towards weaker
  // regularization until two candidates in a row are worse than the best; only if none beat the start, towards
  // stronger until one is worse (strong regularization costs the most iterations from a cold start).
  const startIndex = options.grid ? 0 : Math.max(0, coarse.indexOf(options.start ?? DEFAULT_L2_START));
  let best = take(
    await evaluate(
      coarse[startIndex],
      folds.map(() => undefined),
    ),
  );
  const startSolutions = solutions.get(best.l2)!;
  // With stacked products, the first step of both walks at once: the stronger one is needed only when the weaker walk
  // finds nothing better than the start, but beside it costs about no products (on 2,000 x 1,280 rows and 2 classes,
  // a fifth of the sweep's rounds). It is listed, and can win, only where the walk below takes it, as if fitted then.
  const weaker = startIndex + 1;
  const stronger = startIndex - 1;
  const speculate = shared && !options.grid && weaker < coarse.length && stronger >= 0 && !unbeatableByWeaker(best);
  const [weakerFirst, strongerFirst] = speculate
    ? await evaluateTogether([
        { l2: coarse[weaker], starts: startSolutions },
        { l2: coarse[stronger], starts: startSolutions },
      ])
    : [];
  let worseInARow = 0;
  let previous = startSolutions;
  for (let i = weaker; i < coarse.length && worseInARow < 2 && !unbeatableByWeaker(best); i++) {
    const candidate = take(i === weaker && weakerFirst ? weakerFirst : await evaluate(coarse[i], previous));
    previous = solutions.get(coarse[i])!;
    if (better(candidate, best)) {
      best = candidate;
      worseInARow = 0;
    } else {
      worseInARow++;
    }
  }
  previous = startSolutions;
  for (let i = stronger; i >= 0 && best.l2 >= coarse[startIndex]; i--) {
    const candidate = take(i === stronger && strongerFirst ? strongerFirst : await evaluate(coarse[i], previous));
    previous = solutions.get(coarse[i])!;
    if (!better(candidate, best)) break;
    best = candidate;
  }
  if (!options.grid) {
    // half a decade either side of the best, both from its solutions and at once; the weaker is not needed when the
    // best scores every held-out row right (it could only tie, and ties at a perfect score go to the stronger)
    const center = best;
    const sides = [center.l2 * Math.sqrt(10), center.l2 / Math.sqrt(10)].filter(
      (l2) => !(l2 < center.l2 && unbeatableByWeaker(center)),
    );
    const refined = await evaluateTogether(sides.map((l2) => ({ l2, starts: solutions.get(center.l2)! })));
    for (const candidate of refined) if (better(take(candidate), best)) best = candidate;
  }
  options.onProgress?.(total, total);

  const outOfFoldLogits = new Float32Array(matrix.rows * classes);
  const bestLogits = validationLogits.get(best.l2)!;
  folds.forEach((fold, f) => {
    fold.heldOut.forEach((row, r) =>
      outOfFoldLogits.set(bestLogits[f].subarray(r * classes, (r + 1) * classes), row * classes),
    );
  });
  const bestSolutions = solutions.get(best.l2)!;
  const warmStart = new Float64Array(bestSolutions[0].flat.length);
  for (const { flat } of bestSolutions)
    for (let i = 0; i < warmStart.length; i++) warmStart[i] += flat[i] / bestSolutions.length;
  return {
    l2: best.l2,
    candidates,
    outOfFoldLogits,
    warmStart,
    warmCurvature: bestSolutions[0].curvature,
    folds: foldCount,
    heldOutFolds: folds.map((fold) => fold.heldOut),
  };
}

/**
 * The strength for refitting on all rows: the chosen C = 1/(l2 * rows) is kept (as scikit-learn's
 * LogisticRegressionCV does), so the mean-loss l2 shrinks by the fold's share of the data.
 */
export function refitL2(l2: number, folds: number): number {
  return (l2 * (folds - 1)) / folds;
}
