/**
 * Issue #20, the deterministic part: `starts_with`, `contains_all`, `contains_any`,
 * `levenshtein_below`, `json_schema`, `assert_module` (a user's module on a worker thread with a
 * time limit), `weight`, `required` and a case's `threshold`; bad input refused when the plan is
 * read, with file, line, field and value.
 */

import { afterAll, describe, expect, test } from 'vitest';
import {
  type Assertion,
  type AssertionOutcome,
  caseVerdict,
  evaluateAssertions,
  evaluateAssertionsAsync,
  loadPlan,
  parsePlan,
  printPlan,
  readCases,
  type TestCase,
} from '../../src/plans/index.js';
import { collect, planErrorOf, planErrorOfAsync, removeTempDirs, tempFiles } from './helpers.js';

afterAll(removeTempDirs);

function casesOf(yaml: string): readonly TestCase[] {
  const m = parsePlan(`workflow_id: w\ncases:\n${yaml}`);
  const [ds] = m.datasets;
  if (ds?.cases.kind !== 'inline') throw new Error('inline cases expected');
  return ds.cases.cases;
}

const verdicts = (assertions: readonly Assertion[], output: unknown) =>
  evaluateAssertions(assertions, { output }).map((o) => o.passed);

describe('the new kinds, parsed and printed', () => {
  test('weight and required apply to their mapping; threshold to the case; print reads back', () => {
    const [c] = casesOf(
      [
        '  - threshold: 0.6',
        '    expected:',
        '      - { starts_with: Hello, contains_all: [a, b], ignore_case: true, weight: 2, required: true }',
        '      - { contains_any: [x, y], levenshtein_below: { value: hello, distance: 3 } }',
        '      - { json_schema: { type: object, required: [id] }, assert_module: ./checks.mjs#polite }',
        '',
      ].join('\n'),
    );
    expect(c?.threshold).toBe(0.6);
    expect(c?.expected).toEqual([
      { type: 'starts_with', value: 'Hello', ignoreCase: true, weight: 2, required: true },
      { type: 'contains_all', values: ['a', 'b'], ignoreCase: true, weight: 2, required: true },
      { type: 'contains_any', values: ['x', 'y'] },
      { type: 'levenshtein_below', value: 'hello', distance: 3 },
      { type: 'json_schema', schema: { type: 'object', required: ['id'] } },
      { type: 'assert_module', module: './checks.mjs', export: 'polite' },
    ]);
    const m = parsePlan(
      `workflow_id: w\ncases:\n  - threshold: 0.6\n    expected: [{ starts_with: Hi, weight: 2, required: true }, { assert_module: ./c.mjs }]\n`,
    );
    expect(parsePlan(printPlan(m))).toEqual(m);
  });
});

describe('evaluating the new kinds', () => {
  const kinds = casesOf(
    [
      '  - expected:',
      '      - { starts_with: "Dear " }',
      '      - { contains_all: [refund, order], ignore_case: true }',
      '      - { contains_any: [sorry, apolog] }',
      '      - { levenshtein_below: { value: "Dear customer, refund for order 7", distance: 4 } }',
      '',
    ].join('\n'),
  )[0]!.expected;

  test('pass and fail, with messages that name what was missing', () => {
    expect(verdicts(kinds, 'Dear customer, refund for Order 7!')).toEqual([
      true,
      true,
      false,
      true,
    ]);
    const out = evaluateAssertions(kinds, { output: 'Hi customer, refund, sorry' });
    expect(out.map((o) => o.passed)).toEqual([false, false, true, false]);
    expect(out[0]?.message).toBe(
      'output does not start with "Dear ": "Hi customer, refund, sorry"',
    );
    expect(out[1]?.message).toBe('output does not contain "order": "Hi customer, refund, sorry"');
    expect(out[2]?.message).toBe('output contains "sorry"');
    expect(out[3]?.message).toMatch(/^output is \d+ edits from .* \(not below 4\)$/);
    // Yes/no kinds carry no score: 1 or 0 by their verdict.
    expect(out.every((o) => o.score === undefined)).toBe(true);
  });

  test('levenshtein_below is strict: distance 3 passes below 4, not below 3', () => {
    const d4 = { type: 'levenshtein_below', value: 'kitten', distance: 4 } as const;
    const d3 = { type: 'levenshtein_below', value: 'kitten', distance: 3 } as const;
    expect(verdicts([d4, d3], 'sitting')).toEqual([true, false]);
  });

  test('json_schema: a JSON answer, an object output, a field; errors say where', () => {
    const schema = {
      type: 'object',
      required: ['order'],
      properties: { order: { type: 'object', properties: { id: { type: 'string' } } } },
    };
    const a: Assertion = { type: 'json_schema', schema };
    expect(verdicts([a], '{"order":{"id":"1042"}}')).toEqual([true]);
    expect(verdicts([a], { order: { id: '7' } })).toEqual([true]);
    const [bad] = evaluateAssertions([a], { output: '{"order":{"id":1042}}' });
    expect(bad).toMatchObject({
      passed: false,
      message: 'output does not match the JSON Schema: /order/id must be string',
    });
    const [text] = evaluateAssertions([a], { output: 'not json' });
    expect(text?.message).toBe('output is not JSON: "not json"');
    const onField: Assertion = { type: 'json_schema', schema: { type: 'integer' }, field: 'n' };
    expect(verdicts([onField], { n: 3 })).toEqual([true]);
  });
});

