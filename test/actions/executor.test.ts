// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${steps...}` is action-plan syntax, not a template literal.
/**
 * The seed-004 Executor on the virtual clock: DAGs, cascades, cycles, rollback order, failing
 * compensations, pause / resume, cancel then rollback, every resource limit, validation.
 */

import { describe, expect, test } from 'vitest';
import {
  type ActionPlan,
  ActionPlanError,
  type ActionStep,
  Executor,
  type ExecutorOptions,
  ToolRegistry,
} from '../../src/actions/index.js';
import type { Tool } from '../../src/actions/tool.js';
import { HttpError, NonRetryableError, VirtualClock } from '../../src/core/index.js';

/** A world of side effects the tools change and the compensations undo. */
function world(clock: VirtualClock) {
  const state = new Map<string, unknown>();
  const log: string[] = [];
  const failures = new Map<string, number>(); // step id -> attempts that throw
  let running = 0;
  let peak = 0;
  const put: Tool<
    { key: string; value?: unknown; ms?: number; fail?: 'always' | 'network' | 'bad' },
    { key: string; previous: unknown }
  > = {
    name: 'put',
    schema: {
      type: 'object',
      properties: { key: { type: 'string' }, ms: { type: 'number', minimum: 0 } },
      required: ['key'],
    },
    async execute(args, ctx) {
      running++;
      peak = Math.max(peak, running);
      try {
        log.push(`do:${ctx.stepId}#${ctx.attempt}`);
        await clock.sleep(args.ms ?? 10, ctx.signal);
        const left = failures.get(ctx.stepId) ?? 0;
        if (args.fail === 'always') throw new NonRetryableError(`${ctx.stepId} refused`);
        if (args.fail === 'network' || left > 0) {
          failures.set(ctx.stepId, left - 1);
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        }
        const previous = state.get(args.key);
        state.set(args.key, args.value ?? ctx.stepId);
        return { key: args.key, previous };
      } finally {
        running--;
      }
    },
    async compensate(args, output, ctx) {
      log.push(`undo:${ctx.stepId}${output === undefined ? '?' : ''}`);
      await clock.sleep(5, ctx.signal);
      if (args.value === 'sticky') throw new Error(`cannot undo ${ctx.stepId}`);
      if (output === undefined || output.previous === undefined) state.delete(args.key);
      else state.set(args.key, output.previous);
    },
  };
  const net: Tool<{ n: number }, number> = {
    name: 'net',
    async execute(args, ctx) {
      for (let i = 0; i < args.n; i++) ctx.usage.networkRequest();
      await clock.sleep(1, ctx.signal);
      return args.n;
    },
  };
  const echo: Tool<Record<string, unknown>, unknown> = {
    name: 'echo',
    async execute(args) {
      return args;
    },
  };
  const tools = new ToolRegistry([put, net, echo] as Tool<never, unknown>[]);
  return { state, log, failures, tools, peak: () => peak };
}

function setup(options: Partial<ExecutorOptions> = {}) {
  const clock = new VirtualClock();
  const w = world(clock);
  const executor = new Executor({
    toolRegistry: w.tools,
    clock,
    random: () => 0.5,
    retryPolicy: { maxAttempts: 3, backoffMs: 100, jitter: 'none' },
    ...options,
  });
  return { clock, executor, ...w };
}

const put = (id: string, deps: string[] = [], args: Record<string, unknown> = {}): ActionStep => ({
  id,
  tool: 'put',
  arguments: { key: id, ...args },
  dependencies: deps,
});

