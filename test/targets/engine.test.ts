/**
 * The targets under the real engine, over real sockets: what the mock sees is what a provider
 * would see. Counts and orders only; never elapsed wall time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  Run,
  type RunExecutionResult,
  type TaskSpec,
  type TaskTransition,
  VirtualClock,
} from '../../src/core/index.js';
import { type MockOptions, type MockServer, startMock } from '../../src/mock/index.js';
import {
  type ClosableTarget,
  createTarget,
  type DifyApp,
  DifyTarget,
  type DifyTargetOptions,
} from '../../src/targets/index.js';
import { maxInWindow, runOnClock, until } from '../core/harness.js';

let mock: MockServer | undefined;
const targets: { close(): Promise<void> }[] = [];

async function mockWith(options: MockOptions = {}): Promise<MockServer> {
  mock = await startMock(options);
  return mock;
}

function difyTarget(
  m: MockServer,
  app: DifyApp = 'workflow',
  responseMode: 'blocking' | 'streaming' = 'streaming',
  concurrency?: number,
  apiKey = 'app-engine-test',
  extra: Partial<DifyTargetOptions> = {},
): ClosableTarget {
  const t = createTarget(
    { type: 'dify', baseUrl: m.baseUrl, apiKey, app, responseMode, user: 'engine-test', ...extra },
    concurrency === undefined ? {} : { concurrency },
  );
  targets.push(t);
  return t;
}

/** A stop call that is never abandoned: its default 500 ms bound is a real timer that load can beat. */
const STOP_ALWAYS = { stopTimeoutMs: 60_000 } as const;

afterEach(async () => {
  await Promise.all(targets.splice(0).map((t) => t.close()));
  await mock?.close();
  mock = undefined;
});

describe('a hanging stream that times out or is cancelled gets its stop call', () => {
  for (const app of ['workflow', 'chat', 'completion'] as const) {
    it(`${app}: timeout -> stop endpoint called with the run's task_id and user`, async () => {
      const m = await mockWith({ pingIntervalMs: 5, recordRequests: true });
      let events = 0;
      const t = difyTarget(m, app, 'streaming', undefined, undefined, {
        ...STOP_ALWAYS,
        onEvent: (e) => {
          if (e.task_id !== undefined) events++;
        },
      });
      const clock = new VirtualClock({ autoAdvance: false });
      const run = new Run([{ id: 'hang', input: { inputs: { __fault: 'hang' }, query: 'q' } }], t, {
        clock,
        timeoutMs: 80,
        retry: { maxAttempts: 1 },
      });
      // The timeout fires once the client has the run's task_id and the mock has pinged.
      const result = await runOnClock(run, clock, () => events > 0 && m.stats().pings > 0);
      expect(result.tasks[0]!.status).toBe('timeout');
      const stats = m.stats();
      expect(stats.stops).toBe(1);
      expect(stats.stoppedLive).toBe(1);
      expect(stats.orphaned).toBe(0);
      expect(stats.pings).toBeGreaterThan(0);
      const stop = m.requests().find((r) => r.endpoint === 'stop')!;
      const prefix = app === 'workflow' ? '/v1/workflows/tasks/' : `/v1/${app}-messages/`;
      expect(stop.path).toBe(`${prefix}${stats.stoppedTaskIds[0]}/stop`);
      expect(stop.body).toEqual({ user: 'engine-test' });
      await until(() => m.stats().inFlight === 0, 'the hung request to close');
      expect(m.stats().aborted).toBe(1);
    });
  }

  it('cancel during a stream -> stop call; the task ends cancelled, not failed', async () => {
    const m = await mockWith({ pingIntervalMs: 5 });
    const controller = new AbortController();
    const t = new DifyTarget({
      baseUrl: m.baseUrl,
      apiKey: 'app-x',
      ...STOP_ALWAYS,
      onEvent: (e) => {
        if (e.event === 'workflow_started') controller.abort('user pressed ctrl-c');
      },
    });
    targets.push(t);
    // The timeout is there to be beaten by the cancel: on a clock that never moves, it always is.
    const run = new Run([{ id: 'c', input: { inputs: { __fault: 'hang' } } }], t, {
      clock: new VirtualClock({ autoAdvance: false }),
      timeoutMs: 5_000,
      signal: controller.signal,
    });
    const result = await run.start();
    expect(result.status).toBe('cancelled');
    expect(result.tasks[0]!.status).toBe('cancelled');
    expect(m.stats().stops).toBe(1);
    expect(m.stats().stoppedLive).toBe(1);
  });

  it('a blocking hang that times out closes its socket (no stop call: Dify cannot stop blocking runs)', async () => {
    const m = await mockWith();
    const t = difyTarget(m, 'workflow', 'blocking');
    const clock = new VirtualClock({ autoAdvance: false });
    const run = new Run([{ id: 'b', input: { inputs: { __fault: 'hang', __case: 'b' } } }], t, {
      clock,
      timeoutMs: 50,
      retry: { maxAttempts: 2, backoffMs: 1 },
    });
    // Each attempt times out only once its request hangs at the mock.
    const result = await runOnClock(run, clock, (running) =>
      [...running].every(([id, attempt]) => (m.stats().byCase[id] ?? 0) >= attempt),
    );
    expect(result.tasks[0]!.status).toBe('timeout');
    await until(() => m.stats().inFlight === 0, 'both hung requests to close');
    expect(m.stats().aborted).toBe(2);
    expect(m.stats().stops).toBe(0);
  });
});

