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
   * Curvature pairs to start from (a neighbouring problem's, see CurvaturePairs), oldest first: read, never written
   * (the run's own pairs get their own buffers). Pairs that fail the curvature condition are dropped.
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
  /** The curvature pairs held at the end (some may be the initial pairs given: treat them as read-only). */
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

/**
 * y += a * x, then dot(z, y), in one pass: the two-loop recursion's every step is an axpy followed by the next
 * pair's dot product with the result. The same four accumulators as `dot`, so the result is bit for bit dot(z, y).
 */
function axpyThenDot(a: number, x: Float64Array, y: Float64Array, z: Float64Array): number {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  const n = x.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const y0 = (y[i] += a * x[i]);
    const y1 = (y[i + 1] += a * x[i + 1]);
    const y2 = (y[i + 2] += a * x[i + 2]);
    const y3 = (y[i + 3] += a * x[i + 3]);
    s0 += z[i] * y0;
    s1 += z[i + 1] * y1;
    s2 += z[i + 2] * y2;
    s3 += z[i + 3] * y3;
  }
  for (; i < n; i++) s0 += z[i] * (y[i] += a * x[i]);
  return s0 + s1 + s2 + s3;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * The last `memory` curvature pairs (s = step, y = gradient change, rho = 1 / s'y, and y'y for the initial scale).
 * Buffers of the oldest pair are reused once the history is full: these are ~10^5-long, allocating them is GC churn.
 */
class CurvatureHistory {
  readonly s: Float64Array[] = [];
  readonly y: Float64Array[] = [];
  readonly rho: number[] = [];
  readonly sy: number[] = [];
  readonly yy: number[] = [];
  /** Whether the pair's buffers are this run's (reusable) or seeded ones (read-only). */
  private readonly owned: boolean[] = [];

  constructor(
    private readonly memory: number,
    private readonly n: number,
  ) {}

  /** Seeds the history with `pairs` (the newest `memory` of them that satisfy the curvature condition), read-only. */
  seed(pairs: CurvaturePairs): void {
    for (let i = Math.max(0, pairs.s.length - this.memory); i < pairs.s.length; i++) {
      const s = pairs.s[i]!;
      const y = pairs.y[i]!;
      if (s.length !== this.n || y.length !== this.n) continue;
      const { sy, yy, ss } = pairDots(s, y);
      this.keep(s, y, sy, yy, ss, false);
    }
  }

  clear(): void {
    this.s.length = this.y.length = this.rho.length = this.sy.length = this.yy.length = this.owned.length = 0;
  }

  private dropOldest(): void {
    this.s.shift();
    this.y.shift();
    this.rho.shift();
    this.sy.shift();
    this.yy.shift();
    this.owned.shift();
  }

  /** Adds the pair when it satisfies the curvature condition. */
  private keep(s: Float64Array, y: Float64Array, sy: number, yy: number, ss: number, owned: boolean): void {
    if (!(sy > 1e-12 * Math.sqrt(yy * ss))) return;
    if (this.s.length === this.memory) this.dropOldest();
    this.s.push(s);
    this.y.push(y);
    this.rho.push(1 / sy);
    this.sy.push(sy);
    this.yy.push(yy);
    this.owned.push(owned);
  }

  /** Records the step from (x, gradient) to `accepted`, when it satisfies the curvature condition. */
  record(x: Float64Array, gradient: Float64Array, accepted: { x: Float64Array; gradient: Float64Array }): void {
    const full = this.s.length === this.memory;
    // a full history lends its oldest pair's buffers, when they are its own
    const reuse = full && this.owned[0];
    const s = reuse ? this.s[0] : new Float64Array(this.n);
    const y = reuse ? this.y[0] : new Float64Array(this.n);
    const { x: nextX, gradient: nextGradient } = accepted;
    for (let j = 0; j < this.n; j++) {
      s[j] = nextX[j] - x[j];
      y[j] = nextGradient[j] - gradient[j];
    }
    const { sy, yy, ss } = pairDots(s, y);
    // the oldest pair goes whether or not the new one is kept: when it lent its buffers, its data is gone
    if (full) this.dropOldest();
    this.keep(s, y, sy, yy, ss, true);
  }
}

/** s'y, y'y and s's in one pass, each accumulated as `dot` does (bit for bit dot's results). */
function pairDots(s: Float64Array, y: Float64Array): { sy: number; yy: number; ss: number } {
  let sy0 = 0,
    sy1 = 0,
    sy2 = 0,
    sy3 = 0,
    yy0 = 0,
    yy1 = 0,
    yy2 = 0,
    yy3 = 0,
    ss0 = 0,
    ss1 = 0,
    ss2 = 0,
    ss3 = 0;
  const n = s.length;
  let j = 0;
  for (; j + 3 < n; j += 4) {
    const a0 = s[j];
    const a1 = s[j + 1];
    const a2 = s[j + 2];
    const a3 = s[j + 3];
    const b0 = y[j];
    const b1 = y[j + 1];
    const b2 = y[j + 2];
    const b3 = y[j + 3];
    sy0 += a0 * b0;
    sy1 += a1 * b1;
    sy2 += a2 * b2;
    sy3 += a3 * b3;
    yy0 += b0 * b0;
    yy1 += b1 * b1;
    yy2 += b2 * b2;
    yy3 += b3 * b3;
    ss0 += a0 * a0;
    ss1 += a1 * a1;
    ss2 += a2 * a2;
    ss3 += a3 * a3;
  }
  for (; j < n; j++) {
    sy0 += s[j] * y[j];
    yy0 += y[j] * y[j];
    ss0 += s[j] * s[j];
  }
  return { sy: sy0 + sy1 + sy2 + sy3, yy: yy0 + yy1 + yy2 + yy3, ss: ss0 + ss1 + ss2 + ss3 };
}

/** The two-loop recursion: -H g, with H0 the preconditioner (or the identity) scaled by s'y / y'H0y. */
async function searchDirection(
  history: CurvatureHistory,
  gradient: Float64Array,
  alpha: Float64Array,
  precondition: LbfgsOptions['precondition'],
): Promise<Float64Array> {
  // loops fused and hoisted by hand: this runs on ~10^5-long vectors every iteration
  const n = gradient.length;
  const { s: sHistory, y: yHistory, rho: rhoHistory } = history;
  const pairs = sHistory.length;
  const direction = Float64Array.from(gradient);
  if (pairs > 0) {
    let sd = dot(sHistory[pairs - 1], direction);
    for (let i = pairs - 1; i >= 0; i--) {
      const a = rhoHistory[i] * sd;
      alpha[i] = a;
      if (i > 0) sd = axpyThenDot(-a, yHistory[i], direction, sHistory[i - 1]);
      else axpy(-a, yHistory[i], direction);
    }
  }
  const last = pairs - 1;
  let gamma: number;
  if (precondition) {
    await precondition(direction);
    if (last >= 0) {
      const py = Float64Array.from(yHistory[last]);
      await precondition(py);
      gamma = history.sy[last] / dot(yHistory[last], py);
    } else {
      gamma = 1 / Math.max(1e-12, Math.sqrt(dot(direction, direction)));
    }
  } else {
    gamma = last >= 0 ? history.sy[last] / history.yy[last] : 1 / Math.max(1e-12, Math.sqrt(dot(gradient, gradient)));
  }
  for (let j = 0; j < n; j++) direction[j] *= -gamma;
  // direction now holds -H0 q; the second loop runs on the negated vector, so the signs flip
  if (pairs > 0) {
    let yd = dot(yHistory[0], direction);
    for (let i = 0; i < pairs; i++) {
      const beta = rhoHistory[i] * yd;
      if (i + 1 < pairs) yd = axpyThenDot(-alpha[i] - beta, sHistory[i], direction, yHistory[i + 1]);
      else axpy(-alpha[i] - beta, sHistory[i], direction);
    }
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
