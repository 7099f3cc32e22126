import { Random } from '../../../src/core/heads/random.js';

/** Gaussian clusters: class c centred at `separation` * e_c (plus shared noise dims), seeded. */
export function gaussianClusters(options: {
  perClass: number[];
  dim: number;
  separation: number;
  noise?: number;
  seed: number;
}): { data: Float32Array; labels: string[] } {
  const random = new Random(options.seed);
  const rows = options.perClass.reduce((a, b) => a + b, 0);
  const data = new Float32Array(rows * options.dim);
  const labels: string[] = [];
  let r = 0;
  options.perClass.forEach((count, c) => {
    for (let i = 0; i < count; i++, r++) {
      for (let d = 0; d < options.dim; d++)
        data[r * options.dim + d] =
          (options.noise ?? 1) * random.normal() + (d === c % options.dim ? options.separation : 0);
      labels.push(`c${c}`);
    }
  });
  return { data, labels };
}
