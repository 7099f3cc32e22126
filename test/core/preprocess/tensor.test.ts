import t from 'tap';
import {
  resizeGeometry,
  tensorDims,
  tensorElementsPerImage,
  writePixelsToTensor,
} from '../../../src/core/preprocess/tensor.js';
import { IMAGENET_224, type PreprocessSpec } from '../../../src/core/preprocess/spec.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

/** A 3x2 image whose every byte is distinct, so any misplaced value shows. Pixel p has R=10p+1, G=10p+2, B=10p+3. */
const W = 3;
const H = 2;
const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => 10 * Math.floor(i / 3) + (i % 3) + 1);
const rgba = Uint8Array.from({ length: W * H * 4 }, (_, i) =>
  i % 4 === 3 ? 77 : 10 * Math.floor(i / 4) + (i % 4) + 1,
);

const tiny = (overrides: Partial<PreprocessSpec>): PreprocessSpec => ({
  layout: 'NCHW',
  width: W,
  height: H,
  resize: 'stretch',
  resizeTo: 0,
  crop: 'none',
  channelOrder: 'RGB',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  ...overrides,
});

const f32 = (x: number) => Math.fround(x);

t.test('NCHW RGB with scale 1 writes planes R, G, B in row-major order', async (t) => {
  const spec = tiny({});
  const out = new Float32Array(tensorElementsPerImage(spec));
  writePixelsToTensor(rgb, W, H, 3, spec, out, 0);
  t.same(Array.from(out), [1, 11, 21, 31, 41, 51, 2, 12, 22, 32, 42, 52, 3, 13, 23, 33, 43, 53]);
  t.same(tensorDims(spec, 4), [4, 3, 2, 3]);
});

t.test('NHWC keeps pixels interleaved', async (t) => {
  const spec = tiny({ layout: 'NHWC' });
  const out = new Float32Array(tensorElementsPerImage(spec));
  writePixelsToTensor(rgb, W, H, 3, spec, out, 0);
  t.same(Array.from(out), Array.from(rgb));
  t.same(tensorDims(spec, 2), [2, 2, 3, 3]);
});

t.test('BGR swaps red and blue in both layouts', async (t) => {
  const nchw = new Float32Array(18);
  writePixelsToTensor(rgb, W, H, 3, tiny({ channelOrder: 'BGR' }), nchw, 0);
  t.same(Array.from(nchw.subarray(0, 6)), [3, 13, 23, 33, 43, 53], 'plane 0 is blue');
  t.same(Array.from(nchw.subarray(12, 18)), [1, 11, 21, 31, 41, 51], 'plane 2 is red');
  const nhwc = new Float32Array(18);
  writePixelsToTensor(rgb, W, H, 3, tiny({ channelOrder: 'BGR', layout: 'NHWC' }), nhwc, 0);
  t.same(Array.from(nhwc.subarray(0, 6)), [3, 2, 1, 13, 12, 11]);
});

