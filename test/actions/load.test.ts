// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` and `${steps...}` here are plan syntax.
/**
 * The action-plan loader: the two examples normalised, every problem reported as
 * `file:line:column: path: message`, `${VAR}` from the env option, `${steps...}` kept.
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  loadActionPlan,
  type ParseActionPlanOptions,
  parseActionPlan,
  planKindOf,
} from '../../src/actions/load.js';
import { isStrideError } from '../../src/core/errors.js';
import type { PlanError } from '../../src/plans/errors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PUBLISH = join(ROOT, 'examples/actions/publish-notes/plan.yaml');
const ROLLBACK = join(ROOT, 'examples/actions/rollback/plan.yaml');
const TOOLS = ['file.read', 'file.write', 'http', 'sleep', 'transform'];

/** The PlanError `parseActionPlan` throws for `text` (fails the test if it parses). */
function problem(text: string, options: ParseActionPlanOptions = {}): PlanError {
  try {
    parseActionPlan(text, { file: 'plan.yaml', env: {}, ...options });
  } catch (err) {
    if (isStrideError(err)) return err as PlanError;
    throw err;
  }
  throw new Error('the plan parsed without a problem');
}

/** Lines joined with newlines: a plan file as text. */
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

describe('the example action plans', () => {
  it('publish-notes: ids, dependencies, policies in ms, limits, file root, validation rules', async () => {
    const file = await loadActionPlan(PUBLISH, { env: {} });
    expect(file.file).toBe(PUBLISH);
    expect(file.plan.id).toBe('publish-release-notes');
    expect(file.plan.name).toBe('Publish release notes');
    expect(file.plan.steps.map((s) => s.id)).toEqual([
      'draft',
      'read-draft',
      'summary',
      'changelog',
      'publish',
      'pause',
    ]);
    expect(Object.fromEntries(file.plan.steps.map((s) => [s.id, s.dependencies]))).toEqual({
      draft: undefined,
      'read-draft': ['draft'],
      summary: ['read-draft'],
      changelog: ['draft'],
      publish: ['summary', 'changelog'],
      pause: ['publish'],
    });
    expect(file.plan.steps.map((s) => s.tool)).toEqual([
      'file.write',
      'file.read',
      'transform',
      'file.write',
      'file.write',
      'sleep',
    ]);
    expect(file.autoRollback).toBe(true);
    expect(file.failFast).toBeUndefined();
    expect(file.maxConcurrentSteps).toBe(2);
    expect(file.retryPolicy).toEqual({ maxAttempts: 2, backoffMs: 200 });
    expect(file.timeoutPolicy).toEqual({ stepTimeoutMs: 10_000, compensationTimeoutMs: 5_000 });
    expect(file.resourceLimits).toEqual({ maxExecutionTimeMs: 60_000, maxToolInvocations: 20 });
    expect(file.fileRoot).toBe(join(ROOT, 'examples/actions/publish-notes/sandbox'));
    expect(file.http).toBeUndefined();

    const step = (id: string) => file.plan.steps.find((s) => s.id === id)!;
    // Step references are left for the executor, as written.
    expect(step('read-draft').arguments).toEqual({ path: '${steps.draft.output.path}' });
    expect(step('summary').arguments).toEqual({
      input: '${steps.read-draft.output}',
      template: '{{path}}: {{bytes}} bytes',
    });
    expect(step('publish').arguments?.content).toBe('${steps.read-draft.output.content}');
    expect(step('publish').validationRules).toEqual([
      {
        path: '$.bytes',
        schema: { type: 'integer', minimum: 10 },
        message: 'the published notes are too short',
      },
    ]);
    expect(step('draft').arguments).toEqual({
      path: 'draft.md',
      content: '# Stride 0.2\n\n- action plans\n- saga rollback\n',
      mode: 'overwrite',
    });
    expect(step('pause').arguments).toEqual({ ms: 100 });
  });

  it('rollback: http settings, limits, the failing step last', async () => {
    const file = await loadActionPlan(ROLLBACK, { env: {}, tools: TOOLS });
    expect(file.plan.id).toBe('provision-tenant');
    expect(file.plan.steps.map((s) => [s.id, s.tool, s.dependencies])).toEqual([
      ['config', 'file.write', undefined],
      ['quota', 'file.write', undefined],
      ['welcome', 'transform', ['config']],
      ['register', 'http', ['config', 'quota', 'welcome']],
    ]);
    expect(file.plan.steps[3]!.arguments).toEqual({
      url: 'http://127.0.0.1:59999/tenants',
      method: 'POST',
      json: { tenant: 'acme' },
    });
    expect(file.autoRollback).toBe(true);
    expect(file.maxConcurrentSteps).toBeUndefined();
    expect(file.retryPolicy).toEqual({ maxAttempts: 2, backoffMs: 100 });
    expect(file.timeoutPolicy).toEqual({ stepTimeoutMs: 5_000 });
    expect(file.resourceLimits).toEqual({ maxNetworkRequests: 5 });
    expect(file.http).toEqual({ allowedHosts: ['127.0.0.1'], timeoutMs: 2_000 });
    expect(file.fileRoot).toBe(join(ROOT, 'examples/actions/rollback/sandbox'));
  });

  it('resolves tools.root against the folder of the plan file, not the working directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stride-load-'));
    const path = join(dir, 'p.yaml');
    await writeFile(
      path,
      yaml('id: p', 'tools: { root: ./files/out }', 'steps:', '  - { id: a, tool: sleep }'),
    );
    expect((await loadActionPlan(path, { env: {} })).fileRoot).toBe(join(dir, 'files/out'));
    // Text without a file: against the working directory.
    const text = parseActionPlan(readFileSync(path, 'utf8'), { env: {} });
    expect(text.fileRoot).toBe(resolve('files/out'));
    expect(text.file).toBeUndefined();
  });

  it('a missing file is PLAN_NOT_FOUND, named', async () => {
    const err = await loadActionPlan('nowhere/plan.yaml', { env: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PLAN_NOT_FOUND' });
    expect((err as Error).message).toBe('nowhere/plan.yaml:1:1: plan file not found');
  });
});

