/**
 * Argument validation for tools: the JSON Schema subset of `JsonSchema` (see tool.ts), or any
 * zod-like schema with `safeParse`. Problems come back as readable sentences that start with the
 * value's JSON path (`$.user.age: -3 is below the minimum 0`), so a plan author can find the
 * argument without reading code.
 *
 * Semantics follow JSON Schema: a keyword applies only to the types it is about (`minimum` to
 * numbers, `minLength` to strings, `items` to arrays, `properties` to objects), so
 * `{ minimum: 0 }` alone accepts a string; use `type` to pin the type.
 */

import { ValidationError } from '../core/errors.js';
import { matchInWorker } from '../plans/match-worker.js';
import {
  type CompiledPattern,
  compilePattern,
  fitsInThread,
  PatternError,
} from '../plans/pattern.js';
import type { JsonSchema, JsonType, ToolSchema } from './tool.js';

/** A schema with zod's `safeParse` (zod 3 and 4, valibot adapters, ...). */
export interface SafeParseSchema {
  safeParse(value: unknown): { success: boolean; error?: unknown };
}

const JSON_TYPES: readonly JsonType[] = [
  'string',
  'number',
  'integer',
  'boolean',
  'object',
  'array',
  'null',
];

const KEYWORDS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'description',
]);

/** True for an object with a `safeParse` method (a zod schema, or anything shaped like one). */
export function isSafeParseSchema(schema: unknown): schema is SafeParseSchema {
  return (
    typeof schema === 'object' &&
    schema !== null &&
    typeof (schema as { safeParse?: unknown }).safeParse === 'function'
  );
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

const SIMPLE_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `$` + `.name`, or `$["odd key"]` when the key is not a plain identifier. */
function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return SIMPLE_NAME.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** JSON text of a value, cut to 80 characters. */
function show(value: unknown): string {
  let text: string;
  if (value === undefined) text = 'undefined';
  else if (typeof value === 'number' && !Number.isFinite(value)) text = String(value);
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'function') text = 'a function';
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** `a string "x"`, `an array [1,2]`, `null`. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array ${show(value)}`;
  switch (typeof value) {
    case 'string':
      return `a string ${show(value)}`;
    case 'number':
      return Number.isFinite(value) ? `a number ${show(value)}` : `a non-finite number ${value}`;
    case 'boolean':
      return `a boolean ${value}`;
    case 'object':
      return `an object ${show(value)}`;
    default:
      return `a ${typeof value}`;
  }
}

function article(type: JsonType): string {
  if (type === 'null') return 'null';
  return type === 'object' || type === 'array' || type === 'integer' ? `an ${type}` : `a ${type}`;
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasType(value: unknown, type: JsonType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'object':
      return isPlainObject(value);
    case 'array':
      return Array.isArray(value);
    case 'null':
      return value === null;
  }
}

/** Structural equality of JSON values (key order does not matter), for `enum` and `const`. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * A schema's `pattern`, compiled for linear-time matching (plans/pattern.ts, issue #16): an
 * action plan's `validate` rules come from a file, and a backtracking RegExp on a step's output
 * could hold the event loop past every timeout.
 */
function compileSchemaPattern(pattern: string): CompiledPattern | PatternError {
  try {
    return compilePattern(pattern);
  } catch (err) {
    if (err instanceof PatternError) return err;
    throw err;
  }
}

/** A `pattern` check too large for this thread, left for `validateSchemaAsync` to finish. */
interface SlowMatch {
  /** Where its problem goes in `out` (a placeholder `''` until then). */
  readonly at: number;
  readonly pattern: CompiledPattern;
  readonly value: string;
  readonly problem: string;
}

/** Length in Unicode code points, as JSON Schema counts `minLength` / `maxLength`. */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function validateJson(
  schema: JsonSchema,
  value: unknown,
  path: string,
  out: string[],
  slow?: SlowMatch[],
): void {
  if (schema.type !== undefined) {
    const types: readonly JsonType[] =
      typeof schema.type === 'string' ? [schema.type] : schema.type;
    if (!types.some((t) => hasType(value, t))) {
      out.push(`${path}: expected ${types.map(article).join(' or ')}, got ${describe(value)}`);
      return; // the other keywords would only repeat the type mismatch
    }
  }
  if (schema.const !== undefined && !jsonEqual(value, schema.const)) {
    out.push(`${path}: ${show(value)} is not the constant ${show(schema.const)}`);
  }
  if (schema.enum !== undefined && !schema.enum.some((option) => jsonEqual(value, option))) {
    out.push(`${path}: ${show(value)} is not one of ${schema.enum.map(show).join(', ')}`);
  }

  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum)
      out.push(`${path}: ${show(value)} is below the minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      out.push(`${path}: ${show(value)} is above the maximum ${schema.maximum}`);
  }

  if (typeof value === 'string') {
    if (schema.minLength !== undefined || schema.maxLength !== undefined) {
      const length = codePoints(value);
      if (schema.minLength !== undefined && length < schema.minLength)
        out.push(
          `${path}: ${show(value)} is shorter than the minimum length ${schema.minLength} (${length} characters)`,
        );
      if (schema.maxLength !== undefined && length > schema.maxLength)
        out.push(
          `${path}: ${show(value)} is longer than the maximum length ${schema.maxLength} (${length} characters)`,
        );
    }
    if (schema.pattern !== undefined) {
      const re = compileSchemaPattern(schema.pattern);
      const problem = `${path}: ${show(value)} does not match the pattern ${show(schema.pattern)}`;
      if (re instanceof PatternError)
        out.push(
          `${path}: the schema's pattern ${show(schema.pattern)} cannot be used (${re.message})`,
        );
      else if (slow !== undefined && !fitsInThread(re, value.length)) {
        slow.push({ at: out.length, pattern: re, value, problem });
        out.push('');
      } else if (!re.test(value)) out.push(problem);
    }
  }

  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      out.push(`${path}: ${value.length} items, fewer than the minimum ${schema.minItems}`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      out.push(`${path}: ${value.length} items, more than the maximum ${schema.maxItems}`);
    if (schema.items !== undefined) {
      for (let i = 0; i < value.length; i++)
        validateJson(schema.items, value[i], childPath(path, i), out, slow);
    }
  }

  if (isPlainObject(value)) {
    const properties = schema.properties ?? {};
    for (const key of schema.required ?? []) {
      if (!Object.hasOwn(value, key) || value[key] === undefined)
        out.push(`${childPath(path, key)}: missing (required)`);
    }
    for (const [key, child] of Object.entries(value)) {
      const sub = Object.hasOwn(properties, key) ? properties[key] : undefined;
      if (sub !== undefined) {
        // An optional property explicitly set to undefined is treated as absent (JSON has no undefined).
        if (child !== undefined) validateJson(sub, child, childPath(path, key), out, slow);
      } else if (schema.additionalProperties === false) {
        out.push(`${childPath(path, key)}: unexpected property (additionalProperties is false)`);
      }
    }
  }
}