t.test(
  'scale, mean and std give ((v * scale) - mean[c]) / std[c], mean/std indexed in model channel order',
  async (t) => {
    const spec = tiny({ scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    const out = new Float32Array(18);
    writePixelsToTensor(rgb, W, H, 3, spec, out, 0);
    for (let p = 0; p < 6; p++) {
      for (let c = 0; c < 3; c++) {
        const v = rgb[p * 3 + c];
        t.equal(out[c * 6 + p], f32((v * (1 / 255) - spec.mean[c]) / spec.std[c]), `pixel ${p} channel ${c}`);
      }
    }
    const bgr = { ...spec, channelOrder: 'BGR' as const };
    writePixelsToTensor(rgb, W, H, 3, bgr, out, 0);
    // Model channel 0 is blue and takes mean[0] / std[0].
    t.equal(out[0], f32((rgb[2] / 255 - 0.485) / 0.229));
  },
);

t.test('TF-style scaling maps 0 to -1 and 255 to 1', async (t) => {
  const spec = tiny({ width: 2, height: 1, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] });
  const out = new Float32Array(6);
  writePixelsToTensor(Uint8Array.from([0, 0, 0, 255, 255, 255]), 2, 1, 3, spec, out, 0);
  t.same(Array.from(out), [-1, 1, -1, 1, -1, 1]);
});

t.test('RGBA input ignores alpha', async (t) => {
  const a = new Float32Array(18);
  const b = new Float32Array(18);
  writePixelsToTensor(rgb, W, H, 3, tiny({}), a, 0);
  writePixelsToTensor(rgba, W, H, 4, tiny({}), b, 0);
  t.same(Array.from(b), Array.from(a));
});

t.test('imageIndex writes its own slot of a batch and leaves the others alone', async (t) => {
  const spec = tiny({});
  const out = new Float32Array(3 * 18).fill(-7);
  writePixelsToTensor(rgb, W, H, 3, spec, out, 1);
  t.ok(out.subarray(0, 18).every((v) => v === -7));
  t.same(Array.from(out.subarray(18, 36)), [1, 11, 21, 31, 41, 51, 2, 12, 22, 32, 42, 52, 3, 13, 23, 33, 43, 53]);
  t.ok(out.subarray(36).every((v) => v === -7));
  t.throws(() => writePixelsToTensor(rgb, W, H, 3, spec, out, 3), EdgetlError, 'index past the batch');
});

t.test('mismatched sizes are refused with the sizes in the message', async (t) => {
  const out = new Float32Array(18);
  t.throws(() => writePixelsToTensor(rgb, 2, 3, 3, tiny({}), out, 0), /2x3 but the model wants 3x2/);
  t.throws(() => writePixelsToTensor(rgb.subarray(1), W, H, 3, tiny({}), out, 0), /holds 17 bytes/);
  t.throws(() => writePixelsToTensor(rgb, W, H, 3, tiny({ std: [1, 0, 1] }), out, 0), /std\[1\]/);
});

t.test('shorter-side geometry matches torchvision Resize(256) + CenterCrop(224)', async (t) => {
  // Landscape 640x480: short side 480 -> 256, long int(256*640/480) = 341; crop offsets round(58.5)=58 (half to even), 16.
  t.same(resizeGeometry(640, 480, IMAGENET_224), { resizeW: 341, resizeH: 256, cropLeft: 58, cropTop: 16 });
  // Portrait: the same, transposed.
  t.same(resizeGeometry(480, 640, IMAGENET_224), { resizeW: 256, resizeH: 341, cropLeft: 16, cropTop: 58 });
  // 773x512: int(256*773/512) = 386 (386.5 truncated), offset (386-224)/2 = 81.
  t.same(resizeGeometry(773, 512, IMAGENET_224), { resizeW: 386, resizeH: 256, cropLeft: 81, cropTop: 16 });
  // 259x194 (an enlargement): int(256*259/194) = 341.
  t.same(resizeGeometry(259, 194, IMAGENET_224), { resizeW: 341, resizeH: 256, cropLeft: 58, cropTop: 16 });
  // A crop offset of 59.5 rounds to 60 (even), as Python's round does.
  t.same(resizeGeometry(343, 256, IMAGENET_224).cropLeft, 60);
  t.same(resizeGeometry(500, 500, IMAGENET_224), { resizeW: 256, resizeH: 256, cropLeft: 16, cropTop: 16 });
});

t.test('stretch ignores aspect and crop', async (t) => {
  const spec: PreprocessSpec = { ...IMAGENET_224, resize: 'stretch', crop: 'none' };
  t.same(resizeGeometry(1000, 100, spec), { resizeW: 224, resizeH: 224, cropLeft: 0, cropTop: 0 });
});

t.test('a resize smaller than the crop scales up to cover it instead of padding', async (t) => {
  const spec: PreprocessSpec = { ...IMAGENET_224, resizeTo: 200 };
  const g = resizeGeometry(400, 300, spec);
  t.ok(g.resizeW >= 224 && g.resizeH >= 224, JSON.stringify(g));
  t.equal(g.resizeH, 224);
});

t.test('shorter-side without a crop must land exactly on the input size', async (t) => {
  const spec: PreprocessSpec = { ...IMAGENET_224, resizeTo: 224, crop: 'none' };
  t.same(resizeGeometry(224, 224, spec), { resizeW: 224, resizeH: 224, cropLeft: 0, cropTop: 0 });
  t.throws(() => resizeGeometry(300, 224, spec), /crop is 'none'/);
  t.throws(() => resizeGeometry(0, 10, IMAGENET_224), /source width/);
});
