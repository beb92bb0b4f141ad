// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax under test, not a template literal.
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  type ExecutionPolicy,
  loadPlan,
  parsePlan,
  printPlan,
  type RunManifest,
} from '../../src/plans/index.js';
import { planErrorOf, planErrorOfAsync, removeTempDirs, tempFiles } from './helpers.js';

afterAll(removeTempDirs);

const DEFAULT_POLICY: ExecutionPolicy = {
  concurrency: 10,
  adaptive: true,
  backoffMs: 0,
  retryPolicy: {
    maxAttempts: 3,
    maxRateLimitRetries: 10,
    backoffMs: 1000,
    backoffMultiplier: 2,
    maxBackoffMs: 60_000,
    jitter: 'none',
  },
  stopConditions: {},
};

describe('the design document plan', () => {
  test('reads as the design says', async () => {
    const dir = await tempFiles({
      'plan.yaml': `workflow_id: support-bot-regression        # the seeds' key
target:
  type: dify                               # dify | openai | http | function
  base_url: \${DIFY_BASE_URL:-http://127.0.0.1:5001/v1}
  api_key: \${DIFY_API_KEY}                 # never stored, never printed
  app: workflow                            # workflow | chat | completion
  response_mode: streaming                 # blocking | streaming
  user: stride-regression                  # Dify's \`user\`; a default is fine
cases: cases.jsonl                         # or an inline list; JSONL / CSV / JSON, streamed
execution_policy:
  concurrency: 20
  timeout: 60s                             # per attempt
  rate_control: { per_minute: 600, burst: 10 }
  retry_policy: { max_attempts: 3, backoff_seconds: 2, backoff_multiplier: 1.5 }
  stop_conditions: { max_failures: 50, timeout: 2h }
`,
      'cases.jsonl':
        '{"id": "refund-1", "inputs": {"query": "..."}, "dataset": "refunds", "expected": {"contains": "refund"}}\n',
    });
    const file = join(dir, 'plan.yaml');
    const manifest = await loadPlan(file, { env: { DIFY_API_KEY: 'app-secret' } });
    const expected: RunManifest = {
      workflowId: 'support-bot-regression',
      target: {
        type: 'dify',
        baseUrl: 'http://127.0.0.1:5001/v1',
        apiKey: 'app-secret',
        app: 'workflow',
        responseMode: 'streaming',
        user: 'stride-regression',
      },
      datasets: [{ weight: 1, cases: { kind: 'file', path: 'cases.jsonl', format: 'jsonl' } }],
      executionPolicy: {
        concurrency: 20,
        adaptive: true,
        backoffMs: 0,
        timeoutMs: 60_000,
        rateControl: { perMinute: 600, burst: 10 },
        retryPolicy: {
          maxAttempts: 3,
          maxRateLimitRetries: 10,
          backoffMs: 2000,
          backoffMultiplier: 1.5,
          maxBackoffMs: 60_000,
          jitter: 'none',
        },
        stopConditions: { maxFailures: 50, deadlineMs: 7_200_000 },
      },
      select: { repeat: 1 },
      secrets: [{ path: ['target', 'apiKey'], template: '${DIFY_API_KEY}' }],
      file,
      baseDir: dir,
    };
    expect(manifest).toEqual(expected);
  });
});

