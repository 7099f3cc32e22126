/**
 * Images per second of the embedding pipeline on a real folder, against the same backbone on ready tensors
 * (inference alone: the ceiling) and a naive loop (decode a batch, then infer it, one after the other).
 *
 *   node --import=@tapjs/typescript/import bench/embed-throughput.ts [--dir ../shared/datasets/hymenoptera/train]
 *        [--backbone mobilenetv2-12-int8] [--limit 0] [--batch 8] [--threads 0] [--decode 0] [--repeats 3] [--json]
 *
 * --batch, --threads (onnxruntime intra-op threads, 0 = edgetl's default), --decode (images decoded at once, 0 = cores)
 * and --workers (decode worker threads for the pipeline, 0 = decode on the main thread) take comma lists; every
 * combination is measured, e.g. --threads 1,2 --decode 1,2,3 --workers 0,2 --batch 4,8,16.
 * Run from a build (dist/decode-worker.js) or from source with the TypeScript loader, which workers inherit.
 * The embedding cache is off throughout (a cached run measures the disk, not the pipeline).
 * Run it on a quiet machine: the numbers are only as good as the machine is idle.
 */
import { parseArgs } from 'node:util';
import { availableParallelism, cpus } from 'node:os';
import { existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { Backbone } from '../src/node/embed/backbone.js';
import { scanImageFolder } from '../src/node/embed/dataset.js';
import { decodeToRgb } from '../src/node/preprocess/node-image.js';
import { writePixelsToTensor, tensorElementsPerImage } from '../src/core/preprocess/tensor.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    backbone: { type: 'string', default: 'mobilenetv2-12-int8' },
    limit: { type: 'string', default: '0' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '0' },
    decode: { type: 'string', default: '0' },
    workers: { type: 'string', default: '0' },
    repeats: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});

const list = (text: string) =>
  text
    .split(',')
    .map((v) => Number(v.trim()))
    .filter((v) => Number.isInteger(v) && v >= 0);
const batches = list(values.batch!);
const threadCounts = list(values.threads!);
const decodeCounts = list(values.decode!).map((d) => (d === 0 ? availableParallelism() : d));
const workerCounts = list(values.workers!);
const repeats = Math.max(1, Number(values.repeats));
const limit = Number(values.limit);

function defaultDir(): string {
  const candidates = [
    process.env.EDGETL_DATA_PATH && join(process.env.EDGETL_DATA_PATH, 'datasets', 'hymenoptera', 'train'),
    resolve('..', 'shared', 'datasets', 'hymenoptera', 'train'),
  ].filter((p): p is string => typeof p === 'string');
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`pass --dir: none of ${candidates.join(', ')} exists`);
  return found;
}

const dir = values.dir ?? defaultDir();
const scan = await scanImageFolder(dir);
const paths = scan.items.map((item) => item.path).slice(0, limit > 0 ? limit : undefined);
const searchPath = [process.env.EDGETL_MODEL_PATH, resolve('..', 'shared', 'models'), resolve('models')]
  .flatMap((p) => (p ? p.split(':') : []))
  .filter((p) => existsSync(p));

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Wall seconds of `run`; its process CPU seconds (all threads: sharp, onnxruntime, main) go to `lastCpuSeconds`. */
let lastCpuSeconds = 0;
async function timed(run: () => Promise<unknown>): Promise<number> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await run();
  const used = process.cpuUsage(cpu);
  lastCpuSeconds = (used.user + used.system) / 1e6;
  return (performance.now() - start) / 1000;
}

interface Row {
  mode: 'pipeline' | 'ready-tensors' | 'naive-loop' | 'decode-only';
  batch: number;
  threads: number | 'default';
  decode: number;
  /** Decode worker threads (pipeline only; 0 = main thread). */
  workers: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  /** Process CPU time per image (all threads) in the last repeat: what the work costs, whatever else runs. */
  cpuMsPerImage: number;
}

const rows: Row[] = [];
function record(row: Omit<Row, 'imagesPerSecond' | 'cpuMsPerImage'>): void {
  const full = {
    ...row,
    imagesPerSecond: row.images / row.seconds,
    cpuMsPerImage: (lastCpuSeconds * 1000) / row.images,
  };
  rows.push(full);
  if (!values.json) {
    console.log(
      `${full.mode.padEnd(14)} batch ${String(full.batch).padStart(3)}  threads ${String(full.threads).padEnd(7)}  decode ${String(full.decode).padStart(2)}  workers ${full.workers}  ` +
        `${full.imagesPerSecond.toFixed(1).padStart(7)} images/s  cpu ${full.cpuMsPerImage.toFixed(2)} ms/image  (${full.images} in ${full.seconds.toFixed(2)} s, median of ${repeats})`,
    );
  }
}

/** Decode `paths` with at most `concurrency` at once into slots of `tensor`. */
async function decodeInto(
  files: string[],
  backbone: Backbone,
  tensor: Float32Array,
  concurrency: number,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const slot = next++;
      const image = await decodeToRgb(files[slot]!, backbone.preprocess);
      writePixelsToTensor(image.pixels, image.width, image.height, 3, backbone.preprocess, tensor, slot);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
}

if (!values.json) {
  console.log(
    `${paths.length} images from ${dir}; backbone ${values.backbone}; ${cpus().length} logical cores (${cpus()[0]?.model ?? '?'})`,
  );
}

