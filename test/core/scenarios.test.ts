import { describe, expect, it } from 'vitest';
import {
  CancellationToken,
  ConcurrentExecutor,
  HttpError,
  InvalidOptionError,
  RateLimitedError,
  Run,
  StubExecutor,
  TaskFailedError,
  TaskScheduler,
  VirtualClock,
} from '../../src/core/index.js';
import { target, tasks, untilAborted, virtualRun } from './helpers.js';

function statusOf(result: {
  tasks: readonly { id: string; status: string }[];
}): Record<string, string> {
  return Object.fromEntries(result.tasks.map((t) => [t.id, t.status]));
}

describe('retries', () => {
  it('waits backoff * multiplier^(n-1) between attempts (seed 002: 2.0 s, 1.5 -> 2, 3, 4.5 s)', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async () => {
      startTimes.push(clock.now());
      throw Object.assign(new Error('upstream 503'), { status: 503 });
    });
    const { run, log } = virtualRun(1, t, {
      clock,
      retry: { maxAttempts: 4, backoffMs: 2000, backoffMultiplier: 1.5 },
    });
    const result = await run.start();
    expect(startTimes).toEqual([0, 2000, 5000, 9500]);
    expect(
      log.filter((e) => e.to === 'pending').map((e) => (e.to === 'pending' ? e.retryInMs : -1)),
    ).toEqual([2000, 3000, 4500]);
    expect(result.tasks[0]).toMatchObject({
      status: 'error',
      attempts: 4,
      error: { code: 'HTTP_ERROR', status: 503 },
    });
    expect(result.statistics.retries).toBe(3);
  });

  it('caps the delay at maxBackoffMs', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async () => {
      startTimes.push(clock.now());
      throw new Error('transient');
    });
    await virtualRun(1, t, {
      clock,
      retry: { maxAttempts: 4, backoffMs: 1000, backoffMultiplier: 10, maxBackoffMs: 5000 },
    }).run.start();
    expect(startTimes).toEqual([0, 1000, 6000, 11000]);
  });

  it('waits the Retry-After first and cools the shared bucket down for that long', async () => {
    const clock = new VirtualClock();
    const starts: [string, number][] = [];
    const t = target(async (task, ctx) => {
      starts.push([task.id, clock.now()]);
      if (task.id === 't0' && ctx.attempt === 1)
        throw new RateLimitedError('slow down', { retryAfterMs: 7000 });
      await clock.sleep(10);
      return 'ok';
    });
    const { run } = virtualRun(2, t, {
      clock,
      concurrency: 1,
      rate: { perMinute: 6000, burst: 5 },
      retry: { backoffMs: 100 },
    });
    const cooled: number[] = [];
    run.on('coolDown', (e) => cooled.push(e.ms));
    await run.start();
    expect(cooled).toEqual([7000]);
    // Nothing starts while the bucket is cold; it restarts empty, so the first start after the
    // cooldown waits one refill interval (10 ms at 6000/min), and retries go before new tasks.
    expect(starts).toEqual([
      ['t0', 0],
      ['t0', 7010],
      ['t1', 7020],
    ]);
  });

  it('applies seeded full jitter within [0, delay]', async () => {
    const clock = new VirtualClock();
    const draws = [0.25, 0.5];
    const { run, log } = virtualRun(
      1,
      target(async () => {
        throw new Error('x');
      }),
      {
        clock,
        random: () => draws.shift() ?? 0,
        retry: { maxAttempts: 3, backoffMs: 1000, backoffMultiplier: 2, jitter: 'full' },
      },
    );
    await run.start();
    expect(log.flatMap((e) => (e.to === 'pending' ? [e.retryInMs] : []))).toEqual([250, 1000]);
  });

  it('never retries permanent errors: a 400, a failed assertion, a 401', async () => {
    const errors: Record<string, Error> = {
      t0: new HttpError(400, 'bad request'),
      t1: new TaskFailedError('wrong answer'),
      t2: new HttpError(401, 'unauthorised'),
    };
    const t = target(async (task) => {
      throw errors[task.id];
    });
    const result = await virtualRun(3, t, { retry: { maxAttempts: 5 } }).run.start();
    expect(statusOf(result)).toEqual({ t0: 'error', t1: 'failed', t2: 'error' });
    expect(result.tasks.map((r) => r.attempts)).toEqual([1, 1, 1]);
    expect(t.starts).toHaveLength(3);
  });
});

