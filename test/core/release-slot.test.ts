/**
 * `AttemptContext.releaseSlot` (issue #20, pipelining): an attempt whose provider answered gives
 * its concurrency slot to the next attempt while it runs on (a grading); its task still ends only
 * when it settles. On the VirtualClock (auto-advancing when idle): exact times, no race.
 */

import { describe, expect, test } from 'vitest';
import { type AttemptContext, Run, VirtualClock } from '../../src/core/index.js';

/** 10 tasks: an app call of 50 ms, then a grading of `gradeMs`; `release` gives the slot back. */
async function pipeline(release: boolean, gradeMs = 50) {
  const clock = new VirtualClock();
  let app = 0;
  let maxApp = 0;
  let grading = 0;
  let maxGrading = 0;
  const settledAt: number[] = [];
  const run = new Run(
    Array.from({ length: 10 }, (_, i) => ({ id: `c${i}`, input: i })),
    {
      async execute(_task, ctx: AttemptContext) {
        maxApp = Math.max(maxApp, ++app);
        await clock.sleep(50, ctx.signal);
        app--;
        if (release) ctx.releaseSlot?.();
        maxGrading = Math.max(maxGrading, ++grading);
        await clock.sleep(gradeMs, ctx.signal);
        grading--;
        return 'graded';
      },
    },
    { clock, concurrency: 2, retry: { maxAttempts: 1 } },
  );
  run.on('transition', (e) => {
    if (e.to === 'succeeded') settledAt.push(clock.now());
  });
  const result = await run.start();
  return { result, maxApp, maxGrading, settledAt, end: clock.now() };
}

describe('releaseSlot', () => {
  test('grading of early tasks overlaps the app calls of later ones; app concurrency holds', async () => {
    const held = await pipeline(false);
    // Each slot holds app + grading: 5 rounds of 100 ms.
    expect(held.end).toBe(500);
    const piped = await pipeline(true);
    // 5 rounds of app calls (50 ms each), then the last grading: 300 ms.
    expect(piped.end).toBe(300);
    expect(piped.maxApp).toBe(2);
    // Every task is counted once, when it settled (after its grading), never at the release.
    expect(piped.result.statistics.succeededTasks).toBe(10);
    expect(piped.result.statistics.attempts).toBe(10);
    expect(piped.settledAt).toEqual([100, 100, 150, 150, 200, 200, 250, 250, 300, 300]);
  });

  test('a slow grading does not block the app: the app stage ends on its own pace', async () => {
    const piped = await pipeline(true, 1_000);
    expect(piped.maxApp).toBe(2);
    // All 10 gradings run at once, the last app call ending at 250.
    expect(piped.maxGrading).toBe(10);
    expect(piped.end).toBe(1_250);
  });

  test("the attempt's timeout stops at the release; a cancel still aborts a released attempt", async () => {
    const clock = new VirtualClock();
    let aborted = false;
    const run = new Run(
      [
        { id: 'graded', input: 0 },
        { id: 'cancelled', input: 1 },
      ],
      {
        async execute(task, ctx) {
          await clock.sleep(50, ctx.signal);
          ctx.releaseSlot!();
          ctx.releaseSlot!(); // a second release does nothing
          if (task.id === 'graded') {
            await clock.sleep(500, ctx.signal); // past the 60 ms timeout
            return 'ok';
          }
          try {
            await clock.sleep(10_000, ctx.signal);
          } catch (err) {
            aborted = ctx.signal.aborted;
            throw err;
          }
          return 'never';
        },
      },
      { clock, concurrency: 1, timeoutMs: 60, retry: { maxAttempts: 1 } },
    );
    clock.schedule(1_000, () => run.cancel());
    const result = await run.start();
    const byId = Object.fromEntries(result.tasks.map((t) => [t.id, t.status]));
    expect(byId).toEqual({ graded: 'succeeded', cancelled: 'cancelled' });
    expect(aborted).toBe(true);
    expect(result.status).toBe('cancelled');
  });
});
