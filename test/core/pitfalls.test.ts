/**
 * One regression test per pitfall the anchors fell into (docs: /work/shared/style.md), each
 * named after its symptom. Everything runs on the VirtualClock: assertions are on order traces
 * and counts, never on wall time.
 */

import { describe, expect, it } from 'vitest';
import {
  HttpError,
  RateLimitedError,
  RateLimiterRegistry,
  Run,
  type TaskSpec,
  VirtualClock,
} from '../../src/core/index.js';
import { maxInWindow, settleOrStall } from './harness.js';
import { target, untilAborted, virtualRun } from './helpers.js';

/** Counts attempts running at once, from inside the target (start to own promise settling). */
function gauge() {
  let running = 0;
  let max = 0;
  return {
    get running() {
      return running;
    },
    get max() {
      return max;
    },
    track<T>(work: () => Promise<T>): Promise<T> {
      running++;
      max = Math.max(max, running);
      const p = work();
      p.then(
        () => running--,
        () => running--,
      );
      return p;
    },
  };
}

describe('pitfalls of the anchors, as regressions', () => {
  it('does not free a concurrency slot when a timeout fires while the task still runs (p-queue: 10 ran under concurrency 2)', async () => {
    const clock = new VirtualClock();
    const g = gauge();
    const starts: number[] = [];
    // Ignores its signal: keeps running 1 s past its 100 ms timeout.
    const t = target((_task) =>
      g.track(async () => {
        starts.push(clock.now());
        await clock.sleep(1000);
        return 'late';
      }),
    );
    const { run } = virtualRun(10, t, {
      clock,
      concurrency: 2,
      timeoutMs: 100,
      retry: { maxAttempts: 1 },
    });
    const result = await run.start();
    expect(g.max).toBe(2);
    expect(starts).toEqual([0, 0, 1000, 1000, 2000, 2000, 3000, 3000, 4000, 4000]);
    expect(result.tasks.map((r) => r.status)).toEqual(Array(10).fill('timeout'));
    expect(result.statistics.attempts).toBe(10);
  });

  it('does not call the task again with an aborted signal after a cancel during backoff (cockatiel)', async () => {
    for (const via of ['run.cancel()', 'external AbortSignal'] as const) {
      const clock = new VirtualClock();
      const controller = new AbortController();
      const calls: { attempt: number; aborted: boolean; at: number }[] = [];
      const run = new Run(
        [{ id: 'only', input: 0 }],
        {
          async execute(_task, ctx) {
            calls.push({ attempt: ctx.attempt, aborted: ctx.signal.aborted, at: clock.now() });
            throw new Error('transient');
          },
        },
        {
          clock,
          retry: { maxAttempts: 5, backoffMs: 10_000 },
          ...(via === 'external AbortSignal' ? { signal: controller.signal } : {}),
        },
      );
      clock.schedule(3_000, () => (via === 'run.cancel()' ? run.cancel() : controller.abort()));
      const result = await run.start();
      // Resolved at the cancel, not after sleeping through the 10 s backoff.
      expect(result.finishedAt, via).toBe(3_000);
      expect(result.status, via).toBe('cancelled');
      expect(result.tasks[0], via).toMatchObject({ status: 'cancelled', attempts: 1 });
      await clock.sleep(60_000);
      expect(calls, via).toEqual([{ attempt: 1, aborted: false, at: 0 }]);
    }
  });

  it('never lets twice the limit through around a window edge (BullMQ/p-queue fixed windows)', async () => {
    const clock = new VirtualClock();
    // 5 arrive just before the minute edge, 5 just after it: a fixed window admits all 10 within
    // 200 ms. The token bucket admits the burst, then one per second.
    async function* arrivals(): AsyncGenerator<TaskSpec<number>> {
      await clock.sleep(59_900);
      for (let i = 0; i < 5; i++) yield { id: `before-${i}`, input: i };
      await clock.sleep(200);
      for (let i = 0; i < 5; i++) yield { id: `after-${i}`, input: i };
    }
    const starts: number[] = [];
    const run = new Run(
      arrivals(),
      {
        async execute() {
          starts.push(clock.now());
        },
      },
      { clock, concurrency: 20, rate: { perMinute: 60, burst: 5 } },
    );
    const result = await run.start();
    expect(result.statistics.succeededTasks).toBe(10);
    expect(starts).toEqual([
      59_900, 59_900, 59_900, 59_900, 59_900, 60_900, 61_900, 62_900, 63_900, 64_900,
    ]);
    expect(maxInWindow(starts, 200).count).toBe(5);
    expect(maxInWindow(starts, 1000).count).toBe(6);
  });

  it('frees the slot when a task throws (hono pool without finally)', async () => {
    const clock = new VirtualClock();
    const t = target<string>((task) => {
      switch (task.id) {
        case 't0':
          throw new Error('thrown synchronously, no promise at all');
        case 't1':
          return Promise.reject(new TypeError('a bug in the target'));
        case 't2':
          return (async () => {
            await clock.sleep(10);
            throw 'a thrown string';
          })();
        default:
          return clock.sleep(10).then(() => 'ok');
      }
    });
    const { run } = virtualRun(5, t, { clock, concurrency: 1, retry: { maxAttempts: 1 } });
    const result = await run.start();
    expect(t.starts.map((s) => s.id)).toEqual(['t0', 't1', 't2', 't3', 't4']);
    expect(Object.fromEntries(result.tasks.map((r) => [r.id, r.status]))).toEqual({
      t0: 'error',
      t1: 'error',
      t2: 'error',
      t3: 'succeeded',
      t4: 'succeeded',
    });
    expect(run.progress.running).toBe(0);
  });

  it('makes exactly 1 + maxRateLimitRetries upstream calls for an always-429 case, whatever maxAttempts (promptfoo stacked retries: 20 requests)', async () => {
    // A 429 is refused before any work: it does not spend maxAttempts (1 here), its own bound
    // does. With and without adaptive pace.
    const cases: [string, () => unknown, number | undefined, boolean][] = [
      ['Dify 429 without Retry-After', () => new HttpError(429, 'Too Many Requests'), 2, true],
      [
        '429 with Retry-After',
        () => new RateLimitedError('slow down', { retryAfterMs: 2000 }),
        3,
        true,
      ],
      [
        'default maxRateLimitRetries',
        () => new HttpError(429, 'Too Many Requests'),
        undefined,
        true,
      ],
      ['adaptive: false', () => new HttpError(429, 'Too Many Requests'), 2, false],
    ];
    for (const [label, make, maxRateLimitRetries, adaptive] of cases) {
      const calls = 1 + (maxRateLimitRetries ?? 10);
      const clock = new VirtualClock();
      let upstream = 0;
      const run = new Run(
        [{ id: 'c', input: 0 }],
        {
          async execute() {
            upstream++;
            throw make();
          },
        },
        {
          clock,
          adaptive,
          rate: { perMinute: 600, burst: 1 },
          retry: {
            backoffMs: 500,
            maxAttempts: 1,
            ...(maxRateLimitRetries === undefined ? {} : { maxRateLimitRetries }),
          },
        },
      );
      const result = await run.start();
      expect(upstream, label).toBe(calls);
      expect(result.tasks[0], label).toMatchObject({
        status: 'error',
        attempts: calls,
        error: { code: 'RATE_LIMITED' },
      });
      expect(result.tasks[0]!.error!.message, label).toContain(`refused ${calls} times`);
      expect(result.statistics.refused, label).toBe(calls);
    }
  });

  it('does not spend a rate token on a queued task that was cancelled (p-queue #219)', async () => {
    const clock = new VirtualClock();
    const limiters = new RateLimiterRegistry(clock);
    const rate = { perMinute: 60, burst: 1 };
    const starts: [string, number][] = [];
    const execute = async (task: { id: string }) => {
      starts.push([task.id, clock.now()]);
      await clock.sleep(200);
    };
    const a = new Run(
      ['a0', 'a1', 'a2'].map((id) => ({ id, input: id })),
      { key: 'provider', execute },
      { clock, limiters, rate, concurrency: 5 },
    );
    const aDone = a.start();
    await clock.sleep(500);
    a.cancel();
    const ra = await aDone;
    expect(
      ra.tasks
        .filter((r) => r.status === 'cancelled')
        .map((r) => r.id)
        .sort(),
    ).toEqual(['a1', 'a2']);
    // Half a token refilled since a0 took the only one; the cancelled tasks took nothing.
    expect(limiters.peek('provider')!.availableTokens).toBeCloseTo(0.5, 9);
    const b = new Run(
      ['b0', 'b1'].map((id) => ({ id, input: id })),
      { key: 'provider', execute },
      { clock, limiters, rate, concurrency: 5 },
    );
    await b.start();
    expect(starts).toEqual([
      ['a0', 0],
      ['b0', 1000],
      ['b1', 2000],
    ]);
  });

  it('starts no attempt and cancels every task when the signal is already aborted (p-queue #241)', async () => {
    const clock = new VirtualClock();
    async function* source(): AsyncGenerator<TaskSpec<number>> {
      for (let i = 0; i < 4; i++) {
        await clock.sleep(10);
        yield { id: `s${i}`, input: i };
      }
    }
    const sources = [
      ['array', () => Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, input: i }))],
      ['async iterable', source],
    ] as const;
    for (const [label, make] of sources) {
      const t = target(async () => 'ran');
      const run = new Run(make(), t, { clock, signal: AbortSignal.abort('shutting down') });
      const result = await run.start();
      expect(t.starts, label).toEqual([]);
      expect(result.status, label).toBe('cancelled');
      expect(result.statistics.attempts, label).toBe(0);
      expect(result.tasks.map((r) => r.id).sort(), label).toEqual(['s0', 's1', 's2', 's3']);
      for (const r of result.tasks) {
        expect(r.status, label).toBe('cancelled');
        expect(r.reason, label).toEqual({ kind: 'user', message: 'shutting down' });
      }
    }
  });

  it('does not retry a NonRetryableError from a different copy of the package (inngest #1241)', async () => {
    // A second copy: same name and code, different class, not instanceof ours.
    class NonRetryableError extends Error {
      override name = 'NonRetryableError';
      readonly code = 'NON_RETRYABLE';
    }
    const throwers: Record<string, () => unknown> = {
      class: () => new NonRetryableError('from another copy'),
      plain: () => ({ name: 'NonRetryableError', code: 'NON_RETRYABLE', message: 'serialised' }),
      nameOnly: () => Object.assign(new Error('by name'), { name: 'NonRetryableError' }),
      codeOnly: () => Object.assign(new Error('by code'), { code: 'NON_RETRYABLE' }),
    };
    const clock = new VirtualClock();
    const calls: string[] = [];
    const run = new Run(
      Object.keys(throwers).map((id) => ({ id, input: id })),
      {
        async execute(task) {
          calls.push(task.id);
          throw throwers[task.id]!();
        },
      },
      { clock, retry: { maxAttempts: 5, backoffMs: 10 } },
    );
    const result = await run.start();
    expect(calls.sort()).toEqual(['class', 'codeOnly', 'nameOnly', 'plain']);
    for (const r of result.tasks) {
      expect(r, r.id).toMatchObject({
        status: 'error',
        attempts: 1,
        error: { code: 'NON_RETRYABLE' },
      });
    }
  });

  it('resumes after pause({ abortInFlight: true }) (BullMQ PR #3982)', async () => {
    for (const when of ['after onPaused', 'while still pausing'] as const) {
      const clock = new VirtualClock();
      const t = target(async (_task, ctx) => {
        await clock.sleep(100, ctx.signal);
        return 'ok';
      });
      const { run } = virtualRun(4, t, { clock, concurrency: 2, retry: { maxAttempts: 1 } });
      const statuses: string[] = [];
      clock.schedule(50, () => {
        run.pause({ abortInFlight: true });
        statuses.push(run.status);
        if (when === 'while still pausing') run.resume();
      });
      const done = run.start();
      if (when === 'after onPaused') {
        await clock.sleep(50);
        await run.onPaused();
        statuses.push(run.status);
        await clock.sleep(250);
        run.resume();
        statuses.push(run.status);
      }
      const result = await done;
      expect(result.status, when).toBe('completed');
      expect(result.statistics.succeededTasks, when).toBe(4);
      // maxAttempts 1: the interrupted attempts did not spend the budget.
      expect(result.statistics.interrupted, when).toBe(2);
      expect(result.statistics.attempts, when).toBe(6);
      const starts = t.starts.map((s) => `${s.id}#${s.attempt}`);
      expect(starts, when).toEqual(['t0#1', 't1#1', 't0#2', 't1#2', 't2#1', 't3#1']);
      expect(
        t.starts.every((s) => !s.aborted),
        when,
      ).toBe(true);
      expect(statuses, when).toEqual(
        when === 'after onPaused' ? ['pausing', 'paused', 'running'] : ['pausing'],
      );
    }
  });

  it('does not start a retry whose backoff ends while paused (Bull #447)', async () => {
    const clock = new VirtualClock();
    const starts: [number, number][] = [];
    const t = target(async (_task, ctx) => {
      starts.push([ctx.attempt, clock.now()]);
      if (ctx.attempt === 1) throw new Error('transient');
      return 'ok';
    });
    const { run } = virtualRun(1, t, { clock, retry: { maxAttempts: 2, backoffMs: 1000 } });
    clock.schedule(500, () => run.pause());
    clock.schedule(3000, () => run.resume());
    const result = await run.start();
    expect(starts).toEqual([
      [1, 0],
      [2, 3000],
    ]);
    expect(result.tasks[0]!.status).toBe('succeeded');
  });

  it('does not start a task whose rate token refills, or that arrives, while paused (Bull #447)', async () => {
    const clock = new VirtualClock();
    const starts: [string, number][] = [];
    const execute = async (task: { id: string }) => {
      starts.push([task.id, clock.now()]);
    };
    // Rate: r1's token would refill at 1000, inside the pause.
    const rated = new Run(
      ['r0', 'r1', 'r2'].map((id) => ({ id, input: id })),
      { execute },
      { clock, concurrency: 5, rate: { perMinute: 60, burst: 1 } },
    );
    clock.schedule(500, () => rated.pause());
    clock.schedule(5000, () => rated.resume());
    await rated.start();
    expect(starts).toEqual([
      ['r0', 0],
      ['r1', 5000],
      ['r2', 6000],
    ]);

    // Arrival: a1 comes out of the source at 1000, inside the pause (500 to 2000).
    starts.length = 0;
    const clock2 = new VirtualClock({ start: 0 });
    async function* arrivals(): AsyncGenerator<TaskSpec<string>> {
      yield { id: 'a0', input: 'a0' };
      await clock2.sleep(1000);
      yield { id: 'a1', input: 'a1' };
    }
    const streamed = new Run(
      arrivals(),
      {
        async execute(task) {
          starts.push([task.id, clock2.now()]);
        },
      },
      { clock: clock2 },
    );
    clock2.schedule(500, () => streamed.pause());
    clock2.schedule(2000, () => streamed.resume());
    await streamed.start();
    expect(starts).toEqual([
      ['a0', 0],
      ['a1', 2000],
    ]);
  });

  it('resolves the run when a zombie never settles, counting it and never freeing its slot', async () => {
    const clock = new VirtualClock();
    const g = gauge();
    const others = gauge();
    const t = target((task, ctx) => {
      if (task.id === 't0') return g.track(() => new Promise<string>(() => {})); // ignores abort
      return g.track(() =>
        others.track(async () => {
          await clock.sleep(50, ctx.signal);
          return 'ok';
        }),
      );
    });
    const { run } = virtualRun(6, t, {
      clock,
      concurrency: 2,
      timeoutMs: 100,
      zombieGraceMs: 200,
      retry: { maxAttempts: 1 },
    });
    const zombies: string[] = [];
    run.on('zombie', (z) => zombies.push(`${z.taskId}@${z.at}`));
    const outcome = await settleOrStall(run.start(), clock);
    if (!outcome.done) run.cancel();
    expect(outcome.done).toBe(true);
    if (!outcome.done) return;
    const result = outcome.value;
    expect(zombies).toEqual(['t0@300']);
    expect(result.statistics.zombies).toBe(1);
    expect(result.tasks.find((r) => r.id === 't0')!.status).toBe('timeout');
    expect(result.statistics.succeededTasks).toBe(5);
    // The zombie kept its slot: the other five ran one at a time, never two at once.
    expect(g.max).toBe(2);
    expect(others.max).toBe(1);
    expect(run.progress).toMatchObject({ running: 1, zombiesRunning: 1 });
  });

  it('does not hang when zombies hold every slot and tasks are still waiting', async () => {
    // concurrency 1: t0 times out, ignores its abort and never settles, so its slot is never
    // given back. t1 can never start without doubling the slot; the run must still end.
    const clock = new VirtualClock();
    const g = gauge();
    const t = target((task, ctx) =>
      g.track(() => (task.id === 't0' ? new Promise<string>(() => {}) : untilAborted(ctx.signal))),
    );
    const { run, log } = virtualRun(2, t, {
      clock,
      concurrency: 1,
      timeoutMs: 100,
      zombieGraceMs: 100,
      retry: { maxAttempts: 1 },
    });
    const outcome = await settleOrStall(run.start(), clock);
    const state = `run hung at ${clock.now()} ms with ${JSON.stringify(run.progress)}`;
    if (!outcome.done) run.cancel();
    expect(outcome.done, state).toBe(true);
    expect(g.max).toBe(1);
    expect(t.starts.map((s) => s.id)).toEqual(['t0']);
    const terminal = log.filter((e) =>
      ['succeeded', 'failed', 'timeout', 'cancelled', 'error'].includes(e.to),
    );
    expect(terminal.map((e) => e.taskId).sort()).toEqual(['t0', 't1']);
  });
});
