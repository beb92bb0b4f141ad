/**
 * The send gate (`Run.gateSends`, issue 16 item 6) and the attempt budget across sessions
 * (`attemptsBefore` / `interruptedBefore`, item 5), on the VirtualClock.
 */

import { describe, expect, test } from 'vitest';
import { RealClock, Run, type TaskTransition, VirtualClock } from '../../src/core/index.js';
import { target, untilAborted, virtualRun } from './helpers.js';

describe('send gate', () => {
  test('without a gate an attempt is sent as it starts; with one, after the turn commits', async () => {
    const plain = target(async () => 'ok');
    const { run: free } = virtualRun(8, plain, { concurrency: 4 });
    const freeDone = free.start();
    expect(plain.starts).toHaveLength(4); // sent inside start()
    await freeDone;

    const gated = target(async () => 'ok');
    const { run } = virtualRun(8, gated, { concurrency: 4 });
    let commits = 0;
    run.gateSends(() => {
      commits++;
    });
    const done = run.start();
    expect(gated.starts).toHaveLength(0); // held for the commit
    expect(commits).toBe(0);
    await Promise.resolve();
    expect(commits).toBe(1); // one commit for the turn's 4 starts
    expect(gated.starts).toHaveLength(4);
    const result = await done;
    expect(result.statistics.succeededTasks).toBe(8);
    expect(result.statistics.attempts).toBe(8);
  });

  test('every start, and every verdict before it, is committed before its request leaves', async () => {
    const clock = new VirtualClock();
    const log: TaskTransition[] = [];
    const committed: number[] = [];
    const t = target(async (task, ctx) => {
      await clock.sleep(10 + (task.input % 3));
      if (task.input % 4 === 1 && ctx.attempt === 1) throw new Error('flaky');
      return 'ok';
    });
    const checks: string[] = [];
    const run = new Run(
      Array.from({ length: 24 }, (_, i) => ({ id: `t${i}`, input: i })),
      {
        execute(task, ctx) {
          // Everything that happened before this attempt started was committed.
          const start = log.findLastIndex((e) => e.taskId === task.id && e.to === 'running');
          if (start < 0 || (committed.at(-1) ?? 0) <= start)
            checks.push(`${task.id}#${ctx.attempt}`);
          return t.execute(task, ctx);
        },
      },
      { clock, concurrency: 4, retry: { maxAttempts: 2, backoffMs: 5 } },
    );
    run.on('transition', (e) => log.push(e));
    run.gateSends(() => {
      committed.push(log.length);
    });
    const result = await run.start();
    expect(checks).toEqual([]);
    expect(result.statistics.succeededTasks).toBe(24);
    expect(result.statistics.retries).toBe(6);
    // Starts of one turn share a commit: fewer commits than attempts.
    expect(committed.length).toBeLessThan(result.statistics.attempts);
  });

  test('a tick gate holds the starts of a whole event-loop tick for one commit', async () => {
    // Answers settle in separate microtask turns of one tick: a microtask gate commits for each
    // turn that started attempts, the tick gate once per tick, with the same guarantee.
    const mk = () =>
      target(async (task) => {
        // Each answer takes a different number of microtask turns.
        for (let i = 0; i < task.input % 4; i++) await Promise.resolve();
        return 'ok';
      });
    const counts: number[] = [];
    for (const tick of [false, true]) {
      const t = mk();
      // The real clock: on a VirtualClock the gate keeps the microtask turn (it advances itself
      // from setImmediate, so a tick's wait would let its time move before the send).
      const { run } = virtualRun(16, t, { concurrency: 4, clock: new RealClock() });
      let commits = 0;
      run.gateSends(
        () => {
          commits++;
        },
        { tick },
      );
      const done = run.start();
      await Promise.resolve();
      // The microtask gate sent the first four in the start's turn; the tick gate has not yet.
      expect(t.starts).toHaveLength(tick ? 0 : 4);
      if (tick) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        expect(commits).toBe(1);
        expect(t.starts).toHaveLength(4);
      }
      const result = await done;
      expect(result.statistics.succeededTasks).toBe(16);
      counts.push(commits);
    }
    expect(counts[1]).toBeLessThan(counts[0]!);
  });

  test('a start cancelled before its turn committed is withdrawn, never sent', async () => {
    const t = target(async () => 'ok');
    const { run, log } = virtualRun(6, t, { concurrency: 4 });
    run.gateSends(() => {});
    run.on('transition', (e) => {
      if (e.taskId === 't2' && e.to === 'running') run.cancel();
    });
    const result = await run.start();
    expect(t.starts).toEqual([]);
    expect(result.statistics.attempts).toBe(0);
    expect(result.statistics.cancelledTasks).toBe(6);
    // Each withdrawn start gives its attempt number back.
    const ends = log.filter((e) => e.from === 'running');
    expect(ends.map((e) => [e.taskId, e.to, e.attempt])).toEqual([
      ['t2', 'cancelled', 0],
      ['t0', 'cancelled', 0],
      ['t1', 'cancelled', 0],
    ]);
  });

  test('a start a pause aborted before its turn committed goes back to the queue, unsent', async () => {
    const t = target(async () => 'ok');
    const { run } = virtualRun(3, t, { concurrency: 3 });
    run.gateSends(() => {});
    let once = false;
    run.on('transition', (e) => {
      if (!once && e.taskId === 't2' && e.to === 'running') {
        once = true;
        run.pause({ abortInFlight: true });
      }
    });
    const done = run.start();
    await run.onPaused();
    expect(t.starts).toEqual([]);
    // Nothing was sent, so nothing was interrupted: no attempt spent, none counted.
    expect(run.statistics().attempts).toBe(0);
    expect(run.statistics().interrupted).toBe(0);
    expect(run.progress.byStatus.queued).toBe(3);
    run.resume();
    const result = await done;
    expect(result.statistics.succeededTasks).toBe(3);
    expect(t.starts.map((s) => s.attempt)).toEqual([1, 1, 1]);
  });

  test('a start a pause aborts after its turn committed was sent: it is interrupted', async () => {
    const t = target((_task, ctx) => untilAborted(ctx.signal));
    const { run } = virtualRun(3, t, { concurrency: 3 });
    run.gateSends(() => {});
    run.on('transition', (e) => {
      // Queued behind the turn's release (queued at t0's start): runs once all three were sent.
      if (e.taskId === 't2' && e.to === 'running')
        queueMicrotask(() => run.pause({ abortInFlight: true }));
    });
    const done = run.start();
    await run.onPaused();
    expect(t.starts.map((s) => s.id)).toEqual(['t0', 't1', 't2']);
    expect(run.statistics().interrupted).toBe(3);
    run.cancel();
    await done;
  });

  test('one gate per run', () => {
    const { run } = virtualRun(
      1,
      target(async () => 'ok'),
    );
    const remove = run.gateSends(() => {});
    expect(() => run.gateSends(() => {})).toThrow(
      expect.objectContaining({ code: 'INVALID_STATE' }),
    );
    remove();
    expect(() => run.gateSends(() => {})).not.toThrow();
  });
});