describe('timeouts', () => {
  it('aborts the attempt signal with a TimeoutError and ends timeout after the last attempt', async () => {
    const clock = new VirtualClock();
    const reasons: unknown[] = [];
    const t = target(async (_task, ctx) => {
      try {
        return await untilAborted(ctx.signal);
      } catch (e) {
        reasons.push(e);
        throw e;
      }
    });
    const result = await virtualRun(1, t, {
      clock,
      timeoutMs: 500,
      retry: { maxAttempts: 2, backoffMs: 100 },
    }).run.start();
    expect(result.tasks[0]).toMatchObject({
      status: 'timeout',
      attempts: 2,
      error: { code: 'TIMEOUT' },
    });
    expect(reasons.map((r) => (r as { code: string }).code)).toEqual(['TIMEOUT', 'TIMEOUT']);
    expect(result.finishedAt).toBe(1100);
  });

  it('lets a task override the run timeout', async () => {
    const clock = new VirtualClock();
    const t = target(async (_task, ctx) => clock.sleep(300, ctx.signal).then(() => 'done'));
    const run = new Run(
      [
        { id: 'slow-ok', input: 0, timeoutMs: 1000 },
        { id: 'strict', input: 1 },
      ],
      t,
      {
        clock,
        timeoutMs: 200,
        retry: { maxAttempts: 1 },
      },
    );
    expect(statusOf(await run.start())).toEqual({ 'slow-ok': 'succeeded', strict: 'timeout' });
  });
});

describe('cancel', () => {
  it('cancels a task during its backoff: no further attempt, the run ends at once', async () => {
    const clock = new VirtualClock();
    const t = target(async () => {
      throw new Error('transient');
    });
    const { run } = virtualRun(1, t, { clock, retry: { maxAttempts: 3, backoffMs: 10_000 } });
    const done = run.start();
    await run.waitFor(() => run.progress.byStatus.pending === 1);
    await clock.sleep(1000);
    run.cancel();
    const result = await done;
    expect(result.status).toBe('cancelled');
    expect(result.tasks[0]).toMatchObject({
      status: 'cancelled',
      attempts: 1,
      reason: { kind: 'user' },
    });
    expect(t.starts).toHaveLength(1);
    expect(result.finishedAt).toBe(1000);
  });

  it('cancels tasks waiting for a rate token without spending tokens', async () => {
    const clock = new VirtualClock();
    const t = target(async () => 'ok');
    const { run } = virtualRun(3, t, { clock, rate: { perMinute: 60, burst: 1 } });
    const waits: number[] = [];
    run.on('rateLimited', (e) => waits.push(e.waitMs));
    const done = run.start();
    await clock.sleep(500);
    run.cancel();
    const result = await done;
    expect(t.starts.map((s) => s.id)).toEqual(['t0']);
    expect(waits).toEqual([1000]);
    expect(statusOf(result)).toEqual({ t0: 'succeeded', t1: 'cancelled', t2: 'cancelled' });
    expect(result.finishedAt).toBe(500);
  });

  it('aborts in-flight work and resolves with partial results', async () => {
    const clock = new VirtualClock();
    const t = target(async (task, ctx) => {
      await clock.sleep(task.input === 0 ? 10 : 1000, ctx.signal);
      return task.id;
    });
    const { run } = virtualRun(4, t, { clock, concurrency: 2 });
    const done = run.start();
    await clock.sleep(100);
    run.cancel({ message: 'operator stop' });
    const result = await done;
    expect(result.status).toBe('cancelled');
    expect(statusOf(result)).toEqual({
      t0: 'succeeded',
      t1: 'cancelled',
      t2: 'cancelled',
      t3: 'cancelled',
    });
    expect(result.tasks.find((r) => r.id === 't1')?.reason).toEqual({
      kind: 'user',
      message: 'operator stop',
    });
    expect(t.starts.map((s) => s.id)).toEqual(['t0', 't1', 't2']);
  });

  it('drains in-flight work when asked, and starts nothing new', async () => {
    const clock = new VirtualClock();
    const t = target(async (task, ctx) => clock.sleep(1000, ctx.signal).then(() => task.id));
    const { run } = virtualRun(5, t, { clock, concurrency: 2 });
    const done = run.start();
    await clock.sleep(100);
    run.cancel({ drain: true });
    const result = await done;
    expect(statusOf(result)).toEqual({
      t0: 'succeeded',
      t1: 'succeeded',
      t2: 'cancelled',
      t3: 'cancelled',
      t4: 'cancelled',
    });
    expect(result.finishedAt).toBe(1000);
  });

  it('cancels from an external AbortSignal and through the seeds CancellationToken', async () => {
    const clock = new VirtualClock();
    const stub = new StubExecutor({ simulatedDelay: 10_000, clock });
    const token = new CancellationToken();
    const pending = stub.run(tasks(10), { concurrency: 2 }, token);
    await clock.sleep(1000);
    token.cancel();
    const result = await pending;
    expect(result.statistics.cancelledTasks).toBe(10);
    expect(result.status).toBe('cancelled');
    expect(token.isCancelled).toBe(true);
  });
});

