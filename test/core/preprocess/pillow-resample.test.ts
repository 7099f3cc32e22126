import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resizeBilinearPillow } from '../../../src/core/preprocess/pillow-resample.js';

t.test('hand-checked values (the same as Pillow prints for these)', async (t) => {
  // Enlarging [0, 255] to 4 wide: edges replicate, inner samples at 1/4 and 3/4 (63.75 -> 64, 191.25 -> 191).
  t.same(Array.from(resizeBilinearPillow(Uint8Array.from([0, 255]), 2, 1, 1, 4, 1)), [0, 64, 191, 255]);
  // Shrinking [0, 100, 200, 255] to 2 wide: the triangle is twice as wide (antialiasing), clipped at the edges.
  t.same(Array.from(resizeBilinearPillow(Uint8Array.from([0, 100, 200, 255]), 4, 1, 1, 2, 1)), [71, 209]);
  // Same along the vertical axis.
  t.same(Array.from(resizeBilinearPillow(Uint8Array.from([0, 100, 200, 255]), 1, 4, 1, 1, 2)), [71, 209]);
});

t.test('a crop window equals the full resize then the crop', async (t) => {
  const w = 37;
  const h = 23;
  const src = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 2654435761) >>> 24);
  for (const [ow, oh] of [
    [64, 40],
    [20, 11],
    [37, 50],
    [80, 23],
  ]) {
    const full = resizeBilinearPillow(src, w, h, 3, ow, oh);
    const crop = { left: 3, top: 2, width: ow - 7, height: oh - 5 };
    const part = resizeBilinearPillow(src, w, h, 3, ow, oh, crop);
    const expected = new Uint8Array(crop.width * crop.height * 3);
    for (let y = 0; y < crop.height; y++) {
      const from = ((crop.top + y) * ow + crop.left) * 3;
      expected.set(full.subarray(from, from + crop.width * 3), y * crop.width * 3);
    }
    t.same(Array.from(part), Array.from(expected), `${w}x${h} -> ${ow}x${oh}`);
  }
  t.throws(() => resizeBilinearPillow(src, w, h, 3, 10, 10, { left: 5, top: 0, width: 6, height: 10 }), RangeError);
  t.throws(() => resizeBilinearPillow(src, w, h + 1, 3, 10, 10), RangeError);
});

const python = process.env.PYTHON ?? '/usr/bin/python3';
const hasPillow = spawnSync(python, ['-c', 'import PIL, numpy'], { encoding: 'utf8' }).status === 0;
t.test(
  'bit-exact with Pillow on random images, up and down, RGB',
  { skip: hasPillow ? false : `needs ${python} with Pillow and numpy (apt-get install python3-pil python3-numpy)` },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgetl-pillow-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const cases: [number, number, number, number][] = [
      [259, 194, 341, 256],
      [640, 427, 336, 224],
      [1000, 997, 224, 224],
      [31, 300, 224, 224],
      [128, 128, 256, 256],
    ];
    for (const [w, h, ow, oh] of cases) {
      const src = Uint8Array.from({ length: w * h * 3 }, (_, i) => ((i * 2654435761) >>> 13) & 255);
      await writeFile(join(dir, 'in.rgb'), src);
      const run = spawnSync(
        python,
        [
          '-c',
          'import sys, numpy as np\nfrom PIL import Image\nw,h,ow,oh=map(int,sys.argv[2:6])\n' +
            'a=np.fromfile(sys.argv[1]+"/in.rgb",dtype=np.uint8).reshape(h,w,3)\n' +
            'np.asarray(Image.fromarray(a).resize((ow,oh),Image.BILINEAR),dtype=np.uint8).tofile(sys.argv[1]+"/out.rgb")',
          dir,
          String(w),
          String(h),
          String(ow),
          String(oh),
        ],
        { encoding: 'utf8' },
      );
      t.equal(run.status, 0, run.stderr);
      const expected = await readFile(join(dir, 'out.rgb'));
      const actual = resizeBilinearPillow(src, w, h, 3, ow, oh);
      let differing = 0;
      for (let i = 0; i < expected.length; i++) if (expected[i] !== actual[i]) differing++;
      t.equal(differing, 0, `${w}x${h} -> ${ow}x${oh}: every byte equal`);
    }
  },
);
