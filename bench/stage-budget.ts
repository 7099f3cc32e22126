/**
 * CPU-ms per image for each stage of `edgetl embed` (read, header, decode, resize, tensor, inference, head, write),
 * each measured alone on the same photos, one image at a time, with process CPU time (all threads: libvips' and
 * onnxruntime's included), next to that stage's limit: a peer doing the same work (Pillow's C decode and resize, in
 * /usr/bin/python3 on the same files) or a floor (memcpy of the same bytes, a plain onnxruntime session).
 * Rounds interleave the stages, so a shared machine's load spreads over all of them; each stage reports its range.
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/stage-budget.ts [folder]
 *        [--limit 150] [--rounds 3] [--model path.onnx] [--json]
 */
import { readdirSync, statSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cpus, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import ort from 'onnxruntime-node';
import { configureSharp, decodeToRgb } from '../src/node/preprocess/node-image.js';
import {
  resizePillowFast,
  resizePillowToTensor,
  pillowResampleBackend,
} from '../src/core/preprocess/pillow-resample-wasm.js';
import { resizeBilinearPillow } from '../src/core/preprocess/pillow-resample.js';
import { IMAGENET_224 } from '../src/core/preprocess/spec.js';
import { resizeGeometry, tensorElementsPerImage, writePixelsToTensor } from '../src/core/preprocess/tensor.js';
import { Backbone } from '../src/node/embed/backbone.js';
import { trainHead } from '../src/core/heads/train.js';

const args = process.argv.slice(2);
const valueFlags = ['--limit', '--rounds', '--model'];
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
};
const limit = Number(flag('--limit', '150'));
const rounds = Number(flag('--rounds', '3'));
const modelPath = resolve(
  flag('--model', join(import.meta.dirname ?? '.', '..', '..', 'shared', 'models', 'mobilenetv2-12-int8.onnx')),
);
const json = args.includes('--json');
const positional = args.filter((a, i) => !a.startsWith('--') && !valueFlags.includes(args[i - 1] ?? ''));
const folder = resolve(
  positional[0] ?? join(import.meta.dirname ?? '.', '..', '..', 'shared', 'datasets', 'hymenoptera', 'val'),
);

function listImages(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) listImages(path, out);
    else if (/\.(jpe?g|png)$/i.test(name)) out.push(path);
    if (out.length >= limit) break;
  }
  return out;
}
const files = listImages(folder).slice(0, limit);
const spec = IMAGENET_224;
configureSharp();

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** CPU-ms per image of `work` over all files, run one image at a time. */
async function perImage(work: (i: number) => Promise<void> | void, count = files.length): Promise<number> {
  const c0 = cpuMs();
  for (let i = 0; i < count; i++) await work(i);
  return (cpuMs() - c0) / count;
}

// Inputs each stage starts from, prepared once (so a stage's figure holds only its own work).
const bytes = files.map((f) => readFileSync(f));
const decoded: { data: Uint8Array; width: number; height: number; channels: number }[] = [];
for (const b of bytes) {
  const { data, info } = await sharp(b, { autoOrient: true })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  decoded.push({ data, width: info.width, height: info.height, channels: info.channels });
}
const geometry = decoded.map((d) => resizeGeometry(d.width, d.height, spec));
const crops = decoded.map((d, i) => {
  const g = geometry[i]!;
  return resizePillowFast(d.data, d.width, d.height, d.channels, g.resizeW, g.resizeH, {
    left: g.cropLeft,
    top: g.cropTop,
    width: spec.width,
    height: spec.height,
  });
});
const perImageElements = tensorElementsPerImage(spec);
const tensor = new Float32Array(perImageElements * 8);

const backbone = await Backbone.load(modelPath, { download: false });
const batchTensor = new Float32Array(perImageElements * 8);
for (let i = 0; i < 8; i++)
  writePixelsToTensor(crops[i % crops.length]!, spec.width, spec.height, 3, spec, batchTensor, i);
