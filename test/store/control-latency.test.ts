/**
 * Outside control acts within one poll of the driving session (issue #15 item 4: "within 1 s"):
 * the poll runs every 250 ms, so a request is taken at the latest 250 ms after it was made.
 * Shown on fake timers, not a stopwatch: time moves only when the test moves it, so load cannot
 * change the outcome (test/runner/control.test.ts does the same through real processes).
 */

import { afterEach, describe, expect, test, vi } from 'vitest';
import { type AttemptContext, RealClock, Run } from '../../src/core/index.js';
import { attachJournal, MemoryStore } from '../../src/store/index.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('outside control latency', () => {
  test.each([
    ['pause', 'paused'],
    ['cancel', 'cancelled'],
  ] as const)(
    'a %s request is taken within one 250 ms poll, saying who asked',
    async (action, outcome) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const store = new MemoryStore();
      const waiting: (() => void)[] = [];
      const target = {
        execute: (_t: unknown, ctx: AttemptContext) =>
          new Promise<string>((resolve, reject) => {
            waiting.push(() => resolve('ok'));
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
          }),
      };
      const tasks = Array.from({ length: 4 }, (_, i) => ({ id: `t${i}`, input: i }));
      const run = new Run(tasks, target, { concurrency: 1, clock: new RealClock() });
      const journal = await attachJournal(run, store, { runId: 'L' });
      const done = run.start();
      await vi.advanceTimersByTimeAsync(100); // somewhere inside a poll interval
      await store.requestControl('L', action, 'dashboard 10.0.0.7');
      expect((await store.controlRequests('L'))[0]?.takenAt).toBeUndefined();
      await vi.advanceTimersByTimeAsync(250);
      const [taken] = await store.controlRequests('L');
      expect(taken).toMatchObject({ action, by: 'dashboard 10.0.0.7', outcome });
      if (action === 'pause') {
        expect(run.holds()).toMatchObject([{ reason: 'control', by: 'dashboard 10.0.0.7' }]);
        await store.requestControl('L', 'cancel', 'dashboard 10.0.0.7');
        await vi.advanceTimersByTimeAsync(250);
      }
      for (const go of waiting.splice(0)) go();
      vi.useRealTimers();
      await done;
      await journal.closed;
      expect((await store.getRun('L'))?.status).toBe('cancelled');
    },
  );
});