describe('concurrency as the mock sees it', () => {
  for (const mode of ['blocking', 'streaming'] as const) {
    it(`${mode}: peak in-flight never exceeds the concurrency, also while attempts time out`, async () => {
      const m = await mockWith({ latencyMs: { min: 2, max: 12 }, pingIntervalMs: 5, seed: 7 });
      const concurrency = 6;
      // Which attempts time out is decided by the server, not by the machine's speed: only the
      // hanging cases have a timeout, on a virtual clock, and an answer never races a timer.
      const clock = new VirtualClock({ autoAdvance: false });
      const started = new Map<string, number>(); // task -> workflow_started events read
      const t = difyTarget(m, 'workflow', mode, concurrency, undefined, {
        ...STOP_ALWAYS,
        onEvent: (e, ctx) => {
          if (e.event === 'workflow_started')
            started.set(ctx.taskId, (started.get(ctx.taskId) ?? 0) + 1);
        },
      });
      const hang = (i: number) => i % 4 === 0;
      const cases: TaskSpec[] = Array.from({ length: 48 }, (_, i) => ({
        id: `c${i}`,
        input: {
          inputs: { query: `case ${i}`, __case: `c${i}`, ...(hang(i) ? { __fault: 'hang' } : {}) },
        },
        ...(hang(i) ? { timeoutMs: 40 } : {}),
      }));
      const run = new Run(cases, t, {
        concurrency,
        clock,
        retry: { maxAttempts: 2, backoffMs: 1 },
      });
      // Time moves once nothing but hangs hold the slots, each at the mock (and, streaming,
      // its task_id read). So before it first moves, all six slots hold hangs at the mock.
      const result = await runOnClock(run, clock, (running) =>
        [...running].every(
          ([id, attempt]) =>
            hang(Number(id.slice(1))) &&
            (m.stats().byCase[id] ?? 0) >= attempt &&
            (mode === 'blocking' || (started.get(id) ?? 0) >= attempt),
        ),
      );
      const s = result.statistics;
      expect(s.timeoutTasks).toBe(12);
      expect(s.succeededTasks).toBe(36);
      const stats = m.stats();
      expect(stats.runs).toBe(36 + 12 * 2);
      expect(stats.peakInFlight).toBe(concurrency);
      expect(stats.stops).toBe(mode === 'streaming' ? 24 : 0);
    });
  }

  it('the connection pool is sized to the concurrency it is given', async () => {
    const m = await mockWith({ latencyMs: 5 });
    const t = difyTarget(m, 'workflow', 'blocking', 3);
    const cases = Array.from({ length: 20 }, (_, i) => ({ input: { query: `q${i}` } }));
    const result = await new Run(cases, t, { concurrency: 10 }).start();
    expect(result.statistics.succeededTasks).toBe(20);
    expect(m.stats().runs).toBe(20);
    expect(m.stats().peakInFlight).toBeLessThanOrEqual(3);
    await m.close();

    // Full, not just never exceeded: ten hanging attempts in the engine hold the pool's three
    // connections at the mock (hangs never give one back, whatever the machine's speed).
    const h = await mockWith();
    const th = difyTarget(h, 'workflow', 'blocking', 3);
    const hangs = Array.from({ length: 10 }, (_, i) => ({
      input: { inputs: { __fault: 'hang', __case: `h${i}` } },
    }));
    const run = new Run(hangs, th, { concurrency: 10 });
    const done = run.start();
    await until(() => run.progress.running === 10 && h.stats().inFlight === 3, 'the pool to fill');
    run.cancel();
    expect((await done).statistics.cancelledTasks).toBe(10);
    expect(h.stats().peakInFlight).toBe(3);
  });
});

