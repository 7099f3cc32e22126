import { decodeToRgb } from '../preprocess/node-image.js';
import type { Backbone } from './backbone.js';

/** A left-right mirror of packed RGB pixels (width x height x 3). */
export function mirrorRgb(pixels: Uint8Array, width: number, height: number): Uint8Array {
  const mirrored = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const from = row + x * 3;
      const to = row + (width - 1 - x) * 3;
      mirrored[to] = pixels[from];
      mirrored[to + 1] = pixels[from + 1];
      mirrored[to + 2] = pixels[from + 2];
    }
  }
  return mirrored;
}

/**
 * Embeddings of horizontally flipped views of `paths`, for training on mirrored views (the CLI's `train --augment flip`). Each image is decoded at the size just
 * before the model's center crop (a resizeTo x resizeTo square for shorter-side specs, the final size for stretch),
 * mirrored, and handed to the backbone as raw pixels: its preprocessing then leaves the size alone and takes the
 * same center crop, so the view is exactly the mirrored input. Raw pixels are keyed by content in the embedding
 * cache, so a second run skips the inference. Returns one row per path (null where an image failed).
 */
export async function flippedEmbeddings(
  backbone: Backbone,
  paths: readonly string[],
  options: { useCache?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ embeddings: Float32Array; ok: boolean[] }> {
  const spec = backbone.preprocess;
  const decodeSpec =
    spec.resize === 'shorter-side' && spec.crop === 'center' && spec.resizeTo >= Math.max(spec.width, spec.height)
      ? { ...spec, width: spec.resizeTo, height: spec.resizeTo }
      : spec;
  const dim = backbone.embeddingDim;
  const embeddings = new Float32Array(paths.length * dim);
  const ok = new Array<boolean>(paths.length).fill(false);
  const chunk = 16;
  for (let start = 0; start < paths.length; start += chunk) {
    const slice = paths.slice(start, start + chunk);
    const decoded = await Promise.all(slice.map((path) => decodeToRgb(path, decodeSpec).catch(() => undefined)));
    const views: { index: number; image: { rgb: Uint8Array; width: number; height: number; channels: 3 } }[] = [];
    decoded.forEach((image, i) => {
      if (!image) return;
      const { width, height } = image;
      views.push({
        index: start + i,
        image: { rgb: mirrorRgb(image.pixels, width, height), width, height, channels: 3 },
      });
    });
    const result = await backbone.embedMany(
      views.map((v) => v.image),
      { useCache: options.useCache ?? true },
    );
    result.items.forEach((item, r) => {
      const index = views[item.index].index;
      embeddings.set(result.embeddings.subarray(r * dim, (r + 1) * dim), index * dim);
      ok[index] = true;
    });
    options.onProgress?.(Math.min(paths.length, start + chunk), paths.length);
  }
  return { embeddings, ok };
}
