// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax under test, not a template literal.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { parsePlan, printPlan } from '../../src/plans/index.js';

type Obj = Record<string, unknown>;

const ENV = { KEY: 'k-SECRET-1', TOKEN: 'tok-SECRET-2', EMPTY: '' };
const OPTIONS = { file: 'plans/plan.yaml', env: ENV };

/** Config strings may hold a literal `${`; the file must then say `$${`. */
const configText = fc.string({
  unit: fc.constantFrom('a', 'Z', ' ', '$', '{', '}', ':', '#', '-', 'é', '"', "'", '\\'),
  minLength: 1,
  maxLength: 12,
});
const escapeConfig = (s: string) => s.replaceAll('${', () => '$${');

const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/);
const tag = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/);

const positiveDuration = fc.oneof(
  fc.integer({ min: 1, max: 86_400 }),
  fc.integer({ min: 1, max: 999 }).map((n) => `${n}ms`),
  fc.integer({ min: 1, max: 600 }).map((n) => `${n}s`),
  fc.integer({ min: 1, max: 120 }).map((n) => `${n}m`),
  fc.integer({ min: 1, max: 48 }).map((n) => `${n}h`),
  fc.integer({ min: 1, max: 99 }).map((n) => `${n / 10}s`),
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 59 }))
    .map(([m, s]) => `${m}m${s}s`),
);
const duration = fc.oneof(fc.constant(0), fc.constant('0ms'), positiveDuration);

const jsonValue = fc.jsonValue({ maxDepth: 2 });
const nonEmptyText = fc.string({ minLength: 1, maxLength: 10 });
const oneOrMany = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof(arb, fc.array(arb, { minLength: 1, maxLength: 3 }));

const assertionMap: fc.Arbitrary<Obj> = fc
  .record(
    {
      field: fc.constantFrom('answer', 'data.items[0].name', "$['k k']"),
      ignore_case: fc.boolean(),
      equals: jsonValue,
      contains: oneOrMany(nonEmptyText),
      not_contains: oneOrMany(nonEmptyText),
      regex: oneOrMany(fc.constantFrom('^a', '\\d+', 'x|y', '(?:ab)+$', 'é')),
      is_json: fc.constant(true),
      json_path: oneOrMany(
        fc.record({
          path: fc.constantFrom('$', '$.a', '$.a.b[0]', "$['x y'][-1]"),
          equals: jsonValue,
        }),
      ),
      latency_below: positiveDuration,
      cost_below: fc.double({ min: 0, max: 100, noNaN: true, noDefaultInfinity: true }),
      tokens_below: fc.nat({ max: 100_000 }),
    },
    { requiredKeys: [] },
  )
  .filter((o) => Object.keys(o).some((k) => k !== 'field' && k !== 'ignore_case'));

const expected = fc.oneof(assertionMap, fc.array(assertionMap, { minLength: 1, maxLength: 3 }));

const rawCase = fc.record(
  {
    withId: fc.boolean(),
    inputs: fc.dictionary(fc.string({ maxLength: 6 }), jsonValue, { maxKeys: 3 }),
    dataset: name,
    scenario: name,
    tags: fc.array(tag, { maxLength: 3 }),
    priority: fc.integer({ min: -5, max: 5 }),
    timeout: positiveDuration,
    expected,
    metadata: fc.dictionary(name, jsonValue, { maxKeys: 2 }),
  },
  { requiredKeys: ['withId', 'inputs'] },
);

/** Inline cases with unique identities: an explicit id, or a distinguishing input. */
const inlineCases = fc
  .array(rawCase, { minLength: 1, maxLength: 4 })
  .map((cases) =>
    cases.map(({ withId, ...c }, i) =>
      withId ? { id: `case-${i}`, ...c } : { ...c, inputs: { ...c.inputs, _n: i } },
    ),
  );

const casesField = fc.oneof(
  fc.constantFrom('cases.jsonl', 'data/cases.csv', '../shared/x.json', 'c.ndjson'),
  inlineCases,
);

const secretValue = fc.constantFrom(
  '${KEY}',
  '${TOKEN:-fallback}',
  'Bearer ${TOKEN}',
  '${MISSING:-dflt}',
);
const headers = fc.dictionary(
  fc.constantFrom('Authorization', 'X-Api-Key', 'X-Trace', 'Accept'),
  fc.oneof(secretValue, fc.constantFrom('text/plain', 'on', 'literal-123')),
  { maxKeys: 3 },
);

