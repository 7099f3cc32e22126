/**
 * Open-set scoring: how unlike the training data an embedding is, measured in embedding space rather than by the
 * head's softmax (which only says how sure the head is between its own classes). The method, chosen by measurement
 * (bench/open-set.ts, bench/results/2026-12-01/open-set.md), is the cosine distance to the nearest entry of a
 * compact memory of training embeddings (Sun et al. 2022, "Out-of-distribution detection with deep nearest
 * neighbors"): embeddings are scaled to unit length (not centred: centring on a two-class training mean made
 * flowers look like ants and bees, AUROC 0.50 against 0.98), and each class is compressed to a few spherical k-means
 * centroids, so the memory (and the head file) stays small whatever the number of photos. Compression also helps:
 * a few centroids per class generalize better than every training photo (AUROC 0.985 with 64 rows against 0.980 with
 * all 244 on hymenoptera vs flowers5). Mahalanobis distance was near perfect for a flowers5 head but at chance for a
 * hymenoptera head against flowers (bees sit on flowers); k-NN held up on both.
 *
 * Runtime-neutral: no Node, no DOM.
 */
import { EdgetlError } from '../util/errors.js';
import { type DenseMath, gemmNT } from './dense-math.js';
import { l2NormalizeInPlace } from './normalization.js';
import { Random } from './random.js';

export const OPEN_SET_METHOD = 'knn-cosine';

/** What a head keeps to score new embeddings. */
export interface OpenSetModel {
  method: typeof OPEN_SET_METHOD;
  /** Unit-length memory rows. [rows, dim] */
  memory: Float32Array;
  /** Class index of each memory row (so classes can be added and removed). */
  memoryClasses: number[];
  /** Training rows each memory row stands for (its k-means cluster size). */
  memoryWeights: number[];
  /** The score is the distance to the k-th nearest memory row. */
  k: number;
  /** Per-dimension mean and standard deviation of the raw training embeddings (what `adapt` aligns field data to). */
  featureMean: Float32Array;
  featureStd: Float32Array;
  /** Out-of-fold scores of the training rows: what "like the training data" looks like (drift compares to it). */
  reference: OpenSetReference;
}

export interface OpenSetReference {
  rows: number;
  mean: number;
  std: number;
  /** Score quantiles at 0.5, 0.9, 0.95, 0.99. */
  quantiles: { q50: number; q90: number; q95: number; q99: number };
}

export interface OpenSetOptions {
  /** Memory budget in rows over all classes (default defaultMemoryRows(rows)); a class keeps at least one centroid. */
  memoryRows?: number;
  /** Distance to the k-th nearest memory row (default 1). */
  k?: number;
  seed?: number;
  /** k-means iterations (default 15). */
  iterations?: number;
}

export const DEFAULT_OPEN_SET_OPTIONS = { k: 1, iterations: 15, maxMemoryRows: 128 } as const;

/** k-means fits its centroids on at most this many rows per centroid (see sphericalKMeans). */
const FIT_ROWS_PER_CENTROID = 32;
/** k-means++ draws its seeds from this many rows per centroid (see sphericalKMeansSteps). */
const SEED_POOL_PER_CENTROID = 4;

/**
 * Memory rows for `rows` training photos: 4 * sqrt(rows), at most 128. Measured best near 64 for 244 hymenoptera
 * photos and near 256 for 3,431 flowers5 photos; the cap keeps a 2,000-photo head under 1 MB and a prediction's
 * extra cost near 0.1 ms (bench/results/2026-12-01/open-set.md).
 */
export function defaultMemoryRows(rows: number): number {
  return Math.max(1, Math.min(DEFAULT_OPEN_SET_OPTIONS.maxMemoryRows, Math.round(4 * Math.sqrt(rows))));
}

/** Mean of `rows` embeddings (float64 sums). */
export function columnMean(data: Float32Array, rows: number, dim: number): Float32Array {
  const sum = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let d = 0; d < dim; d++) sum[d] += data[o + d];
  }
  const mean = new Float32Array(dim);
  for (let d = 0; d < dim; d++) mean[d] = sum[d] / Math.max(1, rows);
  return mean;
}

