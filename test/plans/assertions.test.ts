import { describe, expect, test } from 'vitest';
import {
  type Assertion,
  customAssertion,
  evaluateAssertions,
  evaluateAssertionsAsync,
  parsePlan,
  textOf,
} from '../../src/plans/index.js';

/** The assertions of the first case of an inline plan. */
function expectedOf(yaml: string): readonly Assertion[] {
  const m = parsePlan(`workflow_id: w\ncases:\n  - expected: ${yaml}\n`);
  const [ds] = m.datasets;
  if (ds?.cases.kind !== 'inline') throw new Error('inline cases expected');
  return ds.cases.cases[0]?.expected ?? [];
}

const verdicts = (assertions: readonly Assertion[], output: unknown, extra = {}) =>
  evaluateAssertions(assertions, { output, ...extra }).map((o) => o.passed);

describe('parsing expectations', () => {
  test('a mapping, in written order; lists give one assertion each', () => {
    expect(
      expectedOf(
        '{ regex: "^a", contains: [x, y], field: answer, ignore_case: true, latency_below: 2s }',
      ),
    ).toEqual([
      { type: 'regex', pattern: '^a', field: 'answer', ignoreCase: true },
      { type: 'contains', value: 'x', field: 'answer', ignoreCase: true },
      { type: 'contains', value: 'y', field: 'answer', ignoreCase: true },
      { type: 'latency_below', ms: 2000 },
    ]);
  });

  test('a list of mappings, each with its own field', () => {
    expect(
      expectedOf(
        '[{ field: text, is_json: true }, { json_path: [{ path: $.a, equals: 1 }, { path: "$.b[0]", equals: null }] }, { equals: { k: v }, cost_below: 0.5, tokens_below: 100, not_contains: err }]',
      ),
    ).toEqual([
      { type: 'is_json', field: 'text' },
      { type: 'json_path', path: '$.a', equals: 1 },
      { type: 'json_path', path: '$.b[0]', equals: null },
      { type: 'equals', value: { k: 'v' } },
      { type: 'cost_below', value: 0.5 },
      { type: 'tokens_below', value: 100 },
      { type: 'not_contains', value: 'err' },
    ]);
  });
});

