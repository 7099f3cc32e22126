/**
 * A small JSON Schema (2020-12 subset) validator, so the schema files in the repo are the single source of truth
 * for device profiles and bench results, and errors name the exact field. Supported keywords: type, enum, const,
 * properties, required, additionalProperties, items, minItems, maxItems, uniqueItems, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, minLength, pattern, anyOf, oneOf, $ref (local "#/$defs/..."), $defs.
 * Annotation keywords (title, description, examples, default, $schema, $id, $comment) are ignored.
 */

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

const KNOWN_KEYWORDS = new Set([
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems',
  'uniqueItems', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'pattern', 'anyOf',
  'oneOf', '$ref', '$defs', 'title', 'description', 'examples', 'default', '$schema', '$id', '$comment',
]);

/** Validates `value` against `schema`; returns every violation found (empty when valid). */
export function validateJson(value: unknown, schema: JsonSchema, root: JsonSchema = schema): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  check(value, schema, root, '', violations);
  return violations;
}

/** Throws on schema keywords this validator does not implement, so a schema never silently checks less. */
export function assertSupportedSchema(schema: JsonSchema, where = '#'): void {
  if (typeof schema === 'boolean') return;
  for (const key of Object.keys(schema)) {
    if (!KNOWN_KEYWORDS.has(key)) throw new Error(`JSON Schema keyword "${key}" at ${where} is not supported by src/bench/json-schema.ts`);
  }
  for (const [name, sub] of Object.entries(schema.properties ?? {})) assertSupportedSchema(sub, `${where}/properties/${name}`);
  for (const [name, sub] of Object.entries(schema.$defs ?? {})) assertSupportedSchema(sub, `${where}/$defs/${name}`);
  if (schema.items !== undefined) assertSupportedSchema(schema.items, `${where}/items`);
  if (schema.additionalProperties !== undefined) assertSupportedSchema(schema.additionalProperties, `${where}/additionalProperties`);
  schema.anyOf?.forEach((sub, i) => assertSupportedSchema(sub, `${where}/anyOf/${i}`));
  schema.oneOf?.forEach((sub, i) => assertSupportedSchema(sub, `${where}/oneOf/${i}`));
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  if (type === 'number') return actual === 'number' || actual === 'integer';
  return actual === type;
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

function resolveRef(ref: string, root: JsonSchema): JsonSchema {
  if (!ref.startsWith('#/')) throw new Error(`only local $ref ("#/...") is supported, got "${ref}"`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown> | undefined)?.[key];
  }
  if (node === undefined) throw new Error(`$ref "${ref}" points nowhere`);
  return node as JsonSchema;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function check(value: unknown, schema: JsonSchema, root: JsonSchema, path: string, out: SchemaViolation[]): void {
  if (schema === true) return;
  if (schema === false) {
    out.push({ path, message: 'is not allowed here' });
    return;
  }
  if (schema.$ref !== undefined) {
    check(value, resolveRef(schema.$ref, root), root, path, out);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) {
      out.push({ path, message: `must be ${types.join(' or ')}, got ${typeOf(value)} ${describeValue(value)}` });
      return;
    }
  }
  if (schema.const !== undefined && !deepEqual(value, schema.const)) {
    out.push({ path, message: `must be ${describeValue(schema.const)}, got ${describeValue(value)}` });
  }
  if (schema.enum !== undefined && !schema.enum.some((option) => deepEqual(option, value))) {
    out.push({ path, message: `must be one of ${schema.enum.map(describeValue).join(', ')}, got ${describeValue(value)}` });
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) out.push({ path, message: `must be at least ${schema.minimum}, got ${value}` });
    if (schema.maximum !== undefined && value > schema.maximum) out.push({ path, message: `must be at most ${schema.maximum}, got ${value}` });
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) out.push({ path, message: `must be greater than ${schema.exclusiveMinimum}, got ${value}` });
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) out.push({ path, message: `must be less than ${schema.exclusiveMaximum}, got ${value}` });
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) out.push({ path, message: `must have at least ${schema.minLength} character(s)` });
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) out.push({ path, message: `must match ${schema.pattern}, got ${describeValue(value)}` });
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) out.push({ path, message: `must have at least ${schema.minItems} item(s), got ${value.length}` });
    if (schema.maxItems !== undefined && value.length > schema.maxItems) out.push({ path, message: `must have at most ${schema.maxItems} item(s), got ${value.length}` });
    if (schema.uniqueItems) {
      const seen = new Set<string>();
      value.forEach((item, i) => {
        const key = JSON.stringify(item);
        if (seen.has(key)) out.push({ path: join(path, i), message: `repeats an earlier item ${describeValue(item)}` });
        seen.add(key);
      });
    }
    if (schema.items !== undefined) value.forEach((item, i) => check(item, schema.items!, root, join(path, i), out));
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (!(name in object)) out.push({ path: join(path, name), message: 'is required but missing' });
    }
    for (const [name, item] of Object.entries(object)) {
      const sub = schema.properties?.[name];
      if (sub !== undefined) {
        check(item, sub, root, join(path, name), out);
      } else if (schema.additionalProperties !== undefined) {
        if (schema.additionalProperties === false) {
          const known = Object.keys(schema.properties ?? {});
          out.push({ path: join(path, name), message: `is not a known field${known.length ? ` (known: ${known.join(', ')})` : ''}` });
        } else {
          check(item, schema.additionalProperties, root, join(path, name), out);
        }
      }
    }
  }
  if (schema.anyOf !== undefined) {
    const attempts = schema.anyOf.map((sub) => validateJson(value, sub, root));
    if (!attempts.some((a) => a.length === 0)) {
      out.push({ path, message: `matches none of the allowed forms: ${attempts.map((a) => describeFirst(a, path)).join('; or ')}` });
    }
  }
  if (schema.oneOf !== undefined) {
    const attempts = schema.oneOf.map((sub) => validateJson(value, sub, root));
    const passing = attempts.filter((a) => a.length === 0).length;
    if (passing === 0) out.push({ path, message: `matches none of the allowed forms: ${attempts.map((a) => describeFirst(a, path)).join('; or ')}` });
    else if (passing > 1) out.push({ path, message: 'matches more than one of the allowed forms' });
  }
}

function describeFirst(violations: SchemaViolation[], base: string): string {
  const first = violations[0];
  if (!first) return 'ok';
  const relative = first.path.startsWith(base) ? first.path.slice(base.length).replace(/^\./, '') : first.path;
  return `${relative ? `${relative} ` : ''}${first.message}`;
}

/** Paths in violations are relative to the value validated; this formats them for a message. */
export function formatViolations(violations: SchemaViolation[], limit = 8): string {
  const lines = violations.slice(0, limit).map((v) => `${v.path || '(document)'} ${v.message}`);
  if (violations.length > limit) lines.push(`... and ${violations.length - limit} more`);
  return lines.join('; ');
}