/** Per-dimension mean and standard deviation (float64 sums; constant dimensions get std 1). */
export function columnStats(data: Float32Array, rows: number, dim: number): { mean: Float32Array; std: Float32Array } {
  const mean = columnMean(data, rows, dim);
  const squares = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let d = 0; d < dim; d++) squares[d] += (data[o + d] - mean[d]) ** 2;
  }
  const std = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    const s = Math.sqrt(squares[d] / Math.max(1, rows));
    std[d] = s > 1e-6 * Math.max(1, Math.abs(mean[d])) ? s : 1;
  }
  return { mean, std };
}

/** Unit-length copy of `rows` raw embeddings: the space the memory lives in. */
export function openSetSpace(data: Float32Array, rows: number, dim: number): Float32Array {
  const out = Float32Array.from(data.subarray(0, rows * dim));
  for (let r = 0; r < rows; r++) l2NormalizeInPlace(out, r * dim, dim);
  return out;
}

/**
 * A product the open-set fit needs: the similarities [m, n] of unit rows `a` [m, dim] and `b` [n, dim]. The fitting
 * steps below yield these instead of computing them, so one algorithm runs two ways: in plain JS where it must stay
 * synchronous (a class added to a prototype head), and on a DenseMath backend (onnxruntime, some 30x faster on
 * these shapes) when `trainHead` fits the memory.
 */
export interface SimilarityRequest {
  a: Float32Array;
  b: Float32Array;
  m: number;
  n: number;
}

/** Steps of an open-set computation: each yield asks for one similarity matrix, the return value is the result. */
export type SimilaritySteps<T> = Generator<SimilarityRequest, T, Float32Array>;

/** Runs `steps` with the plain-JS product. */
export function runSimilarityStepsSync<T>(steps: SimilaritySteps<T>, dim: number): T {
  let next = steps.next();
  while (!next.done) {
    const { a, b, m, n } = next.value;
    next = steps.next(gemmNT(a, b, m, dim, n));
  }
  return next.value;
}

/** Runs `steps` with `math`'s products (A . B^T). */
export async function runSimilaritySteps<T>(steps: SimilaritySteps<T>, dim: number, math: DenseMath): Promise<T> {
  let next = steps.next();
  while (!next.done) {
    const { a, b, m, n } = next.value;
    next = steps.next(await math.gemm(a, b, m, dim, n, false, true));
  }
  return next.value;
}

/**
 * Spherical k-means of unit rows into `clusters` unit centroids (seeded k-means++), as steps (see SimilaritySteps).
 * With as many clusters as rows, the rows themselves. The centroids are fitted on at most FIT_ROWS_PER_CENTROID rows
 * per centroid (a seeded sample), so a class of many thousand photos costs no more than that; every row then counts
 * towards its nearest centroid. (16 rows per centroid cost the flowers5 head 0.004 AUROC; at 32 its 850-photo
 * classes are not sampled at all.) k-means++ draws its seeds from a pool of SEED_POOL_PER_CENTROID rows per centroid
 * whose pairwise similarities come from one product, instead of one pass over every row per seed.
 */