describe('caseVerdict: weights, threshold, required', () => {
  const o = (passed: boolean, extra: Partial<AssertionOutcome> = {}): AssertionOutcome => ({
    type: 'contains',
    passed,
    message: '',
    ...extra,
  });

  test('without a threshold every assertion must pass; the score is the weighted mean', () => {
    expect(caseVerdict([o(true, { weight: 3 }), o(false)])).toEqual({ passed: false, score: 0.75 });
    expect(caseVerdict([o(true), o(true, { score: 0.5 })])).toEqual({ passed: true, score: 0.75 });
    expect(caseVerdict([])).toEqual({ passed: true, score: undefined });
  });

  test('with a threshold the score decides, unless a required assertion fails', () => {
    expect(caseVerdict([o(true, { weight: 3 }), o(false)], 0.75).passed).toBe(true);
    expect(caseVerdict([o(true, { weight: 3 }), o(false)], 0.76).passed).toBe(false);
    expect(caseVerdict([o(true, { weight: 3 }), o(false, { required: true })], 0.5).passed).toBe(
      false,
    );
    // 0.1 + 0.2 reaches 0.3 (floating point rounding does not fail a case).
    expect(
      caseVerdict(
        [o(true, { weight: 0.1 }), o(true, { weight: 0.2 }), o(false, { weight: 0.7 })],
        0.3,
      ).passed,
    ).toBe(true);
    // A weight of 0 counts for nothing but may still be required.
    expect(caseVerdict([o(true), o(false, { weight: 0 })], 1)).toEqual({ passed: true, score: 1 });
  });
});

describe('assert_module (a code check on a worker thread)', () => {
  const CHECKS = [
    'export function polite({ output }) { return !/stupid/i.test(String(output)); }',
    'export const half = () => 0.5;',
    'export async function graded({ output, inputs, expected, case: c }) {',
    '  return { pass: output === inputs.query, score: 0.9, reason: "case " + c.id + ", " + expected.length + " assertion(s)" };',
    '}',
    'export function spin() { for (;;) {} }',
    'export function never() { return new Promise(() => {}); }',
    'export function boom() { throw new Error("kaput"); }',
    'export function weird() { return "yes"; }',
    'export const notAFunction = 3;',
    'export default () => true;',
    '',
  ].join('\n');

  const m = (name: string, extra: Partial<Assertion> = {}): Assertion =>
    ({ type: 'assert_module', module: './checks.mjs', export: name, ...extra }) as Assertion;

  test('boolean, score and {pass, score, reason}; the case and inputs are passed', async () => {
    const dir = await tempFiles({ 'checks.mjs': CHECKS });
    const testCase: TestCase = {
      id: 'c1',
      inputs: { query: 'hello' },
      tags: [],
      priority: 0,
      expected: [m('graded')],
    };
    const out = await evaluateAssertionsAsync(
      [m('polite'), m('half'), m('graded'), m('default')],
      { output: 'hello', testCase },
      { baseDir: dir },
    );
    expect(out.map((o) => [o.passed, o.score])).toEqual([
      [true, 1],
      [true, 0.5],
      [true, 0.9],
      [true, 1],
    ]);
    expect(out[2]?.message).toBe('./checks.mjs#graded passed (score 0.9): case c1, 1 assertion(s)');
  });

  test('a module that throws or returns nonsense fails its assertion with the reason', async () => {
    const dir = await tempFiles({ 'checks.mjs': CHECKS });
    const out = await evaluateAssertionsAsync(
      [m('boom'), m('weird')],
      { output: 'x' },
      { baseDir: dir },
    );
    expect(out.map((o) => o.passed)).toEqual([false, false]);
    expect(out[0]?.message).toBe('./checks.mjs#boom threw: kaput');
    expect(out[1]?.message).toMatch(/returned "yes", expected true\/false, a score from 0 to 1/);
  });

  test('a module that never returns (a busy loop, a promise that never settles) is ended at its time limit', async () => {
    const dir = await tempFiles({ 'checks.mjs': CHECKS });
    // A busy loop holds its own thread only: this thread's timer still fires and ends it.
    const out = await evaluateAssertionsAsync(
      [m('spin'), m('never')],
      { output: 'x' },
      { baseDir: dir, moduleTimeoutMs: 300 },
    );
    expect(out.map((o) => o.message)).toEqual([
      './checks.mjs#spin did not answer within 300 ms',
      './checks.mjs#never did not answer within 300 ms',
    ]);
    // The pool replaced the ended threads: the next call answers.
    const [after] = await evaluateAssertionsAsync([m('polite')], { output: 'x' }, { baseDir: dir });
    expect(after?.passed).toBe(true);
  });

  test("the attempt's signal ends a spinning check at once, with the signal's reason", async () => {
    const dir = await tempFiles({ 'checks.mjs': CHECKS });
    const controller = new AbortController();
    const pending = evaluateAssertionsAsync(
      [m('spin')],
      { output: 'x' },
      { baseDir: dir, signal: controller.signal, moduleTimeoutMs: 600_000 },
    );
    controller.abort(new Error('case timed out'));
    await expect(pending).rejects.toThrow('case timed out');
  });
});

