// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/**
 * Faults of a distributed run, with real processes: the coordinator killed with kill -9 and the
 * run resumed (outcomes that arrived meanwhile are reconciled, not paid again); Redis restarted
 * in the middle of a run (it pauses, then finishes, nothing lost).
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { main } from '../../src/cli/app.js';
import { SqliteStore } from '../../src/store/index.js';
import { captureIo } from '../cli/helpers.js';
import { distributedFixture, planFile } from './redis.js';

const f = distributedFixture({ min: 20, max: 60 });

async function startWorkers(queue: string, n: number, cwd: string): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => f.startWorker(queue, 8, cwd)));
}

describe('distributed faults', () => {
  test('coordinator killed with kill -9, then stride resume: outcomes that arrived meanwhile are kept, nothing is sent twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stride-dist-'));
    const tag = dir.slice(-6);
    const queue = 'q-coord';
    // 200 cases, the kill after 60 answered (500 and 150 before, issue #14): a kill with work
    // in flight on both workers and most of the run still to come, at two fifths of the cost.
    const plan = planFile(
      dir,
      200,
      '{ concurrency: 16, timeout: 30s, retry_policy: { max_attempts: 3, backoff_seconds: 0.1 } }',
    );
    const base = [...f.dispatchArgs(queue, 'j.db'), '--report', 'json'];
    // The coordinator starts while the workers do (its jobs wait in the queue for them): the
    // two process start-ups overlap instead of adding up (several seconds each under load).
    const coordinator = f.spawnStride(['run', plan, '--run-id', 'crash-run', ...base], dir);
    await startWorkers(queue, 2, dir);
    await expect
      .poll(() => Object.keys(f.mock.stats().byCase).filter((k) => k.startsWith(tag)).length, {
        timeout: 60_000,
        interval: 10,
      })
      .toBeGreaterThan(60);
    coordinator.kill('SIGKILL');
    await coordinator.done;
    const before = new SqliteStore({ path: join(dir, 'j.db') });
    const stored = (await before.getRun('crash-run'))?.counts.total ?? 0;
    await before.close();
    expect(stored).toBeLessThan(200);

    const resumed = f.spawnStride(['resume', 'crash-run', ...base, '--json'], dir);
    expect(await resumed.done).toBe(0);
    const summary = JSON.parse(
      resumed
        .out()
        .split('\n')
        .find((l) => l.startsWith('{"runId"'))!,
    ) as Record<string, number>;
    expect(summary).toMatchObject({ runId: 'crash-run', total: 200, passed: 200 });
    const byCase = f.mock.stats().byCase;
    const counts = Array.from({ length: 200 }, (_, i) => byCase[`${tag}-c${i}`] ?? 0);
    expect(counts.every((c) => c >= 1)).toBe(true);
    // In-flight attempts kept running on the workers while the coordinator was down; their
    // outcomes waited in the run's outcome stream (their jobs, if still running, were found in
    // the queue) and the resume took them: no case reached the mock twice.
    expect(counts.flatMap((c, i) => (c > 1 ? [`c${i}`] : []))).toEqual([]);
    const store = new SqliteStore({ path: join(dir, 'j.db') });
    try {
      let results = 0;
      for await (const _ of store.results('crash-run')) results++;
      expect(results).toBe(200);
    } finally {
      await store.close();
    }
  }, 180_000); // a limit, not a measure: worker processes start slowly under load (SLOW)

  test('Redis restarted in the middle of a run: the run waits for it and finishes, nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stride-dist-'));
    const tag = dir.slice(-6);
    const queue = 'q-restart';
    await startWorkers(queue, 2, dir);
    // 200 cases, the restart after 40 answered (400 and 100 before, issue #14): the restart
    // still lands with four fifths of the run to come.
    const plan = planFile(
      dir,
      200,
      '{ concurrency: 16, timeout: 60s, retry_policy: { max_attempts: 3, backoff_seconds: 0.1 } }',
    );
    const { io, text } = captureIo({ MOCK_URL: f.mock.baseUrl });
    const run = main(
      [
        'run',
        plan,
        ...f.dispatchArgs(queue, join(dir, 'j.db')),
        '--out',
        join(dir, 'out'),
        '--report',
        'json',
        '--json',
        '--no-progress',
      ],
      io,
    );
    await expect
      .poll(() => Object.keys(f.mock.stats().byCase).filter((k) => k.startsWith(tag)).length, {
        timeout: 60_000,
        interval: 10,
      })
      .toBeGreaterThan(40);
    const answeredBefore = Object.keys(f.mock.stats().byCase).filter((k) =>
      k.startsWith(tag),
    ).length;
    await f.redis.restart();
    expect(await run).toBe(0);
    expect(answeredBefore).toBeLessThan(200); // the restart happened in the middle
    expect(JSON.parse(text.out)).toMatchObject({ total: 200, passed: 200 });
    const byCase = f.mock.stats().byCase;
    expect(
      Array.from({ length: 200 }, (_, i) => byCase[`${tag}-c${i}`] ?? 0).every((c) => c >= 1),
    ).toBe(true);
  }, 180_000);
  test('Redis unreachable: a clear error that names it (without its password), and the run waits', async () => {
    const messages: string[] = [];
    const { BullmqDispatcher } = await import('../../src/distributed/index.js');
    const dispatcher = new BullmqDispatcher({
      redis: 'redis://user:s3cret@127.0.0.1:1',
      onRedisError: (m) => messages.push(m),
    });
    try {
      await expect.poll(() => messages.length, { timeout: 5_000, interval: 20 }).toBe(1);
      expect(messages[0]).toMatch(
        /^Redis at redis:\/\/127\.0\.0\.1:1\/? is unreachable \(.*ECONNREFUSED.*\); waiting for it to come back$/,
      );
      expect(messages[0]).not.toContain('s3cret');
    } finally {
      await dispatcher.close();
    }
  });
});
