/**
 * Outside control with real processes: `stride run` drives a run against the mock in a child
 * process; this process plays the dashboard, asking through its own connection to the journal
 * (`Store.requestControl`) and reading the live state (`Store.readLive`). Pause stops new starts
 * at the mock, resume continues, cancel ends the run cancelled and the child exits 130.
 *
 * No assertion races a timer: "no new start while paused" holds however loaded the machine is;
 * every wait is for an event in the file or at the mock, with a deadline only as a guard. How
 * long a request took to act is printed (docs/store.md has the figures), not asserted.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { type Child, spawnStride } from '../cli/helpers.js';
import { until, writeDifyPlan } from './child-run.js';

const KEY = 'app-control-test';
const CASES = 2_000; // cancelled long before the end: room for a slow pause under load
let mock: MockServer;
let dir: string;
let plan: string;
const children: Child[] = [];

beforeAll(async () => {
  mock = await startMock({ apiKeys: [KEY], latencyMs: 10 });
  dir = mkdtempSync(join(tmpdir(), 'stride-control-'));
  const lines = Array.from({ length: CASES }, (_, i) =>
    JSON.stringify({ id: `k${i}`, inputs: { query: `question ${i}` } }),
  );
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  plan = writeDifyPlan(dir, {
    workflowId: 'control-test',
    baseUrl: mock.baseUrl,
    apiKey: KEY,
    concurrency: 2,
  });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await mock.close();
});

describe('control from another process', () => {
  test('pause stops new starts at the mock, resume continues, cancel ends the run (exit 130)', async () => {
    const db = join(dir, 'stride.db');
    const child = spawnStride(
      ['run', plan, '--db', db, '--run-id', 'C', '--out', join(dir, 'out'), '--no-progress'],
      { cwd: dir, env: {} },
    );
    children.push(child);
    const store = new SqliteStore({ path: db });
    try {
      const live = async () => (await store.readLive('C').catch(() => undefined))?.state;
      await until(
        'the run to get going',
        async () => ((await live())?.counts.done ?? 0) >= 20,
        child,
      );

      const asked = await store.requestControl('C', 'pause', 'test dashboard');
      await until(
        'the pause to be taken',
        async () => {
          return (await store.controlRequests('C'))[0]?.outcome === 'paused';
        },
        child,
      );
      const taken = (await store.controlRequests('C'))[0]!;
      console.log(`pause taken ${taken.takenAt! - asked.at} ms after it was asked`);
      await until(
        'in-flight attempts to settle',
        async () => (await live())?.status === 'paused',
        child,
      );
      const paused = (await live())!;
      expect(paused.holds).toMatchObject([{ reason: 'control', by: 'test dashboard' }]);
      expect(paused.inFlight).toBe(0);
      const requests = mock.stats().requests;
      expect(paused.counts.attempts).toBe(requests); // every request at the mock is an attempt
      // Paused: nothing starts, whatever the load, and the child waits (it does not exit for
      // lack of work). Half a second is two polls of the child.
      await new Promise((r) => setTimeout(r, 500));
      expect(child.pid).toBe((await store.runLock('C'))?.pid);
      expect(mock.stats().requests).toBe(requests);
      expect((await live())?.counts.done).toBe(paused.counts.done);

      await store.requestControl('C', 'resume', 'test dashboard');
      await until('new starts after resume', () => mock.stats().requests > requests + 10, child);
      expect((await store.controlRequests('C'))[1]).toMatchObject({ outcome: 'resumed' });

      await store.requestControl('C', 'cancel', 'test dashboard');
      expect(await child.exited).toBe(130);
      expect(child.stderr()).toContain('Cancelled by test dashboard. Resume with: stride resume C');
      const run = await store.getRun('C');
      expect(run?.status).toBe('cancelled');
      expect(run?.counts.total).toBe(CASES);
      expect(run!.counts.cancelled).toBeGreaterThan(0);
      // Every request at the mock is a recorded attempt; the cancel may abort at most the
      // attempts in flight (2) before their requests reached the mock.
      const sent = mock.stats().requests;
      expect(run!.counts.attempts).toBeGreaterThanOrEqual(sent);
      expect(run!.counts.attempts - sent).toBeLessThanOrEqual(2);
      expect(await store.runLock('C')).toBeUndefined();
    } finally {
      await store.close();
    }
  }, 180_000);
});
