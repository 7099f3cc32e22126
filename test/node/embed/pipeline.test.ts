import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runEmbeddingPipeline, type PipelineStages } from '../../../src/node/embed/pipeline.js';
import { EmbeddingCache } from '../../../src/node/embed/cache.js';
import { decodeToRgb, type RawImage } from '../../../src/node/preprocess/node-image.js';
import type { PreprocessSpec } from '../../../src/core/preprocess/spec.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

const spec: PreprocessSpec = {
  layout: 'NCHW',
  width: 8,
  height: 8,
  resize: 'stretch',
  resizeTo: 8,
  crop: 'none',
  channelOrder: 'RGB',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
};
const perImage = 3 * 8 * 8;

/** A stand-in backbone: the embedding is the mean of each channel plane, so it reveals which image it saw. */
function channelMeans(tensor: Float32Array, count: number): Float32Array {
  const out = new Float32Array(count * 3);
  for (let n = 0; n < count; n++) {
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      for (let p = 0; p < 64; p++) sum += tensor[n * perImage + c * 64 + p]!;
      out[n * 3 + c] = sum / 64;
    }
  }
  return out;
}

const colour = (i: number) => ({ r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 13 + 5) % 256 });

async function folderOfImages(t: { teardown(fn: () => unknown): void }, count: number): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-pipe-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `img${String(i).padStart(3, '0')}.png`);
    await sharp({ create: { width: 20 + i, height: 12, channels: 3, background: colour(i) } })
      .png()
      .toFile(path);
    paths.push(path);
  }
  return paths;
}

interface Counters {
  decodes: number;
  inferCalls: number[];
}

function stages(counters: Counters, extra: Partial<PipelineStages> = {}): PipelineStages {
  return {
    spec,
    dim: 3,
    infer: async (tensor, count) => {
      counters.inferCalls.push(count);
      t.equal(tensor.length, count * perImage);
      return channelMeans(tensor, count);
    },
    decode: (source, s) => {
      counters.decodes++;
      return decodeToRgb(source, s);
    },
    ...extra,
  };
}

function colourArray(i: number): number[] {
  const c = colour(i);
  return [c.r, c.g, c.b];
}

t.test('embeds in input order, batching, and skips unusable files with their reason', async (t) => {
  const paths = await folderOfImages(t, 11);
  const corrupt = paths[4]!;
  await writeFile(corrupt, Buffer.from('not an image at all'));
  const missing = join(paths[0]!, '..', 'missing.png');
  const sources = [...paths.slice(0, 7), missing, ...paths.slice(7)];
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const progress: [number, number, number][] = [];
  const result = await runEmbeddingPipeline(sources, stages(counters), {
    batchSize: 4,
    onProgress: (d, n, s) => progress.push([d, n, s]),
  });

  t.same(
    result.skipped.map((s) => [s.index, s.path]),
    [
      [4, corrupt],
      [7, missing],
    ],
  );
  t.match(result.skipped[0]!.reason, /not an image|unsupported|corrupt/);
  t.equal(result.skipped[1]!.reason, 'file not found');
  t.same(
    result.items.map((i) => i.index),
    [0, 1, 2, 3, 5, 6, 8, 9, 10, 11],
  );
  t.equal(result.embeddings.length, 10 * 3);
  result.items.forEach((item, row) => {
    const imageNumber = item.index < 7 ? item.index : item.index - 1;
    t.same(
      Array.from(result.embeddings.subarray(row * 3, row * 3 + 3)),
      colourArray(imageNumber),
      `row ${row} is ${item.source}`,
    );
  });
  t.same(counters.inferCalls, [4, 4, 2], 'full batches, then the remainder');
  t.same(progress.at(-1), [12, 12, 2]);
  t.ok(
    progress.every((p, i) => i === 0 || p[0] >= progress[i - 1]![0]),
    'progress never goes back',
  );
  t.equal(result.stats.computed, 10);
  t.equal(result.stats.cacheHits, 0);
});

t.test('a fixed-batch model is fed its batch size', async (t) => {
  const paths = await folderOfImages(t, 5);
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const result = await runEmbeddingPipeline(paths, stages(counters, { fixedBatch: 1 }), { batchSize: 8 });
  t.same(counters.inferCalls, [1, 1, 1, 1, 1]);
  t.equal(result.items.length, 5);
  t.same(Array.from(result.embeddings.subarray(12, 15)), colourArray(4), 'last image');
});

t.test('strict mode makes a skip fatal and names the file', async (t) => {
  const paths = await folderOfImages(t, 3);
  await writeFile(paths[1]!, Buffer.alloc(0));
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const error = await runEmbeddingPipeline(paths, stages(counters), { strict: true }).catch((e: unknown) => e);
  t.ok(error instanceof EdgetlError);
  t.equal((error as EdgetlError).code, 'bad-image');
  t.match((error as EdgetlError).message, paths[1]!);
  t.equal((error as EdgetlError).file, paths[1]);
});

