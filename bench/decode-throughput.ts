/**
 * Images/second and CPU-ms per image of decode + resize + crop (no inference), per resize path, with several
 * decodes in flight the way the embedding pipeline runs them. Tells what the exact (Pillow) resize costs against
 * libvips' linear one, and what the WebAssembly kernels gain over the JS port.
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/decode-throughput.ts \
 *     [folder] [--limit 200] [--in-flight 4] [--rounds 3] [--variants linear,pillow,pillow-js] [--tensor] [--json]
 *
 * Variants: linear (libvips), linear-shrink (libvips with JPEG shrink-on-load), pillow (exact, WebAssembly SIMD),
 * pillow-js (exact, the JS port), pillow-shrink (shrink-on-load then exact: not exact any more).
 * --tensor: also write the model tensor (fused into the resize for the pillow paths), as the pipeline needs.
 * Rounds interleave the variants (round 1: all variants, round 2: all variants, ...), so a neighbour's load on a
 * shared machine falls on all of them alike; each variant reports its range over rounds. CPU-ms is process CPU
 * time (all threads, libvips' included) per image.
 */
import { readdirSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus } from 'node:os';
import { decodeToRgb, imageToTensor, type DecodeOptions } from '../src/node/preprocess/node-image.js';
import { useWasm, pillowResampleBackend } from '../src/core/preprocess/pillow-resample-wasm.js';
import { IMAGENET_224 } from '../src/core/preprocess/spec.js';
import { tensorElementsPerImage } from '../src/core/preprocess/tensor.js';

const args = process.argv.slice(2);
const valueFlags = ['--limit', '--in-flight', '--rounds', '--variants'];
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const json = args.includes('--json');
const tensor = args.includes('--tensor');
const limit = flag('--limit', 200);
const inFlight = flag('--in-flight', 4);
const rounds = flag('--rounds', 3);
const variantList = (
  args.includes('--variants') ? args[args.indexOf('--variants') + 1]! : 'linear,pillow,pillow-js'
).split(',');
const positional = args.filter((a, i) => !a.startsWith('--') && !valueFlags.includes(args[i - 1] ?? ''));
const folder = resolve(
  positional[0] ?? join(import.meta.dirname ?? '.', '..', '..', 'shared', 'datasets', 'hymenoptera'),
);

const VARIANTS: Record<string, { options: DecodeOptions; wasm: boolean }> = {
  linear: { options: { kernel: 'linear' }, wasm: true },
  'linear-shrink': { options: { kernel: 'linear', fastShrinkOnLoad: true }, wasm: true },
  pillow: { options: { kernel: 'pillow' }, wasm: true },
  'pillow-js': { options: { kernel: 'pillow' }, wasm: false },
  'pillow-shrink': { options: { kernel: 'pillow', fastShrinkOnLoad: true }, wasm: true },
};
for (const v of variantList)
  if (!VARIANTS[v]) throw new Error(`unknown variant ${v}; known: ${Object.keys(VARIANTS).join(', ')}`);

function listImages(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) listImages(path, out);
    else if (/\.(jpe?g|png|webp|gif|tiff?|avif)$/i.test(name)) out.push(path);
    if (out.length >= limit) break;
  }
  return out;
}

const files = listImages(folder).slice(0, limit);
// Read the bytes up front: this measures decoding, not the disk.
const buffers = files.map((f) => readFileSync(f));
const out = new Float32Array(tensorElementsPerImage(IMAGENET_224) * inFlight);

async function run(variant: string): Promise<{ seconds: number; cpuMs: number }> {
  const { options, wasm } = VARIANTS[variant]!;
  useWasm(wasm);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const worker = async (slot: number) => {
    while (next < buffers.length) {
      const i = next++;
      if (tensor) await imageToTensor(buffers[i]!, IMAGENET_224, { ...options, out, imageIndex: slot });
      else await decodeToRgb(buffers[i]!, IMAGENET_224, options);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, slot) => worker(slot)));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  useWasm(true);
  return { seconds, cpuMs: (cpu.user + cpu.system) / 1000 };
}

await run('linear'); // warm up libvips and the JIT
for (const v of variantList) await run(v);
const samples = new Map<string, { imagesPerSecond: number; cpuMsPerImage: number }[]>(variantList.map((v) => [v, []]));
for (let r = 0; r < rounds; r++) {
  for (const v of variantList) {
    const { seconds, cpuMs } = await run(v);
    samples.get(v)!.push({ imagesPerSecond: buffers.length / seconds, cpuMsPerImage: cpuMs / buffers.length });
  }
}
const range = (xs: number[]) => ({
  min: Math.min(...xs),
  median: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!,
  max: Math.max(...xs),
});
const rows = variantList.map((variant) => ({
  variant,
  images: buffers.length,
  imagesPerSecond: range(samples.get(variant)!.map((s) => s.imagesPerSecond)),
  cpuMsPerImage: range(samples.get(variant)!.map((s) => s.cpuMsPerImage)),
}));
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  exactBackend: pillowResampleBackend(),
};
if (json) {
  console.log(JSON.stringify({ folder, inFlight, rounds, tensor, machine, rows }));
} else {
  console.log(
    `decode+resize+crop${tensor ? '+tensor' : ''} to 224, ${buffers.length} images from ${folder}, ${inFlight} in flight, ${rounds} interleaved rounds`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}`);
  for (const r of rows) {
    const ips = r.imagesPerSecond;
    const cpu = r.cpuMsPerImage;
    console.log(
      `${r.variant.padEnd(14)} ${ips.median.toFixed(1)} images/s (${ips.min.toFixed(1)}-${ips.max.toFixed(1)})  ` +
        `${cpu.median.toFixed(2)} CPU-ms/image (${cpu.min.toFixed(2)}-${cpu.max.toFixed(2)})`,
    );
  }
}
