import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CancellationToken,
  HttpError,
  StubExecutor,
  TimeoutError,
  VirtualClock,
} from '../../src/core/index.js';
import { customAssertion, loadPlan, parsePlan, type TestCase } from '../../src/plans/index.js';
import { ResultConverter, TestStatus } from '../../src/report/convert.js';
import { ExecutorService, runOptionsFor } from '../../src/runner/executor-service.js';
import { removeTempDirs, tempFiles } from '../plans/helpers.js';

afterEach(removeTempDirs);

const PLAN = `
workflow_id: support-bot
target: { type: function, name: bot }
cases:
  - { id: refund, inputs: { query: refund please }, expected: { contains: refund } }
  - { id: wrong, inputs: { query: say nothing }, expected: { contains: refund } }
  - { id: broken, inputs: { query: boom } }
  - { id: slow, inputs: { query: slow } }
execution_policy:
  concurrency: 2
  timeout: 500ms
  retry_policy: { max_attempts: 2, backoff_seconds: 1 }
`;

/** A bot that answers from the query, fails, or hangs, on the virtual clock. */
function bot(clock: VirtualClock) {
  const calls: string[] = [];
  const fn = async (
    c: TestCase,
    ctx: { signal: AbortSignal; reportUsage: (u: { tokens?: number; cost?: number }) => void },
  ) => {
    calls.push(c.id);
    const query = String(c.inputs.query);
    if (query === 'boom') throw new HttpError(400, 'invalid_param: query');
    await clock.sleep(query === 'slow' ? 10_000 : 100, ctx.signal);
    ctx.reportUsage({ tokens: 50, cost: 0.001 });
    return { answer: query === 'say nothing' ? '...' : `about your ${query}` };
  };
  return { fn, calls };
}