describe('pause and resume', () => {
  it('pausing inside a running attempt stops the very next start in the same loop turn', async () => {
    const clock = new VirtualClock();
    let run!: Run<number, string>;
    const t = target(async (task) => {
      if (task.id === 't0') run.pause();
      await clock.sleep(100);
      return task.id;
    });
    run = new Run(tasks(4), t, { clock, concurrency: 4 });
    const done = run.start();
    await run.onPaused();
    expect(t.starts.map((s) => s.id)).toEqual(['t0']);
    expect(run.status).toBe('paused');
    expect(clock.now()).toBe(100);
    run.resume();
    const result = await done;
    expect(result.statistics.succeededTasks).toBe(4);
    expect(t.starts.map((s) => s.id)).toEqual(['t0', 't1', 't2', 't3']);
  });

  it('a retry whose backoff ends during a pause waits for resume', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async (_task, ctx) => {
      startTimes.push(clock.now());
      if (ctx.attempt === 1) throw new Error('transient');
      return 'ok';
    });
    const { run } = virtualRun(1, t, { clock, retry: { backoffMs: 100 } });
    const done = run.start();
    await run.waitFor(() => run.progress.byStatus.pending === 1);
    run.pause();
    await run.waitFor(() => run.progress.byStatus.queued === 1);
    await clock.sleep(5000);
    expect(startTimes).toEqual([0]);
    run.resume();
    await done;
    expect(startTimes).toEqual([0, 5100]);
  });

  it('pause with abortInFlight re-queues in-flight tasks without spending their attempts', async () => {
    const clock = new VirtualClock();
    const t = target(async (_task, ctx) => clock.sleep(1000, ctx.signal).then(() => 'ok'));
    const { run } = virtualRun(3, t, { clock, concurrency: 3, retry: { maxAttempts: 1 } });
    const done = run.start();
    await clock.sleep(100);
    run.pause({ abortInFlight: true });
    await run.onPaused();
    expect(run.progress.byStatus.queued).toBe(3);
    expect(clock.now()).toBe(100);
    run.resume();
    const result = await done;
    expect(result.statistics).toMatchObject({ succeededTasks: 3, interrupted: 3, attempts: 6 });
    expect(result.finishedAt).toBe(1100);
  });

  it('resume works after a pause that waited for in-flight work', async () => {
    const clock = new VirtualClock();
    const t = target(async () => clock.sleep(50).then(() => 'ok'));
    const { run } = virtualRun(6, t, { clock, concurrency: 2 });
    const done = run.start();
    await clock.sleep(10);
    run.pause();
    expect(run.status).toBe('pausing');
    await run.onPaused();
    expect(run.progress.byStatus.succeeded).toBe(2);
    run.resume();
    expect((await done).statistics.succeededTasks).toBe(6);
  });

  it('a run created paused starts nothing until resumed', async () => {
    const clock = new VirtualClock();
    const t = target(async () => 'ok');
    const { run } = virtualRun(2, t, { clock, paused: true });
    const done = run.start();
    await clock.sleep(60_000);
    expect(t.starts).toHaveLength(0);
    run.resume();
    expect((await done).statistics.succeededTasks).toBe(2);
  });
});

