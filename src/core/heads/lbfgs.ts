/** Value and gradient of the objective at x (the gradient may be written into a fresh array). */
export type Objective = (x: Float64Array) => Promise<{ value: number; gradient: Float64Array }>;

export interface LbfgsOptions {
  maxIterations: number;
  /** Stop when max |gradient| falls below this. */
  gradientTolerance: number;
  /** Stop when the relative decrease of the objective over one iteration falls below this. */
  relativeTolerance: number;
  memory?: number;
  /**
   * Initial inverse Hessian H0 (symmetric positive definite), applied in place; default the identity. L-BFGS
   * scales it by s'y / y'H0y each iteration. See heads/preconditioner.ts.
   */
  precondition?: (vector: Float64Array) => Promise<void>;
  /**
   * Curvature pairs to start from (a neighbouring problem's, see CurvaturePairs), oldest first; copied, not kept.
   * Pairs that fail the curvature condition are dropped.
   */
  initialPairs?: CurvaturePairs;
}

/**
 * Steps s and gradient changes y of an L-BFGS run, oldest first: its picture of the objective's curvature. Handed to
 * a warm-started run on a similar objective, they give its first step a scale: without them, the first step of a
 * run that starts near its optimum is a unit-length move along the gradient, which took 5-10 halvings.
 */
export interface CurvaturePairs {
  s: Float64Array[];
  y: Float64Array[];
}

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  /** The curvature pairs held at the end (copies are needed before changing them: see LbfgsOptions.initialPairs). */
  pairs: CurvaturePairs;
}

/** Four accumulators break the add dependency chain (about 3x faster in V8 on long vectors). */
function dot(a: Float64Array, b: Float64Array): number {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  const n = a.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return s0 + s1 + s2 + s3;
}

/** y += a * x */
function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += a * x[i];
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * The last `memory` curvature pairs (s = step, y = gradient change, rho = 1 / s'y). Buffers of the oldest pair are
 * reused once the history is full: these are ~10^5-long, allocating them is GC churn.
 */
class CurvatureHistory {
  readonly s: Float64Array[] = [];
  readonly y: Float64Array[] = [];
  readonly rho: number[] = [];

  constructor(
    private readonly memory: number,
    private readonly n: number,
  ) {}

  /** Seeds the history with copies of `pairs` (the newest `memory` of them that satisfy the curvature condition). */
  seed(pairs: CurvaturePairs): void {
    for (let i = Math.max(0, pairs.s.length - this.memory); i < pairs.s.length; i++) {
      const s = pairs.s[i]!;
      const y = pairs.y[i]!;
      if (s.length !== this.n || y.length !== this.n) continue;
      const sy = dot(s, y);
      if (!(sy > 1e-12 * Math.sqrt(dot(y, y) * dot(s, s)))) continue;
      this.s.push(Float64Array.from(s));
      this.y.push(Float64Array.from(y));
      this.rho.push(1 / sy);
    }
  }

  clear(): void {
    this.s.length = this.y.length = this.rho.length = 0;
  }

  private dropOldest(): void {
    this.s.shift();
    this.y.shift();
    this.rho.shift();
  }

  /** Records the step from (x, gradient) to `accepted`, when it satisfies the curvature condition. */
  record(x: Float64Array, gradient: Float64Array, accepted: { x: Float64Array; gradient: Float64Array }): void {
    const full = this.s.length === this.memory;
    const s = full ? this.s[0] : new Float64Array(this.n);
    const y = full ? this.y[0] : new Float64Array(this.n);
    for (let j = 0; j < this.n; j++) {
      s[j] = accepted.x[j] - x[j];
      y[j] = accepted.gradient[j] - gradient[j];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(y, y) * dot(s, s))) {
      if (full) this.dropOldest();
      this.s.push(s);
      this.y.push(y);
      this.rho.push(1 / sy);
    } else if (full) {
      // the pair was rejected but its buffers held the oldest pair: drop that pair too (its data is gone)
      this.dropOldest();
    }
  }
}

