import { relative, isAbsolute, join } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { EdgetlError } from '../../core/util/errors.js';
import { Backbone, type BackboneLoadOptions } from '../embed/backbone.js';
import { embedFolder, type EmbedFolderResult } from '../embed/embed-folder.js';
import { DEFAULT_BATCH_SIZE } from '../embed/pipeline.js';
import { scanImageFolder } from '../embed/dataset.js';
import {
  type EmbedTuning,
  MIN_TUNING_IMAGES,
  saveEmbedTuning,
  savedEmbedTuning,
  tuneEmbedding,
} from '../embed/tune.js';
import { DEFAULT_BACKBONE_ID } from '../../core/models/catalog.js';
import type { ExecutionProviderRequest, ProviderReport } from '../../core/execution/types.js';
import { gatherHostFacts } from '../execution/providers.js';
import { type Command, inCliTerms, parseCommandLine, parseNumberOption, printJson, ProgressBar } from './common.js';
import { preprocessFlagOptions, preprocessFlagHelp, preprocessOverridesFromFlags } from './preprocess-flags.js';

const EP_CHOICES: readonly ExecutionProviderRequest[] = ['auto', 'cpu', 'webgpu', 'cuda', 'wasm'];

/** Options of every command that loads a backbone from flags. */
export const backboneFlagOptions = {
  backbone: { type: 'string', short: 'b' },
  out: { type: 'string', short: 'o' },
  ep: { type: 'string' },
  'strict-ep': { type: 'boolean' },
  threads: { type: 'string' },
  'decode-threads': { type: 'string' },
  batch: { type: 'string' },
  strict: { type: 'boolean' },
  'no-cache': { type: 'boolean' },
  'no-download': { type: 'boolean' },
  embedding: { type: 'string' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  ...preprocessFlagOptions,
} as const;

/** Options `embed` and `start` share: the backbone's, and the tuning of its settings. */
export const embedRunOptions = {
  ...backboneFlagOptions,
  autotune: { type: 'boolean' },
  'autotune-sample': { type: 'string' },
} as const;

const AUTOTUNE_HELP = `  --autotune                 first time every combination of 1, half and all of the cores for --threads and
                             --decode-threads with batch 4, 8, 16 on a sample of the folder, embed with the
                             fastest, and save it: every later command on this machine and backbone uses it
                             wherever these three flags are not given (a flag given fixes its setting while
                             tuning)
  --autotune-sample N        photos timed per combination (default 96, at least ${MIN_TUNING_IMAGES})
`;

/** The backbone flags' help; \`withTuning\` for embed and start, which take --autotune. */
function backboneHelp(withTuning: boolean): string {
  return `Model and execution:
  --backbone, -b <id|path>   catalog id or .onnx file (default ${DEFAULT_BACKBONE_ID}; see \`edgetl models list\`)
  --embedding <tensor>       embedding tensor in the model (default: found automatically)
  --ep auto|cpu|webgpu|cuda  execution provider (default auto: real GPUs only, never a software adapter)
  --strict-ep                fail instead of falling back to another provider
  --threads N                onnxruntime intra-op threads (default: every core; idle threads sleep instead of
                             spinning, so the image decoders share the cores with inference)
  --decode-threads N         worker threads decoding images (default: half the cores, at least 2; 0 decodes
                             on the main thread)
  --batch N                  images per inference for dynamic-batch models (default ${DEFAULT_BATCH_SIZE}; fixed-batch
                             models run at their own size)
${withTuning ? AUTOTUNE_HELP : ''}  --no-download              never download a missing catalog model
Images:
  --strict                   stop at the first unusable image (default: skip it and report why)
  --no-cache                 recompute every embedding (default: unchanged images come from the embedding cache)
${preprocessFlagHelp}
Output:
  --json                     print one JSON object on stdout instead of the summary
  --debug                    stack traces on errors`;
}

export const embedRunHelp = backboneHelp(true);
/** For the commands that load a backbone but do not tune it (train, eval, predict...). */
export const backboneFlagsHelp = backboneHelp(false);

type EmbedRunValues = {
  [K in keyof typeof embedRunOptions]?: (typeof embedRunOptions)[K]['type'] extends 'boolean' ? boolean : string;
};

export interface EmbedRunRequest {
  dir: string;
  out?: string;
  values: EmbedRunValues;
  /** Folders searched for catalog models instead of the default search path. */
  searchPath?: string[];
}

/** The threads, decoders and batch a run used, and where they came from. */
export interface EmbedRunSettings {
  intraOpThreads?: number;
  decodeThreads?: number;
  batchSize: number;
  /** Per setting: 'flag', 'tuned' (a saved or fresh --autotune measurement) or 'default'. */
  sources: { intraOpThreads: SettingSource; decodeThreads: SettingSource; batchSize: SettingSource };
  /** The tuning file used or written. */
  tuningFile?: string;
  /** When the tuning used was measured. */
  tunedAt?: string;
  notes: string[];
}

type SettingSource = 'flag' | 'tuned' | 'default';

export interface EmbedRunReport {
  backbone: Backbone;
  result: EmbedFolderResult;
  loadSeconds: number;
  settings: EmbedRunSettings;
  /** The measurement `--autotune` made before embedding. */
  tuning?: EmbedTuning;
}

function parseEp(value: string | undefined): ExecutionProviderRequest | undefined {
  if (value === undefined) return undefined;
  const ep = value.toLowerCase() as ExecutionProviderRequest;
  if (!EP_CHOICES.includes(ep))
    throw new EdgetlError('usage', `--ep must be one of ${EP_CHOICES.join(', ')}, got "${value}"`);
  return ep;
}

/** Load options from the shared flags. */
export function loadOptionsFromFlags(values: EmbedRunValues, searchPath?: string[]): BackboneLoadOptions {
  const threads =
    values.threads === undefined
      ? undefined
      : parseNumberOption(values.threads, 'threads', 0, { integer: true, min: 1, max: 1024 });
  const decodeThreads =
    values['decode-threads'] === undefined
      ? undefined
      : parseNumberOption(values['decode-threads'], 'decode-threads', 0, { integer: true, min: 0, max: 256 });
  return {
    ep: parseEp(values.ep),
    strictEp: values['strict-ep'] === true,
    intraOpThreads: threads,
    decodeThreads,
    embeddingTensor: values.embedding,
    preprocess: preprocessOverridesFromFlags(values),
    download: values['no-download'] !== true,
    ...(searchPath ? { searchPath } : {}),
  };
}

/** The --batch flag, when given. */
function batchFlag(values: EmbedRunValues): number | undefined {
  return values.batch === undefined
    ? undefined
    : parseNumberOption(values.batch, 'batch', DEFAULT_BATCH_SIZE, { integer: true, min: 1, max: 4096 });
}

/** Each setting from its flag when given, else from `tuning`'s choice, else the default. */
function settingsFrom(
  values: EmbedRunValues,
  flags: BackboneLoadOptions,
  tuning: { choice: EmbedTuning['choice']; measuredAt: string; file: string } | undefined,
  notes: string[],
): EmbedRunSettings {
  const pick = <T>(flag: T | undefined, tuned: T | undefined): [T | undefined, SettingSource] =>
    flag !== undefined ? [flag, 'flag'] : tuned !== undefined ? [tuned, 'tuned'] : [undefined, 'default'];
  const [intraOpThreads, threadsSource] = pick(flags.intraOpThreads, tuning?.choice.intraOpThreads);
  const [decodeThreads, decodersSource] = pick(flags.decodeThreads, tuning?.choice.decodeThreads);
  const [batchSize, batchSource] = pick(batchFlag(values), tuning?.choice.batchSize);
  return {
    intraOpThreads,
    decodeThreads,
    batchSize: batchSize ?? DEFAULT_BATCH_SIZE,
    sources: { intraOpThreads: threadsSource, decodeThreads: decodersSource, batchSize: batchSource },
    ...(tuning ? { tuningFile: tuning.file, tunedAt: tuning.measuredAt } : {}),
    notes,
  };
}

/**
 * Threads, decoders and batch for a command that embeds without tuning: its flags, and for what they leave unset
 * the tuning `embed --autotune` saved for this backbone and machine, else the defaults.
 */
export async function savedRunSettings(
  values: EmbedRunValues,
  searchPath?: string[],
): Promise<{ settings: EmbedRunSettings; used?: EmbedTuning }> {
  const flags = loadOptionsFromFlags(values, searchPath);
  const notes: string[] = [];
  let used: EmbedTuning | undefined;
  let file = '';
  if (flags.intraOpThreads === undefined || flags.decodeThreads === undefined || values.batch === undefined) {
    const saved = await savedEmbedTuning(values.backbone ?? DEFAULT_BACKBONE_ID, flags.ep ?? 'auto');
    if (saved.problem) notes.push(saved.problem);
    used = saved.tuning;
    file = saved.path;
  }
  return {
    settings: settingsFrom(values, flags, used && { choice: used.choice, measuredAt: used.measuredAt, file }, notes),
    ...(used ? { used } : {}),
  };
}

/** With --autotune, the settings measured on a sample of the folder now (and saved); else `savedRunSettings`. */
async function embedRunSettings(
  request: EmbedRunRequest,
  showProgress: boolean,
): Promise<{ settings: EmbedRunSettings; tuning?: EmbedTuning; used?: EmbedTuning }> {
  const { values } = request;
  if (values.autotune !== true) return savedRunSettings(values, request.searchPath);
  const flags = loadOptionsFromFlags(values, request.searchPath);
  const batch = batchFlag(values);
  const sampleImages = parseNumberOption(values['autotune-sample'], 'autotune-sample', 96, {
    integer: true,
    min: MIN_TUNING_IMAGES,
    max: 100_000,
  });
  const scan = await scanImageFolder(request.dir);
  const bar = new ProgressBar('tuning', showProgress);
  const tuning = await tuneEmbedding(
    values.backbone ?? DEFAULT_BACKBONE_ID,
    scan.items.map((item) => item.path),
    {
      load: { ...flags, intraOpThreads: undefined, decodeThreads: undefined },
      space: {
        ...(flags.intraOpThreads !== undefined ? { intraOpThreads: [flags.intraOpThreads] } : {}),
        ...(flags.decodeThreads !== undefined ? { decodeThreads: [flags.decodeThreads] } : {}),
        ...(batch !== undefined ? { batchSizes: [batch] } : {}),
      },
      sampleImages,
      onProgress: (done, total) => bar.update(done, total),
    },
  );
  bar.finish();
  const file = await saveEmbedTuning(tuning);
  return {
    settings: settingsFrom(values, flags, { choice: tuning.choice, measuredAt: tuning.measuredAt, file }, []),
    tuning,
    used: tuning,
  };
}

/** Load the backbone, embed the folder, write the set: the work of `embed` and `start`, with progress on stderr. */
export async function runEmbedJob(request: EmbedRunRequest): Promise<EmbedRunReport> {
  const { values } = request;
  const showProgress = values.json !== true && process.stderr.isTTY === true;
  const { settings, tuning, used } = await embedRunSettings(request, showProgress);
  const batchSize = settings.batchSize;
  const download = new ProgressBar('downloading', showProgress);
  const loadStarted = performance.now();
  const backbone = await Backbone.load(values.backbone ?? DEFAULT_BACKBONE_ID, {
    ...loadOptionsFromFlags(values, request.searchPath),
    intraOpThreads: settings.intraOpThreads,
    decodeThreads: settings.decodeThreads,
    onDownloadProgress: (received, total) =>
      download.update(Math.round(received / 1e6), total === undefined ? undefined : Math.round(total / 1e6), 'MB'),
    onDownloadStart: (info) => {
      if (values.json !== true)
        process.stderr.write(
          `downloading ${info.id} (${(info.bytes / 1e6).toFixed(1)} MB) from ${info.url} to ${info.dest}\n`,
        );
    },
  });
  download.finish();
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  // Ctrl-C stops cleanly: the pipeline drains, the half-written .npy is removed, the old one (if any) stays.
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping (Ctrl-C again to quit at once)...\n');
    controller.abort();
  };
  process.on('SIGINT', onInterrupt);
  try {
    const bar = new ProgressBar('embedding', showProgress);
    const result = await embedFolder(backbone, request.dir, {
      signal: controller.signal,
      out: request.out,
      // The CLI only needs the file: rows stream to it, so memory does not grow with the folder.
      keepEmbeddings: request.out === undefined,
      batchSize,
      strict: values.strict === true,
      useCache: values['no-cache'] !== true,
      onProgress: (done, total, skipped) => bar.update(done, total, skipped ? `(${skipped} skipped)` : ''),
    });
    bar.finish();
    if (used && used.backbone.sha256 !== backbone.sha256)
      settings.notes.push(
        `the tuning in ${settings.tuningFile} was measured on another file for ${used.backbone.reference}: rerun with --autotune`,
      );
    return { backbone, result, loadSeconds, settings, ...(tuning ? { tuning } : {}) };
  } finally {
    process.off('SIGINT', onInterrupt);
    await backbone.close();
  }
}

