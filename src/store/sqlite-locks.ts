/**
 * Run locks in the journal's own SQLite file (table `run_locks`): every process that opens the
 * journal sees them, with no port or daemon. Taking a lock is one IMMEDIATE transaction (read the
 * holder, judge it, replace it), so two processes racing for one run cannot both win.
 */

import type Database from 'better-sqlite3';
import { StrideError } from '../core/errors.js';
import {
  holderAlive,
  holderOf,
  LOCK_HEARTBEAT_MS,
  type LockHolder,
  type LockRecord,
  newLockRecord,
  type RunLease,
  runLockedError,
} from './lock.js';

interface LockRow {
  run_id: string;
  token: string;
  pid: number;
  host: string;
  start_ticks: number | null;
  since: number;
  heartbeat_at: number;
}

function fromRow(row: LockRow): LockRecord {
  return {
    pid: row.pid,
    host: row.host,
    since: row.since,
    heartbeatAt: row.heartbeat_at,
    token: row.token,
    startTicks: row.start_ticks ?? undefined,
  };
}

/** The locks of one SqliteStore: takes, beats and gives back the locks it holds. */
export class SqliteLocks {
  private readonly held = new Map<string, { token: string; timer: NodeJS.Timeout }>();
  private readonly get: Database.Statement;
  private readonly del: Database.Statement;
  private readonly put: Database.Statement;
  private readonly beat: Database.Statement;
  private readonly take: (runId: string) => LockRecord;

  /** `wrap` turns a driver error into the store's own error for `doing`. */
  constructor(
    db: Database.Database,
    private readonly wrap: (err: unknown, doing: string) => Error,
  ) {
    this.get = db.prepare('SELECT * FROM run_locks WHERE run_id = ?');
    this.del = db.prepare('DELETE FROM run_locks WHERE run_id = ? AND token = ?');
    this.put = db.prepare(
      `INSERT OR REPLACE INTO run_locks (run_id, token, pid, host, start_ticks, since, heartbeat_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.beat = db.prepare('UPDATE run_locks SET heartbeat_at = ? WHERE run_id = ? AND token = ?');
    const tx = db.transaction((runId: string): LockRecord => {
      const row = this.get.get(runId) as LockRow | undefined;
      if (row !== undefined) {
        const current = fromRow(row);
        if (holderAlive(current)) throw runLockedError(runId, holderOf(current));
      }
      const mine = newLockRecord();
      this.put.run(
        runId,
        mine.token,
        mine.pid,
        mine.host,
        mine.startTicks ?? null,
        mine.since,
        mine.heartbeatAt,
      );
      return mine;
    });
    this.take = (runId) => tx.immediate(runId);
  }

  lock(runId: string): RunLease {
    let mine: LockRecord;
    try {
      mine = this.take(runId);
    } catch (err) {
      // The refusal is not a store failure: it keeps its own code (RUN_LOCKED).
      if (err instanceof StrideError && err.code === 'RUN_LOCKED') throw err;
      throw this.wrap(err, 'locking a run');
    }
    // A heartbeat tells holders on other hosts that this one lives; it never keeps the
    // process alive by itself.
    const timer = setInterval(() => {
      try {
        this.beat.run(Date.now(), runId, mine.token);
      } catch {
        // A busy or failing database: the next beat tries again; the lock is judged by pid here.
      }
    }, LOCK_HEARTBEAT_MS);
    timer.unref();
    this.held.set(runId, { token: mine.token, timer });
    let released = false;
    return {
      runId,
      holder: holderOf(mine),
      release: async () => {
        if (released) return;
        released = true;
        this.release(runId, mine.token);
      },
    };
  }

  /** The live holder of a run's lock, or undefined. */
  holder(runId: string): LockHolder | undefined {
    let row: LockRow | undefined;
    try {
      row = this.get.get(runId) as LockRow | undefined;
    } catch (err) {
      throw this.wrap(err, 'reading a run lock');
    }
    if (row === undefined) return undefined;
    const lock = fromRow(row);
    return holderAlive(lock) ? holderOf(lock) : undefined;
  }

  /** Gives back every lock this store holds (on close). */
  releaseAll(): void {
    for (const [runId, { token }] of [...this.held]) this.release(runId, token);
  }

  private release(runId: string, token: string): void {
    const held = this.held.get(runId);
    if (held === undefined || held.token !== token) return;
    clearInterval(held.timer);
    this.held.delete(runId);
    try {
      this.del.run(runId, token);
    } catch (err) {
      throw this.wrap(err, 'releasing a run lock');
    }
  }
}