describe('Executor: plans as DAGs', () => {
  test('a diamond runs in dependency order and passes outputs by reference', async () => {
    const { executor, log, state } = setup();
    const plan: ActionPlan = {
      id: 'diamond',
      steps: [
        put('a', [], { value: 'A' }),
        put('b', ['a']),
        put('c', ['a']),
        {
          id: 'd',
          tool: 'echo',
          arguments: {
            from: '${steps.a.output.key}',
            both: 'b=${steps.b.output.key} c=${steps.c.output.key}',
          },
          dependencies: ['b', 'c'],
        },
      ],
    };
    const result = await executor.executePlan(plan);
    expect(result.status).toBe('completed');
    expect(result.error).toBeUndefined();
    expect(log).toEqual(['do:a#1', 'do:b#1', 'do:c#1']);
    expect(result.stepResults.map((s) => [s.stepId, s.status])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
      ['c', 'completed'],
      ['d', 'completed'],
    ]);
    expect(result.stepResults[3]!.output).toEqual({ from: 'a', both: 'b=b c=c' });
    expect(state.get('a')).toBe('A');
    expect(result.resourceUsage.toolInvocations).toBe(4);
    expect(await executor.getExecutionStatus('diamond')).toBe('completed');
  });

  test('cycles, unknown dependencies and duplicate ids are rejected before anything runs', async () => {
    const { executor, log } = setup();
    const cyclic: ActionPlan = {
      id: 'p',
      steps: [put('a', ['c']), put('b', ['a']), put('c', ['b']), put('x'), put('x')],
    };
    const err = await executor.executePlan(cyclic).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActionPlanError);
    expect((err as ActionPlanError).code).toBe('PLAN_INVALID');
    expect((err as ActionPlanError).problems).toEqual([
      'duplicate id "x"',
      'dependency cycle: a -> c -> b -> a',
    ]);
    await expect(executor.executePlan({ id: 'q', steps: [put('a', ['ghost'])] })).rejects.toThrow(
      'task "a" depends on unknown task "ghost"',
    );
    expect(log).toEqual([]);
  });

  test('an unknown tool fails the plan with tool_not_found before any step runs', async () => {
    const { executor, log } = setup();
    const result = await executor.executePlan({
      id: 'p',
      steps: [put('a'), { id: 'b', tool: 'teleport', dependencies: ['a'] }],
    });
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'tool_not_found', retryable: false, stepId: 'b' });
    expect(result.error?.message).toContain('no tool "teleport"');
    expect(log).toEqual([]);
  });

  test('a failure cancels its dependents with "dependency failed"; independent branches go on', async () => {
    const { executor, log } = setup();
    const result = await executor.executePlan({
      id: 'p',
      steps: [
        put('a', [], { fail: 'always' }),
        put('b', ['a']),
        put('c', ['b']),
        put('x'),
        put('y', ['x']),
      ],
    });
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'tool_error', stepId: 'a', retryable: false });
    const by = new Map(result.stepResults.map((s) => [s.stepId, s]));
    expect(by.get('b')).toMatchObject({
      status: 'cancelled',
      error: 'dependency "a" failed',
      metadata: { cancelReason: 'dependency_failed:a' },
    });
    expect(by.get('c')?.metadata.cancelReason).toBe('dependency_failed:b');
    expect(by.get('y')?.status).toBe('completed');
    expect(log).not.toContain('do:b#1');
  });

  test('failFast stops the other branches at the first failure', async () => {
    const { executor } = setup({ failFast: true });
    const result = await executor.executePlan({
      id: 'p',
      steps: [
        put('a', [], { fail: 'always', ms: 5 }),
        put('slow', [], { ms: 1000 }),
        put('after', ['slow']),
      ],
    });
    expect(result.status).toBe('failed');
    expect(result.metadata.stoppedBy).toBe('fail_fast');
    const by = new Map(result.stepResults.map((s) => [s.stepId, s.status]));
    expect([by.get('slow'), by.get('after')]).toEqual(['cancelled', 'cancelled']);
  });

  test('retries what is retryable (network), with the count in the step result', async () => {
    const { executor, failures } = setup();
    failures.set('a', 2);
    const result = await executor.executePlan({ id: 'p', steps: [put('a')] });
    expect(result.status).toBe('completed');
    expect(result.stepResults[0]).toMatchObject({ status: 'completed', retryCount: 2 });
    const gaveUp = await executor.executePlan({
      id: 'p2',
      steps: [put('n', [], { fail: 'network' })],
    });
    expect(gaveUp.error).toMatchObject({ type: 'network', retryable: true, stepId: 'n' });
    expect(gaveUp.stepResults[0]?.retryCount).toBe(2);
  });

  test('validation: tool argument schemas and output rules fail the step, never retried', async () => {
    const { executor, log } = setup();
    const badArgs = await executor.executePlan({
      id: 'p',
      steps: [{ id: 'a', tool: 'put', arguments: { key: 7 } }],
    });
    expect(badArgs.error).toMatchObject({ type: 'validation', stepId: 'a' });
    expect(badArgs.error?.message).toContain('$.key: expected a string');
    expect(log).toEqual([]);
    const badOutput = await executor.executePlan({
      id: 'q',
      steps: [
        {
          id: 'e',
          tool: 'echo',
          arguments: { status: 'down' },
          validationRules: [{ path: '$.status', schema: { enum: ['up'] } }],
        },
        {
          id: 'f',
          tool: 'echo',
          arguments: { n: 3 },
          validationRules: [
            { predicate: (o) => (o as { n: number }).n > 5 || 'n must be above 5' },
          ],
        },
      ],
    });
    const by = new Map(badOutput.stepResults.map((s) => [s.stepId, s]));
    expect(by.get('e')).toMatchObject({ status: 'failed', retryCount: 0 });
    expect(by.get('e')?.error).toContain('output failed validation');
    expect(by.get('f')?.error).toContain('n must be above 5');
    expect(by.get('f')?.output).toEqual({ n: 3 }); // the answer is kept
  });
});