function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/**
 * Why CUDA was not used matters only to someone who asked for it or has an NVIDIA GPU; everyone else would read the
 * same lines about a missing CUDA library on every run. (`--json` and `--debug` always keep them.)
 */
function cudaNotesWanted(report: ProviderReport): boolean {
  return report.requested === 'cuda' || gatherHostFacts({ runTools: false }).cuda.gpuPresent;
}

export function describeProvider(report: ProviderReport, options: { verbose?: boolean } = {}): string[] {
  const showCuda = options.verbose === true || cudaNotesWanted(report);
  const threads = report.intraOpThreads ? `, ${report.intraOpThreads} intra-op thread(s)` : '';
  const adapter = report.adapter
    ? `, adapter ${[report.adapter.vendor, report.adapter.device ?? report.adapter.description].filter(Boolean).join(' ')}${report.adapter.software ? ' (software)' : ''}`
    : '';
  const lines = [`${report.used} (requested ${report.requested}${threads}${adapter})`];
  for (const fallback of report.fallbacks) {
    if (fallback.provider === 'cuda' && !showCuda) continue;
    lines.push(`${fallback.provider} not used: ${inCliTerms(fallback.reason)}`);
  }
  for (const note of report.notes ?? []) lines.push(inCliTerms(note));
  return lines;
}

