import t from 'tap';
import sharp from 'sharp';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import {
  BadImageError,
  decodeToRgb,
  imageToTensor,
  DEFAULT_MAX_PIXELS,
  type DecodedImage,
} from '../../../src/node/preprocess/node-image.js';
import { IMAGENET_224, type PreprocessSpec } from '../../../src/core/preprocess/spec.js';
import { tensorElementsPerImage } from '../../../src/core/preprocess/tensor.js';
import { sharedPath } from '../../helpers/shared.js';

/** Keep the image at its own small size (stretch to the same size = no resampling), raw pixel values. */
const asIs = (width: number, height: number): PreprocessSpec => ({
  layout: 'NHWC',
  width,
  height,
  resize: 'stretch',
  resizeTo: 0,
  crop: 'none',
  channelOrder: 'RGB',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
});

type RGB = [number, number, number];
const pixel = (img: DecodedImage, x: number, y: number): RGB => {
  const i = (y * img.width + x) * 3;
  return [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]];
};
const near = (actual: RGB, expected: RGB, tolerance: number) =>
  actual.every((v, c) => Math.abs(v - expected[c]) <= tolerance);

/** A width x height RGB image with the left half `left` and the right half `right`. */
function halves(width: number, height: number, left: RGB, right: RGB): Buffer {
  const buf = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) buf.set(x < width / 2 ? left : right, (y * width + x) * 3);
  }
  return buf;
}

const RED: RGB = [220, 30, 40];
const BLUE: RGB = [20, 40, 210];
const W = 16;
const H = 8;
const rawHalves = () => sharp(halves(W, H, RED, BLUE), { raw: { width: W, height: H, channels: 3 } });

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-image-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('lossless formats decode to the exact pixels: PNG, WebP lossless, TIFF', async (t) => {
  for (const [name, encoded] of [
    ['png', await rawHalves().png().toBuffer()],
    ['webp', await rawHalves().webp({ lossless: true }).toBuffer()],
    ['tiff', await rawHalves().tiff({ compression: 'lzw' }).toBuffer()],
  ] as const) {
    const img = await decodeToRgb(encoded, asIs(W, H));
    t.same([img.width, img.height, img.channels], [W, H, 3], name);
    t.same(pixel(img, 0, 0), RED, `${name} left`);
    t.same(pixel(img, W - 1, H - 1), BLUE, `${name} right`);
  }
});

t.test('lossy formats decode close to the original: JPEG, AVIF', async (t) => {
  for (const [name, encoded] of [
    ['jpeg', await rawHalves().jpeg({ quality: 95 }).toBuffer()],
    ['avif', await rawHalves().avif({ quality: 90 }).toBuffer()],
  ] as const) {
    t.equal((await sharp(encoded).metadata()).format, name === 'avif' ? 'heif' : 'jpeg');
    const img = await decodeToRgb(encoded, asIs(W, H));
    t.ok(near(pixel(img, 1, 1), RED, 12), `${name} left ${pixel(img, 1, 1)}`);
    t.ok(near(pixel(img, W - 2, H - 2), BLUE, 12), `${name} right ${pixel(img, W - 2, H - 2)}`);
  }
});

t.test('an animated GIF gives its first frame', async (t) => {
  // Two 8x8 frames stacked: red on top (frame 0), blue below (frame 1).
  const frames = Buffer.concat([Buffer.alloc(0), halves(8, 8, RED, RED), halves(8, 8, BLUE, BLUE)]);
  const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } })
    .gif()
    .toBuffer();
  t.equal((await sharp(gif).metadata()).pages, 2, 'the test GIF really has two frames');
  const img = await decodeToRgb(gif, asIs(8, 8));
  t.ok(near(pixel(img, 4, 4), RED, 8), `first frame is red: ${pixel(img, 4, 4)}`);
});

t.test('a 16-bit PNG becomes 8-bit', async (t) => {
  // sharp reads a Uint16Array as 16-bit samples. 0xc8c8 = 51400 = 200/255 of 65535.
  const sixteen = new Uint16Array(W * H * 3).fill(0xc8c8);
  const png16 = await sharp(sixteen, { raw: { width: W, height: H, channels: 3 } })
    .toColourspace('rgb16')
    .png()
    .toBuffer();
  t.equal((await sharp(png16).metadata()).depth, 'ushort', 'the test PNG really is 16-bit');
  const img = await decodeToRgb(png16, asIs(W, H));
  t.same(pixel(img, 3, 3), [200, 200, 200]);
});

