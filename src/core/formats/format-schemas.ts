/**
 * The JSON Schemas of the formats edgetl reads (head files v1 and v2 with their adaptedBlock section, embedding
 * sets, backbone sidecars, and the preprocessing settings all three share), checked with the one Ajv set-up of
 * ../bench/json-schema.ts. The schema files are the source of truth for structure and ranges; the parsers keep only
 * what a schema cannot say (tensor shapes against dims, head limits, cross-field rules). Runtime-neutral: the
 * browser bundle gets these validators precompiled (esbuild.config.mjs).
 */
import { type JsonSchemaObject, type SchemaViolation, validateJson } from '../bench/json-schema.js';
import headV1 from './edgetl-head-v1.schema.json' with { type: 'json' };
import headV2 from './edgetl-head-v2.schema.json' with { type: 'json' };
import adaptedBlock from './edgetl-head-adapted-block.schema.json' with { type: 'json' };
import embeddingsV1 from './edgetl-embeddings-v1.schema.json' with { type: 'json' };
import sidecar from './edgetl-sidecar.schema.json' with { type: 'json' };
import preprocess from './edgetl-preprocess.schema.json' with { type: 'json' };

export const FORMAT_SCHEMAS = {
  headV1: headV1 as JsonSchemaObject,
  headV2: headV2 as JsonSchemaObject,
  adaptedBlock: adaptedBlock as JsonSchemaObject,
  embeddingsV1: embeddingsV1 as JsonSchemaObject,
  sidecar: sidecar as JsonSchemaObject,
  preprocess: preprocess as JsonSchemaObject,
};

export type FormatName = keyof typeof FORMAT_SCHEMAS;

/** Every schema, so a `$ref` from one format to another (head -> preprocessing) resolves. */
const REFERENCES: readonly JsonSchemaObject[] = Object.values(FORMAT_SCHEMAS);

/** Every way `value` breaks the schema of `format` (empty when it conforms). */
export function checkFormat(format: FormatName, value: unknown): SchemaViolation[] {
  return validateJson(value, FORMAT_SCHEMAS[format], REFERENCES);
}

/**
 * The shared preprocessing rules for a complete PreprocessSpec (heads, embedding sets, a backbone's resolved spec):
 * the schema (known layout and resize names, whole sizes, finite numbers, scale > 0, std > 0, one mean and std per
 * channel), then the rule it cannot say. Paths are relative to the spec.
 */
export function checkPreprocess(value: unknown): SchemaViolation[] {
  const violations = checkFormat('preprocess', value);
  if (violations.length > 0) return violations;
  const problem = cropProblem(value as CropFields);
  return problem ? [problem] : [];
}

interface CropFields {
  resize: string;
  crop: string;
  resizeTo: number;
  width: number;
  height: number;
}

/** A center crop after a shorter-side resize must fit inside the resized image. */
export function cropProblem(spec: CropFields): SchemaViolation | undefined {
  if (spec.resize === 'shorter-side' && spec.crop === 'center' && spec.resizeTo < Math.max(spec.width, spec.height))
    return {
      path: 'resizeTo',
      keyword: 'crop',
      message: `is ${spec.resizeTo}, smaller than the ${spec.width}x${spec.height} crop it must contain`,
    };
  return undefined;
}

/** `prefix.path` for a violation found inside a nested value (`backbone.preprocess` + `std[1]`). */
export function underField(prefix: string, violations: SchemaViolation[]): SchemaViolation[] {
  return violations.map((v) => ({
    ...v,
    path: v.path ? (v.path.startsWith('[') ? prefix + v.path : `${prefix}.${v.path}`) : prefix,
  }));
}

/**
 * The message for a failed check: the first violation (`field "backbone.preprocess.std[1]" must be greater than 0,
 * got 0`), then how many more there are, the next few named.
 */
export function describeViolations(violations: readonly SchemaViolation[], more = 3): string {
  const phrase = (v: SchemaViolation) => (v.path ? `field "${v.path}" ${v.message}` : v.message);
  const [first, ...rest] = violations;
  if (!first) return 'is valid';
  if (rest.length === 0) return phrase(first);
  const shown = rest.slice(0, more).map(phrase);
  if (rest.length > more) shown.push(`${rest.length - more} more`);
  return `${phrase(first)} (also: ${shown.join('; ')})`;
}