/** The machine-readable summary `--json` prints. */
export function jsonSummary(report: EmbedRunReport): Record<string, unknown> {
  const { backbone, result } = report;
  return {
    count: result.items.length,
    skipped: result.skipped.length,
    seconds: Number(result.seconds.toFixed(3)),
    imagesPerSecond: Number(result.imagesPerSecond.toFixed(2)),
    executionProvider: backbone.provider.used,
    // The reasons are prose for a person: in the CLI's terms here too.
    fallbacks: backbone.provider.fallbacks.map((f) => ({ ...f, reason: inCliTerms(f.reason) })),
    ...(backbone.provider.notes?.length ? { providerNotes: backbone.provider.notes.map(inCliTerms) } : {}),
    backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: backbone.embeddingDim, batch: backbone.batch },
    classes: result.classes,
    cacheHits: result.cacheHits,
    computed: result.computed,
    loadSeconds: Number(report.loadSeconds.toFixed(3)),
    settings: {
      intraOpThreads: backbone.provider.intraOpThreads ?? null,
      decodeThreads: report.settings.decodeThreads ?? null,
      batchSize: report.settings.batchSize,
      sources: report.settings.sources,
      ...(report.settings.tuningFile
        ? { tuningFile: report.settings.tuningFile, tunedAt: report.settings.tunedAt }
        : {}),
    },
    ...(report.tuning
      ? {
          autotune: {
            choice: report.tuning.choice,
            sampleImages: report.tuning.sampleImages,
            rounds: report.tuning.rounds,
            trials: report.tuning.trials,
          },
        }
      : {}),
    skippedFiles: result.skipped,
    warnings: [...result.warnings, ...report.settings.notes].map(inCliTerms),
    ...(result.written ? { out: result.written } : {}),
  };
}

