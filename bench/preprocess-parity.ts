/**
 * How close edgetl's sharp preprocessing is to torchvision's (PIL) on real photos, per resize kernel.
 *
 * Reference: PIL `Image.open(f).convert('RGB')`, torchvision `Resize(256)` (PIL BILINEAR, antialiased) and
 * `CenterCrop(224)`, compared as 8-bit pixels (1 unit = 1/255 before normalization, about 0.017 after ImageNet std).
 * Needs a python3 with Pillow and numpy (Debian: apt-get install python3-pil python3-numpy); say which with PYTHON.
 *
 *   node --loader ts-node/esm bench/preprocess-parity.ts [imageDir] [--json]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { decodeToRgb, type ResizeKernel } from '../src/node/preprocess/node-image.js';
import { IMAGENET_224 } from '../src/core/preprocess/spec.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const imageDir = resolve(
  args.find((a) => !a.startsWith('--')) ?? join(import.meta.dirname ?? '.', '..', '..', 'shared', 'images'),
);
const python = process.env.PYTHON ?? '/usr/bin/python3';

const pilScript = `
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
for i, path in enumerate(sys.argv[2:]):
    im = Image.open(path).convert('RGB')
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = 256, int(256 * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
    im = im.crop((left, top, left + 224, top + 224))
    np.asarray(im, dtype=np.uint8).tofile(f'{out}/{i}.rgb')
`;

const files = readdirSync(imageDir)
  .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
  .sort()
  .map((f) => join(imageDir, f));
const work = mkdtempSync(join(tmpdir(), 'edgetl-parity-'));
try {
  const result = spawnSync(python, ['-c', pilScript, work, ...files], { encoding: 'utf8' });
  if (result.status !== 0) {
    console.error(`PIL reference failed (${python}): ${result.stderr || result.error?.message}`);
    process.exit(2);
  }
  const variants: { kernel: ResizeKernel; fastShrinkOnLoad: boolean }[] = [
    { kernel: 'auto', fastShrinkOnLoad: false },
    { kernel: 'pillow', fastShrinkOnLoad: false },
    { kernel: 'linear', fastShrinkOnLoad: false },
    { kernel: 'linear', fastShrinkOnLoad: true },
    { kernel: 'cubic', fastShrinkOnLoad: false },
    { kernel: 'lanczos3', fastShrinkOnLoad: false },
    { kernel: 'lanczos3', fastShrinkOnLoad: true },
  ];
  const rows = [];
  for (const variant of variants) {
    const started = performance.now();
    let sum = 0;
    let count = 0;
    let max = 0;
    let worstImageMean = 0;
    for (let i = 0; i < files.length; i++) {
      const reference = readFileSync(join(work, `${i}.rgb`));
      const ours = await decodeToRgb(files[i], IMAGENET_224, variant);
      let imageSum = 0;
      for (let k = 0; k < reference.length; k++) {
        const d = Math.abs(reference[k] - ours.pixels[k]);
        imageSum += d;
        if (d > max) max = d;
      }
      sum += imageSum;
      count += reference.length;
      worstImageMean = Math.max(worstImageMean, imageSum / reference.length);
    }
    const msPerImage = (performance.now() - started) / files.length;
    rows.push({
      ...variant,
      images: files.length,
      meanAbsDiff: sum / count,
      worstImageMeanAbsDiff: worstImageMean,
      maxAbsDiff: max,
      msPerImage,
    });
  }
  if (json) {
    console.log(JSON.stringify({ imageDir, rows }));
  } else {
    console.log(
      `sharp vs PIL/torchvision, ${files.length} photos from ${imageDir}, 8-bit pixel units after resize 256 + crop 224`,
    );
    for (const r of rows) {
      console.log(
        `${r.kernel.padEnd(9)} fastShrinkOnLoad=${String(r.fastShrinkOnLoad).padEnd(5)}  mean |diff| ${r.meanAbsDiff.toFixed(3)}` +
          `  worst image mean ${r.worstImageMeanAbsDiff.toFixed(3)}  max ${r.maxAbsDiff}  (${r.msPerImage.toFixed(1)} ms/image, one at a time, untuned)`,
      );
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
