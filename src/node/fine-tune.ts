/**
 * Fine-tuning the backbone's last block for Node: the cut backbone computes each training image's activations at
 * the last block's input once (through the embedding cache, so a second run skips inference; flipped views too),
 * they go to a memory-bounded store that spills to disk, and heads/last-block.ts trains block and head with
 * cross-validation deciding whether the result beats the frozen linear head. The returned head carries the adapted
 * block (run it with `Backbone.load(id, { surgery: adaptedSurgery(head.adaptedBlock) })`, which the Classifier and
 * the CLI do by themselves), or is the frozen head itself when fine-tuning did not help or is not supported.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Backbone, type BackboneLoadOptions } from './embed/backbone.js';
import { ActivationStore, type ActivationStoreStats } from './embed/activation-store.js';
import { flippedEmbeddings } from './embed/augment.js';
import type { FineTuneOptions } from '../core/heads/last-block.js';
import type { Head } from '../core/heads/head.js';
import {
  assertFineTunable,
  fineTuneFromActivations,
  keepFrozenHead,
  type FineTuneReport as CoreFineTuneReport,
} from '../core/heads/fine-tune-head.js';
import { findLastBlock, type LastBlock } from '../core/models/last-block.js';
import { cutPixels, cutSurgery, adaptedSurgery } from '../core/models/last-block-graph.js';
import { parseOnnxModel } from '../core/models/onnx-model.js';
import { tensorDims } from '../core/preprocess/tensor.js';
import type { WeightDType } from '../core/formats/head-file.js';
import { nodeDenseMath } from './train-head.js';
import { edgetlCacheDir } from './util/cache-dir.js';
import { isEdgetlError } from '../core/util/errors.js';

export interface FineTuneHeadOptions extends Partial<Omit<FineTuneOptions, 'math' | 'l2' | 'groups' | 'onProgress'>> {
  /** The open frozen backbone the frozen head was trained on (its model, preprocessing and provider are reused). */
  backbone: Backbone;
  /** Options the cut backbone is opened with (provider, threads, cache folder...). */
  loadOptions?: BackboneLoadOptions;
  /** Training images and their labels (the rows the frozen head was trained on, without augmented views). */
  paths: readonly string[];
  labels: readonly string[];
  /** The frozen linear head trained on the same data: the fallback, and the source of the L2 strength. */
  frozen: Head;
  /** Add the horizontally flipped view of every image (grouped with its original in cross-validation). */
  flip?: boolean;
  /** In-memory budget for the cut activations (default 512 MiB); the rest spills to disk. */
  memoryBytes?: number;
  /** Where spilled activations go (default <cache>/activations). */
  spillDir?: string;
  /** Read and write cut activations through the embedding cache (default true). */
  useCache?: boolean;
  /** Storage type the head will be saved with: weights are rounded to it so the saved head predicts as evaluated. */
  dtype?: WeightDType | 'auto';
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** What fine-tuning did (the browser's report is the same: core/heads/fine-tune-head.ts), with Node's memory use. */
export type FineTuneReport = CoreFineTuneReport<ActivationStoreStats & { peakRssBytes: number }>;

/**
 * Fine-tune the last block of `options.backbone` with a linear head. Returns the adapted head when
 * cross-validation says it beats the frozen one, else the frozen head; either way with `training.metrics.fineTune`.
 */
export async function fineTuneHead(options: FineTuneHeadOptions): Promise<{ head: Head; report: FineTuneReport }> {
  const { backbone, frozen } = options;
  assertFineTunable(frozen, backbone, options.paths.length, options.labels.length);
  const started = performance.now();
  const keepFrozen = (reason: string) =>
    keepFrozenHead(frozen, {
      outcome: 'frozen',
      reason,
      rows: options.paths.length,
      activationSeconds: 0,
      trainSeconds: (performance.now() - started) / 1000,
    });

  const model = parseOnnxModel(await readFile(backbone.modelPath), backbone.modelPath);
  let block: LastBlock;
  let pixels: number;
  try {
    block = findLastBlock(model);
    const input = backbone.facts.inputs[0]?.name ?? model.graph?.input?.[0]?.name ?? '';
    pixels = cutPixels(model, block, input, tensorDims(backbone.preprocess, 1));
  } catch (error) {
    if (isEdgetlError(error) && error.code === 'last-block-unsupported')
      return keepFrozen(`${backbone.id}: ${error.message}; the frozen head is kept`);
    throw error;
  }

  const progress = options.onProgress;
  let peakRss = process.memoryUsage().rss;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  const classes = frozen.labels;
  const capacity = options.paths.length * (options.flip ? 2 : 1);
  const store = new ActivationStore(capacity, pixels, block.inputChannels, {
    memoryBytes: options.memoryBytes,
    spillDir: options.spillDir ?? join(options.loadOptions?.cacheDir ?? edgetlCacheDir(), 'activations'),
  });
  const cut = await Backbone.load(backbone.modelPath, { ...options.loadOptions, surgery: cutSurgery(pixels) });
  try {
    const useCache = options.useCache !== false;
    const targets: number[] = [];
    const groups: number[] = [];
    const chunk = 64;
    const total = capacity;
    let done = 0;
    for (let start = 0; start < options.paths.length; start += chunk) {
      const paths = options.paths.slice(start, start + chunk);
      const result = await cut.embedMany(paths, { strict: true, useCache });
      store.append(result.embeddings, result.items.length);
      result.items.forEach((item) => {
        targets.push(classes.indexOf(options.labels[start + item.index]));
        groups.push(start + item.index);
      });
      done += paths.length;
      sample();
      progress?.('activations at the cut', done, total);
    }
    if (options.flip) {
      for (let start = 0; start < options.paths.length; start += chunk) {
        const paths = options.paths.slice(start, start + chunk);
        const flipped = await flippedEmbeddings(cut, paths, { useCache });
        flipped.ok.forEach((ok, i) => {
          if (!ok) return;
          store.append(flipped.embeddings.subarray(i * store.rowValues, (i + 1) * store.rowValues), 1);
          targets.push(classes.indexOf(options.labels[start + i]));
          groups.push(start + i);
        });
        done += paths.length;
        sample();
        progress?.('activations at the cut (flipped views)', done, total);
      }
    }
    const activationSeconds = (performance.now() - started) / 1000;
    return await fineTuneFromActivations({
      store,
      targets,
      groups,
      frozen,
      block,
      settings: options,
      math: await nodeDenseMath(),
      dtype: options.dtype,
      activationSeconds,
      memory: () => {
        sample();
        return { ...store.stats(), peakRssBytes: peakRss };
      },
      onProgress: (stage, d, t) => {
        sample();
        progress?.(stage, d, t);
      },
    });
  } finally {
    store.close();
    await cut.close();
  }
}

/** Backbone load options that run a head's adapted block (none for a head without one). */
export function adaptedBackboneOptions(head: Head): Pick<BackboneLoadOptions, 'surgery'> {
  return head.adaptedBlock ? { surgery: adaptedSurgery(head.adaptedBlock) } : {};
}
