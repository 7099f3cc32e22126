import { readFileSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { IMAGENET_224, type PreprocessSpec } from '../../core/preprocess/spec.js';
import type { CatalogEntry } from '../../core/models/catalog-types.js';
import { checkFormat, cropProblem, describeViolations } from '../../core/formats/format-schemas.js';

/**
 * Preprocessing for a backbone. Catalog models use their entry. A model the catalog does not know takes, in
 * increasing precedence: safe defaults (the torchvision ImageNet recipe, with layout and size read from the model's
 * input dims), a sidecar JSON beside the model, and the caller's overrides (the `preprocess` option; the CLI's flags).
 *
 * Sidecar: `<name>.edgetl.json` beside `<name>.onnx` (or `<name>.onnx.edgetl.json`):
 *   { "preprocess": { ...any PreprocessSpec fields }, "embedding": { "tensor": "name", "dim": 512 }, "labels": [...] }
 */

export type SpecSource = 'catalog' | 'sidecar' | 'flags' | 'default';

export interface BackboneSpec {
  preprocess: PreprocessSpec;
  /** Where the preprocessing chiefly comes from: the highest-precedence source that contributed. */
  source: SpecSource;
  /** Human-readable facts about how the spec was chosen (defaults taken, files read, overrides applied). */
  notes: string[];
  /** Embedding tensor named by the catalog entry or the sidecar (absent: discovered automatically). */
  embeddingTensor?: string;
  /** Embedding dimension stated by the catalog entry or the sidecar. */
  embeddingDim?: number;
  /** Sidecar file that was read, if any. */
  sidecar?: string;
}

export interface Sidecar {
  file: string;
  preprocess: Partial<PreprocessSpec>;
  embedding?: { tensor?: string; dim?: number };
}

/** Input tensor dims as inspection reports them: numbers for fixed sizes, strings or null for symbolic ones. */
export type InputDims = ReadonlyArray<number | string | null | undefined>;

const PREPROCESS_FIELDS = [
  'layout',
  'width',
  'height',
  'resize',
  'resizeTo',
  'crop',
  'channelOrder',
  'scale',
  'mean',
  'std',
] as const;
type PreprocessField = (typeof PREPROCESS_FIELDS)[number];

/** Candidate sidecar paths for a model file, in the order they are tried. */
export function sidecarPathsFor(modelPath: string): string[] {
  const dir = dirname(modelPath);
  const name = basename(modelPath);
  const stem = name.replace(/\.onnx$/i, '');
  return stem === name
    ? [join(dir, `${name}.edgetl.json`)]
    : [join(dir, `${stem}.edgetl.json`), join(dir, `${name}.edgetl.json`)];
}

/** Read and validate the sidecar for `modelPath`, or undefined when there is none. */
export function readSidecarFor(modelPath: string): Sidecar | undefined {
  const file = sidecarPathsFor(modelPath).find((p) => existsSync(p));
  return file === undefined ? undefined : readSidecar(file);
}

/** Parse and validate one sidecar file; errors name the file and the field. */
export function readSidecar(file: string): Sidecar {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EdgetlError('sidecar-invalid', `cannot read sidecar ${file}: ${describeError(error)}`, {
      file,
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new EdgetlError('sidecar-invalid', `sidecar ${file} is not valid JSON: ${describeError(error)}`, {
      file,
      cause: error,
    });
  }
  return parseSidecar(parsed, file);
}

/**
 * Validate sidecar content already parsed from JSON against edgetl-sidecar.schema.json (its preprocessing fields
 * are the shared definition heads and embedding sets use). `file` is used in error messages.
 */
export function parseSidecar(value: unknown, file: string): Sidecar {
  const violations = checkFormat('sidecar', value);
  if (violations.length > 0)
    throw new EdgetlError('sidecar-invalid', `sidecar ${file}: ${describeViolations(violations)}`, { file });
  const json = value as { preprocess?: Partial<PreprocessSpec>; embedding?: { tensor?: string; dim?: number } };
  return { file, preprocess: { ...json.preprocess }, ...(json.embedding ? { embedding: { ...json.embedding } } : {}) };
}

/**
 * Check PreprocessSpec fields from an untrusted source (command-line flags, overrides) with the shared preprocessing
 * rules, as a sidecar's. `label(field)` names the field as the user wrote it (`--mean`); `fail(label, reason)` throws.
 */
export function validatePreprocessFields(
  value: Record<string, unknown>,
  label: (field: string) => string,
  fail: (label: string, reason: string) => never,
): Partial<PreprocessSpec> {
  const given = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
  const [first] = checkFormat('sidecar', { preprocess: given });
  if (first) {
    // "preprocess.std[1]" -> the field "std" as the caller names it, then "[1]"
    const [, field = '', rest = ''] = /^preprocess\.([^.[]+)(.*)$/.exec(first.path) ?? [];
    fail(field ? `${label(field)}${rest}` : label('preprocess'), first.message);
  }
  return given as Partial<PreprocessSpec>;
}

/** Layout and spatial size read from a 4-d image input, when the dims say it unambiguously. */
export function layoutFromInputDims(
  dims: InputDims | undefined,
): { layout: 'NCHW' | 'NHWC'; width?: number; height?: number } | undefined {
  if (dims?.length !== 4) return undefined;
  const fixed = (d: number | string | null | undefined): number | undefined =>
    typeof d === 'number' && d > 0 ? d : undefined;
  const [, d1, d2, d3] = dims.map(fixed);
  const channelsFirst = d1 === 3 || d1 === 1;
  const channelsLast = d3 === 3 || d3 === 1;
  if (channelsFirst && !(channelsLast && d1 !== 3)) return { layout: 'NCHW', height: d2, width: d3 };
  if (channelsLast) return { layout: 'NHWC', height: d1, width: d2 };
  return undefined;
}

function formatDims(dims: InputDims): string {
  return `[${dims.map((d) => (d === null || d === undefined ? '?' : String(d))).join(',')}]`;
}

function describeSpec(spec: PreprocessSpec): string {
  const sizing =
    spec.resize === 'shorter-side'
      ? `shorter side ${spec.resizeTo}, ${spec.crop === 'center' ? `center crop ${spec.width}x${spec.height}` : 'no crop'}`
      : `stretch to ${spec.width}x${spec.height}`;
  const round = (xs: number[]) => xs.map((x) => Number(x.toFixed(4))).join('/');
  return `${spec.layout} ${spec.channelOrder}, ${sizing}, scale ${Number(spec.scale.toPrecision(6))}, mean ${round(spec.mean)}, std ${round(spec.std)}`;
}

/**
 * Preprocessing (and any stated embedding tensor) for a resolved backbone.
 *
 * @param resolved  the backbone (its `entry` when the catalog knows it, its `path` for the sidecar)
 * @param overrides fields the caller sets (the `preprocess` option); they win over everything else
 * @param options.inputDims the model's image input dims: give them for unknown models so layout and size are right
 * @param options.sidecar the sidecar already read by the caller (null: none), so the file is read once
 */
export function backboneSpecFor(
  resolved: { path: string; entry?: CatalogEntry },
  overrides: Partial<PreprocessSpec> = {},
  options: { inputDims?: InputDims; readSidecar?: boolean; sidecar?: Sidecar | null } = {},
): BackboneSpec {
  const notes: string[] = [];
  const setBy = new Map<PreprocessField, string>();
  const flagged = Object.keys(overrides).filter(
    (k) => (overrides as Record<string, unknown>)[k] !== undefined,
  ) as PreprocessField[];
  const checkedOverrides = validatePreprocessFields(
    overrides as Record<string, unknown>,
    optionName,
    (field, reason) => {
      throw new EdgetlError('usage', `${field} ${reason}`);
    },
  );

  let base: PreprocessSpec;
  let source: SpecSource;
  let embeddingTensor: string | undefined;
  let embeddingDim: number | undefined;
  let sidecarFile: string | undefined;

  if (resolved.entry) {
    base = { ...resolved.entry.preprocess };
    source = 'catalog';
    embeddingTensor = resolved.entry.embedding.tensor;
    embeddingDim = resolved.entry.embedding.dim;
    for (const f of PREPROCESS_FIELDS) setBy.set(f, `catalog entry ${resolved.entry.id}`);
    notes.push(`preprocessing from catalog entry ${resolved.entry.id}`);
    const ignored =
      options.readSidecar === false ? undefined : sidecarPathsFor(resolved.path).find((p) => existsSync(p));
    if (ignored)
      notes.push(
        `sidecar ${ignored} ignored: the file is catalog model ${resolved.entry.id} (override with the \`preprocess\` option)`,
      );
  } else {
    base = { ...IMAGENET_224 };
    source = 'default';
    for (const f of PREPROCESS_FIELDS) setBy.set(f, 'defaults');
    const fromDims = layoutFromInputDims(options.inputDims);
    const defaultsNote: string[] = [];
    if (fromDims) {
      base.layout = fromDims.layout;
      if (
        fromDims.width !== undefined &&
        fromDims.height !== undefined &&
        (fromDims.width !== base.width || fromDims.height !== base.height)
      ) {
        base.width = fromDims.width;
        base.height = fromDims.height;
        // Keep the ImageNet ratio of resize to crop (256/224).
        base.resizeTo = Math.round((Math.min(base.width, base.height) * 256) / 224);
      }
      defaultsNote.push(
        `layout ${base.layout} and size ${base.width}x${base.height} from input dims ${formatDims(options.inputDims!)}`,
      );
      setBy.set('layout', `the model input ${formatDims(options.inputDims!)}`);
    } else if (options.inputDims) {
      defaultsNote.push(`input dims ${formatDims(options.inputDims)} do not show the layout: assuming NCHW 224x224`);
    }
    const sidecar =
      options.readSidecar === false
        ? undefined
        : options.sidecar !== undefined
          ? (options.sidecar ?? undefined)
          : readSidecarFor(resolved.path);
    const fromSidecar = sidecar ? (Object.keys(sidecar.preprocess) as PreprocessField[]) : [];
    if (sidecar) {
      sidecarFile = sidecar.file;
      base = { ...base, ...sidecar.preprocess };
      for (const f of fromSidecar) setBy.set(f, `sidecar ${sidecar.file} field "preprocess.${f}"`);
      embeddingTensor = sidecar.embedding?.tensor;
      embeddingDim = sidecar.embedding?.dim;
      source = 'sidecar';
      notes.push(
        `not in the catalog; sidecar ${sidecar.file} sets ${fromSidecar.length ? fromSidecar.join(', ') : 'no preprocessing fields'}`,
      );
    }
    const defaulted = PREPROCESS_FIELDS.filter((f) => !fromSidecar.includes(f) && !flagged.includes(f));
    if (defaulted.length) {
      notes.push(
        `${sidecar ? '' : 'not in the catalog and no sidecar: '}safe defaults (torchvision ImageNet recipe) for ${defaulted.join(', ')}` +
          (defaultsNote.length ? `; ${defaultsNote.join('; ')}` : '') +
          `. If the model was trained otherwise, write ${sidecarPathsFor(resolved.path)[0]} or override with the \`preprocess\` option`,
      );
    }
  }

  if (flagged.length) {
    const resized =
      (checkedOverrides.width !== undefined || checkedOverrides.height !== undefined) &&
      checkedOverrides.resizeTo === undefined;
    const ratio = base.resizeTo / Math.min(base.width, base.height);
    base = { ...base, ...checkedOverrides };
    if (resized && base.resize === 'shorter-side') {
      // A new crop size keeps the old resize-to-crop ratio (256/224 for ImageNet) unless resizeTo says otherwise.
      base.resizeTo = Math.round(Math.min(base.width, base.height) * ratio);
      const sizeField = checkedOverrides.width !== undefined ? 'width' : 'height';
      setBy.set('resizeTo', optionName(sizeField));
      notes.push(`${optionName('resizeTo')} ${base.resizeTo} follows the new crop size (same ratio as before)`);
    }
    for (const f of flagged) setBy.set(f, optionName(f));
    source = 'flags';
    // In the spec's field order (width before height), however the caller ordered them.
    const named = PREPROCESS_FIELDS.filter((f) => flagged.includes(f)).map(optionName);
    notes.push(`set by the \`preprocess\` option: ${named.join(', ')}`);
  }

  checkConsistency(base, setBy, resolved.path, options.inputDims);
  notes.push(describeSpec(base));
  return { preprocess: base, source, notes, embeddingTensor, embeddingDim, sidecar: sidecarFile };
}

/** Longest image side edgetl prepares (resize target included): larger inputs are refused when the spec is derived. */
export const MAX_INPUT_SIDE = 8192;
/** Most pixels per input image: 4096 x 4096 is a 201 MB float32 tensor per image, beyond any backbone's need. */
export const MAX_INPUT_PIXELS = 4096 * 4096;

/** Refuses sizes whose tensors could not be allocated (a model declaring [1,3,100000,100000], or a width of 100000). */
function checkInputSize(
  spec: PreprocessSpec,
  setBy: Map<PreprocessField, string>,
  modelPath: string,
  dims: InputDims | undefined,
): void {
  const source = (field: PreprocessField) =>
    dims && layoutFromInputDims(dims)?.width !== undefined
      ? `the model input ${formatDims(dims)}`
      : (setBy.get(field) ?? field);
  const tooLarge = (field: PreprocessField, what: string): never => {
    throw new EdgetlError(
      'model-input-too-large',
      `${modelPath}: ${source(field)} asks for ${what}, beyond what edgetl prepares (sides up to ${MAX_INPUT_SIDE}, ${MAX_INPUT_PIXELS} pixels per image); export the model with a smaller input size`,
      { file: modelPath },
    );
  };
  if (spec.width > MAX_INPUT_SIDE || spec.height > MAX_INPUT_SIDE || spec.width * spec.height > MAX_INPUT_PIXELS)
    tooLarge('width', `${spec.width}x${spec.height} images`);
  if (spec.resize === 'shorter-side' && spec.resizeTo > 2 * MAX_INPUT_SIDE)
    tooLarge('resizeTo', `a resize to ${spec.resizeTo} pixels`);
}

/** Fields that contradict each other or the model's fixed input fail here, naming who set them. */
function checkConsistency(
  spec: PreprocessSpec,
  setBy: Map<PreprocessField, string>,
  modelPath: string,
  dims: InputDims | undefined,
): void {
  checkInputSize(spec, setBy, modelPath, dims);
  const fail = (field: PreprocessField, reason: string): never => {
    const who = setBy.get(field) ?? field;
    const sidecarMatch = /^sidecar (.+?) field/.exec(who);
    throw new EdgetlError(
      sidecarMatch ? 'sidecar-invalid' : 'usage',
      `${who}: ${reason}`,
      sidecarMatch ? { file: sidecarMatch[1] } : undefined,
    );
  };
  const cropFits = () => {
    const problem = cropProblem(spec);
    if (problem) fail('resizeTo', `resizeTo ${problem.message}`);
  };
  const fromDims = layoutFromInputDims(dims);
  if (!fromDims || !dims) {
    cropFits();
    return;
  }
  if (setBy.get('layout')?.startsWith('the model input') !== true && spec.layout !== fromDims.layout) {
    fail(
      'layout',
      `layout ${spec.layout} contradicts the model input ${formatDims(dims)} of ${modelPath}, which is ${fromDims.layout}`,
    );
  }
  if (fromDims.width !== undefined && spec.width !== fromDims.width) {
    fail(
      'width',
      `width ${spec.width} differs from the model input ${formatDims(dims)} of ${modelPath} (width ${fromDims.width})`,
    );
  }
  if (fromDims.height !== undefined && spec.height !== fromDims.height) {
    fail(
      'height',
      `height ${spec.height} differs from the model input ${formatDims(dims)} of ${modelPath} (height ${fromDims.height})`,
    );
  }
  cropFits();
}

/** How messages name a field the caller set: as the option path (the CLI maps it to its flag). */
function optionName(field: string): string {
  return `\`preprocess.${field}\``;
}