describe('the attempt budget across sessions', () => {
  test('a task whose earlier attempts spent maxAttempts is not sent: ATTEMPTS_EXHAUSTED', async () => {
    const t = target(async () => 'ok');
    const run = new Run(
      [
        { id: 'spent', input: 0, attemptsBefore: 3 },
        { id: 'one-left', input: 1, attemptsBefore: 2 },
        { id: 'paused-once', input: 2, attemptsBefore: 3, interruptedBefore: 1 },
        { id: 'fresh', input: 3 },
      ],
      t,
      { clock: new VirtualClock(), retry: { maxAttempts: 3 } },
    );
    const result = await run.start();
    const byId = new Map(result.tasks.map((r) => [r.id, r]));
    expect(byId.get('spent')).toMatchObject({
      status: 'error',
      attempts: 3,
      error: { code: 'ATTEMPTS_EXHAUSTED', name: 'AttemptsExhaustedError' },
    });
    expect(byId.get('spent')?.error?.message).toBe(
      'task spent: 3 of 3 attempts were spent before this run, the last with no known outcome: none is left',
    );
    expect(t.starts).toEqual([
      { id: 'one-left', attempt: 3, aborted: false },
      { id: 'paused-once', attempt: 4, aborted: false },
      { id: 'fresh', attempt: 1, aborted: false },
    ]);
    expect(result.statistics.attempts).toBe(3);
  });

  test('interruptedBefore must lie between 0 and attemptsBefore', async () => {
    const run = new Run(
      [{ id: 'bad', input: 0, attemptsBefore: 1, interruptedBefore: 2 }],
      target(async () => 'ok'),
      { clock: new VirtualClock() },
    );
    const result = await run.start();
    expect(result.tasks[0]).toMatchObject({
      status: 'error',
      error: {
        code: 'VALIDATION_ERROR',
        message:
          'task bad: invalid interruptedBefore: 2 (expected an integer from 0 to attemptsBefore)',
      },
    });
  });
});