describe('retries cost exactly what the engine decides', () => {
  // max_attempts 4 and max_rate_limit_retries 5: a 429 is refused before any work, so it spends
  // the second bound (1 + 5 requests), every other retried fault the first.
  const cases: [string, number, string, 'error' | 'failed'][] = [
    ['429', 6, 'RATE_LIMITED', 'error'],
    ['500', 4, 'HTTP_ERROR', 'error'],
    ['502', 4, 'HTTP_ERROR', 'error'],
    ['503', 4, 'HTTP_ERROR', 'error'],
    ['504', 4, 'HTTP_ERROR', 'error'],
    ['reset', 4, 'NETWORK_ERROR', 'error'],
    ['400', 1, 'HTTP_ERROR', 'error'],
    ['404', 1, 'HTTP_ERROR', 'error'],
    ['401', 1, 'AUTH_ERROR', 'error'],
    ['403', 1, 'AUTH_ERROR', 'error'],
  ];
  for (const [fault, requests, code, status] of cases) {
    it(`a case that always gets ${fault} costs exactly ${requests} upstream request(s)`, async () => {
      const m = await mockWith();
      const t = difyTarget(m, 'workflow', 'blocking');
      const result = await new Run(
        [{ id: 'x', input: { inputs: { __fault: fault, __case: 'x' } } }],
        t,
        {
          retry: { maxAttempts: 4, maxRateLimitRetries: 5, backoffMs: 1 },
        },
      ).start();
      const task = result.tasks[0]!;
      expect(task.status).toBe(status);
      expect(task.error?.code).toBe(code);
      expect(task.attempts).toBe(requests);
      expect(m.stats().byCase).toEqual({ x: requests });
    });
  }

  it("Retry-After is honoured: the retry waits the server's delay, not the backoff", async () => {
    const m = await mockWith({ retryAfterSeconds: 0.05 });
    const t = difyTarget(m, 'workflow', 'streaming');
    const run = new Run([{ id: 'r', input: { inputs: { __fault: '429-retry-after' } } }], t, {
      retry: { maxAttempts: 2, maxRateLimitRetries: 1, backoffMs: 1 },
      rate: { perMinute: 60_000, burst: 10 },
    });
    const pending: TaskTransition[] = [];
    const cool: number[] = [];
    run.on('transition', (e) => {
      if (e.to === 'pending') pending.push(e);
    });
    run.on('coolDown', (e) => cool.push(e.ms));
    await run.start();
    expect(pending.map((e) => e.to === 'pending' && e.retryInMs)).toEqual([50]);
    expect(cool).toEqual([50, 50]);
    expect(m.stats().runs).toBe(2);
  });

  it('three 401s in a row stop the run: a wrong key costs three requests, not the plan', async () => {
    const m = await mockWith({ apiKeys: ['app-right'] });
    const t = difyTarget(m, 'workflow', 'blocking', 1, 'app-wrong');
    const cases = Array.from({ length: 10 }, (_, i) => ({ input: { query: `q${i}` } }));
    const result = await new Run(cases, t, { concurrency: 1 }).start();
    expect(result.status).toBe('stopped');
    expect(result.stoppedBy?.rule).toBe('auth_errors');
    expect(m.stats().runs).toBe(3);
    expect(result.statistics.cancelledTasks).toBe(7);
  });
});

