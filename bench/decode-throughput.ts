/**
 * Images/second of decode + resize + crop (no inference), per resize kernel, with several decodes in flight the way
 * the embedding pipeline runs them. Tells what the exact (Pillow) resize costs against libvips' linear one.
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/decode-throughput.ts \
 *     [folder] [--limit 200] [--in-flight 4] [--json]
 */
import { readdirSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeToRgb, type ResizeKernel } from '../src/preprocess/node-image.js';
import { IMAGENET_224 } from '../src/preprocess/spec.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const json = args.includes('--json');
const limit = flag('--limit', 200);
const inFlight = flag('--in-flight', 4);
const positional = args.filter((a, i) => !a.startsWith('--') && !['--limit', '--in-flight'].includes(args[i - 1] ?? ''));
const folder = resolve(positional[0] ?? join(import.meta.dirname ?? '.', '..', '..', 'shared', 'datasets', 'hymenoptera'));

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

async function run(kernel: ResizeKernel): Promise<{ kernel: ResizeKernel; images: number; seconds: number; imagesPerSecond: number }> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < buffers.length) {
      const i = next++;
      await decodeToRgb(buffers[i], IMAGENET_224, { kernel });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { kernel, images: buffers.length, seconds, imagesPerSecond: buffers.length / seconds };
}

await run('linear'); // warm up libvips and the JIT
const rows = [];
for (const kernel of ['auto', 'linear', 'pillow'] as ResizeKernel[]) rows.push(await run(kernel));
if (json) {
  console.log(JSON.stringify({ folder, inFlight, rows }));
} else {
  console.log(`decode+resize+crop to 224, ${buffers.length} images from ${folder}, ${inFlight} in flight`);
  for (const r of rows) console.log(`${r.kernel.padEnd(7)} ${r.imagesPerSecond.toFixed(1)} images/s (${r.seconds.toFixed(2)} s)`);
}