function zodPath(path: string, segments: unknown): string {
  if (!Array.isArray(segments)) return path;
  let out = path;
  for (const segment of segments) {
    const key =
      typeof segment === 'object' && segment !== null && 'key' in segment
        ? (segment as { key: unknown }).key // zod 3's / standard-schema's { key } segments
        : segment;
    out =
      typeof key === 'number' || typeof key === 'string'
        ? childPath(out, key)
        : `${out}[${String(key)}]`;
  }
  return out;
}

function safeParseProblems(schema: SafeParseSchema, value: unknown, path: string): string[] {
  let result: { success: boolean; error?: unknown };
  try {
    result = schema.safeParse(value);
  } catch (err) {
    return [`${path}: the schema threw: ${err instanceof Error ? err.message : show(err)}`];
  }
  if (result.success) return [];
  const error = result.error;
  const issues =
    typeof error === 'object' && error !== null
      ? (error as { issues?: unknown }).issues
      : undefined;
  if (Array.isArray(issues) && issues.length > 0) {
    return issues.map((issue: unknown) => {
      const i = (typeof issue === 'object' && issue !== null ? issue : {}) as {
        path?: unknown;
        message?: unknown;
      };
      const message = typeof i.message === 'string' ? i.message : 'invalid';
      return `${zodPath(path, i.path)}: ${message}`;
    });
  }
  const message =
    error instanceof Error
      ? error.message
      : typeof error === 'string'
        ? error
        : 'invalid (the schema gave no details)';
  return [`${path}: ${message}`];
}

/**
 * Checks `value` against a tool schema and returns every problem found (empty: valid).
 *
 * @param path the JSON path the messages start with; `$` is the value itself.
 *
 * @example
 * ```ts
 * validateSchema({ type: 'object', properties: { age: { type: 'integer', minimum: 0 } }, required: ['name'] }, { age: -3 });
 * // ['$.name: missing (required)', '$.age: -3 is below the minimum 0']
 * ```
 */
export function validateSchema(schema: ToolSchema, value: unknown, path = '$'): string[] {
  if (isSafeParseSchema(schema)) return safeParseProblems(schema, value, path);
  const out: string[] = [];
  validateJson(schema, value, path, out);
  return out;
}

/**
 * Like `validateSchema`, for values too large to match a `pattern` against on this thread within
 * ~10 ms: those matches run on the pattern worker, which `options.signal` (read only then) ends,
 * rejecting with its reason, so a step's validation cannot outlive the step's timeout.
 */
export async function validateSchemaAsync(
  schema: ToolSchema,
  value: unknown,
  path = '$',
  options: { readonly signal?: AbortSignal } = {},
): Promise<string[]> {
  if (isSafeParseSchema(schema)) return safeParseProblems(schema, value, path);
  const out: string[] = [];
  const slow: SlowMatch[] = [];
  validateJson(schema, value, path, out, slow);
  for (const m of slow) {
    out[m.at] = (await matchInWorker(m.pattern, m.value, options.signal)) ? '' : m.problem;
  }
  return slow.length === 0 ? out : out.filter((p) => p !== '');
}

