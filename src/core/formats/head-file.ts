/**
 * The "edgetl-head" file: a trained head in one JSON document that any edgetl runtime loads.
 * Runtime-neutral parse and serialize (file I/O lives in src/node/head-io.ts). Every check on load names the field:
 * the structure through the version's JSON Schema (format-schemas.ts), the rest in small functions here.
 * Version 2 (written) adds optional sections to version 1 (still read): `openSet` (the outlier-score memory and
 * threshold) and `adaptation` (field feature statistics from `edgetl adapt`).
 * Schemas: src/core/formats/edgetl-head-v2.schema.json, edgetl-head-v1.schema.json, sharing
 * edgetl-head-adapted-block.schema.json and edgetl-preprocess.schema.json.
 */
import type { PreprocessSpec } from '../preprocess/spec.js';
import { EdgetlError } from '../util/errors.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { type WeightDType, decodeTensor, encodeTensor, encodedByteLength } from './tensor-encoding.js';
import { sha256Hex } from './sha256.js';
import { checkHeadTextSize, checkLabelCount, checkMetadataDepth, checkReservedLabel } from './head-limits.js';
import type { SchemaViolation } from '../bench/json-schema.js';
import { checkFormat, checkPreprocess, cropProblem, describeViolations, underField } from './format-schemas.js';
import {
  type AdaptedBlockJson,
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
  checkPreprocessForWrite(content.backbone.preprocess);
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
    // only the fields a head file holds: callers may pass a richer object (a loaded Backbone)
    backbone: {
      id: content.backbone.id,
      sha256: content.backbone.sha256,
      embeddingDim: content.backbone.embeddingDim,
      preprocess: content.backbone.preprocess,
    },
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

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** The error code a schema violation of a head file gets (the codes callers and scripts already tell apart). */
function codeOf(violation: SchemaViolation): string {
  if (violation.keyword === 'finite') return 'head-nonfinite';
  if (violation.path === 'labels' || violation.path.startsWith('labels[')) return 'head-labels';
  if (/^weights\.tensors\[\d+\]\.(name|shape|offset)/.test(violation.path)) return 'head-shape';
  return 'head-invalid';
}

/** Refuses `doc` when it breaks its version's schema, naming the first field (and counting the others). */
function checkAgainstSchema(doc: Json, version: number, file: string | undefined): void {
  const violations = checkFormat(version === 1 ? 'headV1' : 'headV2', doc);
  if (violations.length === 0) return;
  throw new EdgetlError(
    codeOf(violations[0]!),
    `${file ? `${file}: ` : ''}head file ${describeViolations(violations)}`,
    {
      file,
    },
  );
}

/** Checks a preprocessing spec before it is written: a head never carries one edgetl would refuse to load. */
function checkPreprocessForWrite(spec: PreprocessSpec | null): void {
  if (spec === null || spec === undefined) return;
  const violations = underField('backbone.preprocess', checkPreprocess(spec));
  if (violations.length > 0)
    throw new EdgetlError(
      violations[0]!.keyword === 'finite' ? 'head-nonfinite' : 'head-invalid',
      `cannot write head: ${describeViolations(violations)}`,
    );
}

/**
 * Parse and validate a head file. The structure and ranges are checked against the version's JSON Schema
 * (edgetl-head-v1/v2.schema.json, with the shared preprocessing definition); what a schema cannot say is checked
 * here: the limits of head-limits.ts, cross-field rules (parameters.type, per-label counts, open-set rows), the
 * checksum and every tensor against the shapes the head implies. Errors (EdgetlError) name the file and the field:
 * `head-format` (not an edgetl head), `head-version` (unsupported version), `head-invalid` (missing or mistyped
 * field), `head-shape` (tensor shapes vs labels, embedding size or layer widths), `head-nonfinite`, `head-checksum`,
 * `head-labels`, `head-backbone-mismatch`.
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
  if (!isObject(raw)) fail('head-invalid', '(top level)', `must be an object, got ${describe(raw)}`, file);
  const doc = raw;
  // Format and version first: they choose the schema, and their failures have their own codes and advice.
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
  if (version < 2)
    for (const key of ['openSet', 'adaptation'])
      if (doc[key] !== undefined)
        fail('head-invalid', key, `is a version 2 field, but the file says version ${version}`, file);
  // Limits before any per-label or per-value work (a schema would walk 200 000 labels, or recurse into hostile
  // nesting), with their own messages.
  if (Array.isArray(doc.labels)) {
    checkLabelCount(doc.labels.length, file);
    checkReservedLabel(doc.labels as string[], file);
  }
  if (isObject(doc.backbone)) checkMetadataDepth(doc.backbone, 'backbone', file);
  if (isObject(doc.training)) checkMetadataDepth(doc.training, 'training', file);
  checkAgainstSchema(doc, version, file);

  const head = doc as unknown as HeadDocument;
  const { type, labels, backbone, normalization, training } = head;
  const problem = head.backbone.preprocess ? cropProblem(head.backbone.preprocess) : undefined;
  if (problem) fail('head-invalid', `backbone.preprocess.${problem.path}`, problem.message, file);
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
  const parameters = head.parameters;
  if (parameters.type !== type)
    fail('head-invalid', 'parameters.type', `must equal "type" ("${type}"), got ${describe(parameters.type)}`, file);
  if (parameters.type === 'prototype' && parameters.counts.length !== labels.length)
    fail(
      'head-labels',
      'parameters.counts',
      `has ${parameters.counts.length} entries but "labels" has ${labels.length}`,
      file,
    );

  const warnings: string[] = [];
  const openSet = head.openSet ?? null;
  if (openSet) checkOpenSet(openSet, labels.length, file);
  const adaptation = head.adaptation ?? null;
  if (!openSet) {
    warnings.push(
      `${file ? `${file}: ` : ''}this head (format version ${version}) has no open-set data: predictions carry no outlierScore and photos unlike the training data are not rejected; retrain it with this edgetl to get them`,
    );
  }

  const adaptedBlock = parseAdaptedBlockSection(head.adaptedBlock, backbone.embeddingDim, file);
  const tensors = parseWeights(
    head.weights,
    { type, labels, backbone, parameters, normalization, openSet, adaptation, adaptedBlock },
    file,
  );
  return {
    type,
    labels,
    backbone: { ...backbone, preprocess: backbone.preprocess ?? null },
    parameters,
    normalization,
    calibration: { temperature: head.calibration.temperature },
    rejection: head.rejection ?? null,
    training,
    openSet,
    adaptation,
    tensors,
    warnings,
    ...(adaptedBlock ? { adaptedBlock } : {}),
  };
}

/** A head document that conforms to its schema: the content as stored, tensors still packed in `weights`. */
type HeadDocument = Omit<HeadFileContent, 'tensors' | 'warnings' | 'adaptedBlock'> & {
  adaptedBlock?: AdaptedBlockJson;
  weights: WeightsDocument;
};

interface WeightsDocument {
  byteLength: number;
  checksum: string;
  data: string;
  tensors: { name: string; dtype: WeightDType; shape: number[]; offset: number }[];
}

/** What the schema cannot say about the open-set section: its rows name real classes, one weight per row. */
function checkOpenSet(openSet: OpenSetSpec, classCount: number, file?: string): void {
  openSet.memoryClasses.forEach((index, i) => {
    if (index >= classCount)
      fail('head-labels', `openSet.memoryClasses[${i}]`, `is ${index}, but the head has ${classCount} labels`, file);
  });
  if (openSet.memoryWeights.length !== openSet.memoryClasses.length)
    fail(
      'head-invalid',
      'openSet.memoryWeights',
      `must have one entry per memory row (${openSet.memoryClasses.length}), got ${openSet.memoryWeights.length}`,
      file,
    );
}

function parseWeights(
  weights: WeightsDocument,
  content: Parameters<typeof expectedTensorShapes>[0],
  file?: string,
): NamedTensor[] {
  const { byteLength, checksum } = weights;
  const bytes = decodeBase64(weights.data);
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
  const expected = expectedTensorShapes(content);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result: NamedTensor[] = [];
  let nextOffset = 0;
  weights.tensors.forEach((entry, index) => {
    const field = `weights.tensors[${index}]`;
    const name = entry.name;
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
    const actual = entry.shape;
    if (actual.join('x') !== shape.join('x')) {
      const what = labelsOrDim(name, shape, content);
      fail(
        name.endsWith('weight') || name === 'prototype.sums' || name.endsWith('.bias') ? 'head-labels' : 'head-shape',
        `${field}.shape`,
        `of "${name}" is [${actual}], expected [${shape}] (${what})`,
        file,
      );
    }
    const offset = entry.offset;
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
