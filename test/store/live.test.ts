/**
 * Live state and outside control (store/live.ts) in process: a second SqliteStore on the same
 * file plays the other process (the dashboard). The child-process version, through the CLI and
 * the mock, is test/runner/control.test.ts.
 */

import { afterEach, describe, expect, test } from 'vitest';
import { type AttemptContext, RealClock, Run } from '../../src/core/index.js';
import { attachJournal, MemoryStore, SqliteStore, type Store } from '../../src/store/index.js';
import { admittingTarget, tempDb } from './helpers.js';

/** A target whose calls wait until the test lets them go. */
function gate() {
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    target: {
      execute: (_task: unknown, ctx: AttemptContext) => {
        calls++;
        return new Promise<string>((resolve, reject) => {
          waiting.push(() => resolve('ok'));
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        });
      },
    },
    get calls() {
      return calls;
    },
    releaseAll() {
      for (const go of waiting.splice(0)) go();
    },
  };
}

const open: Store[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tasks = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, input: i }));

describe.each([
  ['SqliteStore, a second connection', true],
  ['MemoryStore, the same instance', false],
])('outside control and live state: %s', (_name, sqlite) => {
  function stores(): { driver: Store; outside: Store } {
    if (!sqlite) {
      const store = new MemoryStore();
      open.push(store);
      return { driver: store, outside: store };
    }
    const path = tempDb();
    const driver = new SqliteStore({ path });
    const outside = new SqliteStore({ path });
    open.push(outside, driver);
    return { driver, outside };
  }

  test('pause holds the run for the asker; the user resume does not lift it; resume does', async () => {
    const { driver, outside } = stores();
    const g = gate();
    const run = new Run(tasks(6), g.target, { concurrency: 2, clock: new RealClock() });
    const journal = await attachJournal(run, driver, { runId: 'c', live: { pollMs: 5 } });
    const done = run.start();
    await until(() => g.calls === 2);

    const asked = await outside.requestControl('c', 'pause', 'dashboard 127.0.0.1');
    expect(asked).toMatchObject({ action: 'pause', by: 'dashboard 127.0.0.1', takenAt: undefined });
    await until(async () => (await outside.controlRequests('c'))[0]?.outcome === 'paused');
    expect(run.holds()).toMatchObject([{ reason: 'control', by: 'dashboard 127.0.0.1' }]);
    g.releaseAll();
    await run.onPaused();
    run.resume(); // the user's own resume: not theirs to lift
    expect(run.status).toBe('paused');
    expect(g.calls).toBe(2);
    await until(async () => (await outside.readLive('c'))?.state.status === 'paused');
    const paused = (await outside.readLive('c'))!.state;
    expect(paused.holds).toMatchObject([{ reason: 'control', by: 'dashboard 127.0.0.1' }]);
    expect(paused.counts).toMatchObject({ done: 2, succeeded: 2, attempts: 2 });
    expect(paused.inFlight).toBe(0);

    await outside.requestControl('c', 'pause', 'someone else');
    await outside.requestControl('c', 'resume', 'dashboard 127.0.0.1');
    await until(async () => (await outside.controlRequests('c')).every((r) => r.takenAt));
    expect((await outside.controlRequests('c')).map((r) => r.outcome)).toEqual([
      'paused',
      'already paused',
      'resumed',
    ]);
    await until(() => g.calls === 4);
    g.releaseAll();
    await until(() => g.calls === 6);
    g.releaseAll();
    expect((await done).status).toBe('completed');
    await journal.closed;
    const last = (await outside.readLive('c'))!.state;
    expect(last.status).toBe('completed');
    expect(last.counts).toMatchObject({ done: 6, succeeded: 6, attempts: 6, retries: 0 });
    // The live counts and the run record agree.
    expect((await outside.getRun('c'))!.counts).toMatchObject({ total: 6, succeeded: 6 });
    // After the end a request is recorded but changes nothing.
    await outside.requestControl('c', 'cancel', 'late');
    expect(driver.takeControl('c', () => 'unexpected')).toBe(1); // no session takes it any more
  });

  test('cancel from outside ends the run cancelled, saying who asked', async () => {
    const { driver, outside } = stores();
    const g = gate();
    const run = new Run(tasks(5), g.target, { concurrency: 1, clock: new RealClock() });
    const journal = await attachJournal(run, driver, { runId: 'x', live: { pollMs: 5 } });
    const done = run.start();
    await until(() => g.calls === 1);
    await outside.requestControl('x', 'cancel', 'ops');
    const result = await done;
    await journal.closed;
    expect(result.status).toBe('cancelled');
    expect(result.statistics.cancelledTasks).toBe(5);
    expect((await outside.getRun('x'))?.status).toBe('cancelled');
    expect((await outside.controlRequests('x'))[0]).toMatchObject({ outcome: 'cancelled' });
    expect((await outside.readLive('x'))?.state).toMatchObject({
      status: 'cancelled',
      counts: { cancelled: 5, done: 5 },
    });
  });
});

describe('live state: the adaptive pace', () => {
  test('shows the effective concurrency under the plan ceiling, and the last change in words', async () => {
    const store = new MemoryStore();
    open.push(store);
    const run = new Run(
      Array.from({ length: 12 }, (_, i) => ({ id: `t${i}`, input: i })),
      admittingTarget(2),
      { concurrency: 6, clock: new RealClock() },
    );
    const journal = await attachJournal(run, store, { runId: 'paced', live: { pollMs: 5 } });
    await run.start();
    await journal.closed;
    const last = (await store.readLive('paced'))!.state;
    expect(last.pace).toMatchObject({
      adaptive: true,
      ceiling: 6,
      lastChange: expect.stringMatching(/^concurrency \d+ → \d+: /),
    });
    expect(last.concurrency).toBeLessThanOrEqual(3);
    expect(last.pace.ratePerMinute).toBeUndefined();
  });
});
