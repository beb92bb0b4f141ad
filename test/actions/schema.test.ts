import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import {
  assertSchema,
  checkJsonSchema,
  isJsonSchema,
  isSafeParseSchema,
  jsonEqual,
  validateSchema,
  validateSchemaAsync,
} from '../../src/actions/schema.js';
import type { JsonSchema } from '../../src/actions/tool.js';
import { classifyError, isStrideError } from '../../src/core/errors.js';

const user: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 5 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    tags: { type: 'array', items: { type: 'string', pattern: '^[a-z]+$' }, maxItems: 2 },
    role: { enum: ['admin', 'user'] },
    kind: { const: 'person' },
    nick: { type: ['string', 'null'] },
  },
  required: ['name'],
  additionalProperties: false,
};

describe('validateSchema (JSON Schema subset)', () => {
  test('a valid value has no problems', () => {
    expect(
      validateSchema(user, {
        name: 'Ada',
        age: 36,
        tags: ['x'],
        role: 'admin',
        kind: 'person',
        nick: null,
      }),
    ).toEqual([]);
  });

  test('reports every problem with its path', () => {
    const problems = validateSchema(user, {
      age: -3,
      tags: ['ok', 'NO', 'x'],
      role: 'root',
      kind: 'robot',
      extra: 1,
      nick: 5,
    });
    expect(problems).toEqual([
      '$.name: missing (required)',
      '$.age: -3 is below the minimum 0',
      '$.tags: 3 items, more than the maximum 2',
      '$.tags[1]: "NO" does not match the pattern "^[a-z]+$"',
      '$.role: "root" is not one of "admin", "user"',
      '$.kind: "robot" is not the constant "person"',
      '$.extra: unexpected property (additionalProperties is false)',
      '$.nick: expected a string or null, got a number 5',
    ]);
  });

  test('nested paths and the custom root path', () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: { user: { type: 'object', properties: { age: { minimum: 0, type: 'number' } } } },
    };
    expect(validateSchema(schema, { user: { age: -3 } })).toEqual([
      '$.user.age: -3 is below the minimum 0',
    ]);
    expect(validateSchema(schema, { user: { age: -3 } }, '$.args')).toEqual([
      '$.args.user.age: -3 is below the minimum 0',
    ]);
  });

  test('type mismatches describe the value, JSON cut to 80 characters', () => {
    expect(validateSchema({ type: 'object' }, 'x')).toEqual([
      '$: expected an object, got a string "x"',
    ]);
    expect(validateSchema({ type: 'array' }, null)).toEqual(['$: expected an array, got null']);
    expect(validateSchema({ type: 'integer' }, 1.5)).toEqual([
      '$: expected an integer, got a number 1.5',
    ]);
    expect(validateSchema({ type: 'number' }, Number.NaN)[0]).toMatch(/expected a number/);
    const [long] = validateSchema({ type: 'number' }, 'y'.repeat(500));
    expect(long).toBe(`$: expected a number, got a string "${'y'.repeat(76)}...`);
  });

  test('integers are numbers; 1.0 is an integer', () => {
    expect(validateSchema({ type: 'number' }, 3)).toEqual([]);
    expect(validateSchema({ type: 'integer' }, 1.0)).toEqual([]);
  });

  test('string lengths count code points', () => {
    expect(validateSchema({ type: 'string', maxLength: 2 }, '😀😀')).toEqual([]);
    expect(validateSchema({ type: 'string', minLength: 3 }, 'ab')).toEqual([
      '$: "ab" is shorter than the minimum length 3 (2 characters)',
    ]);
    expect(validateSchema({ type: 'string', maxLength: 1 }, 'ab')).toEqual([
      '$: "ab" is longer than the maximum length 1 (2 characters)',
    ]);
  });

  test('keywords apply only to their type, as in JSON Schema', () => {
    expect(validateSchema({ minimum: 0 }, 'a string')).toEqual([]);
    expect(validateSchema({ minItems: 1 }, {})).toEqual([]);
    expect(validateSchema({ type: 'array', minItems: 1 }, [])).toEqual([
      '$: 0 items, fewer than the minimum 1',
    ]);
  });

  test('enum and const compare structurally', () => {
    expect(validateSchema({ const: { a: [1, { b: 2 }] } }, { a: [1, { b: 2 }] })).toEqual([]);
    expect(validateSchema({ enum: [{ x: 1 }, null] }, null)).toEqual([]);
    expect(validateSchema({ enum: [{ x: 1 }] }, { x: 2 })).toEqual([
      '$: {"x":2} is not one of {"x":1}',
    ]);
    expect(jsonEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
  });

  test('odd property names are quoted in paths', () => {
    expect(validateSchema({ type: 'object', required: ['first name'] }, {})).toEqual([
      '$["first name"]: missing (required)',
    ]);
  });

  test('a property set to undefined counts as missing', () => {
    expect(
      validateSchema(
        { type: 'object', required: ['a'], properties: { a: { type: 'string' } } },
        {
          a: undefined,
        },
      ),
    ).toEqual(['$.a: missing (required)']);
  });
});