describe('Executor: saga rollback', () => {
  test('autoRollback runs compensations of completed steps in reverse completion order', async () => {
    const { executor, log, state } = setup({ autoRollback: true });
    const result = await executor.executePlan({
      id: 'p',
      steps: [
        put('a', [], { ms: 10 }),
        put('b', ['a'], { ms: 30 }),
        put('c', ['a'], { ms: 10 }),
        put('d', ['b', 'c'], { fail: 'always' }),
      ],
    });
    expect(result.status).toBe('failed');
    expect(log.filter((l) => l.startsWith('undo'))).toEqual(['undo:b', 'undo:c', 'undo:a']);
    expect(result.rollback).toMatchObject({ status: 'completed' });
    expect(
      result.rollback?.compensations.map((c) => [c.stepId, c.status, c.outcomeUnknown]),
    ).toEqual([
      ['b', 'compensated', false],
      ['c', 'compensated', false],
      ['a', 'compensated', false],
    ]);
    expect([...state.keys()]).toEqual([]);
  });

  test('a failing compensation is reported, the others still run, and a second rollback retries only it', async () => {
    const { executor, log, state } = setup();
    const result = await executor.executePlan({
      id: 'p',
      steps: [put('a'), put('b', ['a'], { value: 'sticky' }), put('c', ['b'], { fail: 'always' })],
    });
    expect(result.status).toBe('failed');
    const first = await executor.rollbackExecution('p');
    expect(first.status).toBe('failed');
    expect(first.compensations).toEqual([
      expect.objectContaining({
        stepId: 'b',
        status: 'failed',
        attempts: 3,
        error: 'cannot undo b',
      }),
      expect.objectContaining({ stepId: 'a', status: 'compensated', attempts: 1 }),
    ]);
    expect(state.has('a')).toBe(false);
    log.length = 0;
    const second = await executor.rollbackExecution('p');
    expect(log).toEqual(['undo:b', 'undo:b', 'undo:b']); // a is not undone twice
    expect(second.compensations.map((c) => [c.stepId, c.status])).toEqual([
      ['a', 'compensated'],
      ['b', 'failed'],
    ]);
  });

  test('cancel during a step, then rollback: the step in flight is compensated as an unknown outcome', async () => {
    const { executor, clock, log } = setup();
    const done = executor.executePlan({
      id: 'p',
      steps: [put('a'), put('b', ['a'], { ms: 1000 })],
    });
    await clock.sleep(50);
    expect(await executor.getExecutionStatus('p')).toBe('running');
    await executor.cancelExecution('p');
    const result = await done;
    expect(result.status).toBe('cancelled');
    expect(result.error?.type).toBe('cancelled');
    const rollback = await executor.rollbackExecution('p');
    expect(log.filter((l) => l.startsWith('undo'))).toEqual(['undo:b?', 'undo:a']);
    expect(rollback.compensations.map((c) => [c.stepId, c.outcomeUnknown])).toEqual([
      ['b', true],
      ['a', false],
    ]);
  });

  test('a timed-out step counts as an unknown outcome and is compensated too', async () => {
    const { executor, log } = setup({
      autoRollback: true,
      timeoutPolicy: { stepTimeoutMs: 100 },
      retryPolicy: { maxAttempts: 1 },
    });
    const result = await executor.executePlan({
      id: 'p',
      steps: [put('a'), put('b', ['a'], { ms: 500 })],
    });
    expect(result.error).toMatchObject({ type: 'timeout', stepId: 'b', retryable: true });
    expect(log.filter((l) => l.startsWith('undo'))).toEqual(['undo:b?', 'undo:a']);
  });

  test('a step that timed out and then failed plainly on its retry is still compensated', async () => {
    const { executor, log, failures } = setup({
      autoRollback: true,
      timeoutPolicy: { stepTimeoutMs: 100 },
      retryPolicy: { maxAttempts: 2, backoffMs: 10, jitter: 'none' },
    });
    failures.set('b', 0);
    // Attempt 1 of b hangs past its timeout (may have acted); attempt 2 fails with a plain error.
    let attempt = 0;
    executor.toolRegistry.register({
      name: 'flaky-put',
      async execute(_args: Record<string, unknown>, ctx) {
        attempt++;
        if (attempt === 1)
          await new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          );
        throw new NonRetryableError('409 conflict');
      },
      async compensate(_args: Record<string, unknown>, output, ctx) {
        log.push(`undo:${ctx.stepId}${output === undefined ? '?' : ''}`);
      },
    });
    const result = await executor.executePlan({
      id: 'p',
      steps: [put('a'), { id: 'b', tool: 'flaky-put', dependencies: ['a'] }],
    });
    expect(result.status).toBe('failed');
    expect(log.filter((l) => l.startsWith('undo'))).toEqual(['undo:b?', 'undo:a']);
  });

  test('rolling back a running plan is refused; an unknown plan is RUN_NOT_FOUND', async () => {
    const { executor, clock } = setup();
    const done = executor.executePlan({ id: 'p', steps: [put('a', [], { ms: 100 })] });
    await clock.sleep(1);
    await expect(executor.rollbackExecution('p')).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await done;
    await expect(executor.rollbackExecution('nope')).rejects.toMatchObject({
      code: 'RUN_NOT_FOUND',
    });
  });
});

