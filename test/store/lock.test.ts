/**
 * Run locks in the SQLite file, as other processes see them: a holder that died (its pid gone,
 * or reused by a later process) is taken over at once; a holder on another host is judged by
 * its heartbeat. The refusal itself is in the Store contract; two real processes racing for one
 * run are in test/runner/lock.test.ts.
 */

import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { LOCK_STALE_MS, SqliteStore } from '../../src/store/index.js';
import { processStartTicks } from '../../src/store/lock.js';
import { tempDb } from './helpers.js';

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function open(path: string): SqliteStore {
  const store = new SqliteStore({ path });
  stores.push(store);
  return store;
}

/** Writes a lock row as another process would have left it. */
function plant(
  path: string,
  runId: string,
  row: { pid: number; host?: string; startTicks?: number | null; heartbeatAt?: number },
): void {
  const db = new Database(path);
  try {
    db.prepare(
      `INSERT OR REPLACE INTO run_locks (run_id, token, pid, host, start_ticks, since, heartbeat_at)
       VALUES (?, 'planted', ?, ?, ?, ?, ?)`,
    ).run(
      runId,
      row.pid,
      row.host ?? hostname(),
      row.startTicks ?? null,
      Date.now() - 1000,
      row.heartbeatAt ?? Date.now(),
    );
  } finally {
    db.close();
  }
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

describe('SqliteStore run locks: who is alive', () => {
  test('a lock of a live process on this host is refused, its heartbeat notwithstanding', async () => {
    const path = tempDb();
    const store = open(path);
    // This process is alive; a heartbeat older than the stale limit does not make it dead.
    plant(path, 'r', { pid: process.pid, heartbeatAt: Date.now() - 10 * LOCK_STALE_MS });
    await expect(store.lockRun('r')).rejects.toMatchObject({ code: 'RUN_LOCKED' });
    expect((await store.runLock('r'))?.pid).toBe(process.pid);
  });

  test('a lock whose process died is taken over at once', async () => {
    const path = tempDb();
    const store = open(path);
    const pid = deadPid();
    plant(path, 'r', { pid });
    expect(await store.runLock('r')).toBeUndefined();
    const lease = await store.lockRun('r');
    expect(lease.holder.pid).toBe(process.pid);
    await lease.release();
  });

  test('a pid reused by a later process is not the holder', async () => {
    const path = tempDb();
    const store = open(path);
    const mine = processStartTicks(process.pid);
    expect(mine).toBeTypeOf('number'); // Linux: /proc is there
    plant(path, 'r', { pid: process.pid, startTicks: (mine ?? 0) + 1 });
    const lease = await store.lockRun('r');
    expect(lease.holder.pid).toBe(process.pid);
  });

  test('a holder on another host is judged by its heartbeat', async () => {
    const path = tempDb();
    const store = open(path);
    plant(path, 'fresh', { pid: 1, host: 'elsewhere', heartbeatAt: Date.now() });
    await expect(store.lockRun('fresh')).rejects.toMatchObject({ code: 'RUN_LOCKED' });
    const message = await store.lockRun('fresh').catch((e: Error) => e.message);
    expect(message).toContain('process 1 on elsewhere');
    plant(path, 'stale', {
      pid: 1,
      host: 'elsewhere',
      heartbeatAt: Date.now() - LOCK_STALE_MS - 1,
    });
    const lease = await store.lockRun('stale');
    expect(lease.holder.host).toBe(hostname());
  });

  test('a store that closes gives its locks back; a release never removes a successor', async () => {
    const path = tempDb();
    const first = open(path);
    const lease = await first.lockRun('r');
    await first.close();
    const second = open(path);
    expect(await second.runLock('r')).toBeUndefined();
    const next = await second.lockRun('r');
    await lease.release(); // the old lease: must not drop the new holder's lock
    expect((await second.runLock('r'))?.since).toBe(next.holder.since);
  });
});
