/**
 * Open-set scores compared on real embeddings: how well each one tells a head's own photos from photos of other
 * datasets, and what it costs (head-file bytes, time per image). Results: bench/results/2026-12-01/open-set.md.
 *
 * Embed first (edgetl embed <dir> --out <prefix>), e.g. hymenoptera train and val, flowers5 val, ../shared/images:
 *
 *   node --loader ts-node/esm bench/open-set.ts <train-prefix> <val-prefix> <outlier-prefix>... [--rate 0.05] [--json]
 *        [--only name,name] [--folds 3] [--seed 0]
 * (or bundle it with esbuild first: esbuild bench/open-set.ts --bundle --platform=node --format=esm
 *  --packages=external --outfile=dist/bench/open-set.mjs && node dist/bench/open-set.mjs ...)
 *
 * For every method: AUROC of own val photos against each outlier set, and at the threshold that keeps 1 - rate of
 * the training photos' out-of-fold scores (3 folds, as `edgetl train` sets it): the share of own val photos
 * rejected and the share of outliers accepted. Methods:
 *   msp           1 - top calibrated probability of the default linear head (what edgetl did before)
 *   energy        -logsumexp of that head's logits (Liu et al. 2020)
 *   knn-*         cosine distance to the k-th nearest row of a memory of training embeddings (Sun et al. 2022),
 *                 raw or centred on the training mean (or square-rooted), whole memory or per-class spherical
 *                 k-means centroids; knn-raw-default is what edgetl ships (4 * sqrt(rows) centroids, at most 128)
 *   maha-*        class-conditional Mahalanobis distance (Lee et al. 2018), shared within-class covariance
 *                 shrunk towards its mean eigenvalue, top-r eigenvectors kept plus one isotropic residual
 *   combo         z-scored sum of knn-centred-128 and maha-r64
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { readEmbeddingSet, type EmbeddingSet } from '../src/node/embed/embedding-set.js';
import { trainHead } from '../src/core/heads/train.js';
import { stratifiedFolds } from '../src/core/heads/data.js';
import { gemmNT } from '../src/core/heads/dense-math.js';
import { Random } from '../src/core/heads/random.js';
import {
  buildMemory,
  columnMean,
  defaultMemoryRows,
  knnDistances,
  openSetSpace,
  outlierThreshold,
} from '../src/core/heads/open-set.js';
import { createOrtDenseMath } from '../src/node/execution/dense-math-ort.js';
import { outlierAuroc } from '../src/core/heads/metrics.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rate: { type: 'string', default: '0.05' },
    json: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
    only: { type: 'string' },
    folds: { type: 'string', default: '3' },
  },
});
const [trainPrefix, valPrefix, ...outlierPrefixes] = positionals;
if (!trainPrefix || !valPrefix || outlierPrefixes.length === 0) {
  console.error('usage: open-set.ts <train-prefix> <val-prefix> <outlier-prefix>... [--rate 0.05] [--json]');
  process.exit(2);
}
const rate = Number(values.rate);
const seed = Number(values.seed);
const train = await readEmbeddingSet(trainPrefix);
const val = await readEmbeddingSet(valPrefix);
const outliers = await Promise.all(outlierPrefixes.map((p) => readEmbeddingSet(p)));
const dim = train.dim;
const classes = train.classes!;
const targets = Int32Array.from(train.items, (i) => classes.indexOf(i.label!));
const math = await createOrtDenseMath({ intraOpThreads: 1 });

/** A scorer fitted on raw training rows: higher = less like them. `bytes` is what the head file would hold (float16). */
interface Fitted {
  score(raw: Float32Array, rows: number): Float32Array;
  bytes: number;
}
type Method = { name: string; fit(raw: Float32Array, targets: Int32Array): Promise<Fitted> };

function rowsOf(data: Float32Array, indices: number[]): Float32Array {
  const out = new Float32Array(indices.length * dim);
  indices.forEach((r, i) => out.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

function headMethod(name: 'msp' | 'energy'): Method {
  return {
    name,
    async fit(raw, t) {
      const head = await trainHead(
        raw,
        Array.from(t, (c) => classes[c]),
        { classes, math, seed },
      );
      return {
        bytes: 0,
        score(x, rows) {
          if (name === 'msp') {
            const p = head.probabilities(x, rows);
            const out = new Float32Array(rows);
            for (let r = 0; r < rows; r++)
              out[r] = 1 - Math.max(...p.subarray(r * classes.length, (r + 1) * classes.length));
            return out;
          }
          const z = head.logits(x, rows);
          const out = new Float32Array(rows);
          for (let r = 0; r < rows; r++) {
            const row = z.subarray(r * classes.length, (r + 1) * classes.length);
            const max = Math.max(...row);
            out[r] = -(max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)));
          }
          return out;
        },
      };
    },
  };
}

