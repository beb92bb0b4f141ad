/**
 * The seeds' entry points on a manifest: `ConcurrentExecutor.runManifest(manifest, token)` (and
 * its subclasses), and a seed-style execution function that returns a TestResult, whose
 * `tokensUsed` and `cost` the seeds' converter read from it (issue #18, items 8 and 19).
 */

import { describe, expect, it } from 'vitest';
import {
  CancellationToken,
  ConcurrentExecutor,
  StubExecutor,
  TaskScheduler,
  VirtualClock,
} from '../../src/index.js';
import { parsePlan, type TestCase } from '../../src/plans/index.js';
import { TestStatus } from '../../src/report/convert.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { functionTarget } from '../../src/targets/function.js';
import { attempt } from '../targets/helpers.js';

const PLAN = `
workflow_id: seed-faces
cases:
  - { id: a, inputs: { query: one } }
  - { id: b, inputs: { query: two } }
  - { id: c, inputs: { query: three } }
execution_policy:
  concurrency: 2
  retry_policy: { max_attempts: 2, backoff_seconds: 1 }
`;

/** What the seed's own example function returned (seed 001, "With Custom Execution Function"). */
function seedResult(testCase: TestCase) {
  return {
    workflowId: 'seed-faces',
    executionId: testCase.id,
    timestamp: new Date(0),
    status: TestStatus.SUCCESS,
    executionTime: 1.0,
    tokensUsed: 100,
    cost: 0.002,
    inputs: testCase.inputs,
    outputs: { result: 'success' },
  };
}

describe('a seed-style function that returns a TestResult keeps its tokens and cost', () => {
  it('ExecutorService({ target: fn }): tokensUsed and cost reach the TestResult', async () => {
    const service = new ExecutorService({
      clock: new VirtualClock(),
      target: async (testCase) => seedResult(testCase),
    });
    const results = await service.executeTestPlan(parsePlan(PLAN));
    expect(results.map((r) => [r.executionId, r.status, r.tokensUsed, r.cost]).sort()).toEqual([
      ['a', 'success', 100, 0.002],
      ['b', 'success', 100, 0.002],
      ['c', 'success', 100, 0.002],
    ]);
  });

  it('a named function (target: { type: function }) too, and tokens_below sees them', async () => {
    const service = new ExecutorService({
      clock: new VirtualClock(),
      functions: { seed: async (testCase) => seedResult(testCase) },
    });
    const manifest = parsePlan(`
workflow_id: seed-faces
target: { type: function, name: seed }
cases:
  - { id: cheap, inputs: { q: 1 }, expected: { tokens_below: 101, cost_below: 0.0021 } }
  - { id: strict, inputs: { q: 2 }, expected: { tokens_below: 100 } }
`);
    const results = await service.executeTestPlan(manifest);
    const byId = Object.fromEntries(results.map((r) => [r.executionId, r]));
    expect(byId.cheap).toMatchObject({ status: 'success', tokensUsed: 100, cost: 0.002 });
    expect(byId.strict).toMatchObject({ status: 'failed', tokensUsed: 100 });
  });

  it('a function that reports usage itself is not counted twice', async () => {
    const service = new ExecutorService({
      clock: new VirtualClock(),
      target: async (testCase, ctx) => {
        ctx.reportUsage({ tokens: 7, cost: 0.5 });
        return seedResult(testCase);
      },
    });
    const [r] = await service.executeTestPlan(
      parsePlan('workflow_id: w\ncases: [{ id: x, inputs: {} }]'),
    );
    expect(r).toMatchObject({ tokensUsed: 7, cost: 0.5 });
  });

  it('ConcurrentExecutor({ taskExecutionFunc }) and functionTarget report them as usage', async () => {
    const executor = new ConcurrentExecutor<number, unknown>({
      clock: new VirtualClock(),
      taskExecutionFunc: async (task) => ({ status: 'success', tokensUsed: task.input, cost: 0.1 }),
    });
    const run = await executor.run([
      { id: 't1', input: 10 },
      { id: 't2', input: 20 },
    ]);
    expect(run.tasks.map((t) => t.usage).sort((x, y) => x.tokens - y.tokens)).toEqual([
      { tokens: 10, cost: 0.1 },
      { tokens: 20, cost: 0.1 },
    ]);
    // An output that merely has a cost field is not a TestResult: nothing is read from it.
    const plain = await attempt(
      functionTarget(async () => ({ cost: 99 })),
      {},
    );
    expect(plain.usage).toEqual([]);
    const seed = await attempt(
      functionTarget(async () => ({ status: 'success', tokensUsed: 3, cost: 0.25 })),
      {},
    );
    expect(seed.usage).toEqual([{ tokens: 3, cost: 0.25 }]);
  });
});

describe('ConcurrentExecutor.runManifest(manifest, token): the seeds entry point', () => {
  it('runs every case of the plan with its execution policy; tasks carry the TestCase', async () => {
    const seen: string[] = [];
    const executor = new ConcurrentExecutor<TestCase, string>({
      clock: new VirtualClock(),
      taskExecutionFunc: async (task) => {
        seen.push(task.id);
        return String(task.input.inputs.query).toUpperCase();
      },
    });
    const result = await executor.runManifest(parsePlan(PLAN));
    expect(result.status).toBe('completed');
    expect(result.statistics.succeededTasks).toBe(3);
    expect(result.tasks.map((t) => [t.id, t.output]).sort()).toEqual([
      ['a', 'ONE'],
      ['b', 'TWO'],
      ['c', 'THREE'],
    ]);
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
  });

  it('applies the manifest policy: retries of retry_policy, on the executor clock', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const executor = new ConcurrentExecutor<TestCase, string>({
      clock,
      taskExecutionFunc: async () => {
        calls++;
        throw Object.assign(new Error('upstream 503'), { status: 503 });
      },
    });
    const result = await executor.runManifest(parsePlan(PLAN));
    // max_attempts 2 for each of the 3 cases, backoff 1 s on the virtual clock.
    expect(calls).toBe(6);
    expect(result.statistics.errorTasks).toBe(3);
    expect(clock.now()).toBeGreaterThanOrEqual(1000);
  });

  it('a cancelled token resolves with the cases cancelled (StubExecutor, the seeds test)', async () => {
    const token = new CancellationToken();
    const stub = new StubExecutor({ clock: new VirtualClock(), simulatedDelay: 10_000 });
    const pending = stub.runManifest(parsePlan(PLAN), token);
    token.cancel();
    const result = await pending;
    expect(result.statistics.cancelledTasks).toBe(3);
  });

  it('TaskScheduler has it too; a missing or empty manifest is refused like the seeds', async () => {
    const scheduler = new TaskScheduler({ clock: new VirtualClock() });
    const result = await scheduler.runManifest(parsePlan(PLAN));
    expect(result.statistics.totalTasks).toBe(3);
    await expect(scheduler.runManifest(undefined)).rejects.toMatchObject({
      code: 'MISSING_ARGUMENT',
    });
    const empty = { ...parsePlan(PLAN), datasets: [] };
    await expect(scheduler.runManifest(empty)).rejects.toMatchObject({ code: 'EMPTY_PLAN' });
  });
});
