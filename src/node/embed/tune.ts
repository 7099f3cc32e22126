/**
 * Embedding settings chosen by measurement: onnxruntime intra-op threads, decode worker threads and batch size, each
 * combination timed embedding a sample of the user's own photos, the fastest kept.
 *
 * Why: the defaults (every core for inference, half the cores for decoding, batch 8) were measured on one 2-core
 * machine with small JPEGs. The best split of cores between decoding and inference moves with the photo size (a
 * 12 MP photo is decode-bound, a 0.2 MP one inference-bound), the backbone and the core count, so a kiosk or a
 * Jetson measures its own. The choice is saved in the cache per machine, backbone and provider request, and later
 * runs use it unless told otherwise (see `savedEmbedTuning`).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { arch, availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { EDGETL_VERSION } from '../../core/version.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { Backbone, type BackboneLoadOptions, WORKER_DECODE_MIN_IMAGES } from './backbone.js';

/** One combination of the settings tuned. */
export interface EmbedSettings {
  intraOpThreads: number;
  decodeThreads: number;
  batchSize: number;
}

/** The values tried for each setting; every combination is timed. */
export interface EmbedTuningSpace {
  intraOpThreads: number[];
  decodeThreads: number[];
  batchSizes: number[];
}

export interface EmbedTrial extends EmbedSettings {
  /** Wall seconds of each round (the sample embedded once per round). */
  seconds: number[];
  /** Sample images embedded per second in the fastest round. */
  imagesPerSecond: number;
}

export interface EmbedTuning {
  backbone: { reference: string; id: string; sha256: string; batch: 'dynamic' | number };
  provider: string;
  choice: EmbedSettings;
  /** Every combination, fastest first. */
  trials: EmbedTrial[];
  sampleImages: number;
  rounds: number;
  machine: MachineKey;
  measuredAt: string;
  edgetlVersion: string;
}

export interface TuneEmbeddingOptions {
  /** How the backbone is loaded (provider, preprocessing...); threads and decoders come from the space. */
  load?: BackboneLoadOptions;
  /** Values to try; each missing axis gets `defaultTuningSpace`'s. */
  space?: Partial<EmbedTuningSpace>;
  /** Photos embedded per trial, picked evenly from `images` (default 96). */
  sampleImages?: number;
  /** Times each combination is timed, interleaved with the others (default 2); the fastest round counts. */
  rounds?: number;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

/** Fewer sample photos than this would not start the decode workers for long enough to time them. */
export const MIN_TUNING_IMAGES = 2 * WORKER_DECODE_MIN_IMAGES;

/** 1, half and all of the cores for each pool; batches of 4, 8 and 16. */
export function defaultTuningSpace(cores: number): EmbedTuningSpace {
  const counts = [...new Set([1, Math.max(1, Math.round(cores / 2)), Math.max(1, cores)])];
  return { intraOpThreads: counts, decodeThreads: counts, batchSizes: [4, 8, 16] };
}

/** `count` items spread evenly over `items` (class folders come in order: every class gets its share). */
function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]!);
}

function positiveIntegers(values: number[], axis: string): number[] {
  const unique = [...new Set(values)];
  if (unique.length === 0 || unique.some((v) => !Number.isInteger(v) || v < 1))
    throw new EdgetlError('usage', `${axis} to tune must be whole numbers of at least 1, got ${values.join(', ')}`);
  return unique;
}

/**
 * Times every combination of `space` embedding a sample of `images` with the backbone `reference` (cache off, so
 * every photo is decoded and run), and returns the fastest with every trial. One backbone is loaded per thread and
 * decoder pair; rounds alternate over all of them, so a machine's changing load falls on every combination alike.
 */