describe('CSV case files', () => {
  test('JSON cells for the structured kinds, a threshold column; a bad JSON cell names its cell', async () => {
    const dir = await tempFiles({
      'plan.yaml': 'workflow_id: w\ncases: cases.csv\n',
      'cases.csv': [
        'id,query,threshold,expected_starts_with,expected_contains_all,expected_levenshtein_below',
        'a,hi,0.5,Hello,"[""x"",""y""]","{""value"":""hello"",""distance"":2}"',
        '',
      ].join('\n'),
    });
    await loadPlan(`${dir}/plan.yaml`); // valid as a whole
    const [c] = await collect(readCases('cases.csv', { baseDir: dir }));
    expect(c?.threshold).toBe(0.5);
    expect(c?.expected).toEqual([
      { type: 'starts_with', value: 'Hello' },
      { type: 'contains_all', values: ['x', 'y'] },
      { type: 'levenshtein_below', value: 'hello', distance: 2 },
    ]);
    const bad = await tempFiles({
      'plan.yaml': 'workflow_id: w\ncases: cases.csv\n',
      'cases.csv': 'id,query,expected_contains_any\na,hi,sorry\n',
    });
    const err = await planErrorOfAsync(() => loadPlan(`${bad}/plan.yaml`));
    expect(err.issues[0]).toMatchObject({ line: 2, column: 6, value: 'sorry' });
    expect(err.issues[0]?.message).toContain('expected a JSON list of strings');
  });
});

describe('bad input is refused when the plan is read', () => {
  test('threshold outside 0..1, a json_schema that is not a schema, a bad module reference', () => {
    const err = planErrorOf(() =>
      parsePlan(
        [
          'workflow_id: w',
          'cases:',
          '  - threshold: 1.5',
          '    expected: { contains: a }',
          '  - expected: { json_schema: { type: strnig } }',
          '  - expected: { assert_module: checks.py }',
          '  - expected: { contains_al: [a] }',
          '',
        ].join('\n'),
        { file: 'plan.yaml' },
      ),
    );
    expect(err.code).toBe('PLAN_INVALID');
    const lines = err.message.split('\n');
    expect(lines[0]).toBe(
      'plan.yaml:3:16: cases[0].threshold: 1.5 is invalid, expected a number from 0 to 1',
    );
    expect(lines[1]).toMatch(
      /^plan\.yaml:5:\d+: cases\[1\]\.expected\.json_schema: \{"type":"strnig"\} is invalid, expected a JSON Schema \(.*must be equal to one of the allowed values.*\)$/,
    );
    expect(lines[2]).toBe(
      'plan.yaml:6:32: cases[2].expected.assert_module: "checks.py" is invalid, expected a module and export such as "./checks.mjs#polite" (a .mjs, .js or .cjs file)',
    );
    expect(lines[3]).toMatch(
      /^plan\.yaml:7:17: cases\[3\]\.expected\.contains_al: unknown key, did you mean `contains_all`\?/,
    );
  });

  test('a missing module or export is found by loadPlan, at the case that names it', async () => {
    const dir = await tempFiles({
      'checks.mjs': 'export function polite() { return true; }\n',
      'plan.yaml': ['workflow_id: w', 'cases: cases.jsonl', ''].join('\n'),
      'cases.jsonl': [
        '{"id":"a","expected":{"assert_module":"./checks.mjs#polite"}}',
        '{"id":"b","expected":{"assert_module":"./checks.mjs#polit"}}',
        '{"id":"c","expected":{"assert_module":"./gone.mjs#polite"}}',
        '',
      ].join('\n'),
    });
    const err = await planErrorOfAsync(() => loadPlan(`${dir}/plan.yaml`));
    expect(err.code).toBe('CASES_INVALID');
    expect(err.issues.map((i) => [i.line, i.path, i.value])).toEqual([
      [2, 'expected.assert_module', './checks.mjs#polit'],
      [3, 'expected.assert_module', './gone.mjs#polite'],
    ]);
    expect(err.issues[0]?.message).toBe(
      '"./checks.mjs#polit" is invalid: the module has no export "polit"',
    );
    expect(err.issues[1]?.message).toMatch(
      /^"\.\/gone\.mjs#polite" is invalid: the module cannot be loaded: /,
    );
  });
});