t.test('buffers and raw pixels are embedded too', async (t) => {
  const paths = await folderOfImages(t, 1);
  const png = await sharp(paths[0]!).toBuffer();
  const raw: RawImage = { rgb: new Uint8Array(8 * 8 * 3).fill(200), width: 8, height: 8, channels: 3 };
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const result = await runEmbeddingPipeline([png, raw], stages(counters));
  t.same(
    result.items.map((i) => i.source),
    ['<buffer #0>', '<raw 8x8 #1>'],
  );
  t.same(Array.from(result.embeddings.subarray(0, 3)), colourArray(0), 'buffer');
  t.same(Array.from(result.embeddings.subarray(3, 6)), [200, 200, 200]);
});

t.test('a second run over unchanged images is served from the cache: no decode, no inference', async (t) => {
  const paths = await folderOfImages(t, 9);
  const root = await mkdtemp(join(tmpdir(), 'edgetl-pipe-cache-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const open = () => EmbeddingCache.open({ root, fingerprint: 'fake', preprocess: spec, dim: 3 });
  const first: Counters = { decodes: 0, inferCalls: [] };
  const cache1 = await open();
  const a = await runEmbeddingPipeline(paths, stages(first, { cache: cache1 }), { batchSize: 4 });
  await cache1.close();
  t.equal(first.decodes, 9);

  const second: Counters = { decodes: 0, inferCalls: [] };
  const cache2 = await open();
  const b = await runEmbeddingPipeline(paths, stages(second, { cache: cache2 }), { batchSize: 4 });
  t.equal(second.decodes, 0);
  t.same(second.inferCalls, []);
  t.equal(b.stats.cacheHits, 9);
  t.same(Array.from(b.embeddings), Array.from(a.embeddings));

  const third: Counters = { decodes: 0, inferCalls: [] };
  const c = await runEmbeddingPipeline(paths, stages(third, { cache: cache2 }), { useCache: false });
  t.equal(third.decodes, 9, 'useCache false recomputes');
  t.same(Array.from(c.embeddings), Array.from(a.embeddings));
  await cache2.close();
});

t.test('memory stays bounded: decoding runs only a window ahead of a stalled backbone', async (t) => {
  const paths = await folderOfImages(t, 60);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const run = runEmbeddingPipeline(
    paths,
    stages(counters, {
      infer: async (tensor, count) => {
        counters.inferCalls.push(count);
        await gate;
        return channelMeans(tensor, count);
      },
    }),
    { batchSize: 4, prefetchBatches: 2 },
  );
  let last = -1;
  while (counters.decodes !== last) {
    last = counters.decodes;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  // Batch 0 in flight, batch 1 filled and waiting, plus a window of 3 batches ahead of the consumer.
  t.ok(counters.decodes <= 4 * 5, `decoded ${counters.decodes} of 60 while the backbone was stalled`);
  t.ok(counters.decodes >= 8, 'decoding did run ahead of inference');
  release();
  const result = await run;
  t.equal(result.items.length, 60);
});

t.test('an inference failure is reported, not swallowed', async (t) => {
  const paths = await folderOfImages(t, 6);
  const counters: Counters = { decodes: 0, inferCalls: [] };
  await t.rejects(
    runEmbeddingPipeline(
      paths,
      stages(counters, {
        infer: async () => {
          throw new Error('device lost');
        },
      }),
      { batchSize: 2 },
    ),
    /device lost/,
  );
});

t.test('cancelling stops the run with an aborted error', async (t) => {
  const paths = await folderOfImages(t, 20);
  const controller = new AbortController();
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const error = await runEmbeddingPipeline(paths, stages(counters), {
    batchSize: 2,
    signal: controller.signal,
    onProgress: (done) => {
      if (done >= 4) controller.abort();
    },
  }).catch((e: unknown) => e);
  t.equal((error as EdgetlError).code, 'aborted');
  t.ok(counters.inferCalls.length < 10);
});

t.test('onEmbedding streams results in input order; collect false keeps nothing', async (t) => {
  const paths = await folderOfImages(t, 10);
  await writeFile(paths[3]!, 'broken');
  const counters: Counters = { decodes: 0, inferCalls: [] };
  const streamed: [number, number[]][] = [];
  const result = await runEmbeddingPipeline(paths, stages(counters), {
    batchSize: 3,
    collect: false,
    onEmbedding: (item, embedding) => streamed.push([item.index, Array.from(embedding)]),
  });
  t.equal(result.embeddings.length, 0);
  t.same(
    result.items.map((i) => i.index),
    [0, 1, 2, 4, 5, 6, 7, 8, 9],
  );
  t.same(
    streamed.map(([index]) => index),
    [0, 1, 2, 4, 5, 6, 7, 8, 9],
  );
  for (const [index, vector] of streamed) t.same(vector, colourArray(index), `streamed ${index}`);
});
