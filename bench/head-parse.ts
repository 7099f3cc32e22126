/**
 * How long loading a head file takes, and how much of it is the JSON Schema check (Ajv, format-schemas.ts):
 * linear heads on a 1280-d backbone with 2, 100 and 1000 labels (float16 weights), with and without an open-set
 * memory of 200 rows per label capped at 4000. Times are medians of repeated parses of the same text, after warm-up
 * (the first parse also compiles the schema: reported on its own).
 *
 *   node --import=@tapjs/typescript/import bench/head-parse.ts [--rounds 15] [--json]
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { parseHeadFile, serializeHeadFile, type HeadFileContent } from '../src/core/formats/head-file.js';
import { checkFormat } from '../src/core/formats/format-schemas.js';
import { IMAGENET_224 } from '../src/core/preprocess/spec.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '15' }, json: { type: 'boolean', default: false } },
});
const rounds = Number(values.rounds);
const dim = 1280;

function values01(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out[i] = x / 2147483648 - 0.5;
  }
  return out;
}

function headText(classes: number, withOpenSet: boolean): string {
  const labels = Array.from({ length: classes }, (_, i) => `class-${i}`);
  const memoryRows = withOpenSet ? Math.min(4000, 200 * classes) : 0;
  const content: HeadFileContent = {
    type: 'linear',
    labels,
    backbone: { id: 'bench', sha256: 'ab'.repeat(32), embeddingDim: dim, preprocess: IMAGENET_224 },
    parameters: { type: 'linear' },
    normalization: { kind: 'none' },
    calibration: { temperature: 1.2 },
    rejection: null,
    training: { edgetlVersion: 'bench', createdAt: 'now', seed: 0, counts: {}, options: {}, metrics: {} },
    openSet: withOpenSet
      ? {
          method: 'knn-cosine',
          k: 5,
          memoryClasses: Array.from({ length: memoryRows }, (_, i) => i % classes),
          memoryWeights: Array.from({ length: memoryRows }, () => 1),
          reference: { rows: memoryRows, mean: 0.3, std: 0.1, quantiles: { q50: 0.3, q90: 0.4, q95: 0.45, q99: 0.5 } },
          threshold: 0.5,
          rate: 0.05,
        }
      : null,
    tensors: [
      { name: 'linear.weight', shape: [classes, dim], data: values01(classes * dim, 1) },
      { name: 'linear.bias', shape: [classes], data: values01(classes, 2) },
      ...(withOpenSet
        ? [
            { name: 'openSet.memory', shape: [memoryRows, dim], data: values01(memoryRows * dim, 3) },
            { name: 'openSet.mean', shape: [dim], data: values01(dim, 4) },
            { name: 'openSet.std', shape: [dim], data: values01(dim, 5).map((v) => v + 1) },
          ]
        : []),
    ],
  };
  return serializeHeadFile(content);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

const rows: Record<string, unknown>[] = [];
let first: number | undefined;
for (const classes of [2, 100, 1000]) {
  for (const withOpenSet of [false, true]) {
    const text = headText(classes, withOpenSet);
    const doc = JSON.parse(text);
    first ??= time(() => checkFormat('headV2', doc));
    for (let i = 0; i < 3; i++) parseHeadFile(text);
    const parse: number[] = [];
    const json: number[] = [];
    const schema: number[] = [];
    // interleaved, so load from other processes touches the three alike
    for (let r = 0; r < rounds; r++) {
      parse.push(time(() => parseHeadFile(text)));
      json.push(time(() => JSON.parse(text)));
      schema.push(time(() => checkFormat('headV2', doc)));
    }
    rows.push({
      labels: classes,
      openSet: withOpenSet,
      megabytes: Number((text.length / 1e6).toFixed(2)),
      parseMs: Number(median(parse).toFixed(3)),
      jsonParseMs: Number(median(json).toFixed(3)),
      schemaMs: Number(median(schema).toFixed(3)),
    });
  }
}
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} logical cores, Node ${process.version}, load average ${loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')}`;
if (values.json) console.log(JSON.stringify({ machine, firstSchemaCheckMs: first, rounds, rows }, null, 1));
else {
  console.log(`${machine}; medians of ${rounds} rounds; first schema check (compiles): ${first?.toFixed(1)} ms`);
  console.log('| labels | open set | MB | parseHeadFile ms | of which JSON.parse ms | schema check ms |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.labels} | ${r.openSet ? 'yes' : 'no'} | ${r.megabytes} | ${r.parseMs} | ${r.jsonParseMs} | ${r.schemaMs} |`,
    );
}
