/**
 * The "edgetl-head" file: a trained head in one JSON document that any edgetl runtime loads.
 * Runtime-neutral parse and serialize (file I/O lives in src/node/head-io.ts). Every check on load names the field.
 * Version 2 (written) adds optional sections to version 1 (still read): `openSet` (the outlier-score memory and
 * threshold) and `adaptation` (field feature statistics from `edgetl adapt`).
 * Schemas: src/core/formats/edgetl-head-v2.schema.json, edgetl-head-v1.schema.json (kept in step with this file by
 * test/formats/head-file.test.ts).
 */
import type { PreprocessSpec } from '../preprocess/spec.js';
import { EdgetlError } from '../util/errors.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { type WeightDType, decodeTensor, encodeTensor, encodedByteLength, isWeightDType } from './tensor-encoding.js';
import { sha256Hex } from './sha256.js';
import { checkHeadTextSize, checkLabelCount, checkMetadataDepth, checkReservedLabel } from './head-limits.js';
import {
  type AdaptedBlockSection,
  adaptedBlockJson,
  adaptedBlockTensorShapes,
  parseAdaptedBlockSection,
} from './adapted-block.js';

export const HEAD_FORMAT = 'edgetl-head';
export const HEAD_FORMAT_VERSION = 2;
/** Versions this edgetl reads. */
export const HEAD_FORMAT_VERSIONS_READ = [1, 2] as const;

export type HeadType = 'linear' | 'mlp' | 'prototype';
export type { WeightDType } from './tensor-encoding.js';

export interface HeadBackboneRef {
  id: string;
  /** sha256 (hex) of the source model file the embeddings came from. */
  sha256: string;
  embeddingDim: number;
  preprocess: PreprocessSpec | null;
}

/** Inference-time hyperparameters, per head type. */
export type HeadParametersSpec =
  | { type: 'linear' }
  | { type: 'mlp'; activation: 'relu' | 'gelu'; hidden: number[] }
  | { type: 'prototype'; counts: number[] };

export type NormalizationSpec = { kind: 'none' } | { kind: 'l2' } | { kind: 'standardize' };