export function* sphericalKMeansSteps(
  rowsData: Float32Array,
  rows: number,
  dim: number,
  clusters: number,
  seed: number,
  iterations: number = DEFAULT_OPEN_SET_OPTIONS.iterations,
): SimilaritySteps<{ centroids: Float32Array; sizes: number[] }> {
  if (clusters >= rows)
    return { centroids: Float32Array.from(rowsData.subarray(0, rows * dim)), sizes: new Array<number>(rows).fill(1) };
  const random = new Random(seed);
  const sampleRows = (data: Float32Array, count: number, keep: number): { data: Float32Array; rows: number } => {
    if (count <= keep) return { data, rows: count };
    const picked = random
      .shuffle(Array.from({ length: count }, (_, i) => i))
      .slice(0, keep)
      .sort((a, b) => a - b);
    const out = new Float32Array(keep * dim);
    picked.forEach((row, i) => out.set(data.subarray(row * dim, (row + 1) * dim), i * dim));
    return { data: out, rows: keep };
  };
  const fit = sampleRows(rowsData, rows, FIT_ROWS_PER_CENTROID * clusters);
  const fitData = fit.data;
  const fitRows = fit.rows;
  // k-means++ on cosine distance, over the seed pool
  const pool = sampleRows(fitData, fitRows, SEED_POOL_PER_CENTROID * clusters);
  const poolSimilarity = yield { a: pool.data, b: pool.data, m: pool.rows, n: pool.rows };
  const chosen: number[] = [random.int(pool.rows)];
  const nearest = new Float64Array(pool.rows).fill(Infinity);
  for (let c = 1; c < clusters; c++) {
    const previous = chosen[c - 1];
    let total = 0;
    for (let r = 0; r < pool.rows; r++) {
      const distance = Math.max(0, 1 - poolSimilarity[r * pool.rows + previous]);
      if (distance < nearest[r]) nearest[r] = distance;
      total += nearest[r] * nearest[r];
    }
    let pick = random.next() * total;
    let next = pool.rows - 1;
    for (let r = 0; r < pool.rows; r++) {
      pick -= nearest[r] * nearest[r];
      if (pick <= 0) {
        next = r;
        break;
      }
    }
    chosen.push(next);
  }
  const centroids = new Float32Array(clusters * dim);
  chosen.forEach((row, c) => centroids.set(pool.data.subarray(row * dim, (row + 1) * dim), c * dim));
  function* nearestCentroid(data: Float32Array, n: number, into: Int32Array): SimilaritySteps<number> {
    const similarity = yield { a: data, b: centroids, m: n, n: clusters };
    let changed = 0;
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let c = 1; c < clusters; c++) if (similarity[r * clusters + c] > similarity[r * clusters + best]) best = c;
      if (into[r] !== best) changed++;
      into[r] = best;
    }
    return changed;
  }
  const assignment = new Int32Array(fitRows).fill(-1);
  const previous = new Int32Array(fitRows);
  const sizes = new Array<number>(clusters).fill(0);
  // Cluster sums follow the rows that moved, not every row every iteration: after the first iterations few rows
  // move, and summing all of them was most of the open-set fit's time (2,000 x 1,280 rows: 94 of 140 ms).
  const sums = new Float64Array(clusters * dim);
  const touched = new Uint8Array(clusters);
  for (let iteration = 0; iteration < iterations; iteration++) {
    previous.set(assignment);
    if ((yield* nearestCentroid(fitData, fitRows, assignment)) === 0) break;
    touched.fill(0);
    for (let r = 0; r < fitRows; r++) {
      const from = previous[r];
      const to = assignment[r];
      if (from === to) continue;
      const o = r * dim;
      if (from >= 0) {
        sizes[from]--;
        touched[from] = 1;
        for (let d = 0; d < dim; d++) sums[from * dim + d] -= fitData[o + d];
      }
      sizes[to]++;
      touched[to] = 1;
      for (let d = 0; d < dim; d++) sums[to * dim + d] += fitData[o + d];
    }
    for (let c = 0; c < clusters; c++) {
      if (!touched[c] || sizes[c] === 0) continue; // an empty cluster keeps its centroid
      for (let d = 0; d < dim; d++) centroids[c * dim + d] = sums[c * dim + d];
      l2NormalizeInPlace(centroids, c * dim, dim);
    }
  }
  // every row counts towards its nearest centroid
  const all = fitRows === rows ? assignment : new Int32Array(rows).fill(-1);
  if (fitRows !== rows || iterations === 0) yield* nearestCentroid(rowsData, rows, all);
  sizes.fill(0);
  for (let r = 0; r < rows; r++) sizes[all[r]]++;
  const kept = sizes.map((s, c) => (s > 0 ? c : -1)).filter((c) => c >= 0);
  if (kept.length === clusters) return { centroids, sizes };
  const compact = new Float32Array(kept.length * dim);
  kept.forEach((c, i) => compact.set(centroids.subarray(c * dim, (c + 1) * dim), i * dim));
  return { centroids: compact, sizes: kept.map((c) => sizes[c]) };
}