describe('validateSchema (zod-like)', () => {
  test('turns zod 4 issues into path: message', () => {
    const schema = z.object({
      user: z.object({ age: z.number().min(0) }),
      tags: z.array(z.string()),
    });
    expect(isSafeParseSchema(schema)).toBe(true);
    const problems = validateSchema(schema, { user: { age: -1 }, tags: ['a', 2] });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^\$\.user\.age: /);
    expect(problems[1]).toMatch(/^\$\.tags\[1\]: /);
    expect(validateSchema(schema, { user: { age: 1 }, tags: [] })).toEqual([]);
  });

  test('a safeParse without issues, or one that throws, still yields a message', () => {
    expect(
      validateSchema({ safeParse: () => ({ success: false, error: new Error('nope') }) }, 1),
    ).toEqual(['$: nope']);
    expect(
      validateSchema(
        {
          safeParse: () => {
            throw new Error('boom');
          },
        },
        1,
      ),
    ).toEqual(['$: the schema threw: boom']);
  });
});

describe('assertSchema', () => {
  test('throws a non-retryable ValidationError with every problem', () => {
    let caught: unknown;
    try {
      assertSchema(user, { age: 200 }, 'invalid arguments for tool users.create');
    } catch (err) {
      caught = err;
    }
    expect(isStrideError(caught)).toBe(true);
    expect(caught).toMatchObject({
      code: 'VALIDATION_ERROR',
      message:
        'invalid arguments for tool users.create: $.name: missing (required); $.age: 200 is above the maximum 150',
    });
    expect(classifyError(caught).retryable).toBe(false);
  });

  test('returns quietly for a valid value', () => {
    expect(() => assertSchema(user, { name: 'Bo' }, 'x')).not.toThrow();
  });
});

describe('checkJsonSchema / isJsonSchema', () => {
  test('accepts the supported subset', () => {
    expect(checkJsonSchema(user)).toEqual([]);
    expect(isJsonSchema(user)).toBe(true);
  });

  test('names unknown keywords, including nested ones', () => {
    const problems = checkJsonSchema({
      type: 'object',
      properties: { age: { type: 'integer', minimun: 0 } },
      $schema: 'x',
    });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^schema\.\$schema: unknown keyword "\$schema"/);
    expect(problems[1]).toMatch(
      /^schema\.properties\.age\.minimun: unknown keyword "minimun" \(supported: type, /,
    );
    expect(isJsonSchema({ oneOf: [] })).toBe(false);
  });

  test('rejects malformed keyword values', () => {
    const problems = checkJsonSchema({
      type: 'text',
      required: 'name',
      additionalProperties: {},
      minLength: -1,
      pattern: '(',
      enum: [],
      minimum: 5,
      maximum: 1,
      items: 3,
    });
    expect(problems).toEqual([
      expect.stringMatching(/^schema\.type: unknown type "text"/),
      expect.stringMatching(/^schema\.required: expected a list of property names/),
      expect.stringMatching(/^schema\.additionalProperties: expected true or false/),
      expect.stringMatching(/^schema\.items: a schema must be an object, got a number 3/),
      expect.stringMatching(/^schema\.enum: expected a non-empty list/),
      expect.stringMatching(/^schema\.minLength: expected an integer >= 0, got a number -1/),
      'schema: minimum 5 is greater than maximum 1; nothing can match',
      expect.stringMatching(/^schema\.pattern: "\(" is not a valid regex/),
    ]);
    expect(isJsonSchema('string')).toBe(false);
  });
});

// Issue #16: `pattern` comes from action plan files (validate rules), so it runs on the
// linear-time engine; a match too large for this thread goes to the pattern worker.
describe('patterns run in linear time', () => {
  const poison = `ok:${'a'.repeat(31)}!`;

  test('the catastrophic pattern gives its verdict (RegExp would backtrack for minutes)', () => {
    const schema: JsonSchema = { type: 'string', pattern: '(a+)+$' };
    expect(validateSchema(schema, poison)).toEqual([
      `$: ${JSON.stringify(poison)} does not match the pattern "(a+)+$"`,
    ]);
    expect(validateSchema(schema, 'ok:aaa')).toEqual([]);
  });

  test('lookaround and backreferences are refused when the schema is checked', () => {
    expect(checkJsonSchema({ type: 'string', pattern: 'a(?=b)' })).toEqual([
      'schema.pattern: "a(?=b)" is not supported: lookahead "(?=" is not supported in linear-time matching (RE2 syntax, see docs/plans.md)',
    ]);
    expect(validateSchema({ pattern: '(x)\\1' }, 'xx')).toEqual([
      '$: the schema\'s pattern "(x)\\\\1" cannot be used (the backreference "\\1" is not supported in linear-time matching)',
    ]);
  });

  test('validateSchemaAsync: the same problems, in order, with large values matched on the worker', async () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        big: { type: 'string', pattern: '^x+$' },
        small: { type: 'string', pattern: '^[a-z]+$' },
        bad: { type: 'string', pattern: 'y$' },
      },
    };
    const big = `${'x'.repeat(300_000)}!`; // over the in-thread budget
    const value = { big, small: 'NO', bad: big };
    const problems = await validateSchemaAsync(schema, value);
    expect(problems).toEqual(validateSchema(schema, value));
    expect(problems.map((p) => p.slice(0, 8))).toEqual(['$.big: "', '$.small:', '$.bad: "']);
    expect(await validateSchemaAsync(schema, { big: 'x'.repeat(300_000) })).toEqual([]);
  });

  test("validateSchemaAsync rejects with the signal's reason when the attempt is aborted", async () => {
    const controller = new AbortController();
    const pending = validateSchemaAsync(
      { type: 'string', pattern: '(?:a[ab]{999}[c-z]|b[ab]{999}[c-z])' },
      'ab'.repeat(200_000),
      '$',
      { signal: controller.signal },
    );
    controller.abort(new Error('step timed out'));
    await expect(pending).rejects.toThrow('step timed out');
  });
});