const rawSessions = new Map<number, ort.InferenceSession>();
for (const threads of [1, 2]) {
  rawSessions.set(
    threads,
    await ort.InferenceSession.create(backbone.featureExtractorPath, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionProviders: ['cpu'],
    }),
  );
}
const rawInput = rawSessions.get(1)!.inputNames[0]!;
const embeddings = new Float32Array(backbone.embeddingDim * 64);
for (let i = 0; i < embeddings.length; i++) embeddings[i] = Math.random();
const headLabels = Array.from({ length: 64 }, (_, i) => (i % 2 ? 'a' : 'b'));
const head2 = await trainHead(embeddings, headLabels, { l2: 1e-2, calibrate: false });
const head102 = await trainHead(
  Float32Array.from({ length: backbone.embeddingDim * 204 }, () => Math.random()),
  Array.from({ length: 204 }, (_, i) => `c${i % 102}`),
  { l2: 1e-2, calibrate: false, folds: 2 },
);
const scratch = mkdtempSync(join(tmpdir(), 'edgetl-budget-'));

const stages: Record<string, () => Promise<number>> = {
  read: () => perImage(async (i) => void (await readFile(files[i]!))),
  'read floor: memcpy of the bytes': () => perImage((i) => void Uint8Array.from(bytes[i]!)),
  'header (sharp metadata)': () => perImage(async (i) => void (await sharp(bytes[i]!).metadata())),
  'decode (sharp, full size RGB)': () =>
    perImage(async (i) => void (await sharp(bytes[i]!, { autoOrient: true }).toColourspace('srgb').raw().toBuffer())),
  'decode+resize (edgetl decodeToRgb, exact)': () =>
    perImage(async (i) => void (await decodeToRgb(bytes[i]!, spec, { kernel: 'pillow' }))),
  'decode+resize (libvips linear)': () =>
    perImage(async (i) => void (await decodeToRgb(bytes[i]!, spec, { kernel: 'linear' }))),
  'resize (exact, WebAssembly SIMD)': () =>
    perImage((i) => {
      const d = decoded[i]!;
      const g = geometry[i]!;
      resizePillowFast(d.data, d.width, d.height, d.channels, g.resizeW, g.resizeH, {
        left: g.cropLeft,
        top: g.cropTop,
        width: spec.width,
        height: spec.height,
      });
    }),
  'resize (exact, JS port)': () =>
    perImage((i) => {
      const d = decoded[i]!;
      const g = geometry[i]!;
      resizeBilinearPillow(d.data, d.width, d.height, d.channels, g.resizeW, g.resizeH, {
        left: g.cropLeft,
        top: g.cropTop,
        width: spec.width,
        height: spec.height,
      });
    }),
  'resize+tensor fused (WebAssembly)': () =>
    perImage((i) => {
      const d = decoded[i]!;
      const g = geometry[i]!;
      resizePillowToTensor(
        d.data,
        d.width,
        d.height,
        3,
        g.resizeW,
        g.resizeH,
        { left: g.cropLeft, top: g.cropTop, width: spec.width, height: spec.height },
        spec,
        tensor,
        i % 8,
      );
    }),
  'tensor (writePixelsToTensor, JS)': () =>
    perImage((i) => writePixelsToTensor(crops[i]!, spec.width, spec.height, 3, spec, tensor, i % 8)),
  'tensor floor: fill 602 KB of floats': () =>
    perImage((i) => void tensor.fill(i, (i % 8) * perImageElements, ((i % 8) + 1) * perImageElements)),
  'inference (edgetl session, batch 8)': async () => {
    const c0 = cpuMs();
    const batches = Math.ceil(files.length / 8);
    for (let b = 0; b < batches; b++) await backbone.embedTensors(batchTensor, 8);
    return (cpuMs() - c0) / (batches * 8);
  },
  ...Object.fromEntries(
    [1, 2].map((threads) => [
      `inference floor: plain onnxruntime, ${threads} thread${threads > 1 ? 's' : ''}, batch 8`,
      async () => {
        const session = rawSessions.get(threads)!;
        const input = new ort.Tensor('float32', batchTensor, [8, 3, 224, 224]);
        const c0 = cpuMs();
        const batches = Math.ceil(files.length / 8);
        for (let b = 0; b < batches; b++) await session.run({ [rawInput]: input });
        return (cpuMs() - c0) / (batches * 8);
      },
    ]),
  ),
  'head (linear, 2 classes, predict)': () =>
    perImage(
      (i) =>
        void head2.predict(
          embeddings.subarray((i % 64) * backbone.embeddingDim, ((i % 64) + 1) * backbone.embeddingDim),
        ),
    ),
  'head (linear, 102 classes, predict)': () =>
    perImage(
      (i) =>
        void head102.predict(
          embeddings.subarray((i % 64) * backbone.embeddingDim, ((i % 64) + 1) * backbone.embeddingDim),
        ),
    ),
  'write (embedding rows to .npy + atomic rename, per image)': async () => {
    const c0 = cpuMs();
    const out = new Float32Array(files.length * backbone.embeddingDim);
    await writeFile(join(scratch, 'e.npy.tmp'), new Uint8Array(out.buffer));
    await rename(join(scratch, 'e.npy.tmp'), join(scratch, 'e.npy'));
    return (cpuMs() - c0) / files.length;
  },
};
// The backbone's own session ran in embedTensors: its threads are what `edgetl embed` uses by default.