/** The two-loop recursion: -H g, with H0 the preconditioner (or the identity) scaled by s'y / y'H0y. */
async function searchDirection(
  history: CurvatureHistory,
  gradient: Float64Array,
  alpha: Float64Array,
  precondition: LbfgsOptions['precondition'],
): Promise<Float64Array> {
  // loops hoisted by hand: this runs on ~10^5-long vectors every iteration
  const n = gradient.length;
  const { s: sHistory, y: yHistory, rho: rhoHistory } = history;
  const direction = Float64Array.from(gradient);
  for (let i = sHistory.length - 1; i >= 0; i--) {
    const a = rhoHistory[i] * dot(sHistory[i], direction);
    alpha[i] = a;
    axpy(-a, yHistory[i], direction);
  }
  const last = sHistory.length - 1;
  let gamma: number;
  if (precondition) {
    await precondition(direction);
    if (last >= 0) {
      const py = Float64Array.from(yHistory[last]);
      await precondition(py);
      gamma = dot(sHistory[last], yHistory[last]) / dot(yHistory[last], py);
    } else {
      gamma = 1 / Math.max(1e-12, Math.sqrt(dot(direction, direction)));
    }
  } else {
    gamma =
      last >= 0
        ? dot(sHistory[last], yHistory[last]) / dot(yHistory[last], yHistory[last])
        : 1 / Math.max(1e-12, Math.sqrt(dot(gradient, gradient)));
  }
  for (let j = 0; j < n; j++) direction[j] *= -gamma;
  // direction now holds -H0 q; the second loop runs on the negated vector, so the signs flip
  for (let i = 0; i < sHistory.length; i++) {
    const beta = rhoHistory[i] * dot(yHistory[i], direction);
    axpy(-alpha[i] - beta, sHistory[i], direction);
  }
  return direction;
}

/**
 * Backtracking from a step of 1, halving up to 30 times, until the Armijo condition holds. Gives up, with no step,
 * when no step decreases the objective (at machine precision, the minimum), or when the largest decrease a shorter
 * step could bring, `step * -slope`, is below `negligible`: the run would count any such step as converged anyway,
 * and with float32 products the objective's rounding noise rejected 5-9 ever shorter trials there. (Quadratic
 * interpolation instead of halving saved a trial on 2 classes but cost 60% more products on the preconditioned
 * 102-class sweep.)
 */
async function backtrack(
  objective: Objective,
  x: Float64Array,
  value: number,
  direction: Float64Array,
  slope: number,
  negligible: number,
): Promise<{
  accepted?: { x: Float64Array; value: number; gradient: Float64Array };
  evaluations: number;
  /** Given up because no shorter step could bring a decrease worth taking. */
  negligible?: boolean;
}> {
  let step = 1;
  let evaluations = 0;
  for (let trial = 0; trial < 30; trial++) {
    if (trial > 0 && step * -slope < negligible) return { evaluations, negligible: true };
    const candidate = Float64Array.from(x);
    axpy(step, direction, candidate);
    const evaluated = await objective(candidate);
    evaluations++;
    if (Number.isFinite(evaluated.value) && evaluated.value <= value + 1e-4 * step * slope)
      return { accepted: { x: candidate, ...evaluated }, evaluations };
    step *= 0.5;
  }
  return { evaluations };
}

/**
 * Limited-memory BFGS with a backtracking Armijo line search. Meant for the smooth, strictly convex objectives of
 * L2-regularized heads, where the curvature condition holds at every accepted step (pairs that fail it are skipped).
 * Deterministic: no randomness, the same start gives the same iterates.
 */
export async function minimizeLbfgs(
  objective: Objective,
  start: Float64Array,
  options: LbfgsOptions,
): Promise<LbfgsResult> {
  const memory = options.memory ?? 10;
  const n = start.length;
  let x: Float64Array = Float64Array.from(start);
  let { value, gradient } = await objective(x);
  let evaluations = 1;
  const history = new CurvatureHistory(memory, n);
  if (options.initialPairs) history.seed(options.initialPairs);
  const alpha = new Float64Array(memory);
  let iterations = 0;
  let converged = maxAbs(gradient) <= options.gradientTolerance;

  while (!converged && iterations < options.maxIterations) {
    const direction = await searchDirection(history, gradient, alpha, options.precondition);
    let slope = dot(gradient, direction);
    if (!(slope < 0)) {
      // not a descent direction (numerical trouble): restart from steepest descent
      history.clear();
      const scale = 1 / Math.max(1e-12, Math.sqrt(dot(gradient, gradient)));
      for (let j = 0; j < n; j++) direction[j] = -gradient[j] * scale;
      slope = dot(gradient, direction);
    }
    const negligible = options.relativeTolerance * Math.max(1, Math.abs(value));
    const search = await backtrack(objective, x, value, direction, slope, negligible);
    const { accepted } = search;
    evaluations += search.evaluations;
    iterations++;
    if (!accepted) {
      // no decrease possible at machine precision, or none worth a step: we are at the minimum
      converged ||= search.negligible === true;
      break;
    }
    history.record(x, gradient, accepted);
    const decrease = value - accepted.value;
    x = accepted.x;
    value = accepted.value;
    gradient = accepted.gradient;
    converged =
      maxAbs(gradient) <= options.gradientTolerance ||
      decrease <= options.relativeTolerance * Math.max(1, Math.abs(value));
  }
  return { x, value, iterations, evaluations, converged, pairs: { s: history.s, y: history.y } };
}