describe('the seeds', () => {
  test('a seed-style manifest (no target) reads unchanged: RateLimit(60, 5), backoff 2 x 1.5', () => {
    const m = parsePlan(`
workflow_id: test
cases:
  - { inputs: { query: hi }, dataset: d1, scenario: s1 }
execution_policy:
  concurrency: 4
  batch_size: 5
  backoff_seconds: 0.5
  rate_control: { per_minute: 60, burst: 5 }
  retry_policy: { max_attempts: 3, backoff_seconds: 2.0, backoff_multiplier: 1.5 }
  stop_conditions: { max_failures: 3, timeout: 300 }
`);
    expect(m.target).toBeUndefined();
    expect(m.executionPolicy).toEqual({
      concurrency: 4,
      adaptive: true,
      batchSize: 5,
      backoffMs: 500,
      rateControl: { perMinute: 60, burst: 5 },
      retryPolicy: {
        maxAttempts: 3,
        maxRateLimitRetries: 10,
        backoffMs: 2000,
        backoffMultiplier: 1.5,
        maxBackoffMs: 60_000,
        jitter: 'none',
      },
      stopConditions: { maxFailures: 3, deadlineMs: 300_000 },
    });
    const [ds] = m.datasets;
    expect(ds?.cases.kind === 'inline' && ds.cases.cases[0]).toMatchObject({
      dataset: 'd1',
      scenario: 's1',
      inputs: { query: 'hi' },
    });
  });

  test("the seeds' defaults: concurrency 10, 3 attempts, 1 s backoff doubling", () => {
    const m = parsePlan('workflow_id: w\ncases: [{ inputs: {} }]\n');
    expect(m.executionPolicy).toEqual(DEFAULT_POLICY);
    expect(m.select).toEqual({ repeat: 1 });
    expect(m.baseDir).toBe('.');
    expect(m.file).toBeUndefined();
  });

  test('the seeds\' "RunManifest.cases cannot be empty"', () => {
    const err = planErrorOf(() => parsePlan('workflow_id: test\ncases: []\n'));
    expect(err.message).toBe(
      '<plan>:2:8: cases: [] is invalid, expected a non-empty list of cases',
    );
  });
});

describe('values', () => {
  test('durations: seconds, ms, s, m, h, fractions and sums', () => {
    const m = parsePlan(`workflow_id: w
cases: [{ inputs: {}, timeout: 1m30s }]
execution_policy:
  timeout: 500ms
  backoff_seconds: 1.5s
  retry_policy: { backoff_seconds: 90, max_backoff_seconds: 2m }
  stop_conditions: { timeout: 1h }
`);
    const p = m.executionPolicy;
    expect([p.timeoutMs, p.backoffMs, p.retryPolicy.backoffMs, p.retryPolicy.maxBackoffMs]).toEqual(
      [500, 1500, 90_000, 120_000],
    );
    expect(p.stopConditions.deadlineMs).toBe(3_600_000);
    const [ds] = m.datasets;
    expect(ds?.cases.kind === 'inline' && ds.cases.cases[0]?.timeoutMs).toBe(90_000);
  });

  test('max_failures: a count, a fraction, a percentage', () => {
    const of = (v: string) =>
      parsePlan(
        `workflow_id: w\ncases: [{}]\nexecution_policy: { stop_conditions: { max_failures: ${v} } }`,
      ).executionPolicy.stopConditions.maxFailures;
    expect([of('50'), of('0.1'), of('"5%"'), of('0.999')]).toEqual([50, 0.1, 0.05, 0.999]);
  });

  test('numbers may come from the environment as strings', () => {
    const m = parsePlan(
      'workflow_id: w\ncases: [{}]\nexecution_policy:\n  concurrency: ${C:-20}\n  rate_control: { per_minute: "${RPM}" }\n',
      { env: { RPM: '90' } },
    );
    expect(m.executionPolicy.concurrency).toBe(20);
    expect(m.executionPolicy.rateControl).toEqual({ perMinute: 90, burst: 1 });
  });

  test('an empty section is the same as no section', () => {
    const m = parsePlan('workflow_id: w\ncases: [{}]\nexecution_policy:\nselect:\n');
    expect(m.executionPolicy).toEqual(DEFAULT_POLICY);
    const n = parsePlan(
      'workflow_id: w\ncases: [{}]\nexecution_policy:\n  retry_policy:\n  concurrency: 2\n',
    );
    expect(n.executionPolicy.retryPolicy).toEqual(DEFAULT_POLICY.retryPolicy);
  });

  test('adaptive pace: adaptive, min_concurrency, retry_policy.max_rate_limit_retries', async () => {
    const m = parsePlan(`workflow_id: w
cases: [{}]
execution_policy:
  concurrency: 20
  adaptive: false
  min_concurrency: 4
  retry_policy: { max_rate_limit_retries: 0 }
`);
    expect(m.executionPolicy).toMatchObject({
      concurrency: 20,
      adaptive: false,
      minConcurrency: 4,
      retryPolicy: { maxRateLimitRetries: 0 },
    });
    const { runOptionsFor } = await import('../../src/runner/executor-service.js');
    expect(runOptionsFor(m).adaptive).toBe(false);
    const on = parsePlan('workflow_id: w\ncases: [{}]\nexecution_policy: { min_concurrency: 2 }\n');
    expect(runOptionsFor(on).adaptive).toEqual({ minConcurrency: 2 });
    expect(runOptionsFor(parsePlan('workflow_id: w\ncases: [{}]\n')).adaptive).toBe(true);
    const bad = (body: string) =>
      planErrorOf(() =>
        parsePlan(`workflow_id: w\ncases: [{}]\nexecution_policy:\n${body}`, { file: 'plan.yaml' }),
      ).message;
    expect(bad('  concurrency: 4\n  min_concurrency: 5\n')).toBe(
      'plan.yaml:5:20: execution_policy.min_concurrency: 5 is invalid, expected at most the concurrency (4)',
    );
    expect(bad('  min_concurrency: 11\n')).toMatch(
      /^plan\.yaml:4:20: execution_policy\.min_concurrency: 11 is invalid, expected at most the concurrency \(10\)$/,
    );
    expect(bad('  adaptive: sometimes\n')).toMatch(
      /^plan\.yaml:4:13: execution_policy\.adaptive: "sometimes" is invalid, expected true or false/,
    );
    expect(bad('  retry_policy: { max_rate_limit_retries: -1 }\n')).toMatch(
      /execution_policy\.retry_policy\.max_rate_limit_retries: -1 is invalid/,
    );
  });

  test('jitter: true means full, false means none', () => {
    const jitter = (v: string) =>
      parsePlan(`workflow_id: w\ncases: [{}]\nexecution_policy: { retry_policy: { jitter: ${v} } }`)
        .executionPolicy.retryPolicy.jitter;
    expect([jitter('true'), jitter('false'), jitter('equal')]).toEqual(['full', 'none', 'equal']);
  });
});