t.test('grayscale becomes three equal channels', async (t) => {
  const gray = await sharp(Buffer.alloc(W * H, 90), { raw: { width: W, height: H, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  t.equal((await sharp(gray).metadata()).channels, 1);
  const img = await decodeToRgb(gray, asIs(W, H));
  t.same(pixel(img, 5, 5), [90, 90, 90]);
  t.equal(img.pixels.length, W * H * 3);
});

t.test('a CMYK JPEG is converted to sRGB and looks like its RGB original', async (t) => {
  // Colours inside the CMYK gamut (saturated sRGB blue is not, and would come back duller by design).
  const brick: RGB = [180, 90, 70];
  const steel: RGB = [70, 110, 160];
  const original = sharp(halves(W, H, brick, steel), { raw: { width: W, height: H, channels: 3 } });
  const cmyk = await original.toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
  const meta = await sharp(cmyk).metadata();
  t.same([meta.space, meta.channels], ['cmyk', 4], 'the test JPEG really is 4-channel CMYK');
  const img = await decodeToRgb(cmyk, asIs(W, H));
  // Reading the C, M, Y bytes as R, G, B would give about (0, 176, 215) for brick.
  t.ok(near(pixel(img, 1, 1), brick, 20), `brick side ${pixel(img, 1, 1)}`);
  t.ok(near(pixel(img, W - 2, H - 2), steel, 20), `steel side ${pixel(img, W - 2, H - 2)}`);
});

t.test('alpha is flattened onto white', async (t) => {
  const rgba = Buffer.alloc(W * H * 4);
  for (let p = 0; p < W * H; p++) rgba.set(p % W < W / 2 ? [10, 200, 30, 255] : [10, 200, 30, 0], p * 4);
  const png = await sharp(rgba, { raw: { width: W, height: H, channels: 4 } })
    .png()
    .toBuffer();
  const img = await decodeToRgb(png, asIs(W, H));
  t.same(pixel(img, 0, 0), [10, 200, 30], 'opaque pixels keep their colour');
  t.same(pixel(img, W - 1, 0), [255, 255, 255], 'transparent pixels become white');
  // Raw RGBA (e.g. a canvas frame) gets the same treatment.
  const raw = await decodeToRgb({ rgb: rgba, width: W, height: H, channels: 4 }, asIs(W, H));
  t.same(Array.from(raw.pixels), Array.from(img.pixels));
});

t.test('EXIF orientation is applied: a pixel moves where a viewer shows it', async (t) => {
  // Stored landscape 16x8, left red / right blue. Orientation 6 = "rotate 90 degrees clockwise to display":
  // the viewer shows a portrait 8x16 image with red on top and blue at the bottom.
  const jpeg = await rawHalves().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  t.equal((await sharp(jpeg).metadata()).orientation, 6);
  const img = await decodeToRgb(jpeg, asIs(8, 16));
  t.ok(near(pixel(img, 4, 1), RED, 12), `top is red: ${pixel(img, 4, 1)}`);
  t.ok(near(pixel(img, 4, 14), BLUE, 12), `bottom is blue: ${pixel(img, 4, 14)}`);
  t.ok(near(pixel(img, 0, 14), BLUE, 12) && near(pixel(img, 7, 1), RED, 12), 'whole halves, not a mirror');
  // Orientation 3 = rotated 180: blue ends up on the left.
  const upsideDown = await rawHalves().jpeg({ quality: 95 }).withMetadata({ orientation: 3 }).toBuffer();
  const flipped = await decodeToRgb(upsideDown, asIs(W, H));
  t.ok(near(pixel(flipped, 1, 1), BLUE, 12), `left is blue: ${pixel(flipped, 1, 1)}`);
});

t.test('shorter-side resize then centre crop keeps the middle of the picture', async (t) => {
  // 48x16: a green 16x16 square in the middle, red around it. Resize(16) + CenterCrop(16) keeps only green.
  const width = 48;
  const height = 16;
  const buf = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) buf.set(p % width >= 16 && p % width < 32 ? [0, 180, 0] : RED, p * 3);
  const png = await sharp(buf, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  const spec: PreprocessSpec = { ...asIs(16, 16), resize: 'shorter-side', resizeTo: 16, crop: 'center' };
  const img = await decodeToRgb(png, spec);
  t.same(pixel(img, 8, 8), [0, 180, 0]);
  t.ok(near(pixel(img, 1, 8), [0, 180, 0], 40), `left edge mostly green: ${pixel(img, 1, 8)}`);
  // Enlarging (a small image going to a bigger size) keeps colours and the centre too.
  const small = await decodeToRgb(png, { ...spec, resizeTo: 32, width: 32, height: 32 });
  t.same(pixel(small, 16, 16), [0, 180, 0]);
});

t.test('imageToTensor fills one slot of a batch from a file path', async (t) => {
  const dir = await scratch(t);
  const path = join(dir, 'halves.png');
  await rawHalves().png().toFile(path);
  const spec: PreprocessSpec = { ...asIs(W, H), layout: 'NCHW', scale: 1 / 255 };
  const out = new Float32Array(2 * tensorElementsPerImage(spec));
  await imageToTensor(path, spec, { out, imageIndex: 1 });
  t.ok(
    out.subarray(0, tensorElementsPerImage(spec)).every((v) => v === 0),
    'slot 0 untouched',
  );
  const slot = out.subarray(tensorElementsPerImage(spec));
  t.equal(slot[0], Math.fround(RED[0] / 255), 'R plane, first pixel');
  t.equal(slot[W * H + W - 1], Math.fround(BLUE[1] / 255), 'G plane, last pixel of row 0');
});

t.test('bad files fail with the path and the reason in plain words', async (t) => {
  const dir = await scratch(t);
  // Busy content so the JPEG has plenty of entropy-coded data to cut.
  const busy = Buffer.from(Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * 7919) % 251));
  const jpeg = await sharp(busy, { raw: { width: 64, height: 48, channels: 3 } })
    .jpeg()
    .toBuffer();
  const truncated = join(dir, 'truncated.jpg');
  await writeFile(truncated, jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
  const text = join(dir, 'notes.jpg');
  await writeFile(text, 'shopping list: eggs, milk\n');
  const empty = join(dir, 'empty.jpg');
  await writeFile(empty, '');
  const svg = join(dir, 'drawing.svg');
  await writeFile(
    svg,
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
  );
  const cases: [string, RegExp][] = [
    [truncated, /truncated JPEG/],
    [text, /not an image \(unsupported format\)/],
    [empty, /empty file \(0 bytes\)/],
    [join(dir, 'missing.jpg'), /file not found/],
    [svg, /unsupported format \(svg\)/],
  ];
  for (const [path, reason] of cases) {
    const error = await decodeToRgb(path, IMAGENET_224).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(error instanceof BadImageError, `${path} throws BadImageError`);
    if (!(error instanceof BadImageError)) continue;
    t.equal(error.code, 'bad-image');
    t.equal(error.file, path);
    t.ok(error.message.startsWith(path), `message names the file: ${error.message}`);
    t.match(error.reason, reason);
  }
  // The same truncated bytes from a buffer: still an error, never a grey-filled image.
  await t.rejects(decodeToRgb(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), IMAGENET_224), /truncated JPEG/);
});

/** A PNG that declares width x height but holds almost no data: the shape of a decompression bomb. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

t.test('too many pixels are refused before decoding, and the error says so', async (t) => {
  const dir = await scratch(t);
  const bomb = join(dir, 'bomb.png');
  await writeFile(bomb, pngHeaderOnly(20000, 20000));
  t.ok(20000 * 20000 > DEFAULT_MAX_PIXELS);
  await t.rejects(decodeToRgb(bomb, IMAGENET_224), {
    code: 'bad-image',
    file: bomb,
    message:
      /20000x20000 = 400\.0 megapixels, above the limit of 100\.0 megapixels \(a guard against decompression bombs/,
  });
  // The limit is configurable: a real 1200x1000 image passes by default and fails under a 1-megapixel limit.
  const real = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#336699' } })
    .png()
    .toBuffer();
  t.ok(await decodeToRgb(real, IMAGENET_224));
  await t.rejects(
    decodeToRgb(real, IMAGENET_224, { maxPixels: 1_000_000 }),
    /1\.2 megapixels, above the limit of 1\.0/,
  );
});

t.test('raw pixels are checked against their declared size', async (t) => {
  await t.rejects(decodeToRgb({ rgb: new Uint8Array(10), width: 4, height: 4, channels: 3 }, IMAGENET_224), {
    code: 'bad-input',
    message: /10 bytes do not make 4x4 pixels of 3 channels/,
  });
});

const photo = sharedPath('images/dog.jpg');
t.test('a real photo goes through the ImageNet recipe', { skip: photo.skip }, async (t) => {
  const out = new Float32Array(tensorElementsPerImage(IMAGENET_224));
  await imageToTensor(photo.path!, IMAGENET_224, { out });
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  t.ok(out.every(Number.isFinite));
  t.ok(Math.abs(mean) < 2.5, `normalized values centred-ish: mean ${mean}`);
  t.ok(out.some((v) => v < -1) && out.some((v) => v > 1), 'a real spread of values');
});

t.test(
  'every resize path (shrink, enlarge, mixed, with EXIF rotation) gives the right size and keeps a flat colour',
  async (t) => {
    const teal: RGB = [20, 150, 140];
    const flat = (width: number, height: number) =>
      sharp(
        Buffer.alloc(width * height * 3).map((_, i) => teal[i % 3]),
        { raw: { width, height, channels: 3 } },
      )
        .png()
        .toBuffer();
    const cases: [number, number, PreprocessSpec][] = [
      [300, 100, asIs(64, 64)], // both axes shrink (stretch)
      [40, 100, asIs(64, 64)], // x grows, y shrinks
      [20, 10, asIs(64, 64)], // both grow
      [300, 200, IMAGENET_224], // shorter-side, enlarging to 336x224... then crop
      [1000, 700, IMAGENET_224], // shorter-side, shrinking
    ];
    for (const [width, height, spec] of cases) {
      const img = await decodeToRgb(await flat(width, height), spec);
      t.same(
        [img.width, img.height, img.pixels.length],
        [spec.width, spec.height, spec.width * spec.height * 3],
        `${width}x${height}`,
      );
      t.ok(
        img.pixels.every((v, i) => v === teal[i % 3]),
        `${width}x${height} -> ${spec.width}x${spec.height} stays flat teal`,
      );
    }
    // Enlarging an EXIF-rotated image: orientation is applied before the resize.
    const rotated = await rawHalves().png().withMetadata({ orientation: 6 }).toBuffer();
    const tall = await decodeToRgb(rotated, asIs(16, 32));
    t.same(pixel(tall, 8, 2), RED, 'top is red');
    t.same(pixel(tall, 8, 29), BLUE, 'bottom is blue');
  },
);

const python = process.env.PYTHON ?? '/usr/bin/python3';
const hasPillow = spawnSync(python, ['-c', 'import PIL, numpy'], { encoding: 'utf8' }).status === 0;
const photos = sharedPath('images');
t.test(
  'real photos come out bit-identical to torchvision (PIL Resize(256) + CenterCrop(224))',
  {
    skip:
      photos.skip ||
      (hasPillow ? false : `needs ${python} with Pillow and numpy (apt-get install python3-pil python3-numpy)`),
  },
  async (t) => {
    const files = ['HappyFish.jpg', 'dog.jpg', 'kite.jpg'].map((f) => join(photos.path!, f));
    const dir = await scratch(t);
    const script = [
      'import sys, numpy as np',
      'from PIL import Image',
      'for i, path in enumerate(sys.argv[2:]):',
      "    im = Image.open(path).convert('RGB'); w, h = im.size",
      '    s, l = (w, h) if w <= h else (h, w); nl = int(256 * l / s)',
      '    nw, nh = (256, nl) if w <= h else (nl, 256)',
      '    im = im.resize((nw, nh), Image.BILINEAR); x, y = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))',
      "    np.asarray(im.crop((x, y, x + 224, y + 224)), dtype=np.uint8).tofile(f'{sys.argv[1]}/{i}.rgb')",
    ].join('\n');
    const run = spawnSync(python, ['-c', script, dir, ...files], { encoding: 'utf8' });
    t.equal(run.status, 0, run.stderr);
    for (let i = 0; i < files.length; i++) {
      const expected = await readFile(join(dir, `${i}.rgb`));
      const ours = await decodeToRgb(files[i], IMAGENET_224);
      let differing = 0;
      for (let k = 0; k < expected.length; k++) if (expected[k] !== ours.pixels[k]) differing++;
      t.equal(differing, 0, `${files[i]}: every byte equal`);
    }
  },
);