const target: fc.Arbitrary<Obj> = fc.oneof(
  fc.record(
    {
      type: fc.constant('dify'),
      base_url: fc.constantFrom('http://127.0.0.1:5001/v1', '${BASE:-https://api.dify.ai/v1}'),
      api_key: fc.oneof(secretValue, fc.constant('app-literal')),
      app: fc.constantFrom('workflow', 'chat', 'completion'),
      response_mode: fc.constantFrom('blocking', 'streaming'),
      user: configText.map(escapeConfig),
      headers,
    },
    { requiredKeys: ['type', 'api_key'] },
  ),
  fc.record(
    {
      type: fc.constant('openai'),
      base_url: fc.constant('https://api.openai.com/v1'),
      api_key: secretValue,
      model: configText.map(escapeConfig),
      system: fc.string({ maxLength: 20 }).map(escapeConfig),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      max_tokens: fc.integer({ min: 1, max: 4096 }),
      headers,
    },
    { requiredKeys: ['type', 'model'] },
  ),
  fc.record(
    {
      type: fc.constant('http'),
      url: fc.constant('https://example.test/run'),
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
      headers,
    },
    { requiredKeys: ['type', 'url'] },
  ),
  fc.record({ type: fc.constant('function'), name: configText.map(escapeConfig) }),
);

const maxFailures = fc.oneof(
  fc.integer({ min: 1, max: 1000 }),
  fc.double({ min: 0.001, max: 0.999, noNaN: true }),
  fc.integer({ min: 1, max: 99 }).map((n) => `${n}%`),
);

const policy = fc.record(
  {
    concurrency: fc.integer({ min: 1, max: 200 }),
    batch_size: fc.integer({ min: 1, max: 1000 }),
    backoff_seconds: duration,
    timeout: positiveDuration,
    rate_control: fc.record(
      {
        per_minute: fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.constant(0.5)),
        burst: fc.integer({ min: 1, max: 100 }),
        tokens_per_minute: fc.integer({ min: 1, max: 1_000_000 }),
      },
      { requiredKeys: ['per_minute'] },
    ),
    retry_policy: fc.record(
      {
        max_attempts: fc.integer({ min: 1, max: 10 }),
        backoff_seconds: duration,
        backoff_multiplier: fc.double({ min: 1, max: 5, noNaN: true }),
        max_backoff_seconds: duration,
        jitter: fc.constantFrom('none', 'full', 'equal', true, false),
      },
      { requiredKeys: [] },
    ),
    stop_conditions: fc.record(
      {
        max_failures: maxFailures,
        timeout: positiveDuration,
        max_cost: fc.double({ min: 0, max: 1000, noNaN: true }),
        max_tokens: fc.nat({ max: 10_000_000 }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

const select = fc.record(
  {
    tags: fc.array(tag, { minLength: 1, maxLength: 3 }),
    exclude_tags: fc.array(tag, { minLength: 1, maxLength: 2 }),
    range: fc.oneof(
      fc
        .tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 50 }))
        .map(([a, d]) => `${a}-${a + d}`),
      fc.integer({ min: 1, max: 50 }).map((a) => `${a}-`),
      fc.record(
        { from: fc.integer({ min: 1, max: 9 }), to: fc.integer({ min: 10, max: 20 }) },
        { requiredKeys: [] },
      ),
    ),
    sample: fc.record(
      { size: fc.integer({ min: 1, max: 100 }), seed: fc.integer() },
      { requiredKeys: ['size'] },
    ),
    repeat: fc.integer({ min: 1, max: 5 }),
  },
  { requiredKeys: [] },
);

const datasets = fc
  .uniqueArray(
    fc.record(
      {
        name,
        weight: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.constant(0.5), fc.constant(2.5)),
        scenario: name,
        priority: fc.integer({ min: -3, max: 3 }),
        cases: casesField,
      },
      { requiredKeys: ['name', 'cases'] },
    ),
    { minLength: 1, maxLength: 3, selector: (d) => d.name },
  )
  .map((list) =>
    // Inline case ids must be unique across datasets too.
    list.map((d, i) =>
      Array.isArray(d.cases)
        ? {
            ...d,
            cases: d.cases.map((c: Obj) =>
              typeof c.id === 'string' ? { ...c, id: `${c.id}-d${i}` } : c,
            ),
          }
        : d,
    ),
  );

/** A plan as a user writes it, and the values its config strings must read as. */
const plan = fc
  .record(
    {
      workflowId: configText,
      description: fc.string({ maxLength: 30 }),
      target,
      body: fc.oneof(
        casesField.map((cases) => ({ cases })),
        datasets.map((d) => ({ datasets: d })),
      ),
      execution_policy: policy,
      select,
    },
    { requiredKeys: ['workflowId', 'body'] },
  )
  .map(({ workflowId, description, body, ...rest }) => ({
    workflowId,
    raw: {
      workflow_id: escapeConfig(workflowId),
      ...(description === undefined ? {} : { description: escapeConfig(description) }),
      ...body,
      ...rest,
    } as Obj,
  }));

/**
 * The runs of a property are few (a parse of a generated plan costs tens of ms) and their seed is
 * fixed, so each run of the suite checks the same plans; `shapes` records which kinds of plan
 * they were, and each property test asserts every kind was among them, so a smaller number of
 * runs still reaches each target type, both file formats, both plan bodies, file and inline
 * cases, and every policy block.
 */