describe('targets', () => {
  const target = (body: string) =>
    parsePlan(`workflow_id: w\ncases: [{}]\ntarget:\n${body}`, { env: {} }).target;

  test('dify with defaults', () => {
    expect(target('  type: dify\n  api_key: app-1\n')).toEqual({
      type: 'dify',
      baseUrl: 'https://api.dify.ai/v1',
      apiKey: 'app-1',
      app: 'workflow',
      responseMode: 'streaming',
      user: 'stride',
    });
  });

  test('openai, http, function', () => {
    expect(
      target(
        '  type: openai\n  model: gpt-4o-mini\n  temperature: 0.2\n  max_tokens: 100\n  system: Be brief.\n',
      ),
    ).toEqual({
      type: 'openai',
      baseUrl: 'https://api.openai.com/v1',
      model: 'gpt-4o-mini',
      system: 'Be brief.',
      temperature: 0.2,
      maxTokens: 100,
    });
    expect(
      target(
        '  type: http\n  url: https://x.test/run\n  headers: { X-Version: 2, Accept: text/plain }\n',
      ),
    ).toEqual({
      type: 'http',
      url: 'https://x.test/run',
      method: 'POST',
      headers: { 'X-Version': '2', Accept: 'text/plain' },
    });
    expect(target('  type: function\n  name: echo\n')).toEqual({ type: 'function', name: 'echo' });
  });

  test('openai: response_mode and price_per_million (issue #18 item 7), printed back', () => {
    const yaml = `workflow_id: w
cases: [{}]
target:
  type: openai
  model: gpt-4o-mini
  response_mode: streaming
  price_per_million: { input: 0.15, output: 0.6 }
`;
    const m = parsePlan(yaml, { env: {} });
    expect(m.target).toEqual({
      type: 'openai',
      baseUrl: 'https://api.openai.com/v1',
      model: 'gpt-4o-mini',
      responseMode: 'streaming',
      pricePerMillion: { input: 0.15, output: 0.6 },
    });
    expect(parsePlan(printPlan(m), { env: {} })).toEqual(m);
    expect(printPlan(m)).toContain('price_per_million');
  });

  test('openai: a bad response_mode or price is named with its line', () => {
    const bad = (body: string) =>
      planErrorOf(() =>
        parsePlan(`workflow_id: w\ncases: [{}]\ntarget:\n  type: openai\n  model: m\n${body}`, {
          file: 'plan.yaml',
          env: {},
        }),
      ).message;
    expect(bad('  response_mode: stream\n')).toMatch(
      /plan\.yaml:6:\d+: target\.response_mode: "stream" is invalid.*blocking.*streaming/,
    );
    expect(bad('  price_per_million: { input: -1, output: 2 }\n')).toMatch(
      /plan\.yaml:6:\d+: target\.price_per_million\.input: -1 is invalid/,
    );
    expect(bad('  price_per_million: { input: 1 }\n')).toMatch(/target\.price_per_million\.output/);
    expect(bad('  price_per_million: { input: 1, ouput: 2 }\n')).toMatch(/did you mean `output`/);
  });
});

