/**
 * Limits a head file must respect before any per-label or per-value work: its size, its label count, the nesting
 * of its free-form metadata, and the reserved label. Runtime-neutral; called by parseHeadFile (head-file.ts).
 */
import { EdgetlError } from '../util/errors.js';

/** Largest head file text read by default (characters; a UTF-8 file is at least as many bytes). */
export const DEFAULT_MAX_HEAD_BYTES = 64 * 1024 * 1024;
/** Most labels a head may list: far beyond any real head, small enough that per-label work stays instant. */
export const MAX_HEAD_LABELS = 100_000;
/** Deepest nesting of arrays and objects allowed in `training` (options, metrics and extra fields). */
export const MAX_METADATA_DEPTH = 32;
/** The label a prediction gets when it is rejected; no class may be called so. */
export const RESERVED_LABEL = 'unknown';

function refuse(code: string, file: string | undefined, message: string): never {
  throw new EdgetlError(code, `${file ? `${file}: ` : ''}${message}`, { file });
}

/** Refuses text longer than `maxBytes` before it is parsed (a 250 MB file is refused in microseconds). */
export function checkHeadTextSize(text: string, maxBytes: number = DEFAULT_MAX_HEAD_BYTES, file?: string): void {
  if (text.length > maxBytes)
    refuse(
      'head-too-large',
      file,
      `head file is ${text.length} characters, over the limit of ${maxBytes} bytes (set EDGETL_MAX_HEAD_BYTES to raise it)`,
    );
}

/** Same limit for a file whose size is known before reading it. */
export function checkHeadFileSize(bytes: number, maxBytes: number = DEFAULT_MAX_HEAD_BYTES, file?: string): void {
  if (bytes > maxBytes)
    refuse(
      'head-too-large',
      file,
      `head file is ${bytes} bytes, over the limit of ${maxBytes} bytes (set EDGETL_MAX_HEAD_BYTES to raise it)`,
    );
}

/** Called with the raw `labels` array before each label is looked at. */
export function checkLabelCount(count: number, file?: string): void {
  if (count > MAX_HEAD_LABELS)
    refuse('head-labels', file, `head file field "labels" lists ${count} labels, over the limit of ${MAX_HEAD_LABELS}`);
}

export function checkReservedLabel(labels: readonly string[], file?: string): void {
  const index = labels.indexOf(RESERVED_LABEL);
  if (index >= 0) {
    refuse(
      'head-labels',
      file,
      `head file field "labels[${index}]" is "${RESERVED_LABEL}", which edgetl reserves for rejected predictions: rename that class and retrain`,
    );
  }
}

/**
 * Refuses JSON values nested deeper than MAX_METADATA_DEPTH (which would overflow the stack when the head is
 * serialized or printed). Iterative, so checking a hostile value cannot overflow either.
 */
export function checkMetadataDepth(value: unknown, field: string, file?: string): void {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 0, path: field }];
  while (stack.length > 0) {
    const { value: current, depth, path } = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_METADATA_DEPTH)
      refuse(
        'head-invalid',
        file,
        `head file field "${path}" nests deeper than ${MAX_METADATA_DEPTH} levels of arrays and objects`,
      );
    if (Array.isArray(current))
      current.forEach((item, i) => stack.push({ value: item, depth: depth + 1, path: `${path}[${i}]` }));
    else
      for (const [key, item] of Object.entries(current))
        stack.push({ value: item, depth: depth + 1, path: `${path}.${key}` });
  }
}
