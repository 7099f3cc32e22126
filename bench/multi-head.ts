/**
 * Several heads on one backbone pass: `edgetl predict <val> --head a.json --head b.json` against one head alone.
 * Checks that each head's entries in the two-head run equal its own single-head run exactly (labels, scores,
 * top-k), and times whole CLI runs (process start, model load, decode, inference, heads, output), interleaved:
 * each round runs "one head" and "two heads" back to back, alternating which goes first.
 *
 *   npm run build
 *   EDGETL_MODEL_PATH=../shared/models node --import=@tapjs/typescript/import bench/multi-head.ts
 *        [--train ../shared/datasets/hymenoptera/train] [--val ../shared/datasets/hymenoptera/val]
 *        [--backbone mobilenetv2-12-int8] [--rounds 5] [--json]
 *
 * The embedding cache is off for the timed runs (--no-cache): a cached run measures the disk, not the pass.
 */
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Backbone } from '../src/node/embed/backbone.js';
import { scanImageFolder } from '../src/node/embed/dataset.js';
import { trainHead } from '../src/node/train-head.js';
import { saveHead } from '../src/node/head-io.js';

const { values } = parseArgs({
  options: {
    train: { type: 'string', default: '../shared/datasets/hymenoptera/train' },
    val: { type: 'string', default: '../shared/datasets/hymenoptera/val' },
    backbone: { type: 'string', default: 'mobilenetv2-12-int8' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const cli = resolve('dist/cli.js');
const work = mkdtempSync(join(tmpdir(), 'edgetl-multi-head-'));
process.env.EDGETL_CACHE_DIR ??= join(work, 'cache');

try {
  const backbone = await Backbone.load(values.backbone!, { ep: 'cpu' });
  const scan = await scanImageFolder(resolve(values.train!));
  const embedded = await backbone.embedMany(scan.items.map((i) => i.path));
  const labels = embedded.items.map((item) => scan.items[item.index].label!);
  const ref = {
    id: backbone.id,
    sha256: backbone.sha256,
    embeddingDim: backbone.embeddingDim,
    preprocess: backbone.preprocess,
  };
  const heads = { linear: join(work, 'linear.json'), prototype: join(work, 'prototype.json') };
  const trained = {
    linear: await trainHead(embedded.embeddings, labels, { backbone: ref, type: 'linear' }),
    prototype: await trainHead(embedded.embeddings, labels, { backbone: ref, type: 'prototype' }),
  };
  await saveHead(trained.linear, heads.linear);
  await saveHead(trained.prototype, heads.prototype);
  // In process: the one embedding pass over val (no cache) against applying each head to its embeddings.
  const valScan = await scanImageFolder(resolve(values.val!));
  const passStarted = performance.now();
  const val = await backbone.embedMany(
    valScan.items.map((i) => i.path),
    { useCache: false },
  );
  const passSeconds = (performance.now() - passStarted) / 1000;
  await backbone.close();
  const headSeconds = (head: (typeof trained)['linear']) => {
    const samples: number[] = [];
    for (let i = 0; i < 21; i++) {
      const started = performance.now();
      head.predictMany(val.embeddings, val.items.length, { topK: 3 });
      samples.push((performance.now() - started) / 1000);
    }
    return samples.sort((a, b) => a - b)[10];
  };
  const inProcess = {
    embeddingPassSeconds: passSeconds,
    linearHeadSeconds: headSeconds(trained.linear),
    prototypeHeadSeconds: headSeconds(trained.prototype),
  };

  const predict = (headFiles: string[]) => {
    const started = performance.now();
    const stdout = execFileSync(
      process.execPath,
      [
        cli,
        'predict',
        resolve(values.val!),
        ...headFiles.flatMap((h) => ['--head', h]),
        '--ep',
        'cpu',
        '--no-cache',
        '--json',
      ],
      {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      },
    );
    return {
      seconds: (performance.now() - started) / 1000,
      lines: stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    };
  };

  // Exactness: each head's part of the two-head run against its own run.
  const alone = { linear: predict([heads.linear]).lines, prototype: predict([heads.prototype]).lines };
  const both = predict([heads.linear, heads.prototype]).lines;
  let compared = 0;
  let differing = 0;
  both.forEach((line, i) => {
    const perHead = line.heads as Record<string, unknown>[];
    (['linear', 'prototype'] as const).forEach((name, h) => {
      const { path: _path, ...expected } = alone[name][i];
      const fields = Object.fromEntries(Object.keys(expected).map((k) => [k, perHead[h][k]]));
      compared++;
      if (line.path !== alone[name][i].path || JSON.stringify(fields) !== JSON.stringify(expected)) differing++;
    });
  });

  const one: number[] = [];
  const two: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ['one', 'two'] : ['two', 'one'];
    for (const which of order) {
      if (which === 'one') one.push(predict([heads.linear]).seconds);
      else two.push(predict([heads.linear, heads.prototype]).seconds);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    machine: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end`,
    backbone: values.backbone,
    images: both.length,
    exact: { compared, differing },
    oneHeadSeconds: one.map((s) => Number(s.toFixed(3))),
    twoHeadSeconds: two.map((s) => Number(s.toFixed(3))),
    medianOne: Number(median(one).toFixed(3)),
    medianTwo: Number(median(two).toFixed(3)),
    ratio: Number((median(two) / median(one)).toFixed(3)),
    pairedRatios: one.map((o, i) => Number((two[i] / o).toFixed(3))),
    medianPairedRatio: Number(median(one.map((o, i) => two[i] / o)).toFixed(3)),
    limit: 1.3,
    inProcess: {
      embeddingPassSeconds: Number(inProcess.embeddingPassSeconds.toFixed(3)),
      linearHeadMs: Number((inProcess.linearHeadSeconds * 1000).toFixed(3)),
      prototypeHeadMs: Number((inProcess.prototypeHeadSeconds * 1000).toFixed(3)),
    },
  };
  if (values.json) console.log(JSON.stringify(result, null, 1));
  else {
    console.log(`${result.images} images, ${values.backbone}; ${result.machine}`);
    console.log(`exact: ${compared - differing} of ${compared} per-head predictions equal their single-head run`);
    console.log(`one head:  ${result.oneHeadSeconds.join(' ')} s (median ${result.medianOne})`);
    console.log(`two heads: ${result.twoHeadSeconds.join(' ')} s (median ${result.medianTwo})`);
    console.log(
      `ratio of medians ${result.ratio}, median of paired ratios ${result.medianPairedRatio} (limit ${result.limit})`,
    );
    console.log(
      `in process: embedding pass ${result.inProcess.embeddingPassSeconds} s; linear head ${result.inProcess.linearHeadMs} ms, prototype head ${result.inProcess.prototypeHeadMs} ms for all ${result.images} images`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
