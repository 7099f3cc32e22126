/**
 * JSON Schema validation with Ajv (draft 2020-12, or draft-07 where a schema says so), so the schema files in the
 * repo are the single source of truth for device profiles and bench results; Ajv's errors are rephrased so each
 * names the exact field (`budgets[0].p95LatencyMsPerImage must be at least 0, got -1`).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

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

/** Validates `value` against `schema`; returns every violation found (empty when valid). */
const compiled = new WeakMap<object, ValidateFunction>();
let draft2020: Ajv2020 | undefined;
let draft07: Ajv | undefined;

function validatorFor(schema: JsonSchemaObject): ValidateFunction {
  const known = compiled.get(schema);
  if (known) return known;
  const draft = String(schema.$schema ?? '');
  // strictSchema: an unknown keyword in a schema is an error, so a schema never silently checks less.
  const options = {
    allErrors: true,
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
  };
  const ajv = draft.includes('draft-07') ? (draft07 ??= new Ajv(options)) : (draft2020 ??= new Ajv2020(options));
  // The same schema file read again is another object with the same $id: Ajv keeps one compiled copy per $id.
  const id = typeof schema.$id === 'string' ? schema.$id : undefined;
  const validate = (id ? ajv.getSchema(id) : undefined) ?? ajv.compile(schema);
  compiled.set(schema, validate);
  return validate;
}

/** Every way `value` breaks `schema`, each with the field's path; empty when it conforms. */
export function validateJson(value: unknown, schema: JsonSchema): SchemaViolation[] {
  if (schema === true) return [];
  if (schema === false) return [{ path: '', message: 'is not allowed here' }];
  const validate = validatorFor(schema);
  if (validate(value)) return [];
  return violationsOf(validate.errors ?? [], value);
}

/** Throws when a schema does not compile (an unknown keyword, a bad $ref), naming where it is used. */
export function assertSupportedSchema(schema: JsonSchema, where = '#'): void {
  if (typeof schema === 'boolean') return;
  try {
    validatorFor(schema);
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
    const { path, value } = locate(error.instancePath, document);
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case 'required':
        out.push({ path: join(path, String(params.missingProperty)), message: 'is required but missing' });
        break;
      case 'additionalProperties':
        out.push({ path: join(path, String(params.additionalProperty)), message: 'is not a known field' });
        break;
      case 'type':
        out.push({
          path,
          message: `must be ${String(params.type).split(',').join(' or ')}, got ${typeOf(value)} ${describeValue(value)}`,
        });
        break;
      case 'const':
        out.push({ path, message: `must be ${describeValue(params.allowedValue)}, got ${describeValue(value)}` });
        break;
      case 'enum':
        out.push({
          path,
          message: `must be one of ${(params.allowedValues as unknown[]).map(describeValue).join(', ')}, got ${describeValue(value)}`,
        });
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        out.push({
          path,
          message: `must be ${LIMIT_WORDS[error.keyword]} ${String(params.limit)}, got ${describeValue(value)}`,
        });
        break;
      case 'minLength':
        out.push({ path, message: `must have at least ${String(params.limit)} character(s)` });
        break;
      case 'pattern':
        out.push({ path, message: `must match ${String(params.pattern)}, got ${describeValue(value)}` });
        break;
      case 'minItems':
      case 'maxItems':
        out.push({
          path,
          message: `must have ${error.keyword === 'minItems' ? 'at least' : 'at most'} ${String(params.limit)} item(s), got ${Array.isArray(value) ? value.length : 0}`,
        });
        break;
      case 'uniqueItems': {
        const later = Math.max(Number(params.i), Number(params.j));
        out.push({
          path: join(path, later),
          message: `repeats an earlier item ${describeValue((value as unknown[])[later])}`,
        });
        break;
      }
      case 'anyOf':
      case 'oneOf':
        out.push({
          path,
          message: params.passingSchemas
            ? 'matches more than one of the allowed forms'
            : 'matches none of the allowed forms',
        });
        break;
      case 'false schema':
        out.push({ path, message: 'is not allowed here' });
        break;
      default:
        out.push({ path, message: error.message ?? `fails ${error.keyword}` });
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