describe('Executor: pause, resume, status', () => {
  test('pause in the middle of a plan: no step starts until resume; in-flight steps finish', async () => {
    const { executor, clock, log } = setup();
    const statuses: string[] = [];
    executor.on('plan', (e) => statuses.push(e.status));
    const done = executor.executePlan({
      id: 'p',
      steps: [put('a', [], { ms: 50 }), put('b', ['a']), put('c', ['b'])],
    });
    await clock.sleep(10);
    await executor.pauseExecution('p');
    expect(await executor.getExecutionStatus('p')).toBe('paused');
    await clock.sleep(1000);
    expect(log).toEqual(['do:a#1']); // a finished while paused; b did not start
    await executor.resumeExecution('p');
    const result = await done;
    expect(result.status).toBe('completed');
    expect(log).toEqual(['do:a#1', 'do:b#1', 'do:c#1']);
    expect(statuses).toEqual(['running', 'paused', 'running', 'completed']);
    await expect(executor.resumeExecution('p')).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });
});

describe('Executor: resource limits', () => {
  test('maxToolInvocations: the plan fails with resource_exhausted naming the limit', async () => {
    const { executor, log } = setup({ resourceLimits: { maxToolInvocations: 2 } });
    const result = await executor.executePlan({
      id: 'p',
      steps: [put('a'), put('b', ['a']), put('c', ['b'])],
    });
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({
      type: 'resource_exhausted',
      limit: 'max_tool_invocations',
      retryable: false,
    });
    expect(log).toEqual(['do:a#1', 'do:b#1']);
    expect(result.resourceUsage.toolInvocations).toBe(2);
  });

  test('maxToolInvocations holds for steps starting together with a journal to flush first', async () => {
    const { MemoryStore } = await import('../../src/store/index.js');
    const { executor, log } = setup({
      resourceLimits: { maxToolInvocations: 1 },
      maxConcurrentSteps: 4,
      store: new MemoryStore(),
    });
    const result = await executor.executePlan({ id: 'p', steps: [put('a'), put('b'), put('c')] });
    expect(result.error).toMatchObject({
      type: 'resource_exhausted',
      limit: 'max_tool_invocations',
    });
    expect(log).toHaveLength(1);
  });

  test('maxNetworkRequests counts what tools report', async () => {
    const { executor } = setup({ resourceLimits: { maxNetworkRequests: 5 } });
    const result = await executor.executePlan({
      id: 'p',
      steps: [
        { id: 'n1', tool: 'net', arguments: { n: 3 } },
        { id: 'n2', tool: 'net', arguments: { n: 3 }, dependencies: ['n1'] },
      ],
    });
    expect(result.error).toMatchObject({
      type: 'resource_exhausted',
      limit: 'max_network_requests',
    });
    expect(result.resourceUsage.networkRequests).toBe(5);
  });

  test('maxExecutionTimeMs: the deadline fails the plan', async () => {
    const { executor } = setup({ resourceLimits: { maxExecutionTimeMs: 100 } });
    const result = await executor.executePlan({
      id: 'p',
      steps: [put('a', [], { ms: 60 }), put('b', ['a'], { ms: 60 })],
    });
    expect(result.error).toMatchObject({ type: 'resource_exhausted', limit: 'max_execution_time' });
    expect(result.stepResults.map((s) => s.status)).toEqual(['completed', 'cancelled']);
  });

  test('maxConcurrentSteps bounds the steps running at once', async () => {
    const { executor, peak } = setup({
      maxConcurrentSteps: 8,
      resourceLimits: { maxConcurrentSteps: 3 },
    });
    const steps = Array.from({ length: 10 }, (_, i) => put(`s${i}`));
    const result = await executor.executePlan({ id: 'p', steps });
    expect(result.status).toBe('completed');
    expect(peak()).toBe(3);
  });

  test('maxMemoryMb: the sampled resident memory over the ceiling stops the plan', async () => {
    const { executor } = setup({ resourceLimits: { maxMemoryMb: 1 } });
    const result = await executor.executePlan({ id: 'p', steps: [put('a'), put('b', ['a'])] });
    expect(result.error).toMatchObject({ type: 'resource_exhausted', limit: 'max_memory_mb' });
    expect(result.resourceUsage.memoryPeakMb).toBeGreaterThan(1);
  });

  test('invalid options throw at construction with the field and the value', () => {
    expect(() => new Executor({ maxConcurrentSteps: 0 })).toThrow(
      'invalid option maxConcurrentSteps: 0 (expected an integer >= 1)',
    );
    expect(() => new Executor({ resourceLimits: { maxToolInvocations: -1 } })).toThrow(
      'resourceLimits.maxToolInvocations: -1',
    );
    expect(() => new Executor({ resourceLimits: { maxCpuCores: 4 } as never })).toThrow(
      'resourceLimits.maxCpuCores: 4',
    );
    expect(() => new Executor({ autoRollback: 'yes' as never })).toThrow('autoRollback: "yes"');
  });
});