const samples = new Map<string, number[]>(Object.keys(stages).map((k) => [k, []]));
for (const run of Object.values(stages)) await run(); // warm-up (JIT, libvips, onnxruntime)
for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(stages)) samples.get(name)!.push(await run());

// Peer: Pillow's C decode (libjpeg-turbo through PIL) and resize (ImagingResample, BILINEAR), CPU time per image.
const listFile = join(scratch, 'files.txt');
writeFileSync(listFile, files.join('\n'));
const peer = spawnSync(
  '/usr/bin/python3',
  [
    '-c',
    `
import sys, time, json
from PIL import Image
files = open(sys.argv[1]).read().split('\\n')
rounds = int(sys.argv[2])
out = {'decode': [], 'resize': []}
imgs = []
for f in files:
    im = Image.open(f); im = im.convert('RGB'); imgs.append(im)
for r in range(rounds + 1):
    t = time.process_time()
    for f in files:
        im = Image.open(f); im.draft(None, None); im.convert('RGB')
    d = (time.process_time() - t) * 1000 / len(files)
    t = time.process_time()
    for im in imgs:
        w, h = im.size
        s = 256 / min(w, h)
        im.resize((max(256, int(w * s)), max(256, int(h * s))), Image.BILINEAR)
    z = (time.process_time() - t) * 1000 / len(files)
    if r: out['decode'].append(d); out['resize'].append(z)
print(json.dumps(out))
`,
    listFile,
    String(rounds),
  ],
  { encoding: 'utf8' },
);
rmSync(scratch, { recursive: true, force: true });
const pillow = peer.status === 0 ? (JSON.parse(peer.stdout) as { decode: number[]; resize: number[] }) : undefined;
if (pillow) {
  samples.set('peer: Pillow decode (C, libjpeg-turbo)', pillow.decode);
  samples.set('peer: Pillow resize to 256 shorter side (C, full image, no crop)', pillow.resize);
}
await backbone.close();

const range = (xs: number[]) => ({
  min: Math.min(...xs),
  median: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!,
  max: Math.max(...xs),
});
const rows = [...samples].map(([stage, xs]) => ({ stage, cpuMsPerImage: range(xs) }));
const pixels = decoded.reduce((s, d) => s + d.width * d.height, 0) / decoded.length;
const report = {
  folder,
  images: files.length,
  meanMegapixels: pixels / 1e6,
  rounds,
  model: modelPath,
  exactResize: pillowResampleBackend(),
  machine: {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    node: process.version,
    loadAverage: (await import('node:os')).loadavg(),
  },
  peerError: pillow ? undefined : peer.stderr.trim().split('\n').pop(),
  rows,
};
if (json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(
    `${files.length} images from ${folder} (mean ${report.meanMegapixels.toFixed(2)} MP), ${rounds} interleaved rounds, CPU-ms per image (median, range)`,
  );
  for (const r of rows)
    console.log(
      `  ${r.stage.padEnd(62)} ${r.cpuMsPerImage.median.toFixed(3).padStart(8)}  (${r.cpuMsPerImage.min.toFixed(3)}-${r.cpuMsPerImage.max.toFixed(3)})`,
    );
  if (!pillow) console.log(`  (no Pillow peer: ${report.peerError})`);
}
