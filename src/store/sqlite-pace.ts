/**
 * The adaptive pace of a run over time in the journal's SQLite file (table `run_pace`, schema
 * v5): one row per `paceChanged`, written at once (a change is rare and belongs to no case).
 */

import type Database from 'better-sqlite3';
import type { PaceReason } from '../core/pace.js';
import type { PaceRecord } from './port.js';

interface PaceRow {
  at: number;
  concurrency: number;
  rate: number | null;
  reason: PaceReason;
  message: string;
}

/** The pace statements of one SqliteStore. */
export class SqlitePace {
  private readonly insert: Database.Statement;
  private readonly all: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      'INSERT INTO run_pace (run_key, at, concurrency, rate, reason, message) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.all = db.prepare(
      'SELECT at, concurrency, rate, reason, message FROM run_pace WHERE run_key = ? ORDER BY id',
    );
    this.remove = db.prepare('DELETE FROM run_pace WHERE run_key = ?');
  }

  append(runKey: number, c: PaceRecord): void {
    this.insert.run(runKey, c.at, c.concurrency, c.ratePerMinute ?? null, c.reason, c.message);
  }

  read(runKey: number): PaceRecord[] {
    return (this.all.all(runKey) as PaceRow[]).map((r) => ({
      at: r.at,
      concurrency: r.concurrency,
      ratePerMinute: r.rate ?? undefined,
      reason: r.reason,
      message: r.message,
    }));
  }

  /** With its run (prune). */
  delete(runKey: number): void {
    this.remove.run(runKey);
  }
}