describe('JSON plans', () => {
  test('a .json plan reads like the same YAML plan', async () => {
    const dir = await tempFiles({
      'plan.json': JSON.stringify({
        workflow_id: 'w',
        target: { type: 'http', url: 'http://127.0.0.1:9/x', headers: { 'X-Key': '${K:-k}' } },
        cases: [{ id: 'a', inputs: { q: '${not interpolated}' }, expected: { contains: 'x' } }],
        execution_policy: { timeout: '2s', rate_control: { per_minute: 60, burst: 5 } },
      }),
      'plan.yaml': `workflow_id: w
target: { type: http, url: "http://127.0.0.1:9/x", headers: { X-Key: "\${K:-k}" } }
cases: [{ id: a, inputs: { q: "\${not interpolated}" }, expected: { contains: x } }]
execution_policy: { timeout: 2s, rate_control: { per_minute: 60, burst: 5 } }
`,
    });
    const fromJson = await loadPlan(join(dir, 'plan.json'), { env: {} });
    const fromYaml = await loadPlan(join(dir, 'plan.yaml'), { env: {} });
    expect({ ...fromJson, file: '' }).toEqual({ ...fromYaml, file: '' });
    expect(fromJson.target).toEqual({
      type: 'http',
      url: 'http://127.0.0.1:9/x',
      method: 'POST',
      headers: { 'X-Key': 'k' },
    });
  });
});

describe('files', () => {
  test('a missing plan file is PLAN_NOT_FOUND', async () => {
    const dir = await tempFiles();
    const err = await planErrorOfAsync(() => loadPlan(join(dir, 'nope.yaml')));
    expect(err.code).toBe('PLAN_NOT_FOUND');
    expect(err.message).toBe(`${dir}/nope.yaml: plan file not found`);
    const isDir = await planErrorOfAsync(() => loadPlan(dir));
    expect(isDir.message).toBe(`${dir}: is a directory, expected a plan file`);
  });

  test('case paths resolve against the plan file, or baseDir', async () => {
    const dir = await tempFiles({
      'sub/plan.yaml': 'workflow_id: w\ncases: ../data/c.csv\n',
      'data/c.csv': 'id,query\na,hi\n',
    });
    const m = await loadPlan(join(dir, 'sub', 'plan.yaml'));
    expect(m.baseDir).toBe(join(dir, 'sub'));
    const err = await planErrorOfAsync(() =>
      loadPlan(join(dir, 'sub', 'plan.yaml'), { baseDir: join(dir, 'a', 'b') }),
    );
    expect(err.message).toBe(
      `${dir}/sub/plan.yaml:2:8: cases: case file not found: ${dir}/a/data/c.csv`,
    );
    const text = 'workflow_id: w\ncases: data/c.csv\n';
    expect(parsePlan(text, { baseDir: dir }).baseDir).toBe(dir);
  });
});