describe('parseActionPlan: normalising', () => {
  it('interpolates ${VAR} from the env option and keeps ${steps.<id>.output...} verbatim', () => {
    const { plan } = parseActionPlan(
      yaml(
        'id: p',
        'steps:',
        '  - id: call',
        '    tool: http',
        '    arguments:',
        '      url: "${BASE}/items"',
        '      auth: "${TOKEN:-anonymous}"',
        '      literal: "$${HOME}"',
        '      whole: "${steps.list.output.items[0]}"',
        '      mixed: "id=${steps.list.output.id}&user=${USER_NAME}"',
        '    depends_on: [list]',
        '  - { id: list, tool: sleep }',
      ),
      { env: { BASE: 'https://api.example', USER_NAME: 'ann', HOME: '/root' } },
    );
    expect(plan.steps[0]!.arguments).toEqual({
      url: 'https://api.example/items',
      auth: 'anonymous',
      literal: '${HOME}',
      whole: '${steps.list.output.items[0]}',
      mixed: 'id=${steps.list.output.id}&user=ann',
    });
  });

  it('durations in any unit become milliseconds; step retries, parameters, failFast', () => {
    const file = parseActionPlan(
      yaml(
        'id: p',
        'fail_fast: true',
        'timeout_policy: { step_timeout: 1.5, expected_duration_factor: 2, compensation_timeout: 2m }',
        'resource_limits: { max_execution_time: 90s, max_concurrent_steps: 3, max_memory_mb: 512, max_network_requests: 7 }',
        'retry_policy: { max_attempts: 4, backoff_seconds: 0.5, backoff_multiplier: 3, max_backoff_seconds: 5, jitter: none }',
        'tools: { http: { allowed_hosts: [example.com], timeout: 750ms } }',
        'steps:',
        '  - id: a',
        '    tool: sleep',
        '    timeout: 500ms',
        '    expected_duration: 2s',
        '    retry_policy: { max_attempts: 5 }',
        '    parameters: { owner: ops }',
      ),
      { env: {} },
    );
    expect(file.plan.failFast).toBe(true);
    expect(file.failFast).toBe(true);
    expect(file.plan.steps[0]).toEqual({
      id: 'a',
      tool: 'sleep',
      timeoutMs: 500,
      expectedDurationMs: 2_000,
      retryPolicy: { maxAttempts: 5 },
      parameters: { owner: 'ops' },
    });
    expect(file.timeoutPolicy).toEqual({
      stepTimeoutMs: 1_500,
      expectedDurationFactor: 2,
      compensationTimeoutMs: 120_000,
    });
    expect(file.resourceLimits).toEqual({
      maxExecutionTimeMs: 90_000,
      maxConcurrentSteps: 3,
      maxMemoryMb: 512,
      maxNetworkRequests: 7,
    });
    expect(file.retryPolicy).toEqual({
      maxAttempts: 4,
      backoffMs: 500,
      backoffMultiplier: 3,
      maxBackoffMs: 5_000,
      jitter: 'none',
    });
    expect(file.http).toEqual({ allowedHosts: ['example.com'], timeoutMs: 750 });
    expect(file.fileRoot).toBeUndefined();
  });

  it('accepts `dependencies:` as another name for `depends_on`', () => {
    const { plan } = parseActionPlan(
      yaml(
        'id: p',
        'steps:',
        '  - { id: a, tool: sleep }',
        '  - { id: b, tool: sleep, dependencies: [a] }',
        '  - id: c',
        '    tool: sleep',
        '    dependencies:',
        '      - a',
        '      - b',
      ),
      { env: {}, tools: TOOLS },
    );
    expect(plan.steps.map((s) => s.dependencies)).toEqual([undefined, ['a'], ['a', 'b']]);
    // Also in a step written as a YAML alias.
    const aliased = parseActionPlan(
      yaml(
        'id: p',
        'metadata: { template: &later { id: b, tool: sleep, dependencies: [a] } }',
        'steps:',
        '  - { id: a, tool: sleep }',
        '  - *later',
      ),
      { env: {} },
    );
    expect(aliased.plan.steps.map((s) => s.dependencies)).toEqual([undefined, ['a']]);
  });
});