describe('holds: the run is paused while anyone holds it', () => {
  it('a user resume does not end a signal hold; the last release resumes', async () => {
    const clock = new VirtualClock();
    const t = target(async () => clock.sleep(50).then(() => 'ok'));
    const { run } = virtualRun(6, t, { clock, concurrency: 2 });
    const done = run.start();
    await clock.sleep(10);
    const signal = run.hold('signal', { by: 'SIGINT' });
    run.pause(); // a second owner: the user
    expect(run.holds()).toEqual([
      { reason: 'signal', by: 'SIGINT', since: 10 },
      { reason: 'user', since: 10 },
    ]);
    await run.onPaused();
    run.resume(); // the user's hold only
    expect(run.holds().map((h) => h.reason)).toEqual(['signal']);
    await clock.sleep(1000);
    expect(run.status).toBe('paused');
    expect(t.starts).toHaveLength(2);
    signal.release();
    signal.release(); // idempotent
    expect(run.holds()).toEqual([]);
    expect((await done).statistics.succeededTasks).toBe(6);
  });

  it('backpressure and the user: either release alone keeps the run paused', async () => {
    const clock = new VirtualClock();
    const t = target(async () => clock.sleep(10).then(() => 'ok'));
    const { run } = virtualRun(4, t, { clock, concurrency: 1 });
    const done = run.start();
    const lag = run.hold('backpressure');
    run.pause();
    lag.release();
    await clock.sleep(1000);
    expect(run.status).toBe('paused');
    expect(run.holds().map((h) => h.reason)).toEqual(['user']);
    run.pause(); // pausing twice is one user hold
    run.resume();
    expect(run.holds()).toEqual([]);
    expect((await done).statistics.succeededTasks).toBe(4);
  });

  it('a hold with abortInFlight re-queues in-flight work even when the run is already paused', async () => {
    const clock = new VirtualClock();
    const t = target(async (_task, ctx) => clock.sleep(1000, ctx.signal).then(() => 'ok'));
    const { run } = virtualRun(2, t, { clock, concurrency: 2 });
    const done = run.start();
    await clock.sleep(100);
    run.pause();
    expect(run.status).toBe('pausing');
    const hurry = run.hold('signal', { abortInFlight: true });
    await run.onPaused();
    expect(clock.now()).toBe(100);
    expect(run.progress.byStatus.queued).toBe(2);
    run.resume();
    hurry.release();
    const result = await done;
    expect(result.statistics).toMatchObject({ succeededTasks: 2, interrupted: 2 });
  });
});

