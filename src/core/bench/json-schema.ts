/**
 * JSON Schema validation with Ajv (draft 2020-12, or draft-07 where a schema says so), so the schema files in the
 * repo are the single source of truth for every JSON document edgetl reads: device profiles, bench results, head
 * files, embedding sets and backbone sidecars (src/core/formats/format-schemas.ts). Ajv's errors are rephrased so
 * each names the exact field (`budgets[0].p95LatencyMsPerImage must be at least 0, got -1`).
 *
 * One Ajv instance per draft, one compiled validator per schema $id. Node compiles at first use; the browser bundle
 * cannot (Ajv compiles to code with `new Function`, which a strict Content-Security-Policy forbids, and its compiler
 * is most of its size), so esbuild.config.mjs replaces ./precompiled-validators.ts with Ajv standalone code generated
 * at build time from the same schemas and the same options (./ajv-options.json), and the Ajv import with a stub.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AJV_OPTIONS from './ajv-options.json' with { type: 'json' };
import { PRECOMPILED_VALIDATORS } from './precompiled-validators.js';

export type JsonSchema = boolean | JsonSchemaObject;

export interface JsonSchemaObject {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  pattern?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  description?: string;
  [annotation: string]: unknown;
}

export interface SchemaViolation {
  /** JSON-path-like location, e.g. `budgets[0].p95LatencyMsPerImage` ("" for the document itself). */
  path: string;
  message: string;
  /** The rule broken: Ajv's keyword (`type`, `minimum`, `required`...), or `finite` for NaN and infinities. */
  keyword: string;
}

const _KNOWN_KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'pattern',
  'anyOf',
  'oneOf',
  '$ref',
  '$defs',
  'title',
  'description',
  'examples',
  'default',
  '$schema',
  '$id',
  '$comment',
]);

const compiled = new WeakMap<object, ValidateFunction>();
let draft2020: Ajv2020 | undefined;
let draft07: Ajv | undefined;

function ajvFor(schema: JsonSchemaObject): Ajv | Ajv2020 {
  const draft = String(schema.$schema ?? '');
  // strictSchema (ajv-options.json): an unknown keyword in a schema is an error, so a schema never silently checks
  // less; verbose: errors carry their schema, so "is not a known field" can list the known ones; loopRequired and
  // loopEnum: loops instead of one statement per name (the same errors, 27 KB less precompiled code).
  return draft.includes('draft-07') ? (draft07 ??= new Ajv(AJV_OPTIONS)) : (draft2020 ??= new Ajv2020(AJV_OPTIONS));
}

/**
 * The compiled validator for `schema`; `references` are the schemas its `$ref`s name by $id (added once to the same
 * Ajv instance). A schema with an $id is compiled once however often its file is read.
 */
function validatorFor(schema: JsonSchemaObject, references: readonly JsonSchemaObject[] = []): ValidateFunction {
  const known = compiled.get(schema);
  if (known) return known;
  const id = typeof schema.$id === 'string' ? schema.$id : undefined;
  const precompiled = id ? PRECOMPILED_VALIDATORS.get(id) : undefined;
  if (precompiled) {
    compiled.set(schema, precompiled);
    return precompiled;
  }
  const ajv = ajvFor(schema);
  for (const reference of references) {
    const referenceId = typeof reference.$id === 'string' ? reference.$id : undefined;
    if (referenceId && referenceId !== id && !ajv.getSchema(referenceId)) ajv.addSchema(reference);
  }
  const validate = (id ? ajv.getSchema(id) : undefined) ?? ajv.compile(schema);
  compiled.set(schema, validate);
  return validate;
}

/** Every way `value` breaks `schema`, each with the field's path; empty when it conforms. */
export function validateJson(
  value: unknown,
  schema: JsonSchema,
  references: readonly JsonSchemaObject[] = [],
): SchemaViolation[] {
  if (schema === true) return [];
  if (schema === false) return [{ path: '', message: 'is not allowed here', keyword: 'false schema' }];
  const validate = validatorFor(schema, references);
  if (validate(value)) return [];
  return violationsOf(validate.errors ?? [], value);
}