/** sphericalKMeans in plain JS (see sphericalKMeansSteps). */
export function sphericalKMeans(
  rowsData: Float32Array,
  rows: number,
  dim: number,
  clusters: number,
  seed: number,
  iterations: number = DEFAULT_OPEN_SET_OPTIONS.iterations,
): { centroids: Float32Array; sizes: number[] } {
  return runSimilarityStepsSync(sphericalKMeansSteps(rowsData, rows, dim, clusters, seed, iterations), dim);
}

/** Memory rows per class: the budget shared in proportion to class size, at least one each, never more than the class has. */
export function memoryRowsPerClass(counts: readonly number[], budget: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => Math.max(1, Math.min(n, Math.round((budget * n) / Math.max(1, total)))));
}

type Memory = { memory: Float32Array; memoryClasses: number[]; memoryWeights: number[] };

/** Compressed memory of the unit rows `space` ([rows, dim]) with class `targets`, as steps. */
export function* buildMemorySteps(
  space: Float32Array,
  targets: ArrayLike<number>,
  classCount: number,
  dim: number,
  options: { memoryRows?: number; seed?: number; iterations?: number } = {},
): SimilaritySteps<Memory> {
  const byClass: number[][] = Array.from({ length: classCount }, () => []);
  for (let i = 0; i < targets.length; i++) byClass[targets[i]].push(i);
  const budget = memoryRowsPerClass(
    byClass.map((rows) => rows.length),
    options.memoryRows ?? defaultMemoryRows(targets.length),
  );
  const parts: Float32Array[] = [];
  const memoryClasses: number[] = [];
  const memoryWeights: number[] = [];
  for (let c = 0; c < classCount; c++) {
    const rows = byClass[c];
    if (rows.length === 0) continue;
    const data = new Float32Array(rows.length * dim);
    rows.forEach((row, i) => data.set(space.subarray(row * dim, (row + 1) * dim), i * dim));
    const { centroids, sizes } = yield* sphericalKMeansSteps(
      data,
      rows.length,
      dim,
      budget[c],
      (options.seed ?? 0) + 7919 * c,
      options.iterations,
    );
    parts.push(centroids);
    for (const size of sizes) {
      memoryClasses.push(c);
      memoryWeights.push(size);
    }
  }
  const memory = new Float32Array(memoryClasses.length * dim);
  let offset = 0;
  for (const part of parts) {
    memory.set(part, offset);
    offset += part.length;
  }
  return { memory, memoryClasses, memoryWeights };
}

/** Compressed memory of the unit rows `space` ([rows, dim]) with class `targets` (plain JS). */
export function buildMemory(
  space: Float32Array,
  targets: ArrayLike<number>,
  classCount: number,
  dim: number,
  options: { memoryRows?: number; seed?: number; iterations?: number } = {},
): Memory {
  return runSimilarityStepsSync(buildMemorySteps(space, targets, classCount, dim, options), dim);
}

/** Outlier scores from the similarities [rows, memoryRows] of rows to the memory: 1 - the k-th largest. */
function kthNearestDistances(similarity: Float32Array, rows: number, memoryRows: number, k: number): Float32Array {
  const scores = new Float32Array(rows);
  if (memoryRows === 0) return scores.fill(2);
  const kk = Math.max(1, Math.min(k, memoryRows));
  const best = new Float64Array(kk);
  for (let r = 0; r < rows; r++) {
    const o = r * memoryRows;
    if (kk === 1) {
      let max = -Infinity;
      for (let m = 0; m < memoryRows; m++) if (similarity[o + m] > max) max = similarity[o + m];
      scores[r] = 1 - max;
      continue;
    }
    best.fill(-Infinity);
    for (let m = 0; m < memoryRows; m++) {
      const s = similarity[o + m];
      if (s <= best[kk - 1]) continue;
      let i = kk - 1;
      while (i > 0 && best[i - 1] < s) {
        best[i] = best[i - 1];
        i--;
      }
      best[i] = s;
    }
    scores[r] = 1 - best[kk - 1];
  }
  return scores;
}