/** k-NN distance divided by the nearest centroid's own spread (mean distance of the training rows it stands for). */
function radiusKnnMethod(name: string, options: { memoryRows: number; blend: number }): Method {
  return {
    name,
    async fit(raw, t) {
      const rows = t.length;
      const space = openSetSpace(raw, rows, dim);
      const memory = buildMemory(space, t, classes.length, dim, {
        memoryRows: options.memoryRows === 0 ? defaultMemoryRows(rows) : options.memoryRows,
        seed,
      });
      const m = memory.memoryClasses.length;
      const sim = gemmNT(space, memory.memory, rows, dim, m);
      const sums = new Float64Array(m);
      const counts = new Float64Array(m);
      for (let r = 0; r < rows; r++) {
        let best = -1;
        for (let j = 0; j < m; j++)
          if (memory.memoryClasses[j] === t[r] && (best < 0 || sim[r * m + j] > sim[r * m + best])) best = j;
        sums[best] += 1 - sim[r * m + best];
        counts[best]++;
      }
      const all = Array.from(sums).reduce((a, b) => a + b, 0) / rows;
      // shrink each radius towards the overall one (blend 1: plain k-NN)
      const radius = Float64Array.from({ length: m }, (_, j) =>
        counts[j] > 1 ? (1 - options.blend) * (sums[j] / counts[j]) + options.blend * all : all,
      );
      return {
        bytes: m * dim * 2 + m * 4,
        score(x, n) {
          const s2 = gemmNT(openSetSpace(x, n, dim), memory.memory, n, dim, m);
          return Float32Array.from({ length: n }, (_, r) => {
            let best = Infinity;
            for (let j = 0; j < m; j++) best = Math.min(best, (1 - s2[r * m + j]) / radius[j]);
            return best;
          });
        },
      };
    },
  };
}

function knnMethod(name: string, options: { center: boolean; memoryRows: number; k: number; power?: number }): Method {
  const transform = (x: Float32Array) =>
    options.power === undefined ? x : x.map((v) => Math.sign(v) * Math.abs(v) ** options.power!);
  return {
    name,
    async fit(rawInput, t) {
      const raw = transform(rawInput);
      const rows = t.length;
      const center = options.center ? columnMean(raw, rows, dim) : new Float32Array(dim);
      const space = (x: Float32Array, n: number) =>
        openSetSpace(
          x.map((v, i) => v - center[i % dim]),
          n,
          dim,
        );
      const memory = buildMemory(space(raw, rows), t, classes.length, dim, {
        memoryRows: options.memoryRows === 0 ? defaultMemoryRows(rows) : options.memoryRows,
        seed,
      });
      const m = memory.memoryClasses.length;
      return {
        bytes: m * dim * 2 + (options.center ? dim * 4 : 0),
        score: (x, n) => knnDistances(space(transform(x), n), n, memory.memory, m, dim, options.k),
      };
    },
  };
}

/** Symmetric eigen-decomposition (cyclic Jacobi) of a small n x n matrix; returns eigenvalues and column eigenvectors. */
function jacobiEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-20) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]), vectors: v };
}

