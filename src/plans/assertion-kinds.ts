/**
 * The scored assertion kinds of issue #20 (`starts_with`, `contains_all`, `contains_any`,
 * `levenshtein_below`, `json_schema`, `assert_module`) and the modifiers every assertion of a
 * mapping may carry (`weight`, `required`): their plan-file schemas and their evaluation. Kept
 * apart from schema.ts and assertions.ts, which hold the original kinds, so neither grows past
 * a readable size.
 */

import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import { z } from 'zod';

// ajv (63 modules, ~60 ms of start-up) and fastest-levenshtein are loaded the first time a plan
// uses `json_schema` or `levenshtein_below`, not by every plan load (issue #15, start-up). Both
// are CommonJS, so a synchronous require keeps the assertions synchronous.
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// JSON Schema (ajv)
// ---------------------------------------------------------------------------------------------

// One validator for the process. `strict: false` accepts the annotations people write in
// schemas (`examples`, `$comment`, vendor keys); a schema that is not a schema (a bad `type`,
// `required: "x"`) still fails ajv's meta-schema check. Formats are not checked: ajv's format
// checks live in another package (ajv-formats), and a `format` that silently passed would be
// worse than one documented as not checked (docs/plans.md).
let ajvInstance: Ajv | undefined;
function ajv(): Ajv {
  if (ajvInstance === undefined) {
    const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
    ajvInstance = new AjvClass({ allErrors: true, strict: false, validateFormats: false });
  }
  return ajvInstance;
}
const compiled = new Map<string, ValidateFunction | Error>();

/**
 * The compiled validator of a JSON Schema, or the Error that says why it is not one. Cached by
 * the schema's JSON text: every case of a dataset usually carries the same schema.
 */
export function compileJsonSchema(schema: unknown): ValidateFunction | Error {
  const key = JSON.stringify(schema) ?? 'undefined';
  let v = compiled.get(key);
  if (v === undefined) {
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      v = new Error('a JSON Schema is a mapping (or true / false)');
      if (schema === true || schema === false) v = ajv().compile(schema);
    } else {
      try {
        v = ajv().compile(schema as object);
      } catch (e) {
        v = e instanceof Error ? e : new Error(String(e));
      }
    }
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(key, v);
  }
  return v;
}

/** ajv's errors as one line: `/order/id must be string; must have required property 'total'`. */
export function schemaErrors(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath === '' ? '' : `${e.instancePath} `}${e.message ?? 'is invalid'}`)
    .join('; ');
}

// ---------------------------------------------------------------------------------------------
// Levenshtein
// ---------------------------------------------------------------------------------------------

/** Edit distance (insertions, deletions, substitutions) of two strings, by code unit. */
export function editDistance(a: string, b: string): number {
  const { distance } = require('fastest-levenshtein') as typeof import('fastest-levenshtein');
  return distance(a, b);
}

// ---------------------------------------------------------------------------------------------
// Module references
// ---------------------------------------------------------------------------------------------

/** `./checks.mjs#name` split; the export is `default` without `#`. */
export function parseModuleRef(ref: string): { module: string; export: string } {
  const at = ref.lastIndexOf('#');
  if (at < 0) return { module: ref, export: 'default' };
  return { module: ref.slice(0, at), export: ref.slice(at + 1) };
}

const MODULE_REF = /^[^#]+\.(?:mjs|js|cjs)(?:#[A-Za-z_$][\w$]*)?$/;

// ---------------------------------------------------------------------------------------------
// Schemas of the new keys (merged into schema.ts's `expected` mapping)
// ---------------------------------------------------------------------------------------------

const nonEmpty = (what = 'a non-empty string') => z.string({ error: what }).min(1, { error: what });

const NUMERIC = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
const numberLike = (expected: string, ok: (n: number) => boolean) =>
  z.preprocess(
    (v) => (typeof v === 'string' && NUMERIC.test(v) ? Number(v) : v),
    z.custom<number>((v) => typeof v === 'number' && Number.isFinite(v) && ok(v), {
      error: expected,
    }),
  );

/** A number from 0 to 1: a threshold or a score. */
export const unitInterval = numberLike('a number from 0 to 1', (n) => n >= 0 && n <= 1);

const stringList = z
  .array(nonEmpty(), { error: 'a non-empty list of strings' })
  .min(1, { error: 'a non-empty list of strings' });

const levenshtein = z.strictObject(
  {
    value: z.string({ error: 'a string' }),
    distance: numberLike('an integer >= 1', (n) => Number.isInteger(n) && n >= 1),
  },
  { error: 'a mapping {value, distance}' },
);

const jsonSchema = z.custom<object | boolean>((v) => !(compileJsonSchema(v) instanceof Error), {
  error: (issue) => {
    const problem = compileJsonSchema(issue.input);
    return `a JSON Schema (${problem instanceof Error ? problem.message : 'invalid'})`;
  },
});

const moduleRef = z.custom<string>((v) => typeof v === 'string' && MODULE_REF.test(v), {
  error: 'a module and export such as "./checks.mjs#polite" (a .mjs, .js or .cjs file)',
});

/** Keys the new kinds add to an `expected` mapping (assertions, then modifiers). */
export const scoredShape = {
  starts_with: nonEmpty().optional(),
  contains_all: stringList.optional(),
  contains_any: stringList.optional(),
  levenshtein_below: levenshtein.optional(),
  json_schema: jsonSchema.optional(),
  assert_module: z
    .union([moduleRef, z.array(moduleRef).min(1)], {
      error: 'a module and export such as "./checks.mjs#polite", or a list of them',
    })
    .optional(),
  llm_rubric: z
    .union(
      [
        nonEmpty(),
        z.strictObject({
          rubric: nonEmpty(),
          threshold: unitInterval.optional(),
          provider: nonEmpty('a model name of the grader').optional(),
        }),
      ],
      { error: 'a rubric text, or a mapping {rubric, threshold, provider}' },
    )
    .optional(),
  similar: z
    .union(
      [nonEmpty(), z.strictObject({ value: nonEmpty(), threshold: unitInterval.optional() })],
      { error: 'the expected text, or a mapping {value, threshold}' },
    )
    .optional(),
  weight: numberLike('a number >= 0', (n) => n >= 0).optional(),
  required: z.boolean({ error: 'true or false' }).optional(),
};

/** The assertion keys among `scoredShape`'s. */
export const SCORED_KEYS = [
  'starts_with',
  'contains_all',
  'contains_any',
  'levenshtein_below',
  'json_schema',
  'assert_module',
  'llm_rubric',
  'similar',
] as const;