/**
 * Outlier scores (cosine distance, 0..2, to the k-th nearest memory row) of rows already in the open-set space.
 * Higher means less like the training data.
 */
export function knnDistances(
  space: Float32Array,
  rows: number,
  memory: Float32Array,
  memoryRows: number,
  dim: number,
  k: number,
): Float32Array {
  if (memoryRows === 0) return new Float32Array(rows).fill(2);
  return kthNearestDistances(gemmNT(space, memory, rows, dim, memoryRows), rows, memoryRows, k);
}

function* knnDistanceSteps(
  space: Float32Array,
  rows: number,
  memory: Memory,
  k: number,
): SimilaritySteps<Float32Array> {
  const memoryRows = memory.memoryClasses.length;
  if (memoryRows === 0) return new Float32Array(rows).fill(2);
  const similarity = yield { a: space, b: memory.memory, m: rows, n: memoryRows };
  return kthNearestDistances(similarity, rows, memoryRows, k);
}

/** Outlier scores of `rows` raw embeddings. */
export function outlierScores(model: OpenSetModel, embeddings: Float32Array, rows: number, dim: number): Float32Array {
  return knnDistances(
    openSetSpace(embeddings, rows, dim),
    rows,
    model.memory,
    model.memoryClasses.length,
    dim,
    model.k,
  );
}

export function summarizeScores(scores: ArrayLike<number>): OpenSetReference {
  const sorted = Float64Array.from(scores).sort();
  const n = sorted.length;
  const quantile = (q: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
  let mean = 0;
  for (const s of sorted) mean += s;
  mean /= Math.max(1, n);
  let variance = 0;
  for (const s of sorted) variance += (s - mean) * (s - mean);
  return {
    rows: n,
    mean,
    std: Math.sqrt(variance / Math.max(1, n)),
    quantiles: { q50: quantile(0.5), q90: quantile(0.9), q95: quantile(0.95), q99: quantile(0.99) },
  };
}

/**
 * The outlier-score threshold that keeps about 1 - `rate` of in-distribution rows: the (1 - rate) quantile of their
 * out-of-fold scores. A row scoring above it is "unknown".
 */
export function outlierThreshold(inDistributionScores: ArrayLike<number>, rate: number): number {
  const sorted = Float64Array.from(inDistributionScores).sort();
  if (sorted.length === 0) return Infinity;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((1 - rate) * sorted.length) - 1));
  return sorted[index];
}

/**
 * Fits the open-set model on raw training embeddings and measures its out-of-fold scores: each fold's rows are
 * scored against a memory built from the other folds, which is how far a new photo of a known class falls. `splits`
 * holds one or more partitions of the rows into folds; the scores of every partition are pooled (rows x splits), so
 * a small set's threshold, a tail quantile, rests on more than a handful of rows. The products run on `math`
 * (default plain JS).
 */
export async function fitOpenSet(
  raw: Float32Array,
  targets: ArrayLike<number>,
  classCount: number,
  dim: number,
  splits: readonly (readonly number[][])[],
  options: OpenSetOptions = {},
  math?: DenseMath,
): Promise<{ model: OpenSetModel; outOfFoldScores: Float32Array }> {
  const steps = fitOpenSetSteps(raw, targets, classCount, dim, splits, options);
  return math ? runSimilaritySteps(steps, dim, math) : runSimilarityStepsSync(steps, dim);
}