/** One backbone per (intra-op threads, decode workers): both are load-time choices. */
const runners = new Map<string, Backbone>();
async function pipelineBackbone(threads: number, workers: number): Promise<Backbone> {
  const key = `${threads}/${workers}`;
  let runner = runners.get(key);
  if (!runner) {
    runner = await Backbone.load(values.backbone!, {
      ep: 'cpu',
      cache: false,
      searchPath,
      decodeThreads: workers,
      ...(threads > 0 ? { intraOpThreads: threads } : {}),
    });
    runners.set(key, runner);
  }
  return runner;
}

for (const threads of threadCounts) {
  const backbone = await Backbone.load(values.backbone!, {
    ep: 'cpu',
    cache: false,
    searchPath,
    ...(threads > 0 ? { intraOpThreads: threads } : {}),
  });
  const threadLabel = threads > 0 ? threads : ('default' as const);
  const perImage = tensorElementsPerImage(backbone.preprocess);
  try {
    for (const requestedBatch of batches) {
      const batch = backbone.batch === 'dynamic' ? Math.max(1, requestedBatch) : backbone.batch;
      // Warm-up: first runs allocate arenas and page in the model.
      const warm = new Float32Array(batch * perImage);
      await decodeInto(paths.slice(0, batch), backbone, warm, decodeCounts[0]!);
      await backbone.embedTensors(warm, batch);

      // Ready tensors: the same number of images, inference only.
      const ready = new Float32Array(batch * perImage);
      await decodeInto(paths.slice(0, batch), backbone, ready, availableParallelism());
      const readySeconds = median(
        await sequence(repeats, () =>
          timed(async () => {
            for (let done = 0; done < paths.length; done += batch)
              await backbone.embedTensors(ready, Math.min(batch, paths.length - done));
          }),
        ),
      );
      record({
        mode: 'ready-tensors',
        batch,
        threads: threadLabel,
        decode: 0,
        workers: 0,
        images: paths.length,
        seconds: readySeconds,
      });

      for (const decode of decodeCounts) {
        const decodeSeconds = median(
          await sequence(repeats, () =>
            timed(async () => {
              const scratch = new Float32Array(batch * perImage);
              for (let start = 0; start < paths.length; start += batch)
                await decodeInto(paths.slice(start, start + batch), backbone, scratch, decode);
            }),
          ),
        );
        record({
          mode: 'decode-only',
          batch,
          threads: threadLabel,
          decode,
          workers: 0,
          images: paths.length,
          seconds: decodeSeconds,
        });

        const naiveSeconds = median(
          await sequence(repeats, () =>
            timed(async () => {
              const tensor = new Float32Array(batch * perImage);
              for (let start = 0; start < paths.length; start += batch) {
                const files = paths.slice(start, start + batch);
                await decodeInto(files, backbone, tensor, decode);
                await backbone.embedTensors(tensor, files.length);
              }
            }),
          ),
        );
        record({
          mode: 'naive-loop',
          batch,
          threads: threadLabel,
          decode,
          workers: 0,
          images: paths.length,
          seconds: naiveSeconds,
        });

        for (const workers of workerCounts) {
          const runner = await pipelineBackbone(threads, workers);
          // Start the decode workers outside the timing (a long run pays this once).
          await runner.embedMany(paths.slice(0, Math.min(paths.length, 16)), { batchSize: batch, useCache: false });
          let embedded = 0;
          const pipelineSeconds = median(
            await sequence(repeats, () =>
              timed(async () => {
                const result = await runner.embedMany(paths, {
                  batchSize: batch,
                  decodeConcurrency: workers > 0 ? workers * 2 : decode,
                  useCache: false,
                });
                embedded = result.items.length;
              }),
            ),
          );
          record({
            mode: 'pipeline',
            batch,
            threads: threadLabel,
            decode: workers > 0 ? workers * 2 : decode,
            workers,
            images: embedded,
            seconds: pipelineSeconds,
          });
        }
      }
    }
  } finally {
    await backbone.close();
    for (const runner of runners.values()) await runner.close();
    runners.clear();
  }
}

async function sequence(times: number, run: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) out.push(await run());
  return out;
}

if (values.json) {
  console.log(
    JSON.stringify({ dir, backbone: values.backbone, images: paths.length, cores: availableParallelism(), rows }),
  );
} else {
  const best = (mode: Row['mode']) =>
    rows.filter((r) => r.mode === mode).sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
  const pipeline = best('pipeline');
  const ready = best('ready-tensors');
  const naive = best('naive-loop');
  if (pipeline && ready && naive) {
    console.log(
      `best: pipeline ${pipeline.imagesPerSecond.toFixed(1)} images/s (batch ${pipeline.batch}, threads ${pipeline.threads}, decode ${pipeline.decode}, workers ${pipeline.workers}); ` +
        `ready tensors ${ready.imagesPerSecond.toFixed(1)}; naive loop ${naive.imagesPerSecond.toFixed(1)} ` +
        `(pipeline = ${((pipeline.imagesPerSecond / naive.imagesPerSecond) * 100).toFixed(0)}% of naive, ${((pipeline.imagesPerSecond / ready.imagesPerSecond) * 100).toFixed(0)}% of ready tensors)`,
    );
  }
}
