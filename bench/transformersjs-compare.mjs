#!/usr/bin/env node
// `edgetl embed` as a whole process (module loading, session creation, decoding, inference, writing; cache empty)
// against Transformers.js' `image-feature-extraction` pipeline on the same ONNX graph and the same photos, CPU,
// batch 8, as separate processes taken in turns (edgetl, Transformers.js, edgetl, ...), each timed from spawn to exit.
//
// Transformers.js is not a dependency: install it outside the repo and point --tjs at that folder, e.g.
//   mkdir /tmp/tjs && cd /tmp/tjs && npm init -y && ONNXRUNTIME_NODE_INSTALL=skip npm install @huggingface/transformers
//   node bench/transformersjs-compare.mjs --tjs /tmp/tjs --images <folder> [--limit 1000] [--rounds 2]
//        [--model ../shared/models/mobilenetv2-12-int8.onnx]
// The model folder Transformers.js reads (config.json, preprocessor_config.json with the same torchvision recipe:
// shorter side 256 bilinear, center crop 224, ImageNet mean/std; onnx/model.onnx) is made from the feature-extractor
// graph edgetl runs, its input renamed pixel_values and its output last_hidden_state, so both run the same graph.
import { spawn, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  writeFileSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  rmSync,
  mkdtempSync,
} from 'node:fs';
import { cpus, tmpdir, loadavg } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const tjs = resolve(option('--tjs', '/tmp/tjs'));
const images = resolve(option('--images', join(repo, '..', 'shared', 'datasets', 'flowers5', 'val')));
const limit = Number(option('--limit', '1000'));
const rounds = Number(option('--rounds', '2'));
const model = resolve(option('--model', join(repo, '..', 'shared', 'models', 'mobilenetv2-12-int8.onnx')));
const work = mkdtempSync(join(tmpdir(), 'edgetl-tjs-'));

function listImages(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) listImages(path, out);
    else if (/\.(jpe?g|png)$/i.test(name)) out.push(path);
  }
  return out;
}
// One flat folder of `limit` photos (symlinks), so both sides see exactly the same files.
const photos = images
  .split(',')
  .flatMap((d) => listImages(resolve(d)))
  .slice(0, limit);
const folder = join(work, 'photos');
mkdirSync(folder);
photos.forEach((p, i) => symlinkSync(p, join(folder, `${String(i).padStart(5, '0')}-${p.split('/').pop()}`)));

// The feature extractor edgetl runs: ask edgetl for it once (this also fills the extractor cache the timed runs
// would otherwise build; the timed edgetl runs get their own empty cache dir each).
const prepCache = join(work, 'prep-cache');
const prep = spawnSync(
  process.execPath,
  [
    join(repo, 'dist', 'cli.js'),
    'embed',
    join(folder),
    '--backbone',
    model,
    '--out',
    join(work, 'prep'),
    '--json',
    '--no-cache',
  ],
  {
    env: { ...process.env, EDGETL_CACHE_DIR: prepCache },
    encoding: 'utf8',
  },
);
if (prep.status !== 0) throw new Error(`edgetl embed failed: ${prep.stderr}`);
const extractorDir = join(prepCache, 'extractors');
const extractor = readdirSync(extractorDir).find((f) => f.endsWith('.onnx'));
const { onnx } = onnxProto;
const graph = onnx.ModelProto.decode(readFileSync(join(extractorDir, extractor)));
const inputName = graph.graph.input.find((i) => !graph.graph.initializer.some((t) => t.name === i.name)).name;
const outputName = graph.graph.output[0].name;
const rename = (name) => (name === inputName ? 'pixel_values' : name === outputName ? 'last_hidden_state' : name);
for (const node of graph.graph.node) {
  node.input = node.input.map(rename);
  node.output = node.output.map(rename);
}
for (const v of [...graph.graph.input, ...graph.graph.output]) v.name = rename(v.name);
const modelDir = join(work, 'tjs-model');
mkdirSync(join(modelDir, 'onnx'), { recursive: true });
writeFileSync(join(modelDir, 'onnx', 'model.onnx'), onnx.ModelProto.encode(graph).finish());
writeFileSync(
  join(modelDir, 'config.json'),
  JSON.stringify({ model_type: 'mobilenet_v2', architectures: ['MobileNetV2Model'] }),
);
writeFileSync(
  join(modelDir, 'preprocessor_config.json'),
  JSON.stringify({
    image_processor_type: 'MobileNetV2ImageProcessor',
    do_resize: true,
    size: { shortest_edge: 256 },
    resample: 2,
    do_center_crop: true,
    crop_size: { height: 224, width: 224 },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.485, 0.456, 0.406],
    image_std: [0.229, 0.224, 0.225],
  }),
);
const tjsScript = join(work, 'tjs-embed.mjs');
writeFileSync(
  tjsScript,
  `import { pipeline, env } from ${JSON.stringify(join(tjs, 'node_modules', '@huggingface', 'transformers', 'dist', 'transformers.node.mjs'))};
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
env.allowRemoteModels = false;
env.localModelPath = ${JSON.stringify(work)};
const extractor = await pipeline('image-feature-extraction', 'tjs-model', { device: 'cpu', dtype: 'fp32' });
const folder = ${JSON.stringify(folder)};
const files = readdirSync(folder).sort().map((f) => join(folder, f));
let rows = 0;
for (let i = 0; i < files.length; i += 8) {
  const out = await extractor(files.slice(i, i + 8));
  rows += out.dims[0];
}
console.log(JSON.stringify({ rows }));
`,
);

function timed(command, commandArgs, env) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(command, commandArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${commandArgs.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolvePromise({ seconds, stdout });
    });
  });
}

const results = { edgetl: [], transformersjs: [] };
for (let r = 0; r < rounds; r++) {
  const cache = join(work, `cache-${r}`);
  const e = await timed(
    process.execPath,
    [join(repo, 'dist', 'cli.js'), 'embed', folder, '--backbone', model, '--out', join(work, `edgetl-${r}`), '--json'],
    { EDGETL_CACHE_DIR: cache },
  );
  const count = JSON.parse(e.stdout).count;
  results.edgetl.push({ seconds: e.seconds, images: count, imagesPerSecond: count / e.seconds });
  const t = await timed(process.execPath, [tjsScript], {});
  const rows = JSON.parse(t.stdout.trim().split('\n').pop()).rows;
  results.transformersjs.push({ seconds: t.seconds, images: rows, imagesPerSecond: rows / t.seconds });
  console.error(
    `round ${r + 1}: edgetl ${(count / e.seconds).toFixed(1)} images/s, Transformers.js ${(rows / t.seconds).toFixed(1)} images/s`,
  );
}
const tjsVersion = JSON.parse(
  readFileSync(join(tjs, 'node_modules', '@huggingface', 'transformers', 'package.json'), 'utf8'),
).version;
const ratios = results.edgetl.map((e, i) => e.imagesPerSecond / results.transformersjs[i].imagesPerSecond);
const report = {
  photos: photos.length,
  images,
  model,
  transformersjs: tjsVersion,
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, loadAverage: loadavg() },
  rounds: results,
  ratio: { min: Math.min(...ratios), max: Math.max(...ratios) },
};
console.log(JSON.stringify(report, null, 2));
rmSync(work, { recursive: true, force: true });
