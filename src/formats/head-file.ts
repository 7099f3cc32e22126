/**
 * The "edgetl-head" v1 file: a trained head in one JSON document that any edgetl runtime loads.
 * Runtime-neutral parse and serialize (file I/O lives in src/head-io.ts). Every check on load names the field.
 * Schema: src/formats/edgetl-head-v1.schema.json (kept in step with this file by test/formats/head-file.test.ts).
 */
import type { PreprocessSpec } from '../preprocess/spec.js';
import { EdgetlError } from '../util/errors.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';
import { sha256Hex } from './sha256.js';
import { type AdaptedBlockSection, adaptedBlockJson, adaptedBlockTensorShapes, parseAdaptedBlockSection } from './adapted-block.js';

export const HEAD_FORMAT = 'edgetl-head';
export const HEAD_FORMAT_VERSION = 1;

export type HeadType = 'linear' | 'mlp' | 'prototype';
export type WeightDType = 'float16' | 'float32';

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
  tensors: NamedTensor[];
  /** A fine-tuned last block of the backbone (formats/adapted-block.ts); its tensors are in `tensors`. */
  adaptedBlock?: AdaptedBlockSection;
}

export interface SerializeOptions {
  /** Storage type of weight matrices (default float16). Biases and normalization vectors are always float32. */
  dtype?: WeightDType;
}

export interface ParseOptions {
  /** Shown in errors. */
  file?: string;
  /** When given, the head must have been trained on this backbone (same sha256, same embedding size). */
  backbone?: { id?: string; sha256: string; embeddingDim?: number };
}

/** Tensors small enough that float16 would cost precision for nothing (biases, normalization statistics). */
function alwaysFloat32(name: string): boolean {
  return name.endsWith('.bias') || name.startsWith('normalization.');
}

export function expectedTensorShapes(content: Pick<HeadFileContent, 'type' | 'labels' | 'backbone' | 'parameters' | 'normalization' | 'adaptedBlock'>): Map<string, number[]> {
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
  if (content.adaptedBlock) for (const [name, shape] of adaptedBlockTensorShapes(content.adaptedBlock)) shapes.set(name, shape);
  return shapes;
}

function fail(code: string, field: string, reason: string, file: string | undefined): never {
  throw new EdgetlError(code, `${file ? `${file}: ` : ''}head file field "${field}" ${reason}`, { file });
}

/** Serialize to JSON text. Throws (naming the tensor) for non-finite values or values beyond float16 range. */
export function serializeHeadFile(content: HeadFileContent, options: SerializeOptions = {}): string {
  const dtype = options.dtype ?? 'float16';
  const expected = expectedTensorShapes(content);
  const byName = new Map(content.tensors.map((t) => [t.name, t]));
  for (const [name, shape] of expected) {
    const tensor = byName.get(name);
    if (!tensor) throw new EdgetlError('head-invalid', `cannot write head: tensor "${name}" is missing`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== size || tensor.shape.join('x') !== shape.join('x')) {
      throw new EdgetlError('head-invalid', `cannot write head: tensor "${name}" has shape [${tensor.shape}] (${tensor.data.length} values), expected [${shape}]`);
    }
  }
  const entries: { name: string; dtype: WeightDType; shape: number[]; offset: number }[] = [];
  let byteLength = 0;
  for (const name of expected.keys()) {
    const tensor = byName.get(name)!;
    const tensorType = alwaysFloat32(name) ? 'float32' : dtype;
    entries.push({ name, dtype: tensorType, shape: tensor.shape, offset: byteLength });
    byteLength += tensor.data.length * (tensorType === 'float16' ? 2 : 4);
  }
  const bytes = new Uint8Array(byteLength);
  const view = new DataView(bytes.buffer);
  for (const entry of entries) {
    const data = byName.get(entry.name)!.data;
    for (let i = 0; i < data.length; i++) {
      const value = data[i];
      if (!Number.isFinite(value)) throw new EdgetlError('head-invalid', `cannot write head: tensor "${entry.name}" holds a non-finite value (${value}) at index ${i}`);
      if (entry.dtype === 'float16') {
        const bits = toFloat16Bits(value);
        if ((bits & 0x7c00) === 0x7c00) {
          throw new EdgetlError('head-invalid', `cannot write head: tensor "${entry.name}" value ${value} at index ${i} is beyond the float16 range; write with dtype float32`);
        }
        view.setUint16(entry.offset + i * 2, bits, true);
      } else {
        view.setFloat32(entry.offset + i * 4, value, true);
      }
    }
  }
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
  return JSON.stringify(document, (key, value: unknown) => (key === 'preprocess' && value === undefined ? null : value), 1) + '\n';
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
  if (typeof value !== 'string' || value.length === 0) fail('head-invalid', field, `must be a non-empty string, got ${describe(value)}`, file);
  return value;
}