const SEED = 20_261_203;
function shapes() {
  const seen = new Set<string>();
  return {
    add(raw: Obj, asJson?: boolean): void {
      const t = raw.target as Obj | undefined;
      seen.add(`target:${t === undefined ? 'none' : String(t.type)}`);
      if (asJson !== undefined) seen.add(asJson ? 'format:json' : 'format:yaml');
      const sets = raw.datasets as Obj[] | undefined;
      seen.add(sets === undefined ? 'body:cases' : 'body:datasets');
      const fields = sets === undefined ? [raw.cases] : sets.map((d) => d.cases);
      for (const f of fields) seen.add(Array.isArray(f) ? 'cases:inline' : 'cases:file');
      const policy = raw.execution_policy as Obj | undefined;
      for (const k of ['rate_control', 'retry_policy', 'stop_conditions'])
        if (policy?.[k] !== undefined) seen.add(`policy:${k}`);
      if (raw.select !== undefined) seen.add('select');
    },
    seen,
  };
}
const EVERY_SHAPE = [
  'target:none',
  'target:dify',
  'target:openai',
  'target:http',
  'target:function',
  'body:cases',
  'body:datasets',
  'cases:inline',
  'cases:file',
  'policy:rate_control',
  'policy:retry_policy',
  'policy:stop_conditions',
  'select',
];

describe('printPlan', () => {
  test('parse(print(parse(plan))) deep-equals parse(plan), YAML and JSON (property)', () => {
    const shape = shapes();
    fc.assert(
      fc.property(plan, fc.boolean(), ({ workflowId, raw }, asJson) => {
        shape.add(raw, asJson);
        const text = asJson ? JSON.stringify(raw, null, 2) : stringify(raw);
        const file = asJson ? 'plans/plan.json' : OPTIONS.file;
        const first = parsePlan(text, { ...OPTIONS, file });
        expect(first.workflowId).toBe(workflowId);
        const printed = printPlan(first, { secrets: 'reveal' });
        // The printed plan is YAML, whatever the original was.
        const second = parsePlan(printed, { ...OPTIONS, file, format: 'yaml' });
        expect(second).toEqual(first);
        // Printing is stable: a second print is the same text.
        expect(printPlan(second, { secrets: 'reveal' })).toBe(printed);
      }),
      // 300 runs before (24 s of the suite's idle time); 100 with the seed fixed reach every
      // shape (asserted below).
      { numRuns: 100, seed: SEED },
    );
    expect([...shape.seen].sort()).toEqual([...EVERY_SHAPE, 'format:json', 'format:yaml'].sort());
  });

  test('secrets from the environment print as templates and read back the same (property)', () => {
    // Literal credentials print as [redacted] (on purpose): leave them out here.
    const envOnly = plan.filter(({ raw }) => {
      const t = raw.target as Obj | undefined;
      const credentialHeaders = Object.entries((t?.headers ?? {}) as Record<string, string>).filter(
        ([k]) => k === 'Authorization' || k === 'X-Api-Key',
      );
      return t?.api_key !== 'app-literal' && credentialHeaders.every(([, v]) => v.includes('${'));
    });
    const shape = shapes();
    fc.assert(
      fc.property(envOnly, ({ raw }) => {
        shape.add(raw);
        const first = parsePlan(stringify(raw), OPTIONS);
        const printed = printPlan(first);
        expect(printed).not.toContain('SECRET');
        expect(parsePlan(printed, OPTIONS)).toEqual(first);
      }),
      // 200 runs before; 60 with the seed fixed reach every shape (asserted below).
      { numRuns: 60, seed: SEED },
    );
    expect([...shape.seen].sort()).toEqual([...EVERY_SHAPE].sort());
  });

  test('every default is written out', () => {
    const printed = printPlan(parsePlan('workflow_id: w\ncases: c.jsonl\n'));
    expect(printed).toBe(`workflow_id: w
cases: c.jsonl
execution_policy:
  concurrency: 10
  backoff_seconds: 0
  retry_policy:
    max_attempts: 3
    backoff_seconds: 1
    backoff_multiplier: 2
    max_backoff_seconds: 60
    jitter: none
`);
  });

  test('a custom assertion cannot be printed', () => {
    const m = parsePlan('workflow_id: w\ncases: [{ id: a }]\n');
    const [ds] = m.datasets;
    if (ds?.cases.kind !== 'inline') throw new Error('inline');
    const withFn = {
      ...m,
      datasets: [
        {
          ...ds,
          cases: {
            kind: 'inline' as const,
            cases: [
              {
                ...ds.cases.cases[0]!,
                expected: [{ type: 'custom' as const, name: 'mine', fn: () => true }],
              },
            ],
          },
        },
      ],
    };
    expect(() => printPlan(withFn)).toThrow(
      'custom assertion mine cannot be printed in a plan file',
    );
  });
});