describe('ExecutorService.executeTestPlan', () => {
  it('keeps FAILED (assertion), ERROR (infrastructure) and TIMEOUT apart', async () => {
    const clock = new VirtualClock();
    const { fn, calls } = bot(clock);
    const service = new ExecutorService({ clock, functions: { bot: fn } });
    const results = await service.executeTestPlan(parsePlan(PLAN));
    const byId = Object.fromEntries(results.map((r) => [r.executionId, r]));
    expect(byId.refund?.status).toBe(TestStatus.SUCCESS);
    expect(byId.wrong?.status).toBe(TestStatus.FAILED);
    expect(byId.broken?.status).toBe(TestStatus.ERROR);
    expect(byId.slow?.status).toBe(TestStatus.TIMEOUT);
    // a failed assertion and a 400 are not retried; the timeout is, once
    expect(calls.filter((id) => id === 'wrong')).toHaveLength(1);
    expect(calls.filter((id) => id === 'broken')).toHaveLength(1);
    expect(calls.filter((id) => id === 'slow')).toHaveLength(2);
    expect(byId.wrong).toMatchObject({
      workflowId: 'support-bot',
      outputs: { answer: '...' },
      tokensUsed: 50,
      errorMessage: expect.stringContaining('refund'),
      metadata: { attemptCount: 1, taskStatus: 'failed' },
    });
    expect(byId.wrong?.assertions.map((a) => a.passed)).toEqual([false]);
    expect(byId.refund).toMatchObject({
      inputs: { query: 'refund please' },
      executionTime: 0.1,
      cost: 0.001,
    });
    expect(byId.broken?.metadata.errorCode).toBe('HTTP_ERROR');
  });

  it('maps execution_policy onto the engine: concurrency, timeout, rate, retries, stop rules, batches', () => {
    const manifest = parsePlan(`
workflow_id: w
cases: [{ inputs: { q: 1 } }]
execution_policy:
  concurrency: 7
  min_concurrency: 2
  batch_size: 5
  backoff_seconds: 2
  timeout: 90s
  rate_control: { per_minute: 600, burst: 10, tokens_per_minute: 90000 }
  retry_policy: { max_attempts: 4, max_rate_limit_retries: 6, backoff_seconds: 2, backoff_multiplier: 1.5, max_backoff_seconds: 30 }
  stop_conditions: { max_failures: 50, timeout: 2h, max_cost: 5 }
`);
    expect(runOptionsFor(manifest)).toEqual({
      concurrency: 7,
      adaptive: { minConcurrency: 2 },
      timeoutMs: 90_000,
      rate: { perMinute: 600, burst: 10 },
      tokens: { perMinute: 90_000 },
      retry: {
        maxAttempts: 4,
        maxRateLimitRetries: 6,
        backoffMs: 2000,
        backoffMultiplier: 1.5,
        maxBackoffMs: 30_000,
        jitter: 'none',
      },
      stop: { maxFailures: 50, deadlineMs: 7_200_000, maxCost: 5 },
      batch: { size: 5, backoffMs: 2000 },
    });
  });

  it('uses the seeds default stub when no target is given (100+ cases)', async () => {
    const cases = Array.from(
      { length: 120 },
      (_, i) => `  - { id: c${i}, inputs: { n: ${i} } }`,
    ).join('\n');
    const service = new ExecutorService({ clock: new VirtualClock() });
    const results = await service.executeTestPlan(parsePlan(`workflow_id: w\ncases:\n${cases}\n`));
    expect(results).toHaveLength(120);
    expect(results.every((r) => r.status === 'success')).toBe(true);
    expect(new Set(results.map((r) => r.executionId)).size).toBe(120);
  });

  it('runs a given target or function, and a custom assertion from the library', async () => {
    const clock = new VirtualClock();
    const stub = new StubExecutor<TestCase>({ clock, taskBehaviors: { b: 'failure' } });
    const manifest = parsePlan(
      'workflow_id: w\ncases: [{ id: a, inputs: {} }, { id: b, inputs: {} }]',
    );
    const viaTarget = await new ExecutorService({ clock, target: stub }).executeTestPlan(manifest);
    expect(viaTarget.map((r) => [r.executionId, r.status]).sort()).toEqual([
      ['a', 'success'],
      ['b', 'failed'],
    ]);
    const withCustom = {
      ...manifest,
      datasets: [
        {
          weight: 1,
          cases: {
            kind: 'inline' as const,
            cases: [
              {
                id: 'x',
                inputs: { n: 3 },
                tags: [],
                priority: 0,
                expected: [customAssertion('odd', ({ output }) => (output as number) % 2 === 1)],
              },
            ],
          },
        },
      ],
    };
    const viaFn = await new ExecutorService({
      clock,
      target: async (c) => Number(c.inputs.n) + 1,
    }).executeTestPlan(withCustom);
    expect(viaFn[0]).toMatchObject({ status: 'failed', outputs: 4 });
  });

  it('cancels through the seeds CancellationToken with partial results', async () => {
    const clock = new VirtualClock();
    const token = new CancellationToken();
    const service = new ExecutorService({
      clock,
      target: async (_c, ctx) => clock.sleep(1000, ctx.signal),
    });
    const cases = Array.from({ length: 10 }, (_, i) => `  - { id: c${i}, inputs: {} }`).join('\n');
    const pending = service.executeTestPlan(
      parsePlan(`workflow_id: w\ncases:\n${cases}\nexecution_policy: { concurrency: 2 }`),
      token,
    );
    await clock.sleep(1500);
    token.cancel();
    const results = await pending;
    expect(results).toHaveLength(10);
    expect(results.filter((r) => r.status === 'success')).toHaveLength(2);
    expect(results.filter((r) => r.metadata.taskStatus === 'cancelled')).toHaveLength(8);
    expect(results.find((r) => r.metadata.taskStatus === 'cancelled')?.metadata.cancelReason).toBe(
      'user',
    );
  });

  it('throws the seeds errors: missing manifest, empty cases, unknown function', async () => {
    const service = new ExecutorService({ clock: new VirtualClock() });
    await expect(service.executeTestPlan(undefined)).rejects.toMatchObject({
      code: 'MISSING_ARGUMENT',
      message: 'manifest is required',
    });
    const empty = { ...parsePlan('workflow_id: w\ncases: [{ inputs: {} }]'), datasets: [] };
    await expect(service.executeTestPlan(empty)).rejects.toMatchObject({
      code: 'EMPTY_PLAN',
      message: 'RunManifest.cases cannot be empty',
    });
    await expect(
      service.executeTestPlan(
        parsePlan(
          'workflow_id: w\ntarget: { type: function, name: nope }\ncases: [{ inputs: {} }]',
        ),
      ),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: 'target function "nope" is not registered (registered: none)',
    });
  });

  it('streams a case file and rejects with the PlanError when it is broken before any case ran', async () => {
    const dir = await tempFiles({
      'plan.yaml': 'workflow_id: w\ncases: cases.jsonl\n',
      'cases.jsonl': '{"id":"a","inputs":{}}\n',
    });
    const manifest = await loadPlan(join(dir, 'plan.yaml'));
    // The file changes after the plan was checked: its first line is now broken.
    await writeFile(join(dir, 'cases.jsonl'), 'not json\n');
    const service = new ExecutorService({ clock: new VirtualClock() });
    await expect(service.executeTestPlan(manifest)).rejects.toMatchObject({
      code: 'CASES_INVALID',
    });
  });
});