function requireFinite(value: unknown, field: string, file?: string): number {
  if (typeof value !== 'number') fail('head-invalid', field, `must be a number, got ${describe(value)}`, file);
  if (!Number.isFinite(value)) fail('head-nonfinite', field, `must be finite, got ${value}`, file);
  return value;
}

function requireCount(value: unknown, field: string, file?: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) fail('head-invalid', field, `must be a whole number >= ${min}, got ${describe(value)}`, file);
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
  if (spec.layout !== 'NCHW' && spec.layout !== 'NHWC') fail('head-invalid', field('layout'), `must be "NCHW" or "NHWC", got ${describe(spec.layout)}`, file);
  requireCount(spec.width, field('width'), file, 1);
  requireCount(spec.height, field('height'), file, 1);
  if (spec.resize !== 'shorter-side' && spec.resize !== 'stretch') fail('head-invalid', field('resize'), `must be "shorter-side" or "stretch", got ${describe(spec.resize)}`, file);
  requireCount(spec.resizeTo, field('resizeTo'), file, 0);
  if (spec.crop !== 'center' && spec.crop !== 'none') fail('head-invalid', field('crop'), `must be "center" or "none", got ${describe(spec.crop)}`, file);
  if (spec.channelOrder !== 'RGB' && spec.channelOrder !== 'BGR') fail('head-invalid', field('channelOrder'), `must be "RGB" or "BGR", got ${describe(spec.channelOrder)}`, file);
  requireFinite(spec.scale, field('scale'), file);
  for (const key of ['mean', 'std'] as const) {
    const triple = spec[key];
    if (!Array.isArray(triple) || triple.length !== 3) fail('head-invalid', field(key), `must be an array of 3 numbers, got ${describe(triple)}`, file);
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
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new EdgetlError('head-format', `${file ? `${file}: ` : ''}not a head file: invalid JSON (${(error as Error).message})`, { file });
  }
  const doc = requireObject(raw, '(top level)', file);
  if (doc.format !== HEAD_FORMAT) fail('head-format', 'format', `must be "${HEAD_FORMAT}", got ${describe(doc.format)}: not an edgetl head file`, file);
  if (doc.version !== HEAD_FORMAT_VERSION) {
    fail('head-version', 'version', `is ${describe(doc.version)}, but this edgetl reads version ${HEAD_FORMAT_VERSION} only${typeof doc.version === 'number' && doc.version > HEAD_FORMAT_VERSION ? ' (upgrade edgetl)' : ''}`, file);
  }
  const type = doc.type;
  if (type !== 'linear' && type !== 'mlp' && type !== 'prototype') fail('head-invalid', 'type', `must be "linear", "mlp" or "prototype", got ${describe(type)}`, file);

  if (!Array.isArray(doc.labels) || doc.labels.length < 2) fail('head-labels', 'labels', `must list at least 2 labels, got ${describe(doc.labels)}`, file);
  const labels = doc.labels.map((label, i) => requireString(label, `labels[${i}]`, file));
  const seen = new Set<string>();
  labels.forEach((label, i) => {
    if (seen.has(label)) fail('head-labels', `labels[${i}]`, `repeats the label "${label}"`, file);
    seen.add(label);
  });

  const backboneJson = requireObject(doc.backbone, 'backbone', file);
  const backbone: HeadBackboneRef = {
    id: requireString(backboneJson.id, 'backbone.id', file),
    sha256: requireString(backboneJson.sha256, 'backbone.sha256', file),
    embeddingDim: requireCount(backboneJson.embeddingDim, 'backbone.embeddingDim', file, 1),
    preprocess: parsePreprocess(backboneJson.preprocess, file),
  };
  if (!/^[0-9a-f]{64}$/.test(backbone.sha256)) fail('head-invalid', 'backbone.sha256', `must be 64 lowercase hex digits, got ${describe(backbone.sha256)}`, file);
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
      fail('head-backbone-mismatch', 'backbone.embeddingDim', `is ${backbone.embeddingDim}, but the backbone given produces ${expected.embeddingDim}-d embeddings`, file);
    }
  }

  const parametersJson = requireObject(doc.parameters, 'parameters', file);
  if (parametersJson.type !== type) fail('head-invalid', 'parameters.type', `must equal "type" ("${type}"), got ${describe(parametersJson.type)}`, file);
  let parameters: HeadParametersSpec;
  if (type === 'linear') {
    parameters = { type };
  } else if (type === 'mlp') {
    const activation = parametersJson.activation;
    if (activation !== 'relu' && activation !== 'gelu') fail('head-invalid', 'parameters.activation', `must be "relu" or "gelu", got ${describe(activation)}`, file);
    if (!Array.isArray(parametersJson.hidden) || parametersJson.hidden.length < 1 || parametersJson.hidden.length > 4) {
      fail('head-invalid', 'parameters.hidden', `must list 1 to 4 hidden layer widths, got ${describe(parametersJson.hidden)}`, file);
    }
    const hidden = parametersJson.hidden.map((w, i) => requireCount(w, `parameters.hidden[${i}]`, file, 1));
    parameters = { type, activation, hidden };
  } else {
    if (!Array.isArray(parametersJson.counts)) fail('head-invalid', 'parameters.counts', `must be an array of per-label example counts, got ${describe(parametersJson.counts)}`, file);
    if (parametersJson.counts.length !== labels.length) {
      fail('head-labels', 'parameters.counts', `has ${parametersJson.counts.length} entries but "labels" has ${labels.length}`, file);
    }
    const counts = parametersJson.counts.map((c, i) => requireCount(c, `parameters.counts[${i}]`, file, 1));
    parameters = { type, counts };
  }

  const normalizationJson = requireObject(doc.normalization, 'normalization', file);
  const kind = normalizationJson.kind;
  if (kind !== 'none' && kind !== 'l2' && kind !== 'standardize') fail('head-invalid', 'normalization.kind', `must be "none", "l2" or "standardize", got ${describe(kind)}`, file);
  const normalization: NormalizationSpec = { kind };

  const calibrationJson = requireObject(doc.calibration, 'calibration', file);
  const temperature = requireFinite(calibrationJson.temperature, 'calibration.temperature', file);
  if (temperature <= 0) fail('head-invalid', 'calibration.temperature', `must be positive, got ${temperature}`, file);

  let rejection: HeadFileContent['rejection'] = null;
  if (doc.rejection !== null && doc.rejection !== undefined) {
    const rejectionJson = requireObject(doc.rejection, 'rejection', file);
    const threshold = requireFinite(rejectionJson.threshold, 'rejection.threshold', file);
    const rate = requireFinite(rejectionJson.rate, 'rejection.rate', file);
    if (threshold < 0 || threshold > 1) fail('head-invalid', 'rejection.threshold', `must be a probability in [0, 1], got ${threshold}`, file);
    if (rate < 0 || rate >= 1) fail('head-invalid', 'rejection.rate', `must be in [0, 1), got ${rate}`, file);
    rejection = { threshold, rate };
  }

  const trainingJson = requireObject(doc.training, 'training', file);
  requireString(trainingJson.edgetlVersion, 'training.edgetlVersion', file);
  requireString(trainingJson.createdAt, 'training.createdAt', file);
  requireCount(trainingJson.seed, 'training.seed', file, 0);
  const counts = requireObject(trainingJson.counts, 'training.counts', file);
  for (const [label, count] of Object.entries(counts)) requireCount(count, `training.counts.${label}`, file, 0);
  requireObject(trainingJson.options, 'training.options', file);
  requireObject(trainingJson.metrics, 'training.metrics', file);
  const training = trainingJson as TrainingSummary;

  const adaptedBlock = parseAdaptedBlockSection(doc.adaptedBlock, backbone.embeddingDim, file);
  const tensors = parseWeights(doc.weights, { type, labels, backbone, parameters, normalization, adaptedBlock }, file);
  return { type, labels, backbone, parameters, normalization, calibration: { temperature }, rejection, training, tensors, ...(adaptedBlock ? { adaptedBlock } : {}) };
}