/**
 * Like `validateSchema`, but throws a `ValidationError` (never retried) whose message is
 * `prefix: problem; problem; ...`.
 *
 * @example
 * ```ts
 * assertSchema(tool.schema, args, `invalid arguments for tool ${tool.name}`);
 * // ValidationError: invalid arguments for tool http: $.url: missing (required)
 * ```
 */
export function assertSchema(schema: ToolSchema, value: unknown, prefix: string): void {
  const problems = validateSchema(schema, value);
  if (problems.length > 0) throw new ValidationError(`${prefix}: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------------------------------------
// Checking a schema itself (plans carry JSON schemas written by hand)
// ---------------------------------------------------------------------------------------------

function isCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function checkJson(schema: unknown, path: string, out: string[]): void {
  if (!isPlainObject(schema)) {
    out.push(`${path}: a schema must be an object, got ${describe(schema)}`);
    return;
  }
  for (const key of Object.keys(schema)) {
    if (!KEYWORDS.has(key))
      out.push(
        `${childPath(path, key)}: unknown keyword ${JSON.stringify(key)} (supported: ${[...KEYWORDS].join(', ')})`,
      );
  }
  const s = schema;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (Array.isArray(s.type) && s.type.length === 0)
      out.push(`${path}.type: an empty list of types accepts nothing`);
    for (const t of types) {
      if (!JSON_TYPES.includes(t as JsonType))
        out.push(
          `${path}.type: unknown type ${show(t)} (expected one of ${JSON_TYPES.join(', ')})`,
        );
    }
  }
  if (s.properties !== undefined) {
    if (!isPlainObject(s.properties))
      out.push(`${path}.properties: expected an object of schemas, got ${describe(s.properties)}`);
    else
      for (const [name, sub] of Object.entries(s.properties))
        checkJson(sub, childPath(`${path}.properties`, name), out);
  }
  if (s.required !== undefined) {
    if (!Array.isArray(s.required) || !s.required.every((r) => typeof r === 'string'))
      out.push(`${path}.required: expected a list of property names, got ${describe(s.required)}`);
  }
  if (s.additionalProperties !== undefined && typeof s.additionalProperties !== 'boolean')
    out.push(
      `${path}.additionalProperties: expected true or false (schemas are not supported), got ${describe(s.additionalProperties)}`,
    );
  if (s.items !== undefined) checkJson(s.items, `${path}.items`, out);
  if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0))
    out.push(`${path}.enum: expected a non-empty list, got ${describe(s.enum)}`);
  for (const key of ['minimum', 'maximum'] as const) {
    const v = s[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v)))
      out.push(`${path}.${key}: expected a number, got ${describe(v)}`);
  }
  for (const key of ['minLength', 'maxLength', 'minItems', 'maxItems'] as const) {
    const v = s[key];
    if (v !== undefined && !isCount(v))
      out.push(`${path}.${key}: expected an integer >= 0, got ${describe(v)}`);
  }
  for (const [lo, hi] of [
    ['minimum', 'maximum'],
    ['minLength', 'maxLength'],
    ['minItems', 'maxItems'],
  ] as const) {
    const a = s[lo];
    const b = s[hi];
    if (typeof a === 'number' && typeof b === 'number' && a > b)
      out.push(`${path}: ${lo} ${a} is greater than ${hi} ${b}; nothing can match`);
  }
  if (s.pattern !== undefined) {
    if (typeof s.pattern !== 'string')
      out.push(`${path}.pattern: expected a regex string, got ${describe(s.pattern)}`);
    else {
      const re = compileSchemaPattern(s.pattern);
      if (re instanceof PatternError)
        out.push(
          re.unsupported
            ? `${path}.pattern: ${show(s.pattern)} is not supported: ${re.message} (RE2 syntax, see docs/plans.md)`
            : `${path}.pattern: ${show(s.pattern)} is not a valid regex (${re.message})`,
        );
    }
  }
  if (s.description !== undefined && typeof s.description !== 'string')
    out.push(`${path}.description: expected a string, got ${describe(s.description)}`);
}

/**
 * Every problem with a JSON schema itself: an unknown keyword (named, so a typo such as
 * `minimun` is caught when the plan loads instead of silently accepting anything), a keyword of
 * the wrong type, an invalid `pattern`, a `minimum` above the `maximum`. Empty: well-formed.
 *
 * @example
 * ```ts
 * checkJsonSchema({ type: 'object', propertes: {} });
 * // ['schema.propertes: unknown keyword "propertes" (supported: type, properties, ...)']
 * ```
 */
export function checkJsonSchema(schema: unknown, path = 'schema'): string[] {
  const out: string[] = [];
  checkJson(schema, path, out);
  return out;
}

/** True when `schema` is a well-formed `JsonSchema` of the supported subset (see `checkJsonSchema`). */
export function isJsonSchema(schema: unknown): schema is JsonSchema {
  return checkJsonSchema(schema).length === 0;
}