describe('stop rules', () => {
  it('stops at max_failures with partial results and says which rule stopped it', async () => {
    const t = target(async (task) => {
      if (task.input % 2 === 1) throw new TaskFailedError('wrong');
      return 'ok';
    });
    const result = await virtualRun(20, t, {
      concurrency: 1,
      stop: { maxFailures: 3 },
    }).run.start();
    expect(result.status).toBe('stopped');
    expect(result.stoppedBy?.rule).toBe('max_failures');
    expect(result.statistics).toMatchObject({
      failedTasks: 3,
      succeededTasks: 3,
      cancelledTasks: 14,
      totalTasks: 20,
    });
    expect(result.tasks.find((r) => r.status === 'cancelled')?.reason).toEqual({
      kind: 'stop_rule',
      rule: 'max_failures',
    });
  });

  it('stops when the failure fraction is exceeded after minSettled tasks', async () => {
    const t = target(async (task) => {
      if (task.input >= 2) throw new TaskFailedError('wrong');
      return 'ok';
    });
    const result = await virtualRun(50, t, {
      concurrency: 1,
      stop: { maxFailures: 0.5, minSettled: 4 },
    }).run.start();
    // after 5 settled: 2 ok, 3 failed = 60% > 50%
    expect(result.statistics).toMatchObject({
      succeededTasks: 2,
      failedTasks: 3,
      cancelledTasks: 45,
    });
  });

  it('aborts in-flight work at the run deadline and cancels the rest with reason deadline', async () => {
    const clock = new VirtualClock();
    const t = target(async (_task, ctx) => clock.sleep(100, ctx.signal).then(() => 'ok'));
    const result = await virtualRun(5, t, {
      clock,
      concurrency: 1,
      stop: { deadlineMs: 250 },
    }).run.start();
    expect(result.status).toBe('stopped');
    expect(result.stoppedBy?.rule).toBe('deadline');
    expect(statusOf(result)).toEqual({
      t0: 'succeeded',
      t1: 'succeeded',
      t2: 'cancelled',
      t3: 'cancelled',
      t4: 'cancelled',
    });
    expect(result.tasks.find((r) => r.id === 't2')?.reason).toEqual({ kind: 'deadline' });
    expect(result.finishedAt).toBe(250);
  });

  it('stops on max cost and on max tokens from reported usage', async () => {
    const t = target(async (_task, ctx) => {
      ctx.reportUsage({ tokens: 400, cost: 0.01 });
      return 'ok';
    });
    const byCost = await virtualRun(10, t, { concurrency: 1, stop: { maxCost: 0.03 } }).run.start();
    expect(byCost.stoppedBy?.rule).toBe('max_cost');
    expect(byCost.statistics.succeededTasks).toBe(3);
    const byTokens = await virtualRun(10, t, {
      concurrency: 1,
      stop: { maxTokens: 1000 },
    }).run.start();
    expect(byTokens.stoppedBy?.rule).toBe('max_tokens');
    expect(byTokens.statistics).toMatchObject({ succeededTasks: 3, tokens: 1200 });
  });

  it('max_cost counts known costs only and says so: cost unknown for N tasks (#18 item 6)', async () => {
    // Odd tasks report tokens without a price: their cost is unknown, not 0.
    const t = target(async (task, ctx) => {
      ctx.reportUsage(
        (task.input as number) % 2 === 1 ? { tokens: 400 } : { tokens: 400, cost: 0.01 },
      );
      return 'ok';
    });
    const { run } = virtualRun(10, t, { concurrency: 1, stop: { maxCost: 0.03 } });
    const result = await run.start();
    expect(result.stoppedBy?.rule).toBe('max_cost');
    expect(result.statistics.succeededTasks).toBe(5); // t0..t4: three priced, two not
    expect(result.stoppedBy?.message).toMatch(
      /^cost 0\.03\d* \(known costs only: cost unknown for 2 cases\) reached max_cost 0\.03$/,
    );
    expect(run.progress).toMatchObject({ costUnknown: 2, tokens: 2000 });
  });

  it('stops after three authentication errors in a row by default', async () => {
    const t = target(async () => {
      throw new HttpError(401, 'invalid api key');
    });
    const result = await virtualRun(10, t, { concurrency: 1 }).run.start();
    expect(result.stoppedBy?.rule).toBe('auth_errors');
    expect(result.statistics).toMatchObject({ errorTasks: 3, cancelledTasks: 7, attempts: 3 });
  });

  it('lets in-flight work finish when the stop rule says drain', async () => {
    const clock = new VirtualClock();
    const t = target(async (task) => {
      await clock.sleep(task.input === 0 ? 10 : 100);
      if (task.input === 0) throw new TaskFailedError('wrong');
      return 'ok';
    });
    const result = await virtualRun(6, t, {
      clock,
      concurrency: 3,
      stop: { maxFailures: 1, inFlight: 'drain' },
    }).run.start();
    expect(statusOf(result)).toEqual({
      t0: 'failed',
      t1: 'succeeded',
      t2: 'succeeded',
      t3: 'cancelled',
      t4: 'cancelled',
      t5: 'cancelled',
    });
  });
});

describe('token budget (tokens per minute)', () => {
  it('reserves the estimate, then charges the real usage as debt and learns the mean', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async (_task, ctx) => {
      startTimes.push(clock.now());
      ctx.reportUsage({ tokens: 300 });
      return 'ok';
    });
    await virtualRun(8, t, {
      clock,
      concurrency: 10,
      tokens: { perMinute: 600, burst: 600, estimate: 100 },
    }).run.start();
    // 6 x 100 reserved at once; each really used 300, so the bucket owes 1200 and the next
    // reservation (the learned mean, 300) waits (1200 + 300) / 10 per second = 150 s.
    expect(startTimes).toEqual([0, 0, 0, 0, 0, 0, 150_000, 180_000]);
  });

  it('refunds an overestimate so the next attempts start sooner', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async (_task, ctx) => {
      startTimes.push(clock.now());
      await clock.sleep(1);
      ctx.reportUsage({ tokens: 60 });
      return 'ok';
    });
    await virtualRun(4, t, {
      clock,
      concurrency: 1,
      tokens: { perMinute: 600, burst: 600, estimate: 600 },
    }).run.start();
    // 600 reserved, 540 refunded after 1 ms; then 60 per attempt.
    expect(startTimes).toEqual([0, 1, 2, 3]);
  });
});