/** The readable summary. */
export function textSummary(report: EmbedRunReport, options: { verbose?: boolean } = {}): string {
  const { backbone, result } = report;
  const lines: string[] = [];
  const row = (label: string, values: string[]) =>
    values.forEach((v, i) => lines.push(`  ${(i === 0 ? label : '').padEnd(10)} ${v}`));
  const classes =
    result.classes === null
      ? 'flat folder, no labels'
      : `${result.classes.length} class${result.classes.length === 1 ? '' : 'es'}: ${result.classes.map((c) => `${c} ${result.classCounts[c]}`).join(', ')}`;
  lines.push(`Embedded ${result.items.length} image(s) from ${shortPath(result.dir)} (${classes})`);
  row('backbone', [
    `${backbone.id}  ${backbone.embeddingDim}-d  batch ${backbone.batch}  sha256 ${backbone.sha256.slice(0, 12)}...`,
  ]);
  row('provider', describeProvider(backbone.provider, options));
  const { settings, tuning } = report;
  if (tuning) {
    const best = tuning.trials[0]!;
    const slowest = tuning.trials[tuning.trials.length - 1]!;
    row('autotune', [
      `${tuning.trials.length} combinations on ${tuning.sampleImages} photos, ${tuning.rounds} rounds: fastest ` +
        `${best.imagesPerSecond.toFixed(1)} images/s (slowest ${slowest.imagesPerSecond.toFixed(1)})`,
    ]);
  }
  const where = (source: SettingSource) => (source === 'tuned' ? ' (tuned)' : source === 'flag' ? ' (flag)' : '');
  row('settings', [
    `${backbone.provider.intraOpThreads ?? '?'} intra-op thread(s)${where(settings.sources.intraOpThreads)}, ` +
      `decoding on ${backbone.decoding}${where(settings.sources.decodeThreads)}, batch ${settings.batchSize}${where(settings.sources.batchSize)}` +
      (settings.tuningFile && !tuning ? `; tuned ${settings.tunedAt?.slice(0, 10)} (--autotune re-measures)` : ''),
  ]);
  row('time', [
    `${result.seconds.toFixed(2)} s, ${result.imagesPerSecond.toFixed(1)} images/s` +
      ` (model load ${report.loadSeconds.toFixed(2)} s; ${result.cacheHits} from the embedding cache, ${result.computed} computed)`,
  ]);
  if (result.skipped.length > 0) {
    const shown = result.skipped.slice(0, 20).map((s) => `${shortPath(s.path)}: ${s.reason}`);
    if (result.skipped.length > 20) shown.push(`... and ${result.skipped.length - 20} more (all listed in the .json)`);
    row(`skipped`, [`${result.skipped.length} file(s)`, ...shown]);
  }
  for (const warning of [...result.warnings, ...settings.notes]) row('note', [inCliTerms(warning)]);
  if (result.written)
    row('wrote', [
      `${shortPath(result.written.npy)}  float32 [${result.items.length}, ${result.dim}]`,
      shortPath(result.written.json),
    ]);
  return lines.join('\n') + '\n';
}

