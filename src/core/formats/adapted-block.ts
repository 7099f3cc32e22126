/**
 * The optional `adaptedBlock` section of a head file: a fine-tuned last block of the backbone (fine-tuning,
 * heads/last-block.ts) that replaces the backbone's own from `cutTensor` on. Its weights travel with the head's
 * tensors as `adaptedBlock.weight` [outputChannels, inputChannels] (float16 by default) and `adaptedBlock.bias`
 * [outputChannels] (float32). A head with this section must be run through the adapted graph
 * (models/last-block-graph.ts): edgetl versions that do not know the section refuse the file (unknown tensors).
 * Schema: edgetl-head-adapted-block.schema.json (referenced by both head schemas). Runtime-neutral.
 */
import type { BlockActivation } from '../models/last-block.js';
import { EdgetlError } from '../util/errors.js';

export const ADAPTED_BLOCK_WEIGHT = 'adaptedBlock.weight';
export const ADAPTED_BLOCK_BIAS = 'adaptedBlock.bias';

export interface AdaptedBlockSection {
  kind: 'conv1x1';
  /** Tensor of the source backbone graph the block reads (the cut). */
  cutTensor: string;
  inputChannels: number;
  outputChannels: number;
  activation: BlockActivation;
  pool: 'mean';
  /** The backbone's block this one replaces, as found (for reports). */
  replaces: string;
}

export function adaptedBlockTensorShapes(section: AdaptedBlockSection): [string, number[]][] {
  return [
    [ADAPTED_BLOCK_WEIGHT, [section.outputChannels, section.inputChannels]],
    [ADAPTED_BLOCK_BIAS, [section.outputChannels]],
  ];
}

/** JSON form: an unbounded clip side is null (JSON has no Infinity). */
export function adaptedBlockJson(section: AdaptedBlockSection): Record<string, unknown> {
  const activation =
    section.activation.kind === 'clip'
      ? {
          kind: 'clip',
          min: Number.isFinite(section.activation.min) ? section.activation.min : null,
          max: Number.isFinite(section.activation.max) ? section.activation.max : null,
        }
      : { kind: 'swish' };
  return { ...section, activation };
}

function invalid(field: string, reason: string, file?: string): never {
  throw new EdgetlError('head-invalid', `${file ? `${file}: ` : ''}head file field "adaptedBlock.${field}" ${reason}`, {
    file,
  });
}

/** The section as the schema (edgetl-head-adapted-block.schema.json) admits it: an unbounded clip side is null. */
export interface AdaptedBlockJson extends Omit<AdaptedBlockSection, 'activation'> {
  activation: { kind: 'swish' } | { kind: 'clip'; min: number | null; max: number | null };
}

/**
 * The section of a schema-valid head (absent: undefined), checked for what the schema cannot say: the block's
 * outputs are the head's embedding, and a clip's bounds are in order.
 */
export function parseAdaptedBlockSection(
  json: AdaptedBlockJson | undefined | null,
  embeddingDim: number,
  file?: string,
): AdaptedBlockSection | undefined {
  if (json === undefined || json === null) return undefined;
  if (json.outputChannels !== embeddingDim)
    invalid(
      'outputChannels',
      `is ${json.outputChannels} but backbone.embeddingDim is ${embeddingDim} (the block's pooled outputs are the embedding)`,
      file,
    );
  const a = json.activation;
  let activation: BlockActivation = { kind: 'swish' };
  if (a.kind === 'clip') {
    activation = { kind: 'clip', min: a.min ?? -Infinity, max: a.max ?? Infinity };
    if (!(activation.min < activation.max))
      invalid('activation', `clip needs min < max, got [${activation.min}, ${activation.max}]`, file);
  }
  return {
    kind: 'conv1x1',
    cutTensor: json.cutTensor,
    inputChannels: json.inputChannels,
    outputChannels: json.outputChannels,
    activation,
    pool: 'mean',
    replaces: json.replaces,
  };
}
