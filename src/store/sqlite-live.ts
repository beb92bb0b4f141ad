/**
 * Live state and outside control in the journal's SQLite file (tables `run_live` and
 * `run_control`, see store/live.ts). Taking requests is one IMMEDIATE transaction: a request is
 * applied by exactly one session and stamped with what it did.
 */

import type Database from 'better-sqlite3';
import type { ControlAction, ControlRequest, LiveRecord, LiveState } from './live.js';

interface ControlRow {
  id: number;
  run_id: string;
  action: ControlAction;
  by: string;
  at: number;
  taken_at: number | null;
  outcome: string | null;
}

function fromRow(row: ControlRow): ControlRequest {
  return {
    id: row.id,
    runId: row.run_id,
    action: row.action,
    by: row.by,
    at: row.at,
    takenAt: row.taken_at ?? undefined,
    outcome: row.outcome ?? undefined,
  };
}

/** The live-state and control statements of one SqliteStore. */
export class SqliteLive {
  private readonly putLive: Database.Statement;
  private readonly getLive: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly open: Database.Statement;
  private readonly stamp: Database.Statement;
  private readonly all: Database.Statement;
  private readonly take: (runId: string, apply: (req: ControlRequest) => string) => number;

  constructor(
    db: Database.Database,
    private readonly wrap: (err: unknown, doing: string) => Error,
  ) {
    this.putLive = db.prepare(
      'INSERT OR REPLACE INTO run_live (run_id, updated_at, state) VALUES (?, ?, ?)',
    );
    this.getLive = db.prepare('SELECT updated_at, state FROM run_live WHERE run_id = ?');
    this.insert = db.prepare(
      'INSERT INTO run_control (run_id, action, by, at) VALUES (?, ?, ?, ?) RETURNING *',
    );
    this.open = db.prepare(
      'SELECT * FROM run_control WHERE run_id = ? AND taken_at IS NULL ORDER BY id',
    );
    this.stamp = db.prepare('UPDATE run_control SET taken_at = ?, outcome = ? WHERE id = ?');
    this.all = db.prepare('SELECT * FROM run_control WHERE run_id = ? ORDER BY id');
    const tx = db.transaction((runId: string, apply: (req: ControlRequest) => string) => {
      const rows = this.open.all(runId) as ControlRow[];
      for (const row of rows) {
        const outcome = apply(fromRow(row));
        this.stamp.run(Date.now(), outcome, row.id);
      }
      return rows.length;
    });
    this.take = (runId, apply) => tx.immediate(runId, apply);
  }

  writeLive(runId: string, state: LiveState): void {
    this.guard('writing the live state', () =>
      this.putLive.run(runId, Date.now(), JSON.stringify(state)),
    );
  }

  readLive(runId: string): LiveRecord | undefined {
    const row = this.guard(
      'reading the live state',
      () => this.getLive.get(runId) as { updated_at: number; state: string } | undefined,
    );
    if (row === undefined) return undefined;
    return { runId, updatedAt: row.updated_at, state: JSON.parse(row.state) as LiveState };
  }

  request(runId: string, action: ControlAction, by: string): ControlRequest {
    const row = this.guard(
      'recording a control request',
      () => this.insert.get(runId, action, by, Date.now()) as ControlRow,
    );
    return fromRow(row);
  }

  takeControl(runId: string, apply: (req: ControlRequest) => string): number {
    // A quick read first: the poll runs every 250 ms and nearly always finds nothing, so it
    // must not take the write lock for that.
    const waiting = this.guard('reading control requests', () => this.open.get(runId));
    if (waiting === undefined) return 0;
    return this.guard('taking control requests', () => this.take(runId, apply));
  }

  requests(runId: string): ControlRequest[] {
    return this.guard('reading control requests', () =>
      (this.all.all(runId) as ControlRow[]).map(fromRow),
    );
  }

  private guard<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.wrap(err, doing);
    }
  }
}