describe('Executor: the seed-004 examples', () => {
  test('basic plan execution: status, execution time, steps completed', async () => {
    const { executor } = setup({ maxConcurrentSteps: 4 });
    const result = await executor.executePlan({ id: 'basic', steps: [put('a'), put('b')] });
    expect(result.status).toBe('completed');
    expect(result.executionTime).toBe(10);
    expect(result.stepResults).toHaveLength(2);
  });

  test('step-by-step monitoring: getExecutionStatus while running, then completed', async () => {
    const { executor, clock } = setup();
    const handle = executor.executePlan({ id: 'mon', steps: [put('a', [], { ms: 3000 })] });
    const seen: string[] = [];
    for (;;) {
      const status = await executor.getExecutionStatus('mon');
      seen.push(status);
      if (status !== 'running') break;
      await clock.sleep(1000);
    }
    await handle;
    expect(seen).toEqual(['running', 'running', 'running', 'completed']);
  });

  test('rollback on failure: error message and retryable flag', async () => {
    const { executor } = setup({ autoRollback: true });
    const result = await executor.executePlan({
      id: 'rb',
      steps: [put('a'), put('b', ['a'], { fail: 'network' })],
    });
    expect(result.status).toBe('failed');
    expect(result.error?.retryable).toBe(true);
    expect(result.rollback?.status).toBe('completed');
    expect(await executor.rollbackExecution('rb')).toMatchObject({ status: 'completed' }); // nothing left to undo
  });

  test('tool integration: executeStep with a custom tool', async () => {
    const { executor } = setup();
    const step: ActionStep = {
      id: 'one',
      tool: 'echo',
      arguments: { inputFile: 'data.txt', outputFormat: 'json' },
      expectedDurationMs: 30_000,
    };
    const result = await executor.executeStep(step, {});
    expect(result).toMatchObject({
      stepId: 'one',
      status: 'completed',
      output: { inputFile: 'data.txt', outputFormat: 'json' },
    });
    const ref = await executor.executeStep(
      { id: 'two', tool: 'echo', arguments: { v: '${steps.one.output.inputFile}' } },
      { outputs: { one: result.output } },
    );
    expect(ref.output).toEqual({ v: 'data.txt' });
    const missing = await executor.executeStep({ id: 'x', tool: 'nope' });
    expect(missing).toMatchObject({ status: 'failed', metadata: { errorType: 'tool_not_found' } });
  });

  test('performance monitoring: measured resource usage and per-step retries', async () => {
    const { executor, failures } = setup();
    failures.set('b', 1);
    const result = await executor.executePlan({
      id: 'perf',
      steps: [put('a'), put('b'), { id: 'n', tool: 'net', arguments: { n: 2 } }],
    });
    const u = result.resourceUsage;
    expect(u.toolInvocations).toBe(4);
    expect(u.networkRequests).toBe(2);
    expect(u.cpuTimeMs).toBeGreaterThan(0);
    expect(u.memoryPeakMb).toBeGreaterThan(0);
    expect(result.stepResults.find((s) => s.stepId === 'b')?.retryCount).toBe(1);
  });

  test('HTTP errors from tools: 5xx retried, 4xx not', async () => {
    const { executor } = setup();
    let calls = 0;
    executor.toolRegistry.register({
      name: 'api',
      async execute(args: { status: number }) {
        calls++;
        throw new HttpError(args.status, `HTTP ${args.status}`);
      },
    });
    await executor.executePlan({
      id: 'h1',
      steps: [{ id: 'a', tool: 'api', arguments: { status: 503 } }],
    });
    expect(calls).toBe(3);
    calls = 0;
    await executor.executePlan({
      id: 'h2',
      steps: [{ id: 'a', tool: 'api', arguments: { status: 404 } }],
    });
    expect(calls).toBe(1);
  });
});