function mahalanobisMethod(name: string, options: { rank: number; shrink: number }): Method {
  return {
    name,
    async fit(raw, t) {
      const rows = t.length;
      const k = classes.length;
      const means = new Float32Array(k * dim);
      const counts = new Array<number>(k).fill(0);
      for (let r = 0; r < rows; r++) {
        counts[t[r]]++;
        for (let d = 0; d < dim; d++) means[t[r] * dim + d] += raw[r * dim + d];
      }
      for (let c = 0; c < k; c++) for (let d = 0; d < dim; d++) means[c * dim + d] /= Math.max(1, counts[c]);
      const centred = new Float32Array(rows * dim);
      let trace = 0;
      for (let r = 0; r < rows; r++) {
        for (let d = 0; d < dim; d++) {
          const v = raw[r * dim + d] - means[t[r] * dim + d];
          centred[r * dim + d] = v;
          trace += v * v;
        }
      }
      trace /= rows;
      // randomized subspace iteration for the top `rank` eigenvectors of the within-class covariance
      const width = Math.min(options.rank + 10, rows, dim);
      const random = new Random(seed);
      let q: Float32Array = Float32Array.from({ length: width * dim }, () => random.normal()); // [width, dim]
      const orthonormalize = (m: Float32Array) => {
        for (let i = 0; i < width; i++) {
          for (let j = 0; j < i; j++) {
            let dot = 0;
            for (let d = 0; d < dim; d++) dot += m[i * dim + d] * m[j * dim + d];
            for (let d = 0; d < dim; d++) m[i * dim + d] -= dot * m[j * dim + d];
          }
          let norm = 0;
          for (let d = 0; d < dim; d++) norm += m[i * dim + d] ** 2;
          norm = Math.sqrt(norm) || 1;
          for (let d = 0; d < dim; d++) m[i * dim + d] /= norm;
        }
      };
      orthonormalize(q);
      for (let iteration = 0; iteration < 4; iteration++) {
        const projected = await math.gemm(centred, q, rows, dim, width, false, true); // [rows, width]
        q = await math.gemm(projected, centred, width, rows, dim, true, false); // [width, dim]
        orthonormalize(q);
      }
      const b = await math.gemm(centred, q, rows, dim, width, false, true); // [rows, width]
      const small = new Float64Array(width * width);
      for (let i = 0; i < width; i++)
        for (let j = 0; j < width; j++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s += b[r * width + i] * b[r * width + j];
          small[i * width + j] = s / rows;
        }
      const eig = jacobiEigen(small, width);
      const order = Array.from(eig.values.keys())
        .sort((x, y) => eig.values[y] - eig.values[x])
        .slice(0, Math.min(options.rank, width));
      const rank = order.length;
      const basis = new Float32Array(rank * dim);
      const lambda = new Float64Array(rank);
      order.forEach((col, i) => {
        lambda[i] = eig.values[col];
        for (let d = 0; d < dim; d++) {
          let s = 0;
          for (let j = 0; j < width; j++) s += eig.vectors[j * width + col] * q[j * dim + d];
          basis[i * dim + d] = s;
        }
      });
      const meanEigen = trace / dim;
      const residual = Math.max(1e-12, (trace - lambda.reduce((a, v) => a + v, 0)) / Math.max(1, dim - rank));
      const inverse = Array.from(lambda, (l) => 1 / ((1 - options.shrink) * l + options.shrink * meanEigen));
      const residualInverse = 1 / ((1 - options.shrink) * residual + options.shrink * meanEigen);
      const meanProjections = gemmNT(means, basis, k, dim, rank);
      const meanNorms = Array.from({ length: k }, (_, c) =>
        means.subarray(c * dim, (c + 1) * dim).reduce((s, v) => s + v * v, 0),
      );
      return {
        bytes: (k * dim + rank * dim) * 2 + rank * 4,
        score(x, n) {
          const xp = gemmNT(x, basis, n, dim, rank);
          const xm = gemmNT(x, means, n, dim, k);
          const out = new Float32Array(n);
          for (let r = 0; r < n; r++) {
            let xx = 0;
            for (let d = 0; d < dim; d++) xx += x[r * dim + d] ** 2;
            let best = Infinity;
            for (let c = 0; c < k; c++) {
              const total = xx - 2 * xm[r * k + c] + meanNorms[c];
              let inBasis = 0;
              let weighted = 0;
              for (let i = 0; i < rank; i++) {
                const p = xp[r * rank + i] - meanProjections[c * rank + i];
                inBasis += p * p;
                weighted += p * p * inverse[i];
              }
              const distance = weighted + Math.max(0, total - inBasis) * residualInverse;
              if (distance < best) best = distance;
            }
            out[r] = Math.sqrt(best / dim);
          }
          return out;
        },
      };
    },
  };
}

function comboMethod(name: string, parts: Method[]): Method {
  return {
    name,
    async fit(raw, t) {
      const fitted = await Promise.all(parts.map((p) => p.fit(raw, t)));
      const self = fitted.map((f) => f.score(raw, t.length));
      const stats = self.map((s) => {
        const mean = s.reduce((a, v) => a + v, 0) / s.length;
        const std = Math.sqrt(s.reduce((a, v) => a + (v - mean) ** 2, 0) / s.length) || 1;
        return { mean, std };
      });
      return {
        bytes: fitted.reduce((a, f) => a + f.bytes, 0),
        score(x, n) {
          const out = new Float32Array(n);
          fitted.forEach((f, i) => f.score(x, n).forEach((v, r) => (out[r] += (v - stats[i].mean) / stats[i].std)));
          return out;
        },
      };
    },
  };
}

