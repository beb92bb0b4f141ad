/**
 * The targets under the real engine, over real sockets: what the mock sees is what a provider
 * would see. Counts and orders only; never elapsed wall time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Run, type TaskSpec, type TaskTransition } from '../../src/core/index.js';
import { type MockOptions, type MockServer, startMock } from '../../src/mock/index.js';
import {
  type ClosableTarget,
  createTarget,
  type DifyApp,
  DifyTarget,
} from '../../src/targets/index.js';

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
): ClosableTarget {
  const t = createTarget(
    { type: 'dify', baseUrl: m.baseUrl, apiKey, app, responseMode, user: 'engine-test' },
    concurrency === undefined ? {} : { concurrency },
  );
  targets.push(t);
  return t;
}

/** Waits for a state of the mock (its socket events run on the same loop as the test). */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

afterEach(async () => {
  await Promise.all(targets.splice(0).map((t) => t.close()));
  await mock?.close();
  mock = undefined;
});

describe('a hanging stream that times out or is cancelled gets its stop call', () => {
  for (const app of ['workflow', 'chat', 'completion'] as const) {
    it(`${app}: timeout -> stop endpoint called with the run's task_id and user`, async () => {
      const m = await mockWith({ pingIntervalMs: 5, recordRequests: true });
      const t = difyTarget(m, app);
      const run = new Run([{ id: 'hang', input: { inputs: { __fault: 'hang' }, query: 'q' } }], t, {
        timeoutMs: 80,
        retry: { maxAttempts: 1 },
      });
      const result = await run.start();
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
      onEvent: (e) => {
        if (e.event === 'workflow_started') controller.abort('user pressed ctrl-c');
      },
    });
    targets.push(t);
    const run = new Run([{ id: 'c', input: { inputs: { __fault: 'hang' } } }], t, {
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
    const result = await new Run([{ id: 'b', input: { inputs: { __fault: 'hang' } } }], t, {
      timeoutMs: 50,
      retry: { maxAttempts: 2, backoffMs: 1 },
    }).start();
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
      const t = difyTarget(m, 'workflow', mode, concurrency);
      const cases: TaskSpec[] = Array.from({ length: 48 }, (_, i) => ({
        id: `c${i}`,
        input: { inputs: { query: `case ${i}`, ...(i % 4 === 0 ? { __fault: 'hang' } : {}) } },
      }));
      const result = await new Run(cases, t, {
        concurrency,
        timeoutMs: 40,
        retry: { maxAttempts: 2, backoffMs: 1 },
      }).start();
      const s = result.statistics;
      expect(s.timeoutTasks).toBe(12);
      expect(s.succeededTasks).toBe(36);
      const stats = m.stats();
      expect(stats.runs).toBe(36 + 12 * 2);
      expect(stats.peakInFlight).toBeLessThanOrEqual(concurrency);
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
    expect(m.stats().peakInFlight).toBe(3);
  });
});

describe('retries cost exactly what the engine decides', () => {
  const cases: [string, number, string, 'error' | 'failed'][] = [
    ['429', 4, 'RATE_LIMITED', 'error'],
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
          retry: { maxAttempts: 4, backoffMs: 1 },
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
      retry: { maxAttempts: 2, backoffMs: 1 },
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

  it('keeps the tokens per window the mock sees within the budget (a scaled-down minute)', async () => {
    const tokens = 100;
    const burst = 200;
    const perMinute = 60_000; // 1,000 tokens per second
    const windowMs = 250;
    const limit = burst + (perMinute / 60_000) * windowMs;
    const cases = Array.from({ length: 8 }, (_, i) => ({ input: { inputs: { query: `q${i}` } } }));

    // Without a budget, the whole plan lands at once: the check below can fail.
    const free = await mockWith({ tokens, latencyMs: 2 });
    const t1 = difyTarget(free, 'workflow', 'blocking');
    await new Run(cases, t1, { concurrency: 8 }).start();
    expect(free.maxInWindow(windowMs, 'tokens')).toBeGreaterThan(limit + tokens);
    await free.close();

    const m = await mockWith({ tokens, latencyMs: 2 });
    const t2 = difyTarget(m, 'workflow', 'blocking');
    const result = await new Run(cases, t2, {
      concurrency: 8,
      tokens: { perMinute, burst, estimate: tokens },
    }).start();
    expect(result.statistics.succeededTasks).toBe(8);
    expect(result.statistics.tokens).toBe(800);
    // One request of slack for the delay between an attempt's start and its arrival.
    expect(m.maxInWindow(windowMs, 'tokens')).toBeLessThanOrEqual(limit + tokens);
    expect(m.maxInWindow(1_000, 'tokens')).toBeLessThanOrEqual(burst + perMinute / 60 + tokens);
  });
});
