import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { seededRandom } from '../../core/bench/stats.js';

/**
 * Seeded synthetic photos for benchmarks when a profile's image folder is absent: smooth colour fields with
 * shapes and a little noise, encoded as PNG (a real decode on every read). Encoded here with node:zlib so the
 * benchmark needs no image library of its own (only preprocess/ talks to sharp).
 */

function chunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.length, 0);
  header.write(type, 4, 'ascii');
  const body = Buffer.concat([header.subarray(4), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0, 0);
  return Buffer.concat([header.subarray(0, 4), body, crc]);
}

/** A PNG (8-bit RGB, no interlace) of row-major RGB pixels. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  if (rgb.length !== width * height * 3)
    throw new RangeError(`expected ${width * height * 3} bytes of RGB, got ${rgb.length}`);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0;
    raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), row + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 6 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Pixels of synthetic image `index` for `seed`: the same every time. */
export function syntheticPixels(width: number, height: number, seed: number, index: number): Uint8Array {
  const random = seededRandom((seed * 7919 + index * 104729) >>> 0);
  const base = [random() * 255, random() * 255, random() * 255];
  const slope = [random() - 0.5, random() - 0.5, random() - 0.5];
  const circles = Array.from({ length: 4 }, () => ({
    x: random() * width,
    y: random() * height,
    r: (0.05 + random() * 0.25) * Math.min(width, height),
    colour: [random() * 255, random() * 255, random() * 255],
  }));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      let colour: number[] | undefined;
      for (const circle of circles) {
        if ((x - circle.x) ** 2 + (y - circle.y) ** 2 < circle.r ** 2) colour = circle.colour;
      }
      for (let c = 0; c < 3; c++) {
        const smooth = colour ? colour[c]! : base[c]! + slope[c]! * (x + y) * (255 / (width + height));
        const value = smooth + (random() - 0.5) * 24;
        rgb[offset + c] = value < 0 ? 0 : Math.min(value, 255);
      }
    }
  }
  return rgb;
}

/**
 * A folder of `count` synthetic PNGs, generated once per (count, size, seed) under the temp folder and reused.
 * Returns the file paths in order.
 */
export async function syntheticImageFolder(options: {
  count: number;
  width: number;
  height: number;
  seed: number;
  dir?: string;
}): Promise<string[]> {
  const { count, width, height, seed } = options;
  const dir = options.dir ?? join(tmpdir(), `edgetl-bench-images-${width}x${height}-s${seed}`);
  await mkdir(dir, { recursive: true });
  const present = new Set(existsSync(dir) ? await readdir(dir) : []);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `synthetic-${String(i).padStart(5, '0')}.png`;
    const path = join(dir, name);
    if (!present.has(name)) {
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, encodePng(syntheticPixels(width, height, seed, i), width, height));
      await rename(temporary, path);
    }
    files.push(path);
  }
  return files;
}

/** Seeded input tensor values shaped like normalized photos (roughly N(0, 1), clipped to ±2.5). */
export function syntheticTensor(elements: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const data = new Float32Array(elements);
  for (let i = 0; i < elements; i++) {
    // Sum of three uniforms: cheap, bell-shaped, bounded.
    data[i] = (random() + random() + random() - 1.5) * 2;
  }
  return data;
}