describe('parseActionPlan: every problem at its position', () => {
  it('a dependency cycle, shown as a path', () => {
    const err = problem(
      yaml(
        'id: p',
        'steps:',
        '  - id: a',
        '    tool: sleep',
        '    depends_on: [b]',
        '  - id: b',
        '    tool: sleep',
        '    depends_on: [a]',
      ),
    );
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.message).toBe('plan.yaml:5:17: steps[0].depends_on: dependency cycle: a -> b -> a');
  });

  it('a longer cycle, reported at the step where it is entered', () => {
    const err = problem(
      yaml(
        'id: p',
        'steps:',
        '  - { id: x, tool: sleep }',
        '  - { id: a, tool: sleep, depends_on: [c, x] }',
        '  - { id: b, tool: sleep, depends_on: [a] }',
        '  - { id: c, tool: sleep, depends_on: [b] }',
      ),
    );
    expect(err.message).toBe(
      'plan.yaml:4:39: steps[1].depends_on: dependency cycle: a -> c -> b -> a',
    );
  });

  it('an unknown depends_on, with a did-you-mean; a step depending on itself', () => {
    const err = problem(
      yaml(
        'id: p',
        'steps:',
        '  - id: build',
        '    tool: sleep',
        '  - id: ship',
        '    tool: sleep',
        '    depends_on: [biuld]',
        '  - { id: loop, tool: sleep, depends_on: [loop] }',
      ),
    );
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.message).toBe(
      [
        'plan.yaml:7:18: steps[1].depends_on[0]: unknown step "biuld" (did you mean build?)',
        'plan.yaml:8:43: steps[2].depends_on[0]: step "loop" depends on itself',
      ].join('\n'),
    );
    expect(err.issues[0]).toMatchObject({ value: 'biuld' });
  });

  it('a duplicate step id, pointing at the first', () => {
    const err = problem(
      yaml('id: p', 'steps:', '  - id: a', '    tool: sleep', '  - id: a', '    tool: sleep'),
    );
    expect(err.message).toBe(
      'plan.yaml:5:9: steps[1].id: duplicate step id "a" (first at steps[0])',
    );
  });

  it('an unknown tool when the tool names are given, with a suggestion', () => {
    const text = yaml('id: p', 'steps:', '  - id: a', '    tool: file.wrte');
    expect(problem(text, { tools: TOOLS }).message).toBe(
      'plan.yaml:4:11: steps[0].tool: unknown tool "file.wrte" (did you mean file.write?); available: file.read, file.write, http, sleep, transform',
    );
    // Without `tools` the names are not checked.
    expect(parseActionPlan(text, { env: {} }).plan.steps[0]!.tool).toBe('file.wrte');
  });

  it('unknown keys, with a did-you-mean, at the key', () => {
    const err = problem(
      yaml(
        'id: p',
        'auto_rollbak: true',
        'steps:',
        '  - id: a',
        '    tool: sleep',
        '    dependson: [b]',
        '  - { id: b, tool: sleep, retry_policy: { max_attempt: 2 } }',
      ),
    );
    expect(err.message).toBe(
      [
        'plan.yaml:2:1: auto_rollbak: unknown key (did you mean auto_rollback?)',
        'plan.yaml:6:5: steps[0].dependson: unknown key (did you mean depends_on?)',
        'plan.yaml:7:43: steps[1].retry_policy.max_attempt: unknown key (did you mean max_attempts?)',
      ].join('\n'),
    );
  });

  it('a bad duration, at the plan level and at a step', () => {
    const err = problem(
      yaml(
        'id: p',
        'timeout_policy: { step_timeout: soon }',
        'steps:',
        '  - id: a',
        '    tool: sleep',
        '    timeout: 5 parsecs',
      ),
    );
    const expected =
      'is invalid, expected a duration (seconds, or a string such as "500ms", "90s", "2m")';
    expect(err.message).toBe(
      [
        `plan.yaml:2:33: timeout_policy.step_timeout: "soon" ${expected}`,
        `plan.yaml:6:14: steps[0].timeout: "5 parsecs" ${expected}`,
      ].join('\n'),
    );
  });

  it('a missing env var: ENV_MISSING, named, its value and other values never printed', () => {
    const err = problem(
      yaml(
        'id: p',
        'steps:',
        '  - id: a',
        '    tool: http',
        '    arguments:',
        '      url: "https://${API_HOST}/v1"',
        '      headers: { authorization: "Bearer ${API_TOKEN}" }',
      ),
      { env: { API_TOKEN: 'sekret-token-123' } },
    );
    expect(err.code).toBe('ENV_MISSING');
    expect(err.message).toBe(
      'plan.yaml:6:12: steps[0].arguments.url: environment variable API_HOST is not set',
    );
    expect(err.issues).toEqual([
      expect.objectContaining({ value: 'https://${API_HOST}/v1' }), // the template, as written
    ]);
    expect(JSON.stringify(err.issues)).not.toContain('sekret-token-123');
    expect(err.message).not.toContain('sekret-token-123');
  });

  it('a value from ${VAR} that does not fit shows the template, never the value', () => {
    const err = problem(
      yaml('id: p', 'max_concurrent_steps: ${WORKERS}', 'steps:', '  - { id: a, tool: sleep }'),
      { env: { WORKERS: 'secret-sauce' } },
    );
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.message).toBe(
      'plan.yaml:2:23: max_concurrent_steps: "${WORKERS}" is invalid, expected an integer >= 1',
    );
    expect(JSON.stringify(err.issues)).not.toContain('secret-sauce');
  });

  it('a missing ${VAR} in a checked field is one ENV_MISSING issue, not a second PLAN_INVALID one', () => {
    const err = problem(
      yaml('id: p', 'max_concurrent_steps: ${WORKERS}', 'steps:', '  - { id: a, tool: sleep }'),
    );
    expect(err.code).toBe('ENV_MISSING');
    expect(err.issues).toHaveLength(1);
    expect(err.message).toBe(
      'plan.yaml:2:23: max_concurrent_steps: environment variable WORKERS is not set',
    );
  });

  it('an alias bomb is a positioned PlanError, not a crash', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) {
      lines.push(
        `${'b'.repeat(i)}: &${'b'.repeat(i)} [${Array(10)
          .fill(i === 1 ? '*a' : `*${'b'.repeat(i - 1)}`)
          .join(', ')}]`,
      );
    }
    const err = problem(yaml(...lines, 'id: p', 'steps: [{ id: s, tool: sleep }]'));
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.message).toMatch(/^plan\.yaml:1:1: invalid YAML: /);
  });

  it('steps: [] and a plan without id', () => {
    expect(problem(yaml('id: p', 'steps: []')).message).toBe(
      'plan.yaml:2:8: steps: [] is invalid, expected a non-empty list of steps',
    );
    expect(problem(yaml('steps:', '  - { id: a, tool: sleep }')).message).toBe(
      'plan.yaml:1:1: id: missing, expected a non-empty string',
    );
  });

  it('a document that is not a mapping', () => {
    expect(problem('- 1\n').message).toBe(
      'plan.yaml:1:1: [1] is invalid, expected a mapping {id, steps, ...}',
    );
  });

  it('invalid YAML, and a duplicate key', () => {
    const err = problem(yaml('id: p', 'steps:', '  - id: a', '    tool: [sleep'));
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.message).toBe(
      'plan.yaml:5:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    );
    expect(problem(yaml('id: p', 'id: q', 'steps: []')).message).toBe(
      'plan.yaml:2:1: invalid YAML: Map keys must be unique',
    );
  });

  it('a bad validation schema, with every other graph problem', () => {
    const err = problem(
      yaml(
        'id: p',
        'steps:',
        '  - id: a',
        '    tool: sleep',
        '    validate:',
        '      - schema: { type: integr }',
        '  - id: a',
        '    tool: sleepy',
      ),
      { tools: ['sleep'] },
    );
    expect(err.message).toBe(
      [
        'plan.yaml:6:17: steps[0].validate[0].schema: schema.type: unknown type "integr" (expected one of string, number, integer, boolean, object, array, null)',
        'plan.yaml:7:9: steps[1].id: duplicate step id "a" (first at steps[0])',
        'plan.yaml:8:11: steps[1].tool: unknown tool "sleepy" (did you mean sleep?); available: sleep',
      ].join('\n'),
    );
  });

  it('a validation pattern linear-time matching cannot run (issue #16), at its position', () => {
    const err = problem(
      yaml(
        'id: p',
        'steps:',
        '  - id: a',
        '    tool: sleep',
        '    validate:',
        "      - { path: $.body, schema: { type: string, pattern: '^(\\w+) \\1$' } }",
      ),
      { tools: ['sleep'] },
    );
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.message).toBe(
      'plan.yaml:6:33: steps[0].validate[0].schema: schema.pattern: "^(\\\\w+) \\\\1$" is not supported: the backreference "\\1" is not supported in linear-time matching (RE2 syntax, see docs/plans.md)',
    );
  });

  it('problems under `dependencies:` are placed and named as written', () => {
    const unknown = problem(
      yaml(
        'id: p',
        'steps:',
        '  - id: build',
        '    tool: sleep',
        '  - id: ship',
        '    tool: sleep',
        '    dependencies: [biuld]',
      ),
    );
    expect(unknown.message).toBe(
      'plan.yaml:7:20: steps[1].dependencies[0]: unknown step "biuld" (did you mean build?)',
    );
    const cycle = problem(
      yaml(
        'id: p',
        'steps:',
        '  - { id: a, tool: sleep, dependencies: [b] }',
        '  - { id: b, tool: sleep, dependencies: [a] }',
      ),
    );
    expect(cycle.message).toBe(
      'plan.yaml:3:41: steps[0].dependencies: dependency cycle: a -> b -> a',
    );
    const both = problem(
      yaml(
        'id: p',
        'steps:',
        '  - { id: a, tool: sleep }',
        '  - id: b',
        '    tool: sleep',
        '    depends_on: [a]',
        '    dependencies: [a]',
      ),
    );
    expect(both.message).toBe(
      'plan.yaml:7:5: steps[1].dependencies: dependencies is another name for depends_on: give one of them, not both',
    );
  });
});