function parseWeights(value: unknown, content: Parameters<typeof expectedTensorShapes>[0], file?: string): NamedTensor[] {
  const weights = requireObject(value, 'weights', file);
  if (weights.encoding !== 'base64') fail('head-invalid', 'weights.encoding', `must be "base64", got ${describe(weights.encoding)}`, file);
  if (weights.byteOrder !== 'little-endian') fail('head-invalid', 'weights.byteOrder', `must be "little-endian", got ${describe(weights.byteOrder)}`, file);
  const byteLength = requireCount(weights.byteLength, 'weights.byteLength', file, 0);
  const checksum = requireString(weights.checksum, 'weights.checksum', file);
  if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) fail('head-invalid', 'weights.checksum', `must be "sha256:" and 64 hex digits, got ${describe(checksum)}`, file);
  const bytes = decodeBase64(requireString(weights.data, 'weights.data', file));
  if (!bytes) fail('head-invalid', 'weights.data', 'is not valid base64', file);
  if (bytes.length !== byteLength) fail('head-invalid', 'weights.data', `decodes to ${bytes.length} bytes but weights.byteLength says ${byteLength}`, file);
  if (`sha256:${sha256Hex(bytes)}` !== checksum) {
    fail('head-checksum', 'weights.checksum', `does not match the weight data (the file is corrupt or was edited by hand)`, file);
  }
  if (!Array.isArray(weights.tensors)) fail('head-invalid', 'weights.tensors', `must be an array, got ${describe(weights.tensors)}`, file);
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
      fail('head-shape', `${field}.name`, `is "${name}", which a ${content.type} head${content.normalization.kind === 'standardize' ? '' : ` with normalization "${content.normalization.kind}"`} does not have (expected ${[...expected.keys()].join(', ')})`, file);
    }
    if (result.some((t) => t.name === name)) fail('head-shape', `${field}.name`, `repeats the tensor "${name}"`, file);
    const dtype = entry.dtype;
    if (dtype !== 'float16' && dtype !== 'float32') fail('head-invalid', `${field}.dtype`, `must be "float16" or "float32", got ${describe(dtype)}`, file);
    if (!Array.isArray(entry.shape)) fail('head-shape', `${field}.shape`, `must be an array, got ${describe(entry.shape)}`, file);
    const actual = entry.shape.map((d, i) => requireCount(d, `${field}.shape[${i}]`, file, 1));
    if (actual.join('x') !== shape.join('x')) {
      const what = labelsOrDim(name, shape, content);
      fail(name.endsWith('weight') || name === 'prototype.sums' || name.endsWith('.bias') ? 'head-labels' : 'head-shape', `${field}.shape`, `of "${name}" is [${actual}], expected [${shape}] (${what})`, file);
    }
    const offset = requireCount(entry.offset, `${field}.offset`, file, 0);
    if (offset !== nextOffset) fail('head-shape', `${field}.offset`, `is ${offset}, expected ${nextOffset} (tensors are packed in order)`, file);
    const size = shape.reduce((a, b) => a * b, 1);
    const width = dtype === 'float16' ? 2 : 4;
    if (offset + size * width > bytes.length) fail('head-shape', `${field}`, `"${name}" needs bytes ${offset}..${offset + size * width} but the data has ${bytes.length}`, file);
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const v = dtype === 'float16' ? fromFloat16Bits(view.getUint16(offset + i * 2, true)) : view.getFloat32(offset + i * 4, true);
      if (!Number.isFinite(v)) fail('head-nonfinite', `weights.tensors[${index}] ("${name}")`, `holds a non-finite value (${v}) at index ${i}`, file);
      data[i] = v;
    }
    if (name === 'normalization.std') {
      const bad = data.findIndex((v) => !(v > 0));
      if (bad >= 0) fail('head-invalid', `weights.tensors[${index}] ("${name}")`, `must be positive everywhere, got ${data[bad]} at index ${bad}`, file);
    }
    result.push({ name, shape, data });
    nextOffset = offset + size * width;
  });
  for (const name of expected.keys()) {
    if (!result.some((t) => t.name === name)) fail('head-shape', 'weights.tensors', `lacks the tensor "${name}"`, file);
  }
  if (nextOffset !== bytes.length) fail('head-shape', 'weights.byteLength', `is ${bytes.length} but the tensors use ${nextOffset} bytes`, file);
  return result;
}

function labelsOrDim(name: string, shape: number[], content: Parameters<typeof expectedTensorShapes>[0]): string {
  if (name.startsWith('normalization.')) return `backbone.embeddingDim is ${content.backbone.embeddingDim}`;
  return `${content.labels.length} labels, backbone.embeddingDim ${content.backbone.embeddingDim}${content.parameters.type === 'mlp' ? `, hidden [${content.parameters.hidden}]` : ''}`;
}