const methods: Method[] = [
  headMethod('msp'),
  headMethod('energy'),
  knnMethod('knn-raw-default', { center: false, memoryRows: 0, k: 1 }),
  radiusKnnMethod('knn-radius-default', { memoryRows: 0, blend: 0 }),
  radiusKnnMethod('knn-radius-default-b0.5', { memoryRows: 0, blend: 0.5 }),
  knnMethod('knn-raw-all-k1', { center: false, memoryRows: Infinity, k: 1 }),
  knnMethod('knn-centred-all-k1', { center: true, memoryRows: Infinity, k: 1 }),
  knnMethod('knn-centred-all-k5', { center: true, memoryRows: Infinity, k: 5 }),
  knnMethod('knn-centred-256', { center: true, memoryRows: 256, k: 1 }),
  knnMethod('knn-centred-128', { center: true, memoryRows: 128, k: 1 }),
  knnMethod('knn-centred-64', { center: true, memoryRows: 64, k: 1 }),
  knnMethod('knn-centred-32', { center: true, memoryRows: 32, k: 1 }),
  knnMethod('knn-raw-all-k5', { center: false, memoryRows: Infinity, k: 5 }),
  knnMethod('knn-raw-512', { center: false, memoryRows: 512, k: 1 }),
  knnMethod('knn-raw-256', { center: false, memoryRows: 256, k: 1 }),
  knnMethod('knn-raw-128', { center: false, memoryRows: 128, k: 1 }),
  knnMethod('knn-raw-64', { center: false, memoryRows: 64, k: 1 }),
  knnMethod('knn-raw-32', { center: false, memoryRows: 32, k: 1 }),
  knnMethod('knn-raw-16', { center: false, memoryRows: 16, k: 1 }),
  knnMethod('knn-raw-32-k2', { center: false, memoryRows: 32, k: 2 }),
  knnMethod('knn-sqrt-all-k1', { center: false, memoryRows: Infinity, k: 1, power: 0.5 }),
  knnMethod('knn-sqrt-128', { center: false, memoryRows: 128, k: 1, power: 0.5 }),
  mahalanobisMethod('maha-r64-s0.1', { rank: 64, shrink: 0.1 }),
  mahalanobisMethod('maha-r64-s0.5', { rank: 64, shrink: 0.5 }),
  mahalanobisMethod('maha-r16-s0.1', { rank: 16, shrink: 0.1 }),
  comboMethod('combo-knn128+maha64', [
    knnMethod('k', { center: false, memoryRows: 128, k: 1 }),
    mahalanobisMethod('m', { rank: 64, shrink: 0.1 }),
  ]),
];

const folds = stratifiedFolds(targets, classes.length, Number(values.folds), seed);
const rows = targets.length;
const report: Record<string, unknown>[] = [];
for (const method of methods.filter((m) => !values.only || values.only.split(',').includes(m.name))) {
  const outOfFold = new Float32Array(rows);
  for (const fold of folds) {
    const inFold = new Set(fold);
    const trainRows = Array.from({ length: rows }, (_, i) => i).filter((i) => !inFold.has(i));
    const fitted = await method.fit(
      rowsOf(train.embeddings, trainRows),
      Int32Array.from(trainRows, (i) => targets[i]),
    );
    fitted.score(rowsOf(train.embeddings, fold), fold.length).forEach((s, i) => (outOfFold[fold[i]] = s));
  }
  const threshold = outlierThreshold(outOfFold, rate);
  const fitted = await method.fit(train.embeddings, targets);
  const own = fitted.score(val.embeddings, val.count);
  // time per image, one embedding at a time (as a kiosk predicts), median of 5 passes over the val set
  const passes: number[] = [];
  for (let pass = 0; pass < 5; pass++) {
    const started = performance.now();
    for (let r = 0; r < val.count; r++) fitted.score(val.embeddings.subarray(r * dim, (r + 1) * dim), 1);
    passes.push((performance.now() - started) / val.count);
  }
  passes.sort((a, b) => a - b);
  const ownRejected = own.filter((s) => s > threshold).length / own.length;
  const perSet = outliers.map((set: EmbeddingSet, i) => {
    const scores = fitted.score(set.embeddings, set.count);
    return {
      set: outlierPrefixes[i],
      count: set.count,
      auroc: outlierAuroc(own, scores),
      accepted: scores.filter((s) => s <= threshold).length / set.count,
    };
  });
  report.push({ method: method.name, bytes: fitted.bytes, msPerImage: passes[2], ownRejected, outliers: perSet });
  if (!values.json) {
    console.log(
      `${method.name.padEnd(22)} ${(fitted.bytes / 1024).toFixed(0).padStart(5)} KiB  ${passes[2].toFixed(3)} ms  own rejected ${(100 * ownRejected).toFixed(1).padStart(5)}%  ${perSet.map((p) => `${p.set.split('/').pop()}: AUROC ${p.auroc.toFixed(4)} accepted ${(100 * p.accepted).toFixed(1)}%`).join('  ')}`,
    );
  }
}
const machine = `${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, node ${process.version}`;
if (values.json) console.log(JSON.stringify({ train: trainPrefix, val: valPrefix, rate, machine, report }));
else
  console.log(
    `train ${trainPrefix} (${rows} rows, ${classes.length} classes), val ${valPrefix} (${val.count}), rate ${rate}; ${machine}`,
  );
await math.dispose?.();