export async function tuneEmbedding(
  reference: string,
  images: readonly string[],
  options: TuneEmbeddingOptions = {},
): Promise<EmbedTuning> {
  const sample = spread(images, options.sampleImages ?? 96);
  if (sample.length < MIN_TUNING_IMAGES)
    throw new EdgetlError(
      'usage',
      `tuning needs at least ${MIN_TUNING_IMAGES} photos to time the decode workers, got ${sample.length}`,
    );
  const defaults = defaultTuningSpace(availableParallelism());
  const threads = positiveIntegers(options.space?.intraOpThreads ?? defaults.intraOpThreads, 'intra-op threads');
  const decoders = positiveIntegers(options.space?.decodeThreads ?? defaults.decodeThreads, 'decode threads');
  const requestedBatches = positiveIntegers(options.space?.batchSizes ?? defaults.batchSizes, 'batch sizes');
  const rounds = Math.max(1, Math.floor(options.rounds ?? 2));
  const loaded: { backbone: Backbone; intraOpThreads: number; decodeThreads: number; batches: number[] }[] = [];
  try {
    for (const intraOpThreads of threads)
      for (const decodeThreads of decoders) {
        const backbone = await Backbone.load(reference, {
          ...options.load,
          intraOpThreads,
          decodeThreads,
          cache: false,
        });
        // a fixed-batch graph runs at its own size whatever is asked
        const batches = backbone.batch === 'dynamic' ? requestedBatches : [backbone.batch];
        loaded.push({ backbone, intraOpThreads, decodeThreads, batches });
        // starts the decode workers and compiles what runs once, outside the timings
        await backbone.embedMany(sample.slice(0, MIN_TUNING_IMAGES), { collect: false, signal: options.signal });
      }
    const trials = new Map<string, EmbedTrial>();
    const total = rounds * loaded.reduce((sum, l) => sum + l.batches.length, 0);
    let done = 0;
    for (let round = 0; round < rounds; round++)
      for (const { backbone, intraOpThreads, decodeThreads, batches } of loaded)
        for (const batchSize of batches) {
          const started = performance.now();
          const result = await backbone.embedMany(sample, { batchSize, collect: false, signal: options.signal });
          const seconds = (performance.now() - started) / 1000;
          if (result.items.length === 0)
            throw new EdgetlError('bad-image', `no sample photo could be embedded (${result.skipped[0]?.reason})`);
          const key = `${intraOpThreads}/${decodeThreads}/${batchSize}`;
          const trial = trials.get(key) ?? {
            intraOpThreads,
            decodeThreads,
            batchSize,
            seconds: [],
            imagesPerSecond: 0,
          };
          trial.seconds.push(seconds);
          trial.imagesPerSecond = Math.max(trial.imagesPerSecond, result.items.length / seconds);
          trials.set(key, trial);
          options.onProgress?.(++done, total);
        }
    const ranked = [...trials.values()].sort((a, b) => b.imagesPerSecond - a.imagesPerSecond);
    const best = ranked[0]!;
    const first = loaded[0]!.backbone;
    return {
      backbone: { reference, id: first.id, sha256: first.sha256, batch: first.batch },
      provider: first.provider.used,
      choice: { intraOpThreads: best.intraOpThreads, decodeThreads: best.decodeThreads, batchSize: best.batchSize },
      trials: ranked,
      sampleImages: sample.length,
      rounds,
      machine: machineKey(options.load?.ep ?? 'auto'),
      measuredAt: new Date().toISOString(),
      edgetlVersion: EDGETL_VERSION,
    };
  } finally {
    for (const { backbone } of loaded) await backbone.close();
  }
}

/** What a saved tuning must match to be used: the same processor, core count, architecture and provider request. */
export interface MachineKey {
  cpu: string;
  cores: number;
  arch: string;
  providerRequest: string;
}

export function machineKey(providerRequest: string): MachineKey {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), arch: arch(), providerRequest };
}

/**
 * The file a tuning is saved in: one per backbone reference and machine key. A model file is keyed by its absolute
 * path, so `--backbone model.onnx` from another folder finds the same tuning.
 */
export function embedTuningPath(reference: string, machine: MachineKey, cacheDir = edgetlCacheDir()): string {
  const model = /\.onnx$/i.test(reference) ? resolve(reference) : reference;
  const key = createHash('sha256')
    .update(JSON.stringify({ reference: model, ...machine }))
    .digest('hex')
    .slice(0, 16);
  return join(cacheDir, 'tuning', `embed-${key}.json`);
}

/** Saves a tuning where `savedEmbedTuning` finds it (atomically: a crash leaves the old file or the new one). */
export async function saveEmbedTuning(tuning: EmbedTuning, cacheDir?: string): Promise<string> {
  const path = embedTuningPath(tuning.backbone.reference, tuning.machine, cacheDir);
  await writeFileAtomic(path, `${JSON.stringify(tuning, null, 2)}\n`);
  return path;
}

function isSettings(value: unknown): value is EmbedSettings {
  const v = value as EmbedSettings | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    [v.intraOpThreads, v.decodeThreads, v.batchSize].every((n) => Number.isInteger(n) && n >= 1)
  );
}

/**
 * The tuning saved for this backbone reference on this machine, if any. A file that cannot be read or does not hold
 * a tuning is reported in `problem` and not used: tuning only changes speed, never results.
 */
export async function savedEmbedTuning(
  reference: string,
  providerRequest: string,
  cacheDir?: string,
): Promise<{ tuning?: EmbedTuning; path: string; problem?: string }> {
  const machine = machineKey(providerRequest);
  const path = embedTuningPath(reference, machine, cacheDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path };
    return { path, problem: `${path}: cannot read the saved tuning (${describeError(error)}); defaults used` };
  }
  try {
    const tuning = JSON.parse(text) as EmbedTuning;
    if (!isSettings(tuning.choice) || JSON.stringify(tuning.machine) !== JSON.stringify(machine))
      return { path, problem: `${path}: not a tuning for this machine; defaults used (rerun with --autotune)` };
    return { tuning, path };
  } catch (error) {
    return { path, problem: `${path}: the saved tuning is not valid JSON (${describeError(error)}); defaults used` };
  }
}
