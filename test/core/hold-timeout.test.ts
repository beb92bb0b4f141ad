/**
 * `AttemptContext.holdTimeout` (issue #16 item 3): a target that first waits for something that
 * is not its request (a worker waiting for a shared rate token) holds the attempt's timeout; on
 * release the timeout counts in full from there. On the VirtualClock: exact times.
 */

import { describe, expect, test } from 'vitest';
import { type AttemptContext, Run, VirtualClock } from '../../src/core/index.js';

/** One task whose target holds the timeout for `holdMs`, then works for `workMs`. */
async function attempt(holdMs: number, workMs: number, timeoutMs = 1_000) {
  const clock = new VirtualClock();
  const ends: number[] = [];
  const run = new Run(
    [{ id: 't', input: 0 }],
    {
      async execute(_task, ctx: AttemptContext) {
        const release = ctx.holdTimeout?.();
        expect(release).toBeTypeOf('function');
        await clock.sleep(holdMs, ctx.signal);
        release!();
        release!(); // a second release does nothing
        await clock.sleep(workMs, ctx.signal);
        return 'ok';
      },
    },
    { clock, concurrency: 1, timeoutMs, retry: { maxAttempts: 1 } },
  );
  run.on('transition', (e) => {
    if (e.to === 'succeeded' || e.to === 'timeout') ends.push(clock.now());
  });
  const result = await run.start();
  return { status: result.tasks[0]!.status, endedAt: ends[0] };
}

describe('holdTimeout', () => {
  test('a wait held five times longer than the timeout does not time the attempt out', async () => {
    expect(await attempt(5_000, 900)).toEqual({ status: 'succeeded', endedAt: 5_900 });
  });

  test('after the release the timeout counts in full from the release, not from the start', async () => {
    expect(await attempt(5_000, 2_000)).toEqual({ status: 'timeout', endedAt: 6_000 });
  });

  test('holds nest; another attempt of the same timeout still expires on time', async () => {
    const clock = new VirtualClock();
    const ends = new Map<string, number>();
    const run = new Run(
      [
        { id: 'held', input: 0 },
        { id: 'plain', input: 1 },
      ],
      {
        async execute(task, ctx) {
          if (task.id === 'plain') {
            await clock.sleep(10_000, ctx.signal);
            return 'late';
          }
          const outer = ctx.holdTimeout!();
          const inner = ctx.holdTimeout!();
          await clock.sleep(2_000, ctx.signal);
          inner(); // still held by the outer hold
          await clock.sleep(2_000, ctx.signal);
          outer(); // counts from here: 4,000 + 1,000
          await clock.sleep(3_000, ctx.signal);
          return 'late';
        },
      },
      { clock, concurrency: 2, timeoutMs: 1_000, retry: { maxAttempts: 1 } },
    );
    run.on('transition', (e) => {
      if (e.to === 'timeout') ends.set(e.taskId, clock.now());
    });
    await run.start();
    expect(Object.fromEntries(ends)).toEqual({ plain: 1_000, held: 5_000 });
  });
});
