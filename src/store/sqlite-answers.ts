/**
 * The answers of graded cases in the journal's SQLite file (table `run_answers`, schema v9,
 * issue #20): what the app answered a case, written at once when it answered and before its
 * gradings start, so that a resume after a kill grades the case from it instead of calling the
 * app again.
 */

import type Database from 'better-sqlite3';
import type { AnswerRecord } from './port.js';

interface AnswerRow {
  case_id: string;
  attempt: number;
  output: string;
  latency_ms: number;
  tokens: number | null;
  cost: number | null;
}

/** The answer statements of one SqliteStore. */
export class SqliteAnswers {
  private readonly insert: Database.Statement;
  private readonly all: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      'INSERT INTO run_answers (run_key, case_id, attempt, output, latency_ms, tokens, cost) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.all = db.prepare(
      // The latest answer of each case, chosen in SQL (as the resume state's latest results are).
      'SELECT case_id, attempt, output, latency_ms, tokens, cost FROM run_answers WHERE id IN (SELECT MAX(id) FROM run_answers WHERE run_key = ? GROUP BY case_id) ORDER BY id',
    );
    this.remove = db.prepare('DELETE FROM run_answers WHERE run_key = ?');
  }

  append(runKey: number, a: AnswerRecord): void {
    this.insert.run(
      runKey,
      a.caseId,
      a.attempt,
      JSON.stringify(a.output ?? null),
      a.latencyMs,
      a.tokens ?? null,
      a.cost ?? null,
    );
  }

  /** The latest answer of each case. */
  read(runKey: number): Map<string, AnswerRecord> {
    const out = new Map<string, AnswerRecord>();
    for (const r of this.all.iterate(runKey) as IterableIterator<AnswerRow>) {
      out.set(r.case_id, {
        caseId: r.case_id,
        attempt: r.attempt,
        output: JSON.parse(r.output),
        latencyMs: r.latency_ms,
        ...(r.tokens === null ? {} : { tokens: r.tokens }),
        ...(r.cost === null ? {} : { cost: r.cost }),
      });
    }
    return out;
  }

  /** With its run (prune). */
  delete(runKey: number): void {
    this.remove.run(runKey);
  }
}