/** Throws when a schema does not compile (an unknown keyword, a bad $ref), naming where it is used. */
export function assertSupportedSchema(
  schema: JsonSchema,
  where = '#',
  references: readonly JsonSchemaObject[] = [],
): void {
  if (typeof schema === 'boolean') return;
  try {
    validatorFor(schema, references);
  } catch (error) {
    throw new Error(
      `JSON Schema at ${where} does not compile: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function describeValue(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

/** Ajv's instancePath ("/budgets/0/batch") as a field path ("budgets[0].batch"), and the value found there. */
function locate(instancePath: string, document: unknown): { path: string; value: unknown } {
  let path = '';
  let value = document;
  for (const raw of instancePath.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const index = Array.isArray(value) && /^\d+$/.test(key) ? Number(key) : undefined;
    path = join(path, index ?? key);
    value = (value as Record<string, unknown> | undefined)?.[key];
  }
  return { path, value };
}

const LIMIT_WORDS: Record<string, string> = {
  minimum: 'at least',
  maximum: 'at most',
  exclusiveMinimum: 'greater than',
  exclusiveMaximum: 'less than',
};

function violationsOf(errors: ErrorObject[], document: unknown): SchemaViolation[] {
  // An anyOf/oneOf that fails is one violation ("matches none of the allowed forms"), not every branch's errors.
  const alternatives = errors
    .filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    .map((e) => `${e.schemaPath}/`);
  const out: SchemaViolation[] = [];
  for (const error of errors) {
    if (alternatives.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    // An if/then that fails reports the `then` errors themselves and one "must match then": only the former tell.
    if (error.keyword === 'if') continue;
    const { path, value } = locate(error.instancePath, document);
    const params = error.params as Record<string, unknown>;
    const push = (violation: { path: string; message: string; keyword?: string }) =>
      out.push({ keyword: error.keyword, ...violation });
    switch (error.keyword) {
      case 'required':
        push({ path: join(path, String(params.missingProperty)), message: 'is required but missing' });
        break;
      case 'additionalProperties': {
        const known = Object.keys((error.parentSchema as JsonSchemaObject | undefined)?.properties ?? {});
        push({
          path: join(path, String(params.additionalProperty)),
          message: `is not a known field${known.length ? ` (known: ${known.join(', ')})` : ''}`,
        });
        break;
      }
      case 'type':
        // JSON has no NaN or Infinity, but 1e999 parses as Infinity and in-memory values can be NaN: Ajv counts
        // neither as a number.
        if (typeof value === 'number' && !Number.isFinite(value)) {
          push({ path, message: `must be a finite number, got ${value}`, keyword: 'finite' });
          break;
        }
        push({
          path,
          message: `must be ${String(params.type).split(',').join(' or ')}, got ${value === null ? 'null' : `${typeOf(value)} ${describeValue(value)}`}`,
        });
        break;
      case 'const':
        push({ path, message: `must be ${describeValue(params.allowedValue)}, got ${describeValue(value)}` });
        break;
      case 'enum':
        push({
          path,
          message: `must be one of ${(params.allowedValues as unknown[]).map(describeValue).join(', ')}, got ${describeValue(value)}`,
        });
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        push({
          path,
          message: `must be ${LIMIT_WORDS[error.keyword]} ${String(params.limit)}, got ${describeValue(value)}`,
        });
        break;
      case 'minLength':
        push({ path, message: `must have at least ${String(params.limit)} character(s)` });
        break;
      case 'pattern': {
        // A schema may name what its pattern means in the field's `title` ("64 lowercase hex digits").
        const title = (error.parentSchema as JsonSchemaObject | undefined)?.title;
        const rule = typeof title === 'string' ? title : `text matching ${String(params.pattern)}`;
        push({ path, message: `must be ${rule}, got ${describeValue(value)}` });
        break;
      }
      case 'minItems':
      case 'maxItems':
        push({
          path,
          message: `must have ${error.keyword === 'minItems' ? 'at least' : 'at most'} ${String(params.limit)} item(s), got ${Array.isArray(value) ? value.length : 0}`,
        });
        break;
      case 'uniqueItems': {
        const later = Math.max(Number(params.i), Number(params.j));
        push({
          path: join(path, later),
          message: `repeats an earlier item ${describeValue((value as unknown[])[later])}`,
        });
        break;
      }
      case 'anyOf':
      case 'oneOf':
        push({
          path,
          message: params.passingSchemas
            ? 'matches more than one of the allowed forms'
            : 'matches none of the allowed forms',
        });
        break;
      case 'false schema':
        push({ path, message: 'is not allowed here' });
        break;
      default:
        push({ path, message: error.message ?? `fails ${error.keyword}` });
    }
  }
  return out;
}

/** Paths in violations are relative to the value validated; this formats them for a message. */
export function formatViolations(violations: SchemaViolation[], limit = 8): string {
  const lines = violations.slice(0, limit).map((v) => `${v.path || '(document)'} ${v.message}`);
  if (violations.length > limit) lines.push(`... and ${violations.length - limit} more`);
  return lines.join('; ');
}