describe('evaluateAssertions', () => {
  const difyOutputs = { text: 'Your Refund was issued.', meta: { lang: 'en' } };

  test('contains / not_contains on a string and on an object (its JSON text)', () => {
    const a = expectedOf('{ contains: Refund, not_contains: sorry }');
    expect(verdicts(a, 'Refund issued')).toEqual([true, true]);
    expect(verdicts(a, difyOutputs)).toEqual([true, true]);
    expect(verdicts(expectedOf('{ contains: lang }'), difyOutputs)).toEqual([true]);
    expect(verdicts(expectedOf('{ contains: lang, field: text }'), difyOutputs)).toEqual([false]);
    expect(textOf(difyOutputs)).toBe('{"text":"Your Refund was issued.","meta":{"lang":"en"}}');
    expect(textOf(null)).toBe('');
  });

  test('ignore_case', () => {
    expect(verdicts(expectedOf('{ contains: REFUND, ignore_case: true }'), 'refund')).toEqual([
      true,
    ]);
    expect(verdicts(expectedOf('{ contains: REFUND }'), 'refund')).toEqual([false]);
    expect(verdicts(expectedOf('{ regex: "^refund$", ignore_case: true }'), 'REFUND')).toEqual([
      true,
    ]);
  });

  test('messages say what was checked and what was there', () => {
    const [fail] = evaluateAssertions(expectedOf('{ contains: refund, field: text }'), {
      output: { text: 'No luck' },
    });
    expect(fail).toEqual({
      type: 'contains',
      passed: false,
      message: 'field text does not contain "refund": "No luck"',
      expected: 'refund',
      actual: 'No luck',
    });
    const [missing] = evaluateAssertions(expectedOf('{ contains: x, field: answer }'), {
      output: { text: 'x' },
    });
    expect(missing).toEqual({
      type: 'contains',
      passed: false,
      message: 'field answer not found in the output',
    });
  });

  test('equals: deep, and a JSON answer compared with a structure', () => {
    expect(verdicts(expectedOf('{ equals: { a: [1, 2] } }'), { a: [1, 2] })).toEqual([true]);
    expect(verdicts(expectedOf('{ equals: { a: [1, 2] } }'), '{"a": [1, 2]}')).toEqual([true]);
    expect(verdicts(expectedOf('{ equals: { a: [1, 2] } }'), { a: [2, 1] })).toEqual([false]);
    expect(verdicts(expectedOf('{ equals: "42" }'), 42)).toEqual([false]);
    expect(verdicts(expectedOf('{ equals: 42, field: n }'), { n: 42 })).toEqual([true]);
  });

  test('regex, is_json, json_path', () => {
    expect(verdicts(expectedOf('{ regex: "\\\\d{4}" }'), 'order 1042')).toEqual([true]);
    expect(verdicts(expectedOf('{ is_json: true }'), '{"ok":true}')).toEqual([true]);
    expect(verdicts(expectedOf('{ is_json: true }'), 'ok')).toEqual([false]);
    expect(verdicts(expectedOf('{ is_json: true }'), { ok: true })).toEqual([true]);
    const jp = expectedOf('{ json_path: { path: "$.orders[1].id", equals: B } }');
    expect(verdicts(jp, { orders: [{ id: 'A' }, { id: 'B' }] })).toEqual([true]);
    expect(verdicts(jp, '{"orders": [{"id": "A"}, {"id": "C"}]}')).toEqual([false]);
    expect(evaluateAssertions(jp, { output: 'not json' })[0]?.message).toBe(
      'output is not JSON, cannot read $.orders[1].id',
    );
    expect(evaluateAssertions(jp, { output: { orders: [] } })[0]?.message).toBe(
      '$.orders[1].id not found in the output',
    );
    const inField = expectedOf('{ field: text, json_path: { path: $.ok, equals: true } }');
    expect(verdicts(inField, { text: '{"ok": true}' })).toEqual([true]);
  });

  test('latency, cost and tokens are strictly below; unreported values fail', () => {
    const a = expectedOf('{ latency_below: 5s, cost_below: 0.01, tokens_below: 100 }');
    expect(verdicts(a, '', { latencyMs: 4999, cost: 0.009, tokens: 99 })).toEqual([
      true,
      true,
      true,
    ]);
    expect(verdicts(a, '', { latencyMs: 5000, cost: 0.01, tokens: 100 })).toEqual([
      false,
      false,
      false,
    ]);
    expect(evaluateAssertions(a, { output: '' }).map((o) => o.message)).toEqual([
      'latency was not reported',
      'cost unknown: no price is known for this answer (an openai target needs price_per_million; a blocking Dify workflow reports no price, a streaming one does)',
      'tokens was not reported',
    ]);
    expect(evaluateAssertions(a, { output: '', latencyMs: 10 })[0]?.message).toBe(
      'latency 10ms is below 5000ms',
    );
  });

  test('every assertion is evaluated, in order', () => {
    const a = expectedOf('{ contains: a, not_contains: b, regex: c }');
    expect(evaluateAssertions(a, { output: 'xyz' }).map((o) => [o.type, o.passed])).toEqual([
      ['contains', false],
      ['not_contains', true],
      ['regex', false],
    ]);
  });
});

describe('custom assertions (library API)', () => {
  test('sync: a boolean or a verdict with details', () => {
    const short = customAssertion('short', ({ output }) => String(output).length < 5);
    const detailed = customAssertion('detailed', ({ output, latencyMs }) => ({
      passed: latencyMs !== undefined && latencyMs < 100,
      message: `took ${latencyMs}ms`,
      actual: output,
    }));
    expect(evaluateAssertions([short, detailed], { output: 'hi', latencyMs: 150 })).toEqual([
      { type: 'custom', passed: true, message: 'custom assertion short passed' },
      { type: 'custom', passed: false, message: 'took 150ms', actual: 'hi' },
    ]);
  });

  test('a throwing assertion fails with its message; a promise needs the async form', async () => {
    const boom = customAssertion('boom', () => {
      throw new Error('kaput');
    });
    const later = customAssertion('later', async ({ output }) => output === 'ok');
    expect(evaluateAssertions([boom, later], { output: 'ok' })).toEqual([
      { type: 'custom', passed: false, message: 'custom assertion boom threw: kaput' },
      {
        type: 'custom',
        passed: false,
        message: 'custom assertion later returned a promise; use evaluateAssertionsAsync',
      },
    ]);
    const rejecting = customAssertion('rejecting', async () => {
      throw new Error('nope');
    });
    expect(
      await evaluateAssertionsAsync([later, rejecting, ...expectedOf('{ contains: o }')], {
        output: 'ok',
      }),
    ).toEqual([
      { type: 'custom', passed: true, message: 'custom assertion later passed' },
      { type: 'custom', passed: false, message: 'custom assertion rejecting threw: nope' },
      {
        type: 'contains',
        passed: true,
        message: 'output contains "o"',
        expected: 'o',
        actual: 'ok',
      },
    ]);
  });
});