describe('provider-reported limits (x-ratelimit-*)', () => {
  it('cools the request bucket when the provider says none remain, until its reset', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async (task, ctx) => {
      startTimes.push(clock.now());
      if (task.id === 't0') ctx.reportLimits({ remainingRequests: 0, resetRequestsMs: 5000 });
      return 'ok';
    });
    const { run } = virtualRun(3, t, {
      clock,
      concurrency: 1,
      rate: { perMinute: 6000, burst: 10 },
    });
    const cooled: number[] = [];
    run.on('coolDown', (e) => cooled.push(e.ms));
    await run.start();
    expect(cooled).toEqual([5000]);
    // restart from an empty bucket: one refill interval (10 ms) after the reset
    expect(startTimes).toEqual([0, 5010, 5020]);
  });

  it('only ever lowers the token bucket to what the provider says remains', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async (task, ctx) => {
      startTimes.push(clock.now());
      // other clients used the budget: 100 of 6000 tokens remain, and later a generous figure
      ctx.reportLimits({ remainingTokens: task.id === 't0' ? 100 : 1_000_000 });
      ctx.reportUsage({ tokens: 100 });
      return 'ok';
    });
    await virtualRun(3, t, {
      clock,
      concurrency: 1,
      tokens: { perMinute: 6000, burst: 6000, estimate: 100 },
    }).run.start();
    // after t0: clamped to 100, the reservation of 100 is reconciled exactly, so t1 starts at
    // once with the 100 left; t2 must wait for 100 tokens at 100/s: 1 s. The generous figure
    // reported by t1 never raised the bucket.
    expect(startTimes).toEqual([0, 0, 1000]);
  });
});

describe('concurrency, priority, batches, sources', () => {
  it('follows live concurrency changes up and down', async () => {
    const clock = new VirtualClock();
    let running = 0;
    const peaks: number[] = [];
    const t = target(async () => {
      running++;
      peaks.push(running);
      await clock.sleep(100);
      running--;
      return 'ok';
    });
    const { run } = virtualRun(20, t, { clock, concurrency: 1 });
    const done = run.start();
    await clock.sleep(150);
    run.setConcurrency(4);
    await clock.sleep(100);
    run.setConcurrency(2);
    await done;
    expect(peaks.slice(0, 2)).toEqual([1, 1]);
    expect(Math.max(...peaks)).toBe(4);
    // once lowered, never more than 2 start together again
    expect(peaks.slice(-6).every((p) => p <= 2)).toBe(true);
    expect(() => run.setConcurrency(0)).toThrow(InvalidOptionError);
  });

  it('starts higher priority first, FIFO within a priority', async () => {
    const t = target(async () => 'ok');
    const specs = [0, 5, 1, 5, 0].map((priority, i) => ({ id: `p${i}`, input: i, priority }));
    await new Run(specs, t, { clock: new VirtualClock(), concurrency: 1 }).start();
    expect(t.starts.map((s) => s.id)).toEqual(['p1', 'p3', 'p2', 'p0', 'p4']);
  });

  it('runs the seeds batches: admit batch_size, wait for all, back off, go on', async () => {
    const clock = new VirtualClock();
    const startTimes: number[] = [];
    const t = target(async () => {
      startTimes.push(clock.now());
      await clock.sleep(100);
      return 'ok';
    });
    await virtualRun(7, t, {
      clock,
      concurrency: 10,
      batch: { size: 3, backoffMs: 1000 },
    }).run.start();
    expect(startTimes).toEqual([0, 0, 0, 1100, 1100, 1100, 2200]);
    expect(TaskScheduler.splitIntoBatches(tasks(12), 5).map((b) => b.length)).toEqual([5, 5, 2]);
  });

  it('streams an async source with bounded lookahead', async () => {
    const clock = new VirtualClock();
    let pulled = 0;
    let maxAhead = 0;
    async function* source() {
      for (let i = 0; i < 5000; i++) {
        pulled++;
        yield { input: i };
      }
    }
    const run = new Run(
      source(),
      { execute: async () => clock.sleep(1).then(() => 'ok') },
      {
        clock,
        concurrency: 8,
        lookahead: 64,
        retainResults: false,
      },
    );
    run.on('transition', (e) => {
      if (e.to === 'succeeded') maxAhead = Math.max(maxAhead, pulled - run.progress.settled);
    });
    const result = await run.start();
    expect(result.statistics.succeededTasks).toBe(5000);
    expect(result.tasks).toHaveLength(0);
    expect(maxAhead).toBeLessThanOrEqual(64 + 8 + 1);
  });

  it('ends the plan where the task source throws: what came before runs, the run says why', async () => {
    function* source() {
      yield { id: 'a', input: 1 };
      yield { id: 'b', input: 2 };
      throw new Error('cases.jsonl:3: not JSON');
    }
    const run = new Run(source(), { execute: async () => 'ok' }, { clock: new VirtualClock() });
    const result = await run.start();
    expect(result.status).toBe('stopped');
    expect(result.stoppedBy).toEqual({
      rule: 'source_error',
      message: 'task source failed: cases.jsonl:3: not JSON',
    });
    expect(run.sourceFailure?.code).toBe('CASES_INVALID');
    expect(statusOf(result)).toEqual({ a: 'succeeded', b: 'succeeded' });
  });

  it('resolves awaitable states instead of sleeping', async () => {
    const clock = new VirtualClock();
    const { run } = virtualRun(
      10,
      target(async () => clock.sleep(10).then(() => 'ok')),
      { clock, concurrency: 2 },
    );
    const done = run.start();
    await run.waitFor(() => run.progress.byStatus.succeeded >= 5);
    expect(run.progress.byStatus.succeeded).toBeGreaterThanOrEqual(5);
    await run.onIdle();
    await done;
    expect(run.status).toBe('completed');
  });
});

