// A tiny MobileNet-like backbone whose last block can be fine-tuned, and labelled stripe images for it.
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { modelBytes, node, pseudoRandom, tensor, valueInfo } from '../../helpers/onnx-graph.js';

/** x [N,3,16,16] -> 3x3 conv stride 2 (3->8) -> Relu -> [last block: 1x1 conv 8->6 -> Clip(0,6)] -> pool -> Gemm (2). */
export function tinyMobileNetLike(): Uint8Array {
  return modelBytes({
    inputs: [valueInfo('input', ['N', 3, 16, 16])],
    outputs: [valueInfo('logits', ['N', 2])],
    initializers: [
      tensor(
        'stem_w',
        [8, 3, 3, 3],
        Float32Array.from(pseudoRandom(216, 21), (v) => v * 0.5),
      ),
      tensor('stem_b', [8], pseudoRandom(8, 22)),
      tensor(
        'last_w',
        [6, 8, 1, 1],
        Float32Array.from(pseudoRandom(48, 23), (v) => v * 0.6),
      ),
      tensor(
        'last_b',
        [6],
        Float32Array.from(pseudoRandom(6, 24), (v) => v * 0.2),
      ),
      tensor('clip_min', [], [0]),
      tensor('clip_max', [], [6]),
      tensor('fc_w', [2, 6], pseudoRandom(12, 25)),
      tensor('fc_b', [2], [0, 0]),
    ],
    nodes: [
      node('Conv', ['input', 'stem_w', 'stem_b'], ['stem'], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
        strides: [2, 2],
      }),
      node('Relu', ['stem'], ['stem_relu']),
      node('Conv', ['stem_relu', 'last_w', 'last_b'], ['last'], { kernel_shape: [1, 1] }),
      node('Clip', ['last', 'clip_min', 'clip_max'], ['last_act']),
      node('GlobalAveragePool', ['last_act'], ['pooled']),
      node('Flatten', ['pooled'], ['features'], { axis: 1 }),
      node('Gemm', ['features', 'fc_w', 'fc_b'], ['logits'], { transB: 1 }),
    ],
  });
}

export async function stripeWorkspace(
  t: { teardown(fn: () => unknown): void },
  perClass = 10,
  folder = 'train',
  seedStart = 5,
) {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-fine-tune-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const paths: string[] = [];
  const labels: string[] = [];
  // two classes of noisy images: stripes across or stripes down, in random colours
  let seed = seedStart;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (const label of ['across', 'down']) {
    await mkdir(join(dir, folder, label), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const size = 16;
      const pixels = Buffer.alloc(size * size * 3);
      const colour = [rand() * 255, rand() * 255, rand() * 255];
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const on = (label === 'across' ? y : x) % 4 < 2;
          for (let c = 0; c < 3; c++)
            pixels[(y * size + x) * 3 + c] = Math.max(
              0,
              Math.min(255, (on ? colour[c] : 255 - colour[c]) + (rand() - 0.5) * 60),
            );
        }
      }
      const path = join(dir, folder, label, `${i}.png`);
      await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toFile(path);
      paths.push(path);
      labels.push(label);
    }
  }
  const model = join(dir, 'tiny.onnx');
  await writeFile(model, tinyMobileNetLike());
  return { dir, paths, labels, model, cacheDir: join(dir, 'cache') };
}
