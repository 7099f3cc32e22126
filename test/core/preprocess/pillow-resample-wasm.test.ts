import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resizeBilinearPillow } from '../../../src/core/preprocess/pillow-resample.js';
import {
  pillowResampleBackend,
  pillowResampleWasmBytes,
  resizePillowFast,
  resizePillowToTensor,
  useWasm,
} from '../../../src/core/preprocess/pillow-resample-wasm.js';
import { writePixelsToTensor, tensorElementsPerImage, resizeGeometry } from '../../../src/core/preprocess/tensor.js';
import { IMAGENET_224, type PreprocessSpec } from '../../../src/core/preprocess/spec.js';

const noise = (length: number, seed: number) =>
  Uint8Array.from({ length }, (_, i) => (((i + seed) * 2654435761) >>> 13) & 255);

t.test('the module validates and runs here (Node 20 has WebAssembly SIMD)', async (t) => {
  t.ok(WebAssembly.validate(pillowResampleWasmBytes()), 'module bytes validate');
  t.equal(pillowResampleBackend(), 'wasm-simd');
});

t.test('same bytes as the JS port: up, down, one axis unchanged, crops, 3 and 4 channels', async (t) => {
  const cases: [number, number, number, number][] = [
    [259, 194, 341, 256],
    [640, 427, 336, 224],
    [37, 23, 37, 50], // width unchanged
    [40, 30, 80, 30], // height unchanged
    [40, 30, 40, 30], // nothing to do
    [1, 1, 7, 5],
    [301, 7, 3, 2],
    [97, 1003, 224, 224],
  ];
  for (const channels of [3, 4]) {
    for (const [w, h, ow, oh] of cases) {
      const src = noise(w * h * channels, w + h);
      t.same(
        resizePillowFast(src, w, h, channels, ow, oh),
        resizeBilinearPillow(src, w, h, channels, ow, oh),
        `${w}x${h}x${channels} -> ${ow}x${oh}`,
      );
      if (ow > 2 && oh > 2) {
        const crop = { left: 1, top: 1, width: ow - 2, height: oh - 2 };
        t.same(
          resizePillowFast(src, w, h, channels, ow, oh, crop),
          resizeBilinearPillow(src, w, h, channels, ow, oh, crop),
          `${w}x${h}x${channels} -> ${ow}x${oh}, cropped`,
        );
      }
    }
  }
  // Extreme pixels: all 255 must stay 255 (the saturating narrow is Pillow's clip8), all 0 stay 0.
  for (const fill of [0, 255]) {
    const src = new Uint8Array(50 * 40 * 3).fill(fill);
    t.ok(
      resizePillowFast(src, 50, 40, 3, 17, 90).every((v) => v === fill),
      `all ${fill} stays ${fill}`,
    );
  }
  t.throws(() => resizePillowFast(noise(30, 0), 10, 1, 3, 5, 1, { left: 3, top: 0, width: 3, height: 1 }), RangeError);
  t.throws(() => resizePillowFast(noise(31, 0), 10, 1, 3, 5, 1), RangeError);
});

t.test('the fused tensor write equals resize + writePixelsToTensor in every layout and channel order', async (t) => {
  const specs: PreprocessSpec[] = [
    IMAGENET_224,
    { ...IMAGENET_224, layout: 'NHWC' },
    { ...IMAGENET_224, channelOrder: 'BGR', scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] },
    { ...IMAGENET_224, width: 32, height: 24, resizeTo: 30, layout: 'NHWC', channelOrder: 'BGR' },
  ];
  for (const spec of specs) {
    for (const [w, h, channels] of [
      [500, 375, 3],
      [150, 400, 4],
      [spec.width, spec.height, 3],
    ] as [number, number, 3 | 4][]) {
      const src = noise(w * h * channels, 7);
      const g = resizeGeometry(w, h, spec);
      const crop = { left: g.cropLeft, top: g.cropTop, width: spec.width, height: spec.height };
      const expected = new Float32Array(2 * tensorElementsPerImage(spec));
      writePixelsToTensor(
        resizeBilinearPillow(src, w, h, channels, g.resizeW, g.resizeH, crop),
        spec.width,
        spec.height,
        channels,
        spec,
        expected,
        1,
      );
      const actual = new Float32Array(2 * tensorElementsPerImage(spec));
      resizePillowToTensor(src, w, h, channels, g.resizeW, g.resizeH, crop, spec, actual, 1);
      let differing = 0;
      for (let i = 0; i < expected.length; i++) if (!Object.is(expected[i], actual[i])) differing++;
      t.equal(
        differing,
        0,
        `${spec.layout} ${spec.channelOrder} ${spec.width}x${spec.height} from ${w}x${h}x${channels}`,
      );
    }
  }
  t.throws(() =>
    resizePillowToTensor(
      noise(500 * 375 * 3, 0),
      500,
      375,
      3,
      298,
      224,
      { left: 37, top: 0, width: 224, height: 224 },
      IMAGENET_224,
      new Float32Array(10),
      0,
    ),
  );
});

t.test('the JS fallback gives the same result when forced', async (t) => {
  const src = noise(120 * 80 * 3, 3);
  const fast = resizePillowFast(src, 120, 80, 3, 64, 43);
  useWasm(false);
  t.teardown(() => useWasm(true));
  t.equal(pillowResampleBackend(), 'js');
  t.same(resizePillowFast(src, 120, 80, 3, 64, 43), fast);
});

const python = process.env.PYTHON ?? '/usr/bin/python3';
const hasPillow = spawnSync(python, ['-c', 'import PIL, numpy'], { encoding: 'utf8' }).status === 0;
t.test(
  'bit-exact with Pillow itself, RGB and opaque RGBA',
  { skip: hasPillow ? false : `needs ${python} with Pillow and numpy (apt-get install python3-pil python3-numpy)` },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgetl-pillow-wasm-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    for (const [w, h, ow, oh, channels] of [
      [500, 375, 298, 224, 3],
      [4032, 3024, 341, 256, 3],
      [259, 194, 341, 256, 4],
      [33, 900, 224, 224, 3],
    ]) {
      const src = noise(w * h * channels, 11);
      // Opaque RGBA, as the browser path hands over (flattened onto white): Pillow premultiplies translucent alpha.
      if (channels === 4) for (let i = 3; i < src.length; i += 4) src[i] = 255;
      await writeFile(join(dir, 'in.raw'), src);
      const mode = channels === 4 ? 'RGBA' : 'RGB';
      const run = spawnSync(
        python,
        [
          '-c',
          'import sys, numpy as np\nfrom PIL import Image\nw,h,ow,oh,c=map(int,sys.argv[2:7])\n' +
            'a=np.fromfile(sys.argv[1]+"/in.raw",dtype=np.uint8).reshape(h,w,c)\n' +
            'np.asarray(Image.fromarray(a, sys.argv[7]).resize((ow,oh),Image.BILINEAR),dtype=np.uint8).tofile(sys.argv[1]+"/out.raw")',
          dir,
          String(w),
          String(h),
          String(ow),
          String(oh),
          String(channels),
          mode,
        ],
        { encoding: 'utf8' },
      );
      t.equal(run.status, 0, run.stderr);
      const expected = await readFile(join(dir, 'out.raw'));
      const actual = resizePillowFast(src, w, h, channels, ow, oh);
      let differing = 0;
      for (let i = 0; i < expected.length; i++) if (expected[i] !== actual[i]) differing++;
      t.equal(differing, 0, `${w}x${h}x${channels} -> ${ow}x${oh}: every byte equal`);
    }
  },
);
