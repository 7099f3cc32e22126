import { EdgetlError } from '../../core/util/errors.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { validatePreprocessFields } from '../models/backbone-spec.js';

/**
 * Preprocessing flags shared by every verb that runs a backbone (`models inspect`, `embed`, ...). They override the
 * catalog entry or sidecar; for a model the catalog does not know they replace the stated defaults.
 */
export const preprocessFlagOptions = {
  layout: { type: 'string' },
  size: { type: 'string' },
  resize: { type: 'string' },
  'resize-to': { type: 'string' },
  crop: { type: 'string' },
  'channel-order': { type: 'string' },
  scale: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
} as const;

export const preprocessFlagHelp = `Preprocessing (override the catalog entry or <model>.edgetl.json sidecar; defaults for unknown models are
the torchvision ImageNet recipe, layout and size from the model input):
  --layout NCHW|NHWC          tensor layout of the model input
  --size N | WxH              final tensor size after resize and crop (e.g. 224 or 320x240)
  --resize shorter-side|stretch
  --resize-to N               shorter side before the center crop (shorter-side only; default 256 for 224)
  --crop center|none
  --channel-order RGB|BGR
  --scale X                   pixel multiplier before mean/std, e.g. 1/255 or 0.0078431
  --mean a,b,c  --std a,b,c   per-channel normalization, after scaling`;

type PreprocessFlagValues = { [K in keyof typeof preprocessFlagOptions]?: string };

function parseNumberList(text: string, flag: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const numbers = parts.map(parseNumberOrFraction);
  if (parts.length !== 3 || numbers.some((n) => n === undefined)) {
    throw new EdgetlError(
      'usage',
      `--${flag} must be three numbers separated by commas (e.g. 0.485,0.456,0.406), got "${text}"`,
    );
  }
  return numbers as number[];
}

function parseNumberOrFraction(text: string): number | undefined {
  const fraction = /^\s*([0-9.eE+-]+)\s*\/\s*([0-9.eE+-]+)\s*$/.exec(text);
  const value = fraction ? Number(fraction[1]) / Number(fraction[2]) : text.trim() === '' ? NaN : Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Turn the flags present in `values` into PreprocessSpec fields (absent flags stay absent). */
export function preprocessOverridesFromFlags(values: PreprocessFlagValues): Partial<PreprocessSpec> {
  const raw: Record<string, unknown> = {};
  if (values.layout !== undefined) raw.layout = values.layout.toUpperCase();
  if (values.size !== undefined) {
    const match = /^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$/.exec(values.size);
    if (!match)
      throw new EdgetlError('usage', `--size must be N or WxH in pixels (e.g. 224 or 320x240), got "${values.size}"`);
    raw.width = Number(match[1]);
    raw.height = Number(match[2] ?? match[1]);
  }
  if (values.resize !== undefined) raw.resize = values.resize;
  if (values['resize-to'] !== undefined) {
    const n = Number(values['resize-to']);
    raw.resizeTo = Number.isFinite(n) ? n : values['resize-to'];
  }
  if (values.crop !== undefined) raw.crop = values.crop;
  if (values['channel-order'] !== undefined) raw.channelOrder = values['channel-order'].toUpperCase();
  if (values.scale !== undefined) {
    const n = parseNumberOrFraction(values.scale);
    if (n === undefined)
      throw new EdgetlError('usage', `--scale must be a number or a fraction like 1/255, got "${values.scale}"`);
    raw.scale = n;
  }
  if (values.mean !== undefined) raw.mean = parseNumberList(values.mean, 'mean');
  if (values.std !== undefined) raw.std = parseNumberList(values.std, 'std');
  const flagOf: Record<string, string> = {
    width: 'size',
    height: 'size',
    resizeTo: 'resize-to',
    channelOrder: 'channel-order',
  };
  return validatePreprocessFields(
    raw,
    (field) => `--${flagOf[field] ?? field}`,
    (label, reason) => {
      throw new EdgetlError('usage', `${label} ${reason}`);
    },
  );
}
