// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax under test, not a template literal.
/**
 * Malformed plans and case files. Each one must fail with the exact message (file:line:column,
 * key path, bad value, what was expected) and must produce nothing: `loadPlan` throws before a
 * manifest exists, so no case reaches a consumer.
 */

import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { deriveCaseId, iterateCases, loadPlan, type PlanErrorCode } from '../../src/plans/index.js';
import { planErrorOfAsync, removeTempDirs, tempFiles } from './helpers.js';

afterAll(removeTempDirs);

interface Malformed {
  readonly name: string;
  /** Files to write; `plan.yaml` (or `plan.json`) is loaded. */
  readonly files: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly code: PlanErrorCode;
  /** The exact message; `@` stands for the temp directory. */
  readonly message: string;
  /** Text that must not appear anywhere in the message (an environment value). */
  readonly secret?: string;
}

const CASE = 'cases: [{ id: a, inputs: { query: hi } }]\n';
const plan = (body: string) => ({ 'plan.yaml': `workflow_id: wf\n${body}` });
const withCases = (body: string, files: Record<string, string>) => ({
  'plan.yaml': `workflow_id: wf\n${body}`,
  ...files,
});

const MALFORMED: readonly Malformed[] = [
  {
    name: 'negative concurrency',
    files: plan(`${CASE}execution_policy:\n  concurrency: -3\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:16: execution_policy.concurrency: -3 is invalid, expected an integer >= 1',
  },
  {
    name: 'fractional concurrency',
    files: plan(`${CASE}execution_policy: { concurrency: 2.5 }\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:3:34: execution_policy.concurrency: 2.5 is invalid, expected an integer >= 1',
  },
  {
    name: 'concurrency of the wrong type',
    files: plan(`${CASE}execution_policy:\n  concurrency: many\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:16: execution_policy.concurrency: "many" is invalid, expected an integer >= 1',
  },
  {
    name: 'misspelled key, with did-you-mean',
    files: plan(`${CASE}execution_policy:\n  rate_contrl: { per_minute: 60 }\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:3: execution_policy.rate_contrl: unknown key, did you mean `rate_control`?',
  },
  {
    name: 'a key at the wrong level',
    files: plan(`${CASE}concurrency: 4\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:3:1: concurrency: unknown key here, did you mean `execution_policy.concurrency`?',
  },
  {
    name: 'camelCase key',
    files: plan(`${CASE}execution_policy:\n  retry_policy: { maxAttempts: 2 }\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:19: execution_policy.retry_policy.maxAttempts: unknown key, did you mean `max_attempts`?',
  },
  {
    name: 'the seeds-era name `parameters` for inputs',
    files: plan('cases:\n  - id: a\n    parameters: { query: hi }\n'),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:4:5: cases[0].parameters: unknown key, did you mean `inputs`?',
  },
  {
    name: 'a duration that is not one',
    files: plan(`${CASE}execution_policy:\n  timeout: 5 minutes\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:12: execution_policy.timeout: "5 minutes" is invalid, expected a duration > 0 (seconds, or a string such as "500ms", "90s", "2m", "1h")',
  },
  {
    name: 'a zero timeout',
    files: plan(`${CASE}execution_policy:\n  stop_conditions: { timeout: 0s }\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:31: execution_policy.stop_conditions.timeout: "0s" is invalid, expected a duration > 0 (seconds, or a string such as "500ms", "90s", "2m", "1h")',
  },
  {
    name: 'a negative backoff',
    files: plan(`${CASE}execution_policy:\n  retry_policy:\n    backoff_seconds: -1\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:5:22: execution_policy.retry_policy.backoff_seconds: -1 is invalid, expected a duration (seconds, or a string such as "500ms", "90s", "2m", "1h")',
  },
  {
    name: 'max_failures 1.5 (neither a count nor a fraction)',
    files: plan(`${CASE}execution_policy:\n  stop_conditions:\n    max_failures: 1.5\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:5:19: execution_policy.stop_conditions.max_failures: 1.5 is invalid, expected an integer >= 1 or a fraction 0 < x < 1 (or a percentage such as "5%")',
  },
  {
    name: 'max_failures 0',
    files: plan(`${CASE}execution_policy:\n  stop_conditions:\n    max_failures: 0\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:5:19: execution_policy.stop_conditions.max_failures: 0 is invalid, expected an integer >= 1 or a fraction 0 < x < 1 (or a percentage such as "5%")',
  },
  {
    name: 'backoff_multiplier below 1',
    files: plan(`${CASE}execution_policy:\n  retry_policy: { backoff_multiplier: 0.5 }\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:39: execution_policy.retry_policy.backoff_multiplier: 0.5 is invalid, expected a number >= 1',
  },
  {
    name: 'rate_control without per_minute, and a zero burst',
    files: plan(`${CASE}execution_policy:\n  rate_control:\n    burst: 0\n`),
    code: 'PLAN_INVALID',
    message: [
      '@/plan.yaml:4:3: execution_policy.rate_control.per_minute: missing, expected a number > 0',
      '@/plan.yaml:5:12: execution_policy.rate_control.burst: 0 is invalid, expected an integer >= 1',
    ].join('\n'),
  },
  {
    name: 'jitter misspelled',
    files: plan(`${CASE}execution_policy:\n  retry_policy: { jitter: fulll }\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:27: execution_policy.retry_policy.jitter: "fulll" is invalid, expected one of "none", "full", "equal" (or true / false); did you mean "full"?',
  },
  {
    name: 'target type misspelled',
    files: plan(`${CASE}target:\n  type: difi\n  api_key: k\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:9: target.type: "difi" is invalid, expected one of "dify", "openai", "http", "function"; did you mean "dify"?',
  },
  {
    name: 'dify target without api_key, with a key of another target type',
    files: plan(`${CASE}target:\n  type: dify\n  model: gpt-4o\n`),
    code: 'PLAN_INVALID',
    message: [
      '@/plan.yaml:3:1: target.api_key: missing, expected a non-empty string',
      '@/plan.yaml:5:3: target.model: unknown key for a dify target, expected one of: type, base_url, api_key, app, response_mode, user, headers',
    ].join('\n'),
  },
  {
    name: 'base_url that is not an http URL',
    files: plan(`${CASE}target:\n  type: dify\n  api_key: k\n  base_url: localhost:5001/v1\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:6:13: target.base_url: "localhost:5001/v1" is invalid, expected an http(s) URL',
  },
  {
    name: 'an unset environment variable',
    files: plan(`${CASE}target:\n  type: dify\n  api_key: \${DIFY_API_KEY}\n`),
    env: {},
    code: 'ENV_MISSING',
    message: '@/plan.yaml:5:12: target.api_key: environment variable DIFY_API_KEY is not set',
  },
  {
    name: 'two unset variables in one header',
    files: plan(
      `${CASE}target:\n  type: http\n  url: http://h/x\n  headers:\n    Authorization: \${SCHEME} \${TOKEN}\n`,
    ),
    env: {},
    code: 'ENV_MISSING',
    message: [
      '@/plan.yaml:7:20: target.headers.Authorization: environment variable SCHEME is not set',
      '@/plan.yaml:7:20: target.headers.Authorization: environment variable TOKEN is not set',
    ].join('\n'),
  },
  {
    name: 'a malformed ${...} reference',
    files: plan(`${CASE}description: costs \${1DOLLAR}\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:3:14: description: invalid variable reference ${1DOLLAR} (write $${ for a literal ${)',
  },
  {
    name: 'a bad value from the environment shows the template, never the value',
    files: plan(`${CASE}execution_policy:\n  concurrency: \${STRIDE_CONCURRENCY}\n`),
    env: { STRIDE_CONCURRENCY: 'hunter2-not-a-number' },
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:16: execution_policy.concurrency: "${STRIDE_CONCURRENCY}" is invalid, expected an integer >= 1',
    secret: 'hunter2',
  },
  {
    name: 'a literal api key of the wrong type is not echoed',
    files: plan(`${CASE}target:\n  type: openai\n  model: m\n  api_key: [sk-live-123]\n`),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:6:12: target.api_key: "[redacted]" is invalid, expected a non-empty string',
    secret: 'sk-live',
  },
  {
    name: 'broken YAML',
    files: plan('cases: [{ id: a, inputs: { query: hi } }\nexecution_policy: {}\n'),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:3:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
  },
  {
    name: 'tabs as indentation',
    files: plan(`${CASE}execution_policy:\n\tconcurrency: 2\n`),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:4:1: invalid YAML: Tabs are not allowed as indentation',
  },
  {
    name: 'a duplicate key',
    files: plan(`${CASE}workflow_id: again\n`),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:3:1: invalid YAML: Map keys must be unique',
  },
  {
    name: 'broken JSON plan',
    files: { 'plan.json': '{\n  "workflow_id": "wf",\n  "cases": "c.jsonl",\n}\n' },
    code: 'PLAN_INVALID',
    message: `@/plan.json:4:1: invalid JSON: expected a double-quoted property name, found "}"`,
  },
  {
    name: 'an empty plan file',
    files: { 'plan.yaml': '# nothing yet\n' },
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:1:1: the plan is empty, expected a mapping with workflow_id and cases',
  },
  {
    name: 'a plan that is a list',
    files: { 'plan.yaml': '- workflow_id: wf\n' },
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:1:1: the plan is not a mapping, expected a mapping with workflow_id and cases',
  },
  {
    name: 'no workflow_id and no cases',
    files: { 'plan.yaml': 'description: nothing\n' },
    code: 'PLAN_INVALID',
    message: [
      '@/plan.yaml:1:1: workflow_id: missing, expected a non-empty string',
      '@/plan.yaml:1:1: cases: missing, expected a path to a case file or a list of cases (or `datasets`)',
    ].join('\n'),
  },
  {
    name: 'both cases and datasets',
    files: withCases('cases: a.jsonl\ndatasets:\n  - { name: d, cases: a.jsonl }\n', {
      'a.jsonl': '{"inputs": {}}\n',
    }),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:3:1: datasets: give either `cases` or `datasets`, not both',
  },
  {
    name: 'an empty inline case list (the seeds: "cases cannot be empty")',
    files: plan('cases: []\n'),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:2:8: cases: [] is invalid, expected a non-empty list of cases',
  },
  {
    name: 'a case file with an unknown extension',
    files: plan('cases: cases.txt\n'),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:2:8: cases: "cases.txt" is invalid, expected a path ending in .jsonl, .ndjson, .csv or .json (or set `format`)',
  },
  {
    name: 'a missing case file',
    files: plan('cases: nope.jsonl\n'),
    code: 'CASES_INVALID',
    message: '@/plan.yaml:2:8: cases: case file not found: @/nope.jsonl',
  },
  {
    name: 'an empty case file',
    files: withCases('cases: empty.jsonl\n', { 'empty.jsonl': '\n\n' }),
    code: 'EMPTY_PLAN',
    message: '@/plan.yaml:2:8: cases: the case file @/empty.jsonl has no cases',
  },
  {
    name: 'a JSONL line that is not JSON',
    files: withCases('cases: c.jsonl\n', {
      'c.jsonl': '{"id": "a", "inputs": {}}\n{"id": "b", "inputs": {"q": 1},}\n',
    }),
    code: 'CASES_INVALID',
    message: '@/c.jsonl:2:32: invalid JSON: expected a double-quoted property name, found "}"',
  },
  {
    name: 'a JSONL case with inputs of the wrong type',
    files: withCases('cases: c.jsonl\n', {
      'c.jsonl': '{"id": "a", "inputs": {}}\n\n{"id": "b", "inputs": "what?"}\n',
    }),
    code: 'CASES_INVALID',
    message:
      '@/c.jsonl:3:23: inputs: "what?" is invalid, expected a mapping (the inputs sent to the target)',
  },
  {
    name: 'a misspelled assertion in a JSONL case',
    files: withCases('cases: c.jsonl\n', {
      'c.jsonl': '{"id": "a", "inputs": {}, "expected": {"contans": "refund"}}\n',
    }),
    code: 'CASES_INVALID',
    message: '@/c.jsonl:1:40: expected.contans: unknown key, did you mean `contains`?',
  },
  {
    name: 'duplicate ids in a JSONL file name both lines',
    files: withCases('cases: c.jsonl\n', {
      'c.jsonl':
        '{"id": "refund-1", "inputs": {}}\n{"id": "refund-2", "inputs": {}}\n{"id": "refund-1", "inputs": {"q": 2}}\n',
    }),
    code: 'CASES_INVALID',
    message: '@/c.jsonl:3:1: duplicate case id "refund-1", first at @/c.jsonl:1:1',
  },
  {
    name: 'duplicate ids inline',
    files: plan('cases:\n  - { id: a, inputs: { q: 1 } }\n  - { id: a, inputs: { q: 2 } }\n'),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:4:11: cases[1].id: duplicate case id "a", first at @/plan.yaml:3:5',
  },
  {
    name: 'two inline cases with the same content (derived ids collide)',
    files: plan('cases:\n  - inputs: { q: 1 }\n  - inputs: { q: 1 }\n    tags: [again]\n'),
    code: 'PLAN_INVALID',
    message: `@/plan.yaml:4:5: cases[1]: duplicate case id "${deriveCaseId({ q: 1 })}" (derived from inputs, dataset and scenario), first at @/plan.yaml:3:5`,
  },
  {
    name: 'duplicate ids across two datasets',
    files: withCases(
      'datasets:\n  - { name: one, cases: one.jsonl }\n  - { name: two, cases: two.csv }\n',
      { 'one.jsonl': '{"id": "x", "inputs": {}}\n', 'two.csv': 'id,query\ny,hi\nx,ho\n' },
    ),
    code: 'CASES_INVALID',
    message: '@/two.csv:3:1: duplicate case id "x", first at @/one.jsonl:1:1',
  },
  {
    name: 'a ragged CSV row',
    files: withCases('cases: c.csv\n', {
      'c.csv': 'id,inputs.query,expected_contains\na,hello,hi\nb,"hello, world"\n',
    }),
    code: 'CASES_INVALID',
    message: '@/c.csv:3:1: row has 2 columns, expected 3 like the header (line 1)',
  },
  {
    name: 'an unterminated CSV quote',
    files: withCases('cases: c.csv\n', { 'c.csv': 'id,query\na,"never closed\nb,x\n' }),
    code: 'CASES_INVALID',
    message: '@/c.csv:2:3: unterminated quoted field (no closing ")',
  },
  {
    name: 'an unknown expected_ column',
    files: withCases('cases: c.csv\n', { 'c.csv': 'id,query,expected_contain\na,hi,x\n' }),
    code: 'CASES_INVALID',
    message: '@/c.csv:1:10: unknown column "expected_contain", did you mean `expected_contains`?',
  },
  {
    name: 'a CSV cell of the wrong type',
    files: withCases('cases: c.csv\n', { 'c.csv': 'id,query,priority\na,hi,1\nb,ho,high\n' }),
    code: 'CASES_INVALID',
    message: '@/c.csv:3:6: priority: "high" is invalid, expected an integer',
  },
  {
    name: 'a CSV file with only a header',
    files: withCases('cases: c.csv\n', { 'c.csv': 'id,query\n' }),
    code: 'EMPTY_PLAN',
    message: '@/plan.yaml:2:8: cases: the case file @/c.csv has no cases',
  },
  {
    name: 'a JSON case file that is not an array',
    files: withCases('cases: c.json\n', { 'c.json': '{"id": "a", "inputs": {}}\n' }),
    code: 'CASES_INVALID',
    message:
      '@/c.json:1:1: expected a JSON array of cases (write one case per line in a .jsonl file for large sets)',
  },
  {
    name: 'a bad case in a JSON array file',
    files: withCases('cases: c.json\n', {
      'c.json': '[\n  {"id": "a", "inputs": {}},\n  {"id": "b", "tags": "smoke"}\n]\n',
    }),
    code: 'CASES_INVALID',
    message: '@/c.json:3:23: [1].tags: "smoke" is invalid, expected a list of strings',
  },
  {
    name: 'a selection that keeps nothing',
    files: plan(`${CASE}select:\n  tags: [nightly]\n`),
    code: 'EMPTY_PLAN',
    message:
      '@/plan.yaml:4:3: select: no case selected: tags nightly matched none of the 1 case read',
  },
  {
    name: 'a backwards range',
    files: plan(`${CASE}select:\n  range: 20-10\n`),
    code: 'PLAN_INVALID',
    message: '@/plan.yaml:4:10: select.range: "20-10" is invalid, expected from <= to',
  },
  {
    name: 'duplicate dataset names',
    files: plan(
      'datasets:\n  - { name: refunds, cases: [{ id: a }] }\n  - { name: refunds, cases: [{ id: b }] }\n',
    ),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:13: datasets[1].name: duplicate dataset name "refunds", first at @/plan.yaml:3:13',
  },
  {
    name: 'an invalid regular expression',
    files: plan("cases:\n  - id: a\n    expected: { regex: '(unclosed' }\n"),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:24: cases[0].expected.regex: "(unclosed" is invalid, expected a valid regular expression (missing closing ): `(unclosed`)',
  },
  {
    // Issue #16: assertions run on a linear-time engine, which has no lookaround.
    name: 'a lookahead, which linear-time matching cannot run',
    files: plan("cases:\n  - id: a\n    expected: { regex: 'refund(?! denied)' }\n"),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:4:24: cases[0].expected.regex: "refund(?! denied)" is invalid, expected a regular expression in RE2 syntax (negative lookahead "(?!" is not supported in linear-time matching; see docs/plans.md)',
  },
  {
    name: 'a backreference in a CSV expected_regex column',
    files: withCases('cases: c.csv\n', {
      'c.csv': 'id,query,expected_regex\na,hi,^ok\nb,hi,"(\\w+) \\1"\n',
    }),
    code: 'CASES_INVALID',
    message:
      '@/c.csv:3:6: expected_regex: "(\\\\w+) \\\\1" is invalid, expected a regular expression in RE2 syntax (the backreference "\\1" is not supported in linear-time matching; see docs/plans.md)',
  },
  {
    name: 'an unsupported JSON path',
    files: plan(
      "cases:\n  - id: a\n    expected:\n      json_path: { path: '$..price', equals: 3 }\n",
    ),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:5:26: cases[0].expected.json_path.path: "$..price" is invalid, expected a JSON path such as "$.data.items[0].name"',
  },
  {
    name: 'an empty expected mapping and is_json: false',
    files: plan(
      'cases:\n  - { id: a, expected: {} }\n  - { id: b, expected: { is_json: false } }\n',
    ),
    code: 'PLAN_INVALID',
    message: [
      '@/plan.yaml:3:24: cases[0].expected: {} is invalid, expected at least one assertion (equals, contains, not_contains, regex, is_json, json_path, latency_below, cost_below, tokens_below, starts_with, contains_all, contains_any, levenshtein_below, json_schema, assert_module, llm_rubric, similar)',
      '@/plan.yaml:4:35: cases[1].expected.is_json: false is invalid, expected true',
    ].join('\n'),
  },
  {
    name: 'a case id containing the repeat separator',
    files: plan('cases:\n  - { id: "a#1" }\n'),
    code: 'PLAN_INVALID',
    message:
      '@/plan.yaml:3:11: cases[0].id: "a#1" is invalid, expected an id without "#" (it separates repeat copies)',
  },
];

describe('malformed plans and case files', () => {
  test('there are at least 30 of them', () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(30);
  });

  test.each(MALFORMED)('$name', async (m) => {
    const dir = await tempFiles(m.files);
    const file = join(dir, 'plan.json' in m.files ? 'plan.json' : 'plan.yaml');
    let produced = 0;
    const err = await planErrorOfAsync(async () => {
      const manifest = await loadPlan(file, { env: m.env ?? {} });
      for await (const _ of iterateCases(manifest)) produced++;
    });
    expect(err.message).toBe(m.message.replaceAll('@', dir));
    expect(err.code).toBe(m.code);
    expect(err.name).toBe('PlanError');
    expect(err.issues.length).toBe(m.message.split('\n').length);
    expect(produced).toBe(0);
    if (m.secret !== undefined) {
      expect(err.message).not.toContain(m.secret);
      expect(JSON.stringify(err.issues)).not.toContain(m.secret);
    }
  });
});
