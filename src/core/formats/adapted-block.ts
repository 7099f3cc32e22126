/**
 * The optional `adaptedBlock` section of a head file: a fine-tuned last block of the backbone (fine-tuning,
 * heads/last-block.ts) that replaces the backbone's own from `cutTensor` on. Its weights travel with the head's
 * tensors as `adaptedBlock.weight` [outputChannels, inputChannels] (float16 by default) and `adaptedBlock.bias`
 * [outputChannels] (float32). A head with this section must be run through the adapted graph
 * (models/last-block-graph.ts): edgetl versions that do not know the section refuse the file (unknown tensors).
 * Schema fragment: edgetl-head-adapted-block.schema.json. Runtime-neutral.
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

const whole = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1;

/** Validate the section (absent: undefined). The block's outputs are the head's embedding. */
export function parseAdaptedBlockSection(
  value: unknown,
  embeddingDim: number,
  file?: string,
): AdaptedBlockSection | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) invalid('', 'must be an object', file);
  const json = value as Record<string, unknown>;
  if (json.kind !== 'conv1x1') invalid('kind', `must be "conv1x1", got ${JSON.stringify(json.kind)}`, file);
  if (typeof json.cutTensor !== 'string' || json.cutTensor.length === 0)
    invalid('cutTensor', 'must name the tensor the block reads', file);
  if (!whole(json.inputChannels))
    invalid('inputChannels', `must be a whole number >= 1, got ${JSON.stringify(json.inputChannels)}`, file);
  if (!whole(json.outputChannels))
    invalid('outputChannels', `must be a whole number >= 1, got ${JSON.stringify(json.outputChannels)}`, file);
  if (json.outputChannels !== embeddingDim)
    invalid(
      'outputChannels',
      `is ${json.outputChannels} but backbone.embeddingDim is ${embeddingDim} (the block's pooled outputs are the embedding)`,
      file,
    );
  if (json.pool !== 'mean') invalid('pool', `must be "mean", got ${JSON.stringify(json.pool)}`, file);
  if (typeof json.replaces !== 'string') invalid('replaces', 'must be a string', file);
  const a = json.activation as Record<string, unknown> | null;
  let activation: BlockActivation;
  if (a && a.kind === 'swish') activation = { kind: 'swish' };
  else if (a && a.kind === 'clip') {
    const bound = (v: unknown, side: 'min' | 'max', fallback: number) => {
      if (v === null || v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isFinite(v))
        invalid(`activation.${side}`, `must be a finite number or null, got ${JSON.stringify(v)}`, file);
      return v;
    };
    activation = { kind: 'clip', min: bound(a.min, 'min', -Infinity), max: bound(a.max, 'max', Infinity) };
    if (!(activation.min < activation.max))
      invalid('activation', `clip needs min < max, got [${activation.min}, ${activation.max}]`, file);
  } else invalid('activation.kind', `must be "clip" or "swish", got ${JSON.stringify(a?.kind)}`, file);
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