describe('results and statistics', () => {
  it('results and the target context are plain data: only their documented fields', async () => {
    const clock = new VirtualClock();
    let ctxKeys: string[] = [];
    let ctxJson = '';
    const t = target(async (_task, ctx) => {
      ctxKeys = Object.keys(ctx);
      ctxJson = JSON.stringify(ctx);
      expect([ctx.attempt, ctx.taskId, ctx.signal.aborted]).toEqual([1, 't0', false]);
      // Nothing of the engine's bookkeeping is reachable from the context.
      for (const k of ['rec', 'run', 'decided', 'zombie', 'settled', 'deadline'])
        expect(k in ctx).toBe(false);
      return 'ok';
    });
    const result = await virtualRun(1, t, {
      clock,
      rate: { perMinute: 300 },
      retry: { maxAttempts: 2 },
    }).run.start();
    expect(ctxKeys).toEqual([]);
    expect(ctxJson).toBe('{}');
    const task = result.tasks[0]!;
    const fields = [
      'id',
      'input',
      'priority',
      'status',
      'attempts',
      'output',
      'error',
      'reason',
      'usage',
      'startedAt',
      'finishedAt',
      'executionTimeMs',
    ];
    expect(Object.keys(JSON.parse(JSON.stringify(task))).sort()).toEqual(
      fields.filter((f) => (task as unknown as Record<string, unknown>)[f] !== undefined).sort(),
    );
    expect(Object.keys(structuredClone(task)).sort()).toEqual([...fields].sort());
    expect(JSON.stringify(task)).not.toMatch(/bucket|clock|maxAttempts|rateKey/);
  });

  it('reports usage, latency percentiles and per-state counts', async () => {
    const clock = new VirtualClock();
    const t = target(async (task, ctx) => {
      await clock.sleep(10 * (task.input + 1));
      ctx.reportUsage({ tokens: 10, cost: 0.5 });
      return 'ok';
    });
    const result = await virtualRun(10, t, { clock, concurrency: 10 }).run.start();
    const s = result.statistics;
    expect(s).toMatchObject({
      tokens: 100,
      cost: 5,
      attempts: 10,
      retries: 0,
      successRate: 1,
      wallTimeMs: 100,
    });
    expect(s.byStatus).toMatchObject({ succeeded: 10, pending: 0, queued: 0, running: 0 });
    expect(s.latencyMs.count).toBe(10);
    expect(s.latencyMs.max).toBe(100);
    expect(s.latencyMs.p50).toBeGreaterThanOrEqual(49.5);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(50.5);
    expect(result.tasks[0]).toMatchObject({
      id: 't0',
      usage: { tokens: 10, cost: 0.5 },
      executionTimeMs: 10,
    });
  });

  it('emits every transition in order for one task', async () => {
    const t = target(async (_task, ctx) => {
      if (ctx.attempt === 1) throw new Error('transient');
      return 'ok';
    });
    const { run, log } = virtualRun(1, t, { retry: { backoffMs: 5 } });
    await run.start();
    expect(log.map((e) => `${e.from}->${e.to}`)).toEqual([
      'pending->queued',
      'queued->running',
      'running->pending',
      'pending->queued',
      'queued->running',
      'running->succeeded',
    ]);
  });

  it('ends a malformed task in error with the field and value, and runs the rest', async () => {
    const t = target(async () => 'ok');
    const specs = [
      { id: 'good', input: 1 },
      { id: 'bad', input: 2, timeoutMs: -5 },
    ];
    const result = await new Run(specs, t, { clock: new VirtualClock() }).start();
    expect(statusOf(result)).toEqual({ bad: 'error', good: 'succeeded' });
    expect(result.tasks.find((r) => r.id === 'bad')?.error).toEqual({
      code: 'VALIDATION_ERROR',
      name: 'ValidationError',
      message: 'task bad: invalid timeoutMs: -5 (expected a number > 0)',
    });
    expect(t.starts.map((x) => x.id)).toEqual(['good']);
  });

  it('keeps the output of a failed verdict (what the model answered)', async () => {
    const t = target(async () => {
      throw new TaskFailedError('expected "refund"', { output: { answer: 'no idea' } });
    });
    const result = await virtualRun(1, t).run.start();
    expect(result.tasks[0]).toMatchObject({
      status: 'failed',
      output: { answer: 'no idea' },
      attempts: 1,
    });
  });

  it('rejects bad options with the field and the value', () => {
    const t = target(async () => 'ok');
    expect(() => new Run(tasks(1), t, { concurrency: -3 })).toThrow(
      'invalid option concurrency: -3 (expected an integer >= 1)',
    );
    expect(() => new Run(tasks(1), t, { retry: { maxAttempts: 0 } })).toThrow(
      'retry.maxAttempts: 0',
    );
    expect(() => new Run(tasks(1), t, { stop: { maxFailures: 1.5 } })).toThrow(
      'stop.maxFailures: 1.5',
    );
    expect(() => new Run(tasks(1), t, { rate: { perMinute: 0 } })).toThrow('rate.perMinute: 0');
  });
});