describe('planKindOf', () => {
  it('tells action plans from test plans', () => {
    expect(planKindOf(readFileSync(PUBLISH, 'utf8'))).toBe('action');
    expect(planKindOf(readFileSync(ROLLBACK, 'utf8'))).toBe('action');
    expect(planKindOf(readFileSync(join(ROOT, 'examples/dify-workflow/plan.yaml'), 'utf8'))).toBe(
      'test',
    );
    expect(planKindOf(yaml('kind: action', 'id: p'))).toBe('action'); // no steps yet: still action
    expect(planKindOf(yaml('id: p', 'steps: []'))).toBe('action');
    expect(planKindOf('{"id": "p", "steps": [{"id": "a", "tool": "sleep"}]}')).toBe('action');
    expect(planKindOf(yaml('workflow_id: w', 'cases: cases.jsonl'))).toBe('test');
    // Not a mapping, or nothing: test (the test-plan loader reports it with positions).
    expect(planKindOf('- steps\n')).toBe('test');
    expect(planKindOf('')).toBe('test');
    expect(planKindOf('workflow_id: [unclosed\n')).toBe('test');
    // Invalid YAML whose recovered tree has steps: action, and the action loader places the error.
    const broken = yaml('id: p', 'steps:', '  - { id: a, tool: sleep', 'name: x');
    expect(planKindOf(broken)).toBe('action');
    expect(problem(broken).message).toBe(
      'plan.yaml:4:1: invalid YAML: Flow map in block collection must be sufficiently indented and end with a }',
    );
  });
});