export interface TrainingSummary {
  edgetlVersion: string;
  createdAt: string;
  seed: number;
  /** Training rows per label. */
  counts: Record<string, number>;
  /** Options the head was trained with (JSON values only). */
  options: Record<string, unknown>;
  /** Held-out and cross-validation figures measured during training. */
  metrics: Record<string, unknown>;
  [extra: string]: unknown;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * The open-set section: how unlike the training data an embedding is (src/core/heads/open-set.ts). The memory rows are
 * the tensor `openSet.memory` [memoryClasses.length, embeddingDim]; `openSet.mean` and `openSet.std` [embeddingDim]
 * are the raw training embeddings' per-dimension statistics (what `edgetl adapt` aligns field data to).
 */
export interface OpenSetSpec {
  method: 'knn-cosine';
  k: number;
  /** Class index (into labels) of each memory row. */
  memoryClasses: number[];
  /** Training rows each memory row stands for. */
  memoryWeights: number[];
  /** Out-of-fold outlier scores of the training rows. */
  reference: {
    rows: number;
    mean: number;
    std: number;
    quantiles: { q50: number; q90: number; q95: number; q99: number };
  };
  /** Outlier score above which a prediction is "unknown"; null: never reject. */
  threshold: number | null;
  /** Share of in-distribution (out-of-fold) rows the threshold rejects. */
  rate: number;
}

/**
 * Feature statistics re-estimated on unlabeled field photos (`edgetl adapt`): a raw embedding x becomes
 * x * adaptation.scale + adaptation.shift (tensors [embeddingDim]) before the head sees it.
 */
export interface AdaptationSpec {
  method: 'feature-statistics';
  /** Field rows the statistics come from. */
  rows: number;
  createdAt: string;
  [extra: string]: unknown;
}

/** What a head file holds, with tensors decoded to float32. */
export interface HeadFileContent {
  type: HeadType;
  labels: string[];
  backbone: HeadBackboneRef;
  parameters: HeadParametersSpec;
  normalization: NormalizationSpec;
  calibration: { temperature: number };
  rejection: { threshold: number; rate: number } | null;
  training: TrainingSummary;
  /** Absent or null: no open-set data (version 1 files, or heads built without it). */
  openSet?: OpenSetSpec | null;
  adaptation?: AdaptationSpec | null;
  tensors: NamedTensor[];
  /** Notes about the file made on load (e.g. a version 1 head without open-set data). */
  warnings?: string[];
  /** A fine-tuned last block of the backbone (formats/adapted-block.ts); its tensors are in `tensors`. */
  adaptedBlock?: AdaptedBlockSection;
}

export interface SerializeOptions {
  /**
   * Storage type of weight matrices: `auto` (default) is float16, and int8 for an MLP's hidden layers (see
   * autoTensorType); int8 keeps per-row float32 scales (tensor-encoding.ts). Biases and normalization vectors are
   * always float32.
   */
  dtype?: WeightDType | 'auto';
}

/**
 * The `auto` storage type of a tensor: an MLP's layer matrices in int8, the rest float16. Those matrices are
 * most of an MLP head (1280 x 256 values: 872 KiB of a 1.3 MB file in float16) and int8 changed no prediction on
 * either shared val set (probabilities moved <= 0.0053, bench/results/2026-12-01/head-dtype.md), which keeps a
 * 2-class MLP head with its open-set memory under 1 MB. Smaller matrices (linear, prototype, the open-set memory)
 * stay float16, which moves probabilities ten times less.
 */
function autoTensorType(name: string): WeightDType {
  return name.startsWith('mlp.layers.') && name.endsWith('.weight') ? 'int8' : 'float16';
}

export interface ParseOptions {
  /** Shown in errors. */
  file?: string;
  /** When given, the head must have been trained on this backbone (same sha256, same embedding size). */
  backbone?: { id?: string; sha256: string; embeddingDim?: number };
  /** Longest text accepted (default DEFAULT_MAX_HEAD_BYTES, head-limits.ts). */
  maxBytes?: number;
}

/** Tensors small enough that float16 would cost precision for nothing (biases, normalization statistics). */
function alwaysFloat32(name: string): boolean {
  return (
    name.endsWith('.bias') ||
    name.startsWith('normalization.') ||
    name.startsWith('adaptation.') ||
    name === 'openSet.mean' ||
    name === 'openSet.std'
  );
}

export function expectedTensorShapes(
  content: Pick<
    HeadFileContent,
    'type' | 'labels' | 'backbone' | 'parameters' | 'normalization' | 'openSet' | 'adaptation' | 'adaptedBlock'
  >,
): Map<string, number[]> {
  const classes = content.labels.length;
  const dim = content.backbone.embeddingDim;
  const shapes = new Map<string, number[]>();
  if (content.normalization.kind === 'standardize') {
    shapes.set('normalization.mean', [dim]);
    shapes.set('normalization.std', [dim]);
  }
  const parameters = content.parameters;
  if (parameters.type === 'linear') {
    shapes.set('linear.weight', [classes, dim]);
    shapes.set('linear.bias', [classes]);
  } else if (parameters.type === 'mlp') {
    const widths = [dim, ...parameters.hidden, classes];
    for (let l = 0; l + 1 < widths.length; l++) {
      shapes.set(`mlp.layers.${l}.weight`, [widths[l + 1], widths[l]]);
      shapes.set(`mlp.layers.${l}.bias`, [widths[l + 1]]);
    }
  } else {
    shapes.set('prototype.sums', [classes, dim]);
  }
  if (content.openSet) {
    shapes.set('openSet.memory', [content.openSet.memoryClasses.length, dim]);
    shapes.set('openSet.mean', [dim]);
    shapes.set('openSet.std', [dim]);
  }
  if (content.adaptation) {
    shapes.set('adaptation.scale', [dim]);
    shapes.set('adaptation.shift', [dim]);
  }
  if (content.adaptedBlock)
    for (const [name, shape] of adaptedBlockTensorShapes(content.adaptedBlock)) shapes.set(name, shape);
  return shapes;
}

function fail(code: string, field: string, reason: string, file: string | undefined): never {
  throw new EdgetlError(code, `${file ? `${file}: ` : ''}head file field "${field}" ${reason}`, { file });
}

/** Serialize to JSON text. Throws (naming the tensor) for non-finite values or values beyond float16 range. */
export function serializeHeadFile(content: HeadFileContent, options: SerializeOptions = {}): string {
  const dtype = options.dtype ?? 'auto';
  const expected = expectedTensorShapes(content);
  const byName = new Map(content.tensors.map((t) => [t.name, t]));
  for (const [name, shape] of expected) {
    const tensor = byName.get(name);
    if (!tensor) throw new EdgetlError('head-invalid', `cannot write head: tensor "${name}" is missing`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== size || tensor.shape.join('x') !== shape.join('x')) {
      throw new EdgetlError(
        'head-invalid',
        `cannot write head: tensor "${name}" has shape [${tensor.shape}] (${tensor.data.length} values), expected [${shape}]`,
      );
    }
  }
  const entries: { name: string; dtype: WeightDType; shape: number[]; offset: number }[] = [];
  let byteLength = 0;
  for (const name of expected.keys()) {
    const tensor = byName.get(name)!;
    const tensorType = alwaysFloat32(name) ? 'float32' : dtype === 'auto' ? autoTensorType(name) : dtype;
    entries.push({ name, dtype: tensorType, shape: tensor.shape, offset: byteLength });
    byteLength += encodedByteLength(tensorType, tensor.shape);
  }
  const bytes = new Uint8Array(byteLength);
  const view = new DataView(bytes.buffer);
  for (const entry of entries)
    encodeTensor(view, entry.offset, entry.dtype, entry.name, entry.shape, byName.get(entry.name)!.data);
  const document = {
    format: HEAD_FORMAT,
    version: HEAD_FORMAT_VERSION,
    type: content.type,
    labels: content.labels,
    backbone: content.backbone,
    parameters: content.parameters,
    normalization: content.normalization,
    calibration: content.calibration,
    rejection: content.rejection,
    training: content.training,
    ...(content.openSet ? { openSet: content.openSet } : {}),
    ...(content.adaptation ? { adaptation: content.adaptation } : {}),
    ...(content.adaptedBlock ? { adaptedBlock: adaptedBlockJson(content.adaptedBlock) } : {}),
    weights: {
      encoding: 'base64',
      byteOrder: 'little-endian',
      byteLength,
      checksum: `sha256:${sha256Hex(bytes)}`,
      tensors: entries,
      data: encodeBase64(bytes),
    },
  };
  return (
    JSON.stringify(document, (key, value: unknown) => (key === 'preprocess' && value === undefined ? null : value), 1) +
    '\n'
  );
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireObject(value: unknown, field: string, file?: string): Json {
  if (!isObject(value)) fail('head-invalid', field, `must be an object, got ${describe(value)}`, file);
  return value;
}

function requireString(value: unknown, field: string, file?: string): string {
  if (typeof value !== 'string' || value.length === 0)
    fail('head-invalid', field, `must be a non-empty string, got ${describe(value)}`, file);
  return value;
}

function requireFinite(value: unknown, field: string, file?: string): number {
  if (typeof value !== 'number') fail('head-invalid', field, `must be a number, got ${describe(value)}`, file);
  if (!Number.isFinite(value)) fail('head-nonfinite', field, `must be finite, got ${value}`, file);
  return value;
}

function requireCount(value: unknown, field: string, file?: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    fail('head-invalid', field, `must be a whole number >= ${min}, got ${describe(value)}`, file);
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function parsePreprocess(value: unknown, file?: string): PreprocessSpec | null {
  if (value === null || value === undefined) return null;
  const spec = requireObject(value, 'backbone.preprocess', file);
  const field = (name: string) => `backbone.preprocess.${name}`;
  if (spec.layout !== 'NCHW' && spec.layout !== 'NHWC')
    fail('head-invalid', field('layout'), `must be "NCHW" or "NHWC", got ${describe(spec.layout)}`, file);
  requireCount(spec.width, field('width'), file, 1);
  requireCount(spec.height, field('height'), file, 1);
  if (spec.resize !== 'shorter-side' && spec.resize !== 'stretch')
    fail('head-invalid', field('resize'), `must be "shorter-side" or "stretch", got ${describe(spec.resize)}`, file);
  requireCount(spec.resizeTo, field('resizeTo'), file, 0);
  if (spec.crop !== 'center' && spec.crop !== 'none')
    fail('head-invalid', field('crop'), `must be "center" or "none", got ${describe(spec.crop)}`, file);
  if (spec.channelOrder !== 'RGB' && spec.channelOrder !== 'BGR')
    fail('head-invalid', field('channelOrder'), `must be "RGB" or "BGR", got ${describe(spec.channelOrder)}`, file);
  requireFinite(spec.scale, field('scale'), file);
  for (const key of ['mean', 'std'] as const) {
    const triple = spec[key];
    if (!Array.isArray(triple) || triple.length !== 3)
      fail('head-invalid', field(key), `must be an array of 3 numbers, got ${describe(triple)}`, file);
    triple.forEach((v, i) => requireFinite(v, `${field(key)}[${i}]`, file));
  }
  return spec as unknown as PreprocessSpec;
}

/**
 * Parse and validate a head file. Errors (EdgetlError) name the field: `head-format` (not an edgetl head),
 * `head-version` (unsupported version), `head-invalid` (missing or mistyped field), `head-shape` (tensor shapes vs
 * labels, embedding size or layer widths), `head-nonfinite`, `head-checksum`, `head-labels`, `head-backbone-mismatch`.
 */
export function parseHeadFile(text: string, options: ParseOptions = {}): HeadFileContent {
  const file = options.file;
  checkHeadTextSize(text, options.maxBytes, file);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new EdgetlError(
      'head-format',
      `${file ? `${file}: ` : ''}not a head file: invalid JSON (${(error as Error).message})`,
      { file },
    );
  }
  const doc = requireObject(raw, '(top level)', file);
  if (doc.format !== HEAD_FORMAT)
    fail(
      'head-format',
      'format',
      `must be "${HEAD_FORMAT}", got ${describe(doc.format)}: not an edgetl head file`,
      file,
    );
  if (!(HEAD_FORMAT_VERSIONS_READ as readonly unknown[]).includes(doc.version)) {
    fail(
      'head-version',
      'version',
      `is ${describe(doc.version)}, but this edgetl reads versions ${HEAD_FORMAT_VERSIONS_READ.join(' and ')}${typeof doc.version === 'number' && doc.version > HEAD_FORMAT_VERSION ? ' (upgrade edgetl)' : ''}`,
      file,
    );
  }
  const version = doc.version as number;
  const type = doc.type;
  if (type !== 'linear' && type !== 'mlp' && type !== 'prototype')
    fail('head-invalid', 'type', `must be "linear", "mlp" or "prototype", got ${describe(type)}`, file);

  if (!Array.isArray(doc.labels) || doc.labels.length < 2)
    fail('head-labels', 'labels', `must list at least 2 labels, got ${describe(doc.labels)}`, file);
  checkLabelCount(doc.labels.length, file);
  const labels = doc.labels.map((label, i) => requireString(label, `labels[${i}]`, file));
  checkReservedLabel(labels, file);
  const seen = new Set<string>();
  labels.forEach((label, i) => {
    if (seen.has(label)) fail('head-labels', `labels[${i}]`, `repeats the label "${label}"`, file);
    seen.add(label);
  });

  const backboneJson = requireObject(doc.backbone, 'backbone', file);
  checkMetadataDepth(backboneJson, 'backbone', file);
  const backbone: HeadBackboneRef = {
    id: requireString(backboneJson.id, 'backbone.id', file),
    sha256: requireString(backboneJson.sha256, 'backbone.sha256', file),
    embeddingDim: requireCount(backboneJson.embeddingDim, 'backbone.embeddingDim', file, 1),
    preprocess: parsePreprocess(backboneJson.preprocess, file),
  };
  if (!/^[0-9a-f]{64}$/.test(backbone.sha256))
    fail('head-invalid', 'backbone.sha256', `must be 64 lowercase hex digits, got ${describe(backbone.sha256)}`, file);
  if (options.backbone) {
    const expected = options.backbone;
    if (expected.sha256.toLowerCase() !== backbone.sha256) {
      fail(
        'head-backbone-mismatch',
        'backbone.sha256',
        `is ${backbone.sha256} (${backbone.id}), but the backbone given has sha256 ${expected.sha256}${expected.id ? ` (${expected.id})` : ''}: this head was trained on a different backbone; use ${backbone.id} or retrain the head`,
        file,
      );
    }
    if (expected.embeddingDim !== undefined && expected.embeddingDim !== backbone.embeddingDim) {
      fail(
        'head-backbone-mismatch',
        'backbone.embeddingDim',
        `is ${backbone.embeddingDim}, but the backbone given produces ${expected.embeddingDim}-d embeddings`,
        file,
      );
    }
  }

  const parametersJson = requireObject(doc.parameters, 'parameters', file);
  if (parametersJson.type !== type)
    fail(
      'head-invalid',
      'parameters.type',
      `must equal "type" ("${type}"), got ${describe(parametersJson.type)}`,
      file,
    );
  let parameters: HeadParametersSpec;
  if (type === 'linear') {
    parameters = { type };
  } else if (type === 'mlp') {
    const activation = parametersJson.activation;
    if (activation !== 'relu' && activation !== 'gelu')
      fail('head-invalid', 'parameters.activation', `must be "relu" or "gelu", got ${describe(activation)}`, file);
    if (!Array.isArray(parametersJson.hidden) || parametersJson.hidden.length < 1 || parametersJson.hidden.length > 4) {
      fail(
        'head-invalid',
        'parameters.hidden',
        `must list 1 to 4 hidden layer widths, got ${describe(parametersJson.hidden)}`,
        file,
      );
    }
    const hidden = parametersJson.hidden.map((w, i) => requireCount(w, `parameters.hidden[${i}]`, file, 1));
    parameters = { type, activation, hidden };
  } else {
    if (!Array.isArray(parametersJson.counts))
      fail(
        'head-invalid',
        'parameters.counts',
        `must be an array of per-label example counts, got ${describe(parametersJson.counts)}`,
        file,
      );
    if (parametersJson.counts.length !== labels.length) {
      fail(
        'head-labels',
        'parameters.counts',
        `has ${parametersJson.counts.length} entries but "labels" has ${labels.length}`,
        file,
      );
    }
    const counts = parametersJson.counts.map((c, i) => requireCount(c, `parameters.counts[${i}]`, file, 1));
    parameters = { type, counts };
  }

  const normalizationJson = requireObject(doc.normalization, 'normalization', file);
  const kind = normalizationJson.kind;
  if (kind !== 'none' && kind !== 'l2' && kind !== 'standardize')
    fail('head-invalid', 'normalization.kind', `must be "none", "l2" or "standardize", got ${describe(kind)}`, file);
  const normalization: NormalizationSpec = { kind };

  const calibrationJson = requireObject(doc.calibration, 'calibration', file);
  const temperature = requireFinite(calibrationJson.temperature, 'calibration.temperature', file);
  if (temperature <= 0) fail('head-invalid', 'calibration.temperature', `must be positive, got ${temperature}`, file);

  let rejection: HeadFileContent['rejection'] = null;
  if (doc.rejection !== null && doc.rejection !== undefined) {
    const rejectionJson = requireObject(doc.rejection, 'rejection', file);
    const threshold = requireFinite(rejectionJson.threshold, 'rejection.threshold', file);
    const rate = requireFinite(rejectionJson.rate, 'rejection.rate', file);
    if (threshold < 0 || threshold > 1)
      fail('head-invalid', 'rejection.threshold', `must be a probability in [0, 1], got ${threshold}`, file);
    if (rate < 0 || rate >= 1) fail('head-invalid', 'rejection.rate', `must be in [0, 1), got ${rate}`, file);
    rejection = { threshold, rate };
  }

  const trainingJson = requireObject(doc.training, 'training', file);
  checkMetadataDepth(trainingJson, 'training', file);
  requireString(trainingJson.edgetlVersion, 'training.edgetlVersion', file);
  requireString(trainingJson.createdAt, 'training.createdAt', file);
  requireCount(trainingJson.seed, 'training.seed', file, 0);
  const counts = requireObject(trainingJson.counts, 'training.counts', file);
  for (const [label, count] of Object.entries(counts)) requireCount(count, `training.counts.${label}`, file, 0);
  requireObject(trainingJson.options, 'training.options', file);
  requireObject(trainingJson.metrics, 'training.metrics', file);
  const training = trainingJson as TrainingSummary;

  const warnings: string[] = [];
  let openSet: OpenSetSpec | null = null;
  let adaptation: AdaptationSpec | null = null;
  if (version >= 2) {
    openSet = parseOpenSet(doc.openSet, labels.length, file);
    adaptation = parseAdaptation(doc.adaptation, file);
  } else {
    for (const key of ['openSet', 'adaptation'])
      if (doc[key] !== undefined)
        fail('head-invalid', key, `is a version 2 field, but the file says version ${version}`, file);
  }
  if (!openSet) {
    warnings.push(
      `${file ? `${file}: ` : ''}this head (format version ${version}) has no open-set data: predictions carry no outlierScore and photos unlike the training data are not rejected; retrain it with this edgetl to get them`,
    );
  }

  const adaptedBlock = parseAdaptedBlockSection(doc.adaptedBlock, backbone.embeddingDim, file);
  const tensors = parseWeights(
    doc.weights,
    { type, labels, backbone, parameters, normalization, openSet, adaptation, adaptedBlock },
    file,
  );
  return {
    type,
    labels,
    backbone,
    parameters,
    normalization,
    calibration: { temperature },
    rejection,
    training,
    openSet,
    adaptation,
    tensors,
    warnings,
    ...(adaptedBlock ? { adaptedBlock } : {}),
  };
}

function parseOpenSet(value: unknown, classCount: number, file?: string): OpenSetSpec | null {
  if (value === undefined || value === null) return null;
  const json = requireObject(value, 'openSet', file);
  if (json.method !== 'knn-cosine')
    fail('head-invalid', 'openSet.method', `must be "knn-cosine", got ${describe(json.method)}`, file);
  const k = requireCount(json.k, 'openSet.k', file, 1);
  if (!Array.isArray(json.memoryClasses) || json.memoryClasses.length < 1)
    fail(
      'head-invalid',
      'openSet.memoryClasses',
      `must list the class of each memory row, got ${describe(json.memoryClasses)}`,
      file,
    );
  const memoryClasses = json.memoryClasses.map((c, i) => {
    const index = requireCount(c, `openSet.memoryClasses[${i}]`, file, 0);
    if (index >= classCount)
      fail('head-labels', `openSet.memoryClasses[${i}]`, `is ${index}, but the head has ${classCount} labels`, file);
    return index;
  });
  if (!Array.isArray(json.memoryWeights) || json.memoryWeights.length !== memoryClasses.length) {
    fail(
      'head-invalid',
      'openSet.memoryWeights',
      `must have one entry per memory row (${memoryClasses.length}), got ${describe(json.memoryWeights)}`,
      file,
    );
  }
  const memoryWeights = json.memoryWeights.map((w, i) => requireCount(w, `openSet.memoryWeights[${i}]`, file, 1));
  const referenceJson = requireObject(json.reference, 'openSet.reference', file);
  const quantilesJson = requireObject(referenceJson.quantiles, 'openSet.reference.quantiles', file);
  const quantile = (key: string) => requireFinite(quantilesJson[key], `openSet.reference.quantiles.${key}`, file);
  const reference = {
    rows: requireCount(referenceJson.rows, 'openSet.reference.rows', file, 0),
    mean: requireFinite(referenceJson.mean, 'openSet.reference.mean', file),
    std: requireFinite(referenceJson.std, 'openSet.reference.std', file),
    quantiles: { q50: quantile('q50'), q90: quantile('q90'), q95: quantile('q95'), q99: quantile('q99') },
  };
  let threshold: number | null = null;
  if (json.threshold !== null) {
    threshold = requireFinite(json.threshold, 'openSet.threshold', file);
    if (threshold < 0 || threshold > 2)
      fail('head-invalid', 'openSet.threshold', `must be a cosine distance in [0, 2] or null, got ${threshold}`, file);
  }
  const rate = requireFinite(json.rate, 'openSet.rate', file);
  if (rate < 0 || rate >= 1) fail('head-invalid', 'openSet.rate', `must be in [0, 1), got ${rate}`, file);
  return { method: 'knn-cosine', k, memoryClasses, memoryWeights, reference, threshold, rate };
}

function parseAdaptation(value: unknown, file?: string): AdaptationSpec | null {
  if (value === undefined || value === null) return null;
  const json = requireObject(value, 'adaptation', file);
  if (json.method !== 'feature-statistics')
    fail('head-invalid', 'adaptation.method', `must be "feature-statistics", got ${describe(json.method)}`, file);
  requireCount(json.rows, 'adaptation.rows', file, 1);
  requireString(json.createdAt, 'adaptation.createdAt', file);
  return json as AdaptationSpec;
}

function parseWeights(
  value: unknown,
  content: Parameters<typeof expectedTensorShapes>[0],
  file?: string,
): NamedTensor[] {
  const weights = requireObject(value, 'weights', file);
  if (weights.encoding !== 'base64')
    fail('head-invalid', 'weights.encoding', `must be "base64", got ${describe(weights.encoding)}`, file);
  if (weights.byteOrder !== 'little-endian')
    fail('head-invalid', 'weights.byteOrder', `must be "little-endian", got ${describe(weights.byteOrder)}`, file);
  const byteLength = requireCount(weights.byteLength, 'weights.byteLength', file, 0);
  const checksum = requireString(weights.checksum, 'weights.checksum', file);
  if (!/^sha256:[0-9a-f]{64}$/.test(checksum))
    fail('head-invalid', 'weights.checksum', `must be "sha256:" and 64 hex digits, got ${describe(checksum)}`, file);
  const bytes = decodeBase64(requireString(weights.data, 'weights.data', file));
  if (!bytes) fail('head-invalid', 'weights.data', 'is not valid base64', file);
  if (bytes.length !== byteLength)
    fail(
      'head-invalid',
      'weights.data',
      `decodes to ${bytes.length} bytes but weights.byteLength says ${byteLength}`,
      file,
    );
  if (`sha256:${sha256Hex(bytes)}` !== checksum) {
    fail(
      'head-checksum',
      'weights.checksum',
      `does not match the weight data (the file is corrupt or was edited by hand)`,
      file,
    );
  }
  if (!Array.isArray(weights.tensors))
    fail('head-invalid', 'weights.tensors', `must be an array, got ${describe(weights.tensors)}`, file);
  const expected = expectedTensorShapes(content);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result: NamedTensor[] = [];
  let nextOffset = 0;
  weights.tensors.forEach((entryValue, index) => {
    const field = `weights.tensors[${index}]`;
    const entry = requireObject(entryValue, field, file);
    const name = requireString(entry.name, `${field}.name`, file);
    const shape = expected.get(name);
    if (!shape) {
      fail(
        'head-shape',
        `${field}.name`,
        `is "${name}", which a ${content.type} head${content.normalization.kind === 'standardize' ? '' : ` with normalization "${content.normalization.kind}"`} does not have (expected ${[...expected.keys()].join(', ')})`,
        file,
      );
    }
    if (result.some((t) => t.name === name)) fail('head-shape', `${field}.name`, `repeats the tensor "${name}"`, file);
    const dtype = entry.dtype;
    if (!isWeightDType(dtype))
      fail('head-invalid', `${field}.dtype`, `must be "float16", "float32" or "int8", got ${describe(dtype)}`, file);
    if (!Array.isArray(entry.shape))
      fail('head-shape', `${field}.shape`, `must be an array, got ${describe(entry.shape)}`, file);
    const actual = entry.shape.map((d, i) => requireCount(d, `${field}.shape[${i}]`, file, 1));
    if (actual.join('x') !== shape.join('x')) {
      const what = labelsOrDim(name, shape, content);
      fail(
        name.endsWith('weight') || name === 'prototype.sums' || name.endsWith('.bias') ? 'head-labels' : 'head-shape',
        `${field}.shape`,
        `of "${name}" is [${actual}], expected [${shape}] (${what})`,
        file,
      );
    }
    const offset = requireCount(entry.offset, `${field}.offset`, file, 0);
    if (offset !== nextOffset)
      fail('head-shape', `${field}.offset`, `is ${offset}, expected ${nextOffset} (tensors are packed in order)`, file);
    const length = encodedByteLength(dtype, shape);
    if (offset + length > bytes.length)
      fail(
        'head-shape',
        `${field}`,
        `"${name}" needs bytes ${offset}..${offset + length} but the data has ${bytes.length}`,
        file,
      );
    const decoded = decodeTensor(view, offset, dtype, shape);
    if ('bad' in decoded)
      fail(
        'head-nonfinite',
        `weights.tensors[${index}] ("${name}")`,
        `holds a non-finite value (${decoded.value}) at index ${decoded.bad}${dtype === 'int8' ? ' (a row scale)' : ''}`,
        file,
      );
    const data = decoded.data;
    if (name === 'normalization.std' || name === 'adaptation.scale' || name === 'openSet.std') {
      const bad = data.findIndex((v) => !(v > 0));
      if (bad >= 0)
        fail(
          'head-invalid',
          `weights.tensors[${index}] ("${name}")`,
          `must be positive everywhere, got ${data[bad]} at index ${bad}`,
          file,
        );
    }
    result.push({ name, shape, data });
    nextOffset = offset + length;
  });
  for (const name of expected.keys()) {
    if (!result.some((t) => t.name === name)) fail('head-shape', 'weights.tensors', `lacks the tensor "${name}"`, file);
  }
  if (nextOffset !== bytes.length)
    fail('head-shape', 'weights.byteLength', `is ${bytes.length} but the tensors use ${nextOffset} bytes`, file);
  return result;
}

function labelsOrDim(name: string, _shape: number[], content: Parameters<typeof expectedTensorShapes>[0]): string {
  if (
    name.startsWith('normalization.') ||
    name.startsWith('adaptation.') ||
    name === 'openSet.mean' ||
    name === 'openSet.std'
  )
    return `backbone.embeddingDim is ${content.backbone.embeddingDim}`;
  if (name === 'openSet.memory')
    return `${content.openSet?.memoryClasses.length ?? 0} entries in openSet.memoryClasses, backbone.embeddingDim ${content.backbone.embeddingDim}`;
  return `${content.labels.length} labels, backbone.embeddingDim ${content.backbone.embeddingDim}${content.parameters.type === 'mlp' ? `, hidden [${content.parameters.hidden}]` : ''}`;
}