describe('resumed and repeated cases send what they should and no more', () => {
  it('a flaky case is sent twice (same body), the others once', async () => {
    const m = await mockWith({ recordRequests: true });
    const t = difyTarget(m, 'workflow', 'blocking');
    const cases = [
      { id: 'a', input: { inputs: { query: 'a' } } },
      { id: 'b', input: { inputs: { query: 'b', __fault: '503', __fault_times: 1 } } },
      { id: 'c', input: { inputs: { query: 'c' } } },
    ];
    const result = await new Run(cases, t, { retry: { maxAttempts: 3, backoffMs: 1 } }).start();
    expect(result.statistics.succeededTasks).toBe(3);
    expect(m.stats().byCase).toEqual({ a: 1, b: 2, c: 1 });
    const bodies = m
      .requests()
      .filter((r) => r.caseKey === 'b')
      .map((r) => r.body);
    expect(bodies).toHaveLength(2);
    expect(bodies[0]).toEqual(bodies[1]);
    expect(bodies[0]).toEqual({
      inputs: cases[1]!.input.inputs,
      response_mode: 'blocking',
      user: 'engine-test',
    });
  });

  it('a resumed case keeps its attempt count: only the attempts left are sent', async () => {
    const m = await mockWith();
    const t = difyTarget(m, 'workflow', 'blocking');
    const result = await new Run(
      [{ id: 'r', input: { inputs: { query: 'r', __fault: '500' } }, attemptsBefore: 2 }],
      t,
      { retry: { maxAttempts: 3, backoffMs: 1 } },
    ).start();
    expect(result.tasks[0]!.attempts).toBe(3);
    expect(m.stats().byCase).toEqual({ r: 1 });
  });

  it('running the same plan twice sends each case exactly twice; the target never retries on its own', async () => {
    const m = await mockWith();
    const t = difyTarget(m, 'workflow', 'streaming');
    const cases = [
      { id: 'ok', input: { inputs: { query: 'ok' } } },
      { id: 'bad', input: { inputs: { query: 'bad', __fault: '502' } } },
    ];
    for (let i = 0; i < 2; i++) await new Run(cases, t, { retry: { maxAttempts: 1 } }).start();
    expect(m.stats().byCase).toEqual({ ok: 2, bad: 2 });
  });
});

describe('usage and the token budget', () => {
  it('reports usage on every attempt, failed ones included: the run total equals what the mock charged', async () => {
    const m = await mockWith({ tokens: 120 });
    const t = difyTarget(m, 'workflow', 'streaming');
    const cases = [
      { input: { inputs: { query: 'a' } } },
      { input: { inputs: { query: 'b', __fault: 'failed' } } },
      { input: { inputs: { query: 'c', __fault: 'stream-error-400' } } },
    ];
    const result = await new Run(cases, t).start();
    expect(result.statistics.succeededTasks).toBe(1);
    expect(result.statistics.failedTasks).toBe(1);
    expect(m.stats().tokens).toBe(240);
    expect(result.statistics.tokens).toBe(240);
    expect(result.statistics.cost).toBeCloseTo(2 * (90 * 0.000001 + 30 * 0.000002), 9);
  });

  it("keeps the tokens per window within the budget, at the attempts' starts (a scaled-down minute)", async () => {
    const tokens = 100;
    const burst = 200;
    const perMinute = 60_000; // 1,000 tokens per second
    const windowMs = 250;
    const limit = burst + (perMinute / 60_000) * windowMs;
    const cases = Array.from({ length: 8 }, (_, i) => ({ input: { inputs: { query: `q${i}` } } }));
    // Windows are measured at the engine's own record of each start (the time it took the
    // tokens), weighted by what the mock charged that attempt; arrival times at the mock trail
    // the starts by a transit time that CPU load stretches and bunches.
    const peak = (result: RunExecutionResult<unknown, unknown>, w: number): number => {
      for (const task of result.tasks) {
        expect(task.attempts).toBe(1);
        expect(task.usage.tokens).toBe(tokens);
      }
      return (
        maxInWindow(
          result.tasks.map((task) => task.startedAt!),
          w,
        ).count * tokens
      );
    };

    // Without a budget, the whole plan starts at once: the check below can fail.
    const free = await mockWith({ tokens, latencyMs: 2 });
    const t1 = difyTarget(free, 'workflow', 'blocking');
    const unlimited = await new Run(cases, t1, { concurrency: 8 }).start();
    expect(peak(unlimited, windowMs)).toBeGreaterThan(limit);
    await free.close();

    const m = await mockWith({ tokens, latencyMs: 2 });
    const t2 = difyTarget(m, 'workflow', 'blocking');
    const result = await new Run(cases, t2, {
      concurrency: 8,
      tokens: { perMinute, burst, estimate: tokens },
    }).start();
    expect(result.statistics.succeededTasks).toBe(8);
    expect(result.statistics.tokens).toBe(800);
    expect(m.stats().tokens).toBe(800);
    expect(peak(result, windowMs)).toBeLessThanOrEqual(limit);
    expect(peak(result, 1_000)).toBeLessThanOrEqual(burst + perMinute / 60);
  });
});