describe('seed 002 examples: StubExecutor and ConcurrentExecutor', () => {
  it('task_behaviors: success, timeout, failure', async () => {
    const stub = new StubExecutor({
      clock: new VirtualClock(),
      taskBehaviors: { 'task-1': 'success', 'task-2': 'timeout', 'task-3': 'failure' },
    });
    const specs = ['task-1', 'task-2', 'task-3'].map((id) => ({ id, input: {} }));
    const result = await stub.run(specs, { retry: { maxAttempts: 2, backoffMs: 10 } });
    expect(statusOf(result)).toEqual({
      'task-1': 'succeeded',
      'task-2': 'timeout',
      'task-3': 'failed',
    });
    expect(result.tasks.find((r) => r.id === 'task-2')?.attempts).toBe(2);
  });

  it('failure_rate 1.0 fails every task; the helpers change behaviour between runs', async () => {
    const stub = new StubExecutor({
      clock: new VirtualClock(),
      simulatedDelay: 10,
      failureRate: 1.0,
      seed: 7,
    });
    const first = await stub.run(tasks(5));
    expect(first.statistics.failedTasks).toBe(5);
    stub.setFailureRate(0);
    stub.setSimulatedDelay(0);
    stub.setTaskBehavior('t1', 'error');
    expect(stub.failureRate).toBe(0);
    const second = await stub.run(tasks(3), { retry: { maxAttempts: 1 } });
    expect(statusOf(second)).toEqual({ t0: 'succeeded', t1: 'error', t2: 'succeeded' });
    stub.clearTaskBehaviors();
    expect((await stub.run(tasks(3))).statistics.succeededTasks).toBe(3);
    expect(() => stub.setFailureRate(2)).toThrow('failureRate: 2');
  });

  it('a seeded stub gives the same outcome every time', async () => {
    const outcome = async () => {
      const stub = new StubExecutor({ clock: new VirtualClock(), failureRate: 0.3, seed: 42 });
      return statusOf(await stub.run(tasks(50), { concurrency: 1 }));
    };
    const a = await outcome();
    expect(await outcome()).toEqual(a);
    expect(Object.values(a).filter((s) => s === 'failed').length).toBeGreaterThan(0);
  });

  it('ConcurrentExecutor runs a custom task execution function', async () => {
    const executor = new ConcurrentExecutor<number, number>({
      clock: new VirtualClock(),
      taskExecutionFunc: async (task) => task.input * 2,
    });
    const result = await executor.run(tasks(4), { concurrency: 2 });
    expect(result.tasks.map((r) => r.output).sort()).toEqual([0, 2, 4, 6]);
  });
});