describe('ExecutorService.streamTestPlan', () => {
  it('yields every result as it finishes, pausing the run while the consumer lags', async () => {
    const clock = new VirtualClock();
    const cases = Array.from(
      { length: 50 },
      (_, i) => `  - { id: c${i}, inputs: { i: ${i} } }`,
    ).join('\n');
    const manifest = parsePlan(
      `workflow_id: w\ncases:\n${cases}\nexecution_policy: { concurrency: 8 }`,
    );
    let started = 0;
    const service = new ExecutorService({
      clock,
      target: async (_c, ctx) => {
        started++;
        await clock.sleep(10, ctx.signal);
        return 'ok';
      },
    });
    const seen: string[] = [];
    let maxAhead = 0;
    for await (const r of service.streamTestPlan(manifest, undefined, { highWaterMark: 4 })) {
      seen.push(r.executionId);
      maxAhead = Math.max(maxAhead, started - seen.length);
      await clock.sleep(50); // a slow consumer: the run must not race ahead of it
    }
    expect(seen).toHaveLength(50);
    expect(new Set(seen).size).toBe(50);
    // at most the high-water mark plus what was in flight when the run paused
    expect(maxAhead).toBeLessThanOrEqual(4 + 8);
  });

  it('cancels the rest when the consumer stops early', async () => {
    const clock = new VirtualClock();
    const calls: string[] = [];
    const cases = Array.from({ length: 100 }, (_, i) => `  - { id: c${i}, inputs: {} }`).join('\n');
    const manifest = parsePlan(
      `workflow_id: w\ncases:\n${cases}\nexecution_policy: { concurrency: 2 }`,
    );
    const service = new ExecutorService({
      clock,
      target: async (c, ctx) => {
        calls.push(c.id);
        await clock.sleep(10, ctx.signal);
        return 'ok';
      },
    });
    let n = 0;
    for await (const _ of service.streamTestPlan(manifest)) if (++n === 3) break;
    expect(calls.length).toBeLessThan(10);
  });
});

describe('ResultConverter (seed 001)', () => {
  const base = {
    id: 'case-1',
    input: {
      id: 'case-1',
      inputs: { q: 'x' },
      dataset: 'refunds',
      scenario: 'happy',
      tags: ['a'],
      priority: 0,
      expected: [],
    },
    priority: 0,
    attempts: 2,
    output: { answer: 'yes' },
    error: undefined,
    reason: undefined,
    usage: { tokens: 120, cost: 0.01 },
    startedAt: 1000,
    finishedAt: 3500,
    executionTimeMs: 2500,
  };

  it('maps the eight states to four', () => {
    const statuses = [
      'succeeded',
      'failed',
      'timeout',
      'error',
      'cancelled',
      'pending',
      'queued',
      'running',
    ] as const;
    expect(statuses.map((s) => ResultConverter.convert({ ...base, status: s }).status)).toEqual([
      'success',
      'failed',
      'timeout',
      'error',
      'error',
      'error',
      'error',
      'error',
    ]);
  });

  it('extracts the fields: ids, time, usage, inputs, outputs, error message, dataset, metadata', () => {
    const r = ResultConverter.convert(
      {
        ...base,
        status: 'timeout',
        error: {
          code: 'TIMEOUT',
          name: 'TimeoutError',
          message: new TimeoutError('too slow').message,
        },
      },
      { workflowId: 'wf-1', epochOffsetMs: 1_700_000_000_000 },
    );
    expect(r).toMatchObject({
      workflowId: 'wf-1',
      executionId: 'case-1',
      timestamp: new Date(1_700_000_001_000),
      executionTime: 2.5,
      tokensUsed: 120,
      cost: 0.01,
      inputs: { q: 'x' },
      outputs: { answer: 'yes' },
      errorMessage: 'too slow',
      dataset: 'refunds',
      metadata: { dataset: 'refunds', scenario: 'happy', attemptCount: 2, errorCode: 'TIMEOUT' },
    });
  });

  it('converts a batch and rejects missing input with a stable code', () => {
    expect(
      ResultConverter.convertBatch([
        { ...base, status: 'succeeded' },
        { ...base, status: 'failed' },
      ]).map((r) => r.status),
    ).toEqual(['success', 'failed']);
    expect(() => ResultConverter.convert(undefined)).toThrow(
      expect.objectContaining({ code: 'MISSING_ARGUMENT' }),
    );
    expect(() => ResultConverter.convertBatch(null)).toThrow('taskResults is required');
  });
});