function* fitOpenSetSteps(
  raw: Float32Array,
  targets: ArrayLike<number>,
  classCount: number,
  dim: number,
  splits: readonly (readonly number[][])[],
  options: OpenSetOptions,
): SimilaritySteps<{ model: OpenSetModel; outOfFoldScores: Float32Array }> {
  const rows = targets.length;
  if (rows === 0) throw new EdgetlError('train-input', 'open-set scoring needs training rows');
  const space = openSetSpace(raw, rows, dim);
  const k = options.k ?? DEFAULT_OPEN_SET_OPTIONS.k;
  const budget = options.memoryRows ?? defaultMemoryRows(rows);
  const memoryOptions = { memoryRows: budget, seed: options.seed, iterations: options.iterations };
  const scored = splits.filter((folds) => folds.length >= 2);
  const outOfFoldScores = new Float32Array(rows * scored.length);
  // a fold's share of the budget keeps the compression ratio of the final memory
  const foldOptions = (held: number) => ({
    ...memoryOptions,
    memoryRows: Math.max(classCount, Math.round((budget * (rows - held)) / rows)),
  });
  for (const [split, folds] of scored.entries()) {
    for (const fold of folds) {
      const inFold = new Uint8Array(rows);
      for (const i of fold) inFold[i] = 1;
      const trainRows: number[] = [];
      for (let i = 0; i < rows; i++) if (!inFold[i]) trainRows.push(i);
      const trainSpace = new Float32Array(trainRows.length * dim);
      trainRows.forEach((row, i) => trainSpace.set(space.subarray(row * dim, (row + 1) * dim), i * dim));
      const trainTargets = trainRows.map((i) => targets[i]);
      const foldMemory = yield* buildMemorySteps(trainSpace, trainTargets, classCount, dim, foldOptions(fold.length));
      const heldSpace = new Float32Array(fold.length * dim);
      fold.forEach((row, i) => heldSpace.set(space.subarray(row * dim, (row + 1) * dim), i * dim));
      const scores = yield* knnDistanceSteps(heldSpace, fold.length, foldMemory, k);
      fold.forEach((row, i) => (outOfFoldScores[split * rows + row] = scores[i]));
    }
  }
  const memory = yield* buildMemorySteps(space, targets, classCount, dim, memoryOptions);
  const reference = summarizeScores(
    scored.length > 0 ? outOfFoldScores : yield* knnDistanceSteps(space, rows, memory, k),
  );
  const stats = columnStats(raw, rows, dim);
  return {
    model: { method: OPEN_SET_METHOD, k, ...memory, featureMean: stats.mean, featureStd: stats.std, reference },
    outOfFoldScores,
  };
}

/** A class added to a prototype head: its embeddings join the memory (compressed at the head's rows per photo). */
export function addClassToOpenSet(
  model: OpenSetModel,
  classIndex: number,
  raw: Float32Array,
  rows: number,
  dim: number,
  seed = 0,
): OpenSetModel {
  const space = openSetSpace(raw, rows, dim);
  const trainingRows = model.memoryWeights.reduce((a, b) => a + b, 0);
  const ratio = trainingRows > 0 ? model.memoryClasses.length / trainingRows : 1;
  const clusters = Math.max(1, Math.min(rows, Math.round(rows * ratio)));
  const { centroids, sizes } = sphericalKMeans(space, rows, dim, clusters, seed + 7919 * classIndex);
  const memory = new Float32Array(model.memory.length + centroids.length);
  memory.set(model.memory);
  memory.set(centroids, model.memory.length);
  return {
    ...model,
    memory,
    memoryClasses: [...model.memoryClasses, ...sizes.map(() => classIndex)],
    memoryWeights: [...model.memoryWeights, ...sizes],
  };
}

/** A class removed from a prototype head: its memory rows go, later class indices shift down by one. */
export function removeClassFromOpenSet(model: OpenSetModel, classIndex: number, dim: number): OpenSetModel {
  const keep = model.memoryClasses.map((c, i) => (c === classIndex ? -1 : i)).filter((i) => i >= 0);
  const memory = new Float32Array(keep.length * dim);
  keep.forEach((row, i) => memory.set(model.memory.subarray(row * dim, (row + 1) * dim), i * dim));
  return {
    ...model,
    memory,
    memoryClasses: keep.map((i) =>
      model.memoryClasses[i] > classIndex ? model.memoryClasses[i] - 1 : model.memoryClasses[i],
    ),
    memoryWeights: keep.map((i) => model.memoryWeights[i]),
  };
}
