import { Random } from '../src/core/heads/random.js';

/**
 * Seeded synthetic embeddings shaped like a frozen CNN's pooled features: non-negative (post-ReLU), correlated
 * through a shared low-rank basis, with per-class offsets of a few standard deviations and unequal class sizes.
 */
export function syntheticEmbeddings(
  rows: number,
  dim: number,
  classes: number,
  seed: number,
  separation = 0.2,
): { data: Float32Array; labels: string[] } {
  const random = new Random(seed);
  const rank = 32;
  const basis = Float32Array.from({ length: rank * dim }, () => random.normal() / Math.sqrt(rank));
  const centers = Array.from({ length: classes }, () =>
    Float32Array.from({ length: dim }, () => random.normal() * separation),
  );
  const data = new Float32Array(rows * dim);
  const labels: string[] = [];
  const z = new Float32Array(rank);
  for (let r = 0; r < rows; r++) {
    // skew class sizes mildly: class c drawn with weight 1 + c/classes
    let c = random.int(classes);
    if (random.next() < 0.3) c = Math.floor(Math.sqrt(random.next()) * classes);
    labels.push(`class${String(c).padStart(3, '0')}`);
    for (let i = 0; i < rank; i++) z[i] = random.normal();
    for (let d = 0; d < dim; d++) {
      let v = centers[c][d] + 0.5 * random.normal();
      for (let i = 0; i < rank; i++) v += z[i] * basis[i * dim + d];
      data[r * dim + d] = Math.max(0, v + 0.5);
    }
  }
  return { data, labels };
}

/**
 * Write a seeded synthetic train/val pair as embedding sets (`<prefix>-train`, `<prefix>-val`: .npy + .json, the
 * format `edgetl embed` writes and bench/sklearn-compare.py reads), both halves drawn from the same classes.
 */
export async function writeSyntheticSplit(
  prefix: string,
  rows: number,
  valRows: number,
  dim: number,
  classes: number,
  seed: number,
): Promise<{ train: string; val: string }> {
  const { writeFile } = await import('node:fs/promises');
  const { writeNpyFile } = await import('../src/node/embed/npy-file.js');
  const all = syntheticEmbeddings(rows + valRows, dim, classes, seed);
  const save = async (path: string, from: number, count: number) => {
    await writeNpyFile(`${path}.npy`, all.data.slice(from * dim, (from + count) * dim), [count, dim]);
    const labels = all.labels.slice(from, from + count);
    const meta = {
      backbone: { id: `synthetic-${rows}x${dim}x${classes}-seed${seed}`, sha256: '0'.repeat(64), embeddingDim: dim },
      executionProvider: 'none',
      classes: [...new Set(all.labels)].sort(),
      items: labels.map((label, i) => ({ path: `synthetic/${from + i}`, label })),
      skipped: [],
    };
    await writeFile(`${path}.json`, JSON.stringify(meta));
  };
  await save(`${prefix}-train`, 0, rows);
  await save(`${prefix}-val`, rows, valRows);
  return { train: `${prefix}-train`, val: `${prefix}-val` };
}