/** `--out` names files, not a folder: `runs/train` writes runs/train.npy and runs/train.json. */
export function checkOutPrefix(out: string): void {
  const isFolder = /[\\/]$/.test(out) || (existsSync(out) && statSync(out).isDirectory());
  if (out.trim() === '' || isFolder) {
    throw new EdgetlError(
      'usage',
      `--out is a file prefix, not a folder: "${out}" would give "${out}${/[\\/]$/.test(out) ? '' : '/'}.npy". Use e.g. --out ${join(out, 'train')}`,
    );
  }
}

export const embedCommand: Command = {
  name: 'embed',
  summary: 'embed a folder of images (class folders or flat) into <prefix>.npy + <prefix>.json',
  help: `Usage: edgetl embed <dir> --out <prefix> [--backbone <id|path>] [options]

Turns every image in <dir> into an embedding with a frozen backbone. <dir> holds either class folders
(<dir>/<class>/*.jpg, the folder name is the label) or images directly (no labels). Images: jpg jpeg png webp gif
tif tiff avif; hidden files are ignored. Unusable images are skipped and listed with the reason.

Writes <prefix>.npy (float32 [N, D], standard NumPy format) and <prefix>.json:
  {"backbone":{"id","sha256","embeddingDim"},"executionProvider","classes":[...] | null,
   "items":[{"path","label"}],"skipped":[{"path","reason"}]}
Row i of the .npy is items[i]. A flat folder gives "classes": null and null labels.

With --json, stdout is one object: {"count","skipped","seconds","imagesPerSecond","executionProvider",...}
("skipped" is a count; "skippedFiles" lists them; "seconds" is the embedding time, "loadSeconds" the model load).

${embedRunHelp}

Examples:
  edgetl embed photos/train --out train --backbone mobilenetv2-12-int8
  edgetl embed photos/train --out train --ep cpu --threads 2 --json
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, embedRunOptions);
    if (positionals.length !== 1) {
      throw new EdgetlError(
        'usage',
        positionals.length === 0
          ? 'missing <dir>: the folder of images to embed (see --help)'
          : `expected one folder, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    }
    if (values.out === undefined)
      throw new EdgetlError('usage', 'missing --out <prefix>: where to write <prefix>.npy and <prefix>.json');
    checkOutPrefix(values.out);
    const report = await runEmbedJob({ dir: positionals[0]!, out: values.out, values });
    if (values.json) printJson(jsonSummary(report));
    else process.stdout.write(textSummary(report, { verbose: values.debug === true }));
    return 0;
  },
};
