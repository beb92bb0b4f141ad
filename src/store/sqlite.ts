/**
 * The Store on SQLite (better-sqlite3): the CLI's default, one file at `.stride/stride.db`.
 *
 * - WAL mode, `synchronous = NORMAL`: a commit is one append to the WAL, no fsync; a power cut
 *   may lose the last commits, a process crash loses nothing that was committed.
 * - Appends are buffered and written together, one transaction per tick (`setImmediate`), or at
 *   once by `flush()`. A failed write keeps the buffered batches and is retried by the next flush.
 * - Transitions are kept as one row per flush (a JSON array), which is what makes tens of
 *   thousands of transitions per second cheap; the `transitions` view unpacks them for SQL.
 * - Reads stream: every iterator opens its own read-only connection and walks a statement with
 *   `.iterate()`, so memory stays flat and the writer is never blocked by a reader.
 * - Migrations run at open, in one transaction; a newer schema than this code knows is refused.
 */

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { InvalidOptionError } from '../core/errors.js';
import type { RunStatistics, StopRule, TaskResult, TerminalStatus } from '../core/model.js';
import {
  type AttemptRow,
  activeTime,
  decodeTransitions,
  emptyTally,
  encodeBatch,
  foldBatch,
  fromAttemptRow,
  fromResultRow,
  pageOf,
  type ResultRow,
  repeatIndexOf,
  type Tally,
  tallyAttempt,
  tallyResult,
  toAttemptRow,
  toJson,
  toRunCounts,
  UnfinishedTracker,
  validateLimit,
  validateNewRun,
  validateRetention,
  validateRunEnd,
} from './codec.js';
import { DEFAULT_DB_PATH } from './db-path.js';
import { StoreError } from './errors.js';
import { makeFolderSync, openError } from './folder.js';
import type { ControlAction, ControlRequest, LiveRecord, LiveState } from './live.js';
import type { LockHolder, RunLease } from './lock.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import type {
  AnswerRecord,
  AttemptRecord,
  JournalBatch,
  ListRunsOptions,
  NewRun,
  PaceRecord,
  PlanKind,
  ResultsOptions,
  ResumeState,
  Retention,
  RunEnd,
  RunRecord,
  RunSummary,
  Store,
  StoredRunStatus,
  StoredTransition,
} from './port.js';
import { SqliteAnswers } from './sqlite-answers.js';
import { SqliteLive } from './sqlite-live.js';
import { SqliteLocks } from './sqlite-locks.js';
import { SqlitePace } from './sqlite-pace.js';
import { errorCodesQuery, RANGE, resultsQuery } from './sqlite-results.js';

export { DEFAULT_DB_PATH };

export interface SqliteStoreOptions {
  /** The database file; its folder is created if missing. @default '.stride/stride.db' */
  readonly path?: string;
  /** How long to wait for another process's write lock before failing, in ms. @default 5000 */
  readonly busyTimeoutMs?: number;
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Entries (transitions and attempts) buffered before a write happens without waiting a tick. */
const MAX_BUFFERED = 2048;

interface RunMeta {
  readonly key: number;
  /** key * RANGE: the id before the run's first row. */
  readonly base: number;
  journalSeq: number;
  resultSeq: number;
  attemptSeq: number;
}

interface RunRow extends Tally {
  key: number;
  id: string;
  parent_id: string | null;
  kind: string;
  plan: string;
  plan_hash: string;
  status: string;
  started_at: number;
  finished_at: number | null;
  stop_rule: string | null;
  stop_message: string | null;
  resumes: number;
  active_ms: number | null;
  session_started_at: number | null;
  last_at: number | null;
}

interface FullRunRow extends RunRow {
  plan_json: string;
  options_json: string;
  clock_offset_ms: number;
  statistics: string | null;
}

const SUMMARY_COLUMNS = `key, id, parent_id, kind, plan, plan_hash, status, started_at, finished_at,
  stop_rule, stop_message, resumes, succeeded, failed, timeout, cancelled, error, attempts,
  tokens, cost, cost_unknown AS costUnknown, active_ms, session_started_at, last_at`;

const ATTEMPT_COLUMNS = `case_id, number, started_at, ended_at, state, error_code, error_name,
  error_message, error_status, tokens, cost, upstream`;

let driver: typeof Database | undefined;
/**
 * The addon's file where better-sqlite3's own build puts it, given to each connection as
 * `nativeBinding`: without it better-sqlite3 asks the `bindings` package, which reads a stack
 * trace and tries several paths first. Undefined (bindings' search) when it is elsewhere.
 */
let addonFile: string | undefined;

/**
 * better-sqlite3 is a native addon: it is loaded when the first SqliteStore opens, so that
 * importing the store module (for the MemoryStore, or the types) never depends on it.
 */
function loadDriver(file: string): typeof Database {
  if (driver !== undefined) return driver;
  try {
    const load = createRequire(import.meta.url);
    driver = load('better-sqlite3') as typeof Database;
    try {
      addonFile = load.resolve('better-sqlite3/build/Release/better_sqlite3.node');
    } catch {
      addonFile = undefined;
    }
    return driver;
  } catch (err) {
    throw new StoreError(
      'io',
      file,
      `cannot open ${file}: the SQLite driver (better-sqlite3) did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); run \`npm rebuild better-sqlite3\`, or use the MemoryStore`,
      err,
    );
  }
}

/** The connection option that names the addon's file, when it was found (loadDriver). */
const binding = (): { nativeBinding?: string } =>
  addonFile === undefined ? {} : { nativeBinding: addonFile };

/** The SQLite error codes (better-sqlite3's `SqliteError.code`) and what they mean to a user. */
function failureOf(code: string): 'locked' | 'corrupt' | 'io' {
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'locked';
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) return 'corrupt';
  return 'io';
}

/**
 * Turns whatever SQLite threw into a StoreError naming the file. SQLite's own messages name no
 * bound value, so nothing of the data (and no secret) can leak into the message.
 */
function wrap(err: unknown, file: string, doing: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const failure = typeof code === 'string' ? failureOf(code) : 'io';
  switch (failure) {
    case 'locked':
      return new StoreError(
        'locked',
        file,
        `database ${file} is locked by another process (${message}) while ${doing}; nothing was lost: retry when the other stride is done, or use another --db file`,
        err,
      );
    case 'corrupt':
      return new StoreError(
        'corrupt',
        file,
        `database ${file} is not a Stride database or is damaged (${message}) while ${doing}; Stride did not change it: move it away or use another --db file`,
        err,
      );
    default:
      return new StoreError('io', file, `database ${file}: ${message} while ${doing}`, err);
  }
}

/**
 * Decodes what a row holds as JSON. A page damaged where SQLite does not look (a flipped byte
 * inside a text value: SQLite keeps no checksums) shows up here, as STORE_CORRUPT naming the
 * file and the run, like damage SQLite finds itself. Only the parser's position is shown,
 * never the stored text.
 */
function decoded<T>(file: string, what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    const at = err instanceof Error ? / at position \d+/.exec(err.message)?.[0] : undefined;
    throw new StoreError(
      'corrupt',
      file,
      `database ${file} is damaged: ${what} cannot be read back (${err instanceof SyntaxError ? `not valid JSON${at ?? ''}` : 'malformed'}); Stride did not change it: move it away or use another --db file`,
      err,
    );
  }
}

/** Refuses a file that is not SQLite before SQLite touches it, so it is never overwritten. */
function checkHeader(file: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return; // does not exist yet: SQLite creates it
  }
  if (size === 0) return;
  const head = Buffer.alloc(SQLITE_HEADER.length);
  try {
    const fd = openSync(file, 'r');
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw wrap(err, file, 'reading its header');
  }
  if (!head.equals(SQLITE_HEADER)) {
    throw new StoreError(
      'corrupt',
      file,
      `database ${file} is not a SQLite database (its first bytes are not the SQLite header); Stride did not change it: move it away or use another --db file`,
    );
  }
}

function optional(value: number | null): number | undefined {
  return value === null ? undefined : value;
}

/**
 * The Store on a SQLite file.
 *
 * @example
 * ```ts
 * const store = new SqliteStore({ path: '.stride/stride.db' });
 * const journal = await attachJournal(run, store, { plan: snapshotPlan(manifest) });
 * await run.start();
 * await journal.closed;
 * for await (const result of store.results(run.runId)) console.log(result.id, result.status);
 * await store.close();
 * ```
 */
export class SqliteStore implements Store {
  /** The database file, resolved. */
  readonly file: string;
  private readonly busyTimeoutMs: number;
  private readonly db: Database.Database;
  private readonly metas = new Map<string, RunMeta>();
  private pendingMetas: RunMeta[] = [];
  private pendingBatches: JournalBatch[] = [];
  private pendingEntries = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private failure: StoreError | undefined;
  private closed = false;

  private readonly stmt: {
    insertRun: Database.Statement;
    runByIdFull: Database.Statement;
    runMeta: Database.Statement;
    runExists: Database.Statement;
    insertJournal: Database.Statement;
    insertResult: Database.Statement;
    insertAttempt: Database.Statement;
    addTally: Database.Statement;
    finish: Database.Statement;
    reopen: Database.Statement;
    list: Database.Statement;
  };
  private readonly writePending: () => void;
  private readonly locks: SqliteLocks;
  private readonly live: SqliteLive;
  private readonly pace: SqlitePace;
  private readonly answerRows: SqliteAnswers;

  constructor(options: SqliteStoreOptions = {}) {
    const path = options.path ?? DEFAULT_DB_PATH;
    if (
      typeof path !== 'string' ||
      path === '' ||
      path === ':memory:' ||
      path.startsWith('file:')
    ) {
      throw new InvalidOptionError('path', path, 'a file path (use MemoryStore for memory)');
    }
    const busy = options.busyTimeoutMs ?? 5000;
    if (!Number.isInteger(busy) || busy < 0) {
      throw new InvalidOptionError('busyTimeoutMs', busy, 'an integer >= 0');
    }
    this.busyTimeoutMs = busy;
    this.file = resolve(path);
    try {
      makeFolderSync(dirname(this.file));
    } catch (err) {
      throw wrap(err, this.file, 'creating its folder');
    }
    checkHeader(this.file);
    const Sqlite = loadDriver(this.file);
    let db: Database.Database;
    try {
      db = new Sqlite(this.file, { timeout: busy, ...binding() });
    } catch (err) {
      throw wrap(openError(err, this.file), this.file, 'opening it');
    }
    this.db = db;
    try {
      this.setUp();
      this.stmt = {
        insertRun: db.prepare(
          `INSERT INTO runs (id, parent_id, kind, plan, plan_hash, plan_json, options_json, status,
             started_at, clock_offset_ms, active_ms, session_started_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, 0, ?)`,
        ),
        runByIdFull: db.prepare(
          `SELECT ${SUMMARY_COLUMNS}, plan_json, options_json, clock_offset_ms, statistics
           FROM runs WHERE id = ?`,
        ),
        runMeta: db.prepare(
          `SELECT key,
             (SELECT ifnull(max(id) - lo, 0) FROM journal WHERE id BETWEEN lo AND hi) AS journal_seq,
             (SELECT ifnull(max(id) - lo, 0) FROM results WHERE id BETWEEN lo AND hi) AS result_seq,
             (SELECT ifnull(max(id) - lo, 0) FROM attempts WHERE id BETWEEN lo AND hi) AS attempt_seq
           FROM (SELECT key, key * ${RANGE} AS lo, key * ${RANGE} + ${RANGE - 1} AS hi
                 FROM runs WHERE id = ?)`,
        ),
        runExists: db.prepare('SELECT 1 FROM runs WHERE id = ?'),
        insertJournal: db.prepare(
          'INSERT INTO journal (id, run_key, base_at, entries) VALUES (?, ?, ?, ?)',
        ),
        insertResult: db.prepare(
          `INSERT INTO results (id, run_key, case_id, repeat_index, status, attempts, priority,
             started_at, finished_at, execution_ms, error_code, error_name, error_message,
             error_status, reason, tokens, cost, cost_unknown, input, output,
             attempt_started_at, attempt_tokens, attempt_cost, upstream)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        insertAttempt: db.prepare(
          `INSERT INTO attempts (id, run_key, ${ATTEMPT_COLUMNS})
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        addTally: db.prepare(
          `UPDATE runs SET succeeded = succeeded + ?, failed = failed + ?, timeout = timeout + ?,
             cancelled = cancelled + ?, error = error + ?, attempts = attempts + ?,
             tokens = tokens + ?, cost = cost + ?, cost_unknown = cost_unknown + ?,
             last_at = ? WHERE key = ?`,
        ),
        finish: db.prepare(
          `UPDATE runs SET status = ?, finished_at = ?, stop_rule = ?, stop_message = ?,
             statistics = ?,
             active_ms = active_ms + CASE WHEN session_started_at IS NULL THEN 0
                                          ELSE max(0, ? - session_started_at) END,
             session_started_at = NULL, last_at = NULL WHERE key = ?`,
        ),
        reopen: db.prepare(
          `UPDATE runs SET status = 'running', resumes = resumes + 1, finished_at = NULL,
             stop_rule = NULL, stop_message = NULL, statistics = NULL,
             active_ms = active_ms + CASE WHEN session_started_at IS NULL THEN 0
               ELSE max(0, ifnull(last_at, session_started_at) - session_started_at) END,
             session_started_at = ?, last_at = NULL WHERE id = ?`,
        ),
        list: db.prepare(
          `SELECT ${SUMMARY_COLUMNS} FROM runs ORDER BY started_at DESC, key DESC LIMIT ?`,
        ),
      };
    } catch (err) {
      db.close();
      throw wrap(err, this.file, 'opening it');
    }
    const tx = db.transaction(() => this.writeBatches());
    this.writePending = () => tx();
    this.locks = new SqliteLocks(db, (err, doing) => wrap(err, this.file, doing));
    this.live = new SqliteLive(db, (err, doing) => wrap(err, this.file, doing));
    this.pace = new SqlitePace(db);
    this.answerRows = new SqliteAnswers(db);
  }

  /** The schema version of the open database (the latest this code knows). */
  get schemaVersion(): number {
    return SCHEMA_VERSION;
  }

  async createRun(run: NewRun): Promise<void> {
    this.open();
    validateNewRun(run);
    if (this.stmt.runExists.get(run.id) !== undefined) {
      throw new StoreError(
        'duplicate_run',
        this.file,
        `run ${run.id} already exists in ${this.file}`,
      );
    }
    const info = this.guard('creating a run', () =>
      this.stmt.insertRun.run(
        run.id,
        run.parentId ?? null,
        run.kind,
        run.plan,
        run.planHash,
        run.planJson,
        run.optionsJson,
        run.startedAt,
        run.clockOffsetMs ?? 0,
        run.startedAt,
      ),
    );
    const key = Number(info.lastInsertRowid);
    this.metas.set(run.id, {
      key,
      base: key * RANGE,
      journalSeq: 0,
      resultSeq: 0,
      attemptSeq: 0,
    });
  }

  async reopenRun(runId: string, at: number = Date.now()): Promise<void> {
    this.open();
    this.flushNow('re-opening a run');
    const info = this.guard('re-opening a run', () => this.stmt.reopen.run(at, runId));
    if (info.changes === 0) throw this.unknown(runId);
    // Sequences continue after what is on disk (another process may have written since).
    this.metas.delete(runId);
    this.meta(runId);
  }

  append(runId: string, batch: JournalBatch): void {
    this.open();
    if (this.failure !== undefined) throw this.failure;
    const meta = this.meta(runId);
    this.pendingMetas.push(meta);
    this.pendingBatches.push(batch);
    this.pendingEntries += batch.transitions.length + batch.attempts.length;
    // Work that never yields to the event loop (no-op targets) would otherwise buffer its whole
    // run: past the cap, the transaction is written now.
    if (this.pendingEntries >= MAX_BUFFERED) this.flushNow('writing the journal');
    else this.scheduled ??= setImmediate(this.flushSoon);
  }

  async finishRun(runId: string, end: RunEnd): Promise<void> {
    this.open();
    validateRunEnd(end);
    const meta = this.meta(runId);
    this.flushNow('finishing a run');
    this.guard('finishing a run', () =>
      this.stmt.finish.run(
        end.status,
        end.finishedAt,
        end.stoppedBy?.rule ?? null,
        end.stoppedBy?.message ?? null,
        end.statistics === undefined ? null : JSON.stringify(end.statistics),
        end.finishedAt,
        meta.key,
      ),
    );
  }

  async loadRun(runId: string): Promise<ResumeState | undefined> {
    const run = await this.getRun(runId);
    if (run === undefined) return undefined;
    const tracker = new UnfinishedTracker();
    for await (const t of this.transitions(runId)) tracker.add(t);
    return { run, ...tracker.result() };
  }

  async listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    this.open();
    const limit = options.limit;
    validateLimit(limit);
    this.flushNow('listing runs');
    const rows = this.guard('listing runs', () => this.stmt.list.all(limit ?? -1) as RunRow[]);
    return rows.map((row) => this.summary(row));
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    this.open();
    this.flushNow('reading a run');
    const row = this.guard(
      'reading a run',
      () => this.stmt.runByIdFull.get(runId) as FullRunRow | undefined,
    );
    if (row === undefined) return undefined;
    const run = `run ${JSON.stringify(runId)}`;
    // Parsed here, once, so every reader of planJson / optionsJson may trust them.
    decoded(this.file, `the plan of ${run}`, () => JSON.parse(row.plan_json));
    decoded(this.file, `the options of ${run}`, () => JSON.parse(row.options_json));
    return {
      ...this.summary(row),
      planJson: row.plan_json,
      optionsJson: row.options_json,
      clockOffsetMs: row.clock_offset_ms,
      statistics:
        row.statistics === null
          ? undefined
          : decoded(
              this.file,
              `the statistics of ${run}`,
              () => JSON.parse(row.statistics!) as RunStatistics,
            ),
    };
  }

  async *results(runId: string, options: ResultsOptions = {}): AsyncIterableIterator<TaskResult> {
    const key = this.prepareRead(runId);
    const { sql, params } = resultsQuery(key, options, pageOf(options));
    const what = `a result of run ${JSON.stringify(runId)}`;
    for (const row of this.stream<ResultRow>(sql, params))
      yield decoded(this.file, what, () => fromResultRow(row));
  }

  async *attempts(runId: string, caseId?: string): AsyncIterableIterator<AttemptRecord> {
    const key = this.prepareRead(runId);
    const one = caseId === undefined ? '' : ' AND case_id = @caseId';
    const sql = `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE id BETWEEN @lo AND @hi${one}
      UNION ALL
      SELECT case_id, attempts, attempt_started_at, finished_at, status, error_code, error_name,
        error_message, error_status, attempt_tokens, attempt_cost, upstream
      FROM results WHERE id BETWEEN @lo AND @hi AND attempt_started_at IS NOT NULL${one}
      ORDER BY case_id, number`;
    const range = { lo: key * RANGE, hi: key * RANGE + RANGE - 1 };
    const params: unknown[] = [caseId === undefined ? range : { ...range, caseId }];
    const what = `an attempt of run ${JSON.stringify(runId)}`;
    for (const row of this.stream<AttemptRow>(sql, params))
      yield decoded(this.file, what, () => fromAttemptRow(row));
  }

  async *transitions(runId: string): AsyncIterableIterator<StoredTransition> {
    const key = this.prepareRead(runId);
    const sql = 'SELECT base_at, entries FROM journal WHERE id BETWEEN ? AND ? ORDER BY id';
    const range = [key * RANGE, key * RANGE + RANGE - 1];
    const what = `the journal of run ${JSON.stringify(runId)}`;
    for (const row of this.stream<{ base_at: number; entries: string }>(sql, range)) {
      yield* decoded(this.file, what, () => decodeTransitions(row.entries, row.base_at));
    }
  }

  async prune(retention: Retention): Promise<number> {
    this.open();
    validateRetention(retention);
    this.flushNow('pruning runs');
    const now = retention.now ?? Date.now();
    const deleted = this.guard('pruning runs', () =>
      this.db.transaction(() => {
        const doomed = new Map<number, string>();
        const collect = (rows: { key: number; id: string }[]) => {
          for (const r of rows) doomed.set(r.key, r.id);
        };
        if (retention.maxAgeMs !== undefined) {
          collect(
            this.db
              .prepare('SELECT key, id FROM runs WHERE started_at < ?')
              .all(now - retention.maxAgeMs) as { key: number; id: string }[],
          );
        }
        if (retention.maxRuns !== undefined) {
          collect(
            this.db
              .prepare(
                'SELECT key, id FROM runs ORDER BY started_at DESC, key DESC LIMIT -1 OFFSET ?',
              )
              .all(retention.maxRuns) as { key: number; id: string }[],
          );
        }
        for (const table of ['journal', 'results', 'attempts']) {
          const del = this.db.prepare(`DELETE FROM ${table} WHERE id BETWEEN ? AND ?`);
          for (const key of doomed.keys()) del.run(key * RANGE, key * RANGE + RANGE - 1);
        }
        const delRun = this.db.prepare('DELETE FROM runs WHERE key = ?');
        for (const [key, id] of doomed) {
          this.pace.delete(key);
          this.answerRows.delete(key);
          delRun.run(key);
          this.metas.delete(id);
        }
        return doomed.size;
      })(),
    );
    if (deleted > 0) {
      // Give the freed pages back to the file system, and the WAL its space.
      this.guard('pruning runs', () => {
        this.db.pragma('incremental_vacuum');
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      });
    }
    return deleted;
  }

  async lockRun(runId: string): Promise<RunLease> {
    this.open();
    return this.locks.lock(runId);
  }

  async runLock(runId: string): Promise<LockHolder | undefined> {
    this.open();
    return this.locks.holder(runId);
  }

  writeLive(runId: string, state: LiveState): void {
    this.open();
    this.live.writeLive(runId, state);
  }

  async readLive(runId: string): Promise<LiveRecord | undefined> {
    this.open();
    return this.live.readLive(runId);
  }

  async requestControl(runId: string, action: ControlAction, by: string): Promise<ControlRequest> {
    this.open();
    return this.live.request(runId, action, by);
  }

  takeControl(runId: string, apply: (request: ControlRequest) => string): number {
    this.open();
    return this.live.takeControl(runId, apply);
  }

  async controlRequests(runId: string): Promise<ControlRequest[]> {
    this.open();
    return this.live.requests(runId);
  }

  appendPace(runId: string, change: PaceRecord): void {
    this.open();
    const meta = this.meta(runId);
    this.guard('recording the pace', () => this.pace.append(meta.key, change));
  }

  async errorCodes(runId: string): Promise<Record<string, number>> {
    const { sql, params } = errorCodesQuery(this.prepareRead(runId));
    const out: Record<string, number> = {};
    for (const row of this.stream<{ code: string; n: number }>(sql, params)) out[row.code] = row.n;
    return out;
  }

  async paceChanges(runId: string): Promise<PaceRecord[]> {
    this.open();
    const meta = this.meta(runId);
    return this.guard('reading the pace', () => this.pace.read(meta.key));
  }

  appendAnswer(runId: string, answer: AnswerRecord): void {
    this.open();
    const meta = this.meta(runId);
    this.guard('recording an answer', () => this.answerRows.append(meta.key, answer));
  }

  async answers(runId: string): Promise<Map<string, AnswerRecord>> {
    this.open();
    const meta = this.meta(runId);
    return this.guard('reading the answers', () => this.answerRows.read(meta.key));
  }

  async flush(): Promise<void> {
    this.commit();
  }

  commit(): void {
    this.open();
    this.flushNow('writing the journal');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.flushNow('closing');
      this.locks.releaseAll();
    } finally {
      this.closed = true;
      if (this.scheduled !== undefined) clearImmediate(this.scheduled);
      this.scheduled = undefined;
      this.db.close();
    }
  }

  // ---------------------------------------------------------------- internals

  /** Pragmas, then the migrations. */
  private setUp(): void {
    const db = this.db;
    // Before anything that writes (journal_mode = WAL rewrites the header): a database of
    // another program or of a newer Stride must be left exactly as it was.
    const found = this.checkVersion();
    // Freed pages go back to the file system on prune (settable only before the first table).
    if ((db.pragma('page_count', { simple: true }) as number) === 0) {
      db.pragma('auto_vacuum = INCREMENTAL');
    }
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new StoreError(
        'io',
        this.file,
        `database ${this.file} cannot use WAL mode (journal_mode is ${String(mode)})`,
      );
    }
    db.pragma('synchronous = NORMAL');
    // Reading the version takes no write lock: opening a store while another process writes a
    // run (every tick) does not wait, unless there is something to migrate.
    if (found === SCHEMA_VERSION) return;
    db.transaction(() => {
      const version = this.checkVersion();
      if (version === 0) {
        db.exec(
          'CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
        );
      }
      const record = db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
      for (const m of MIGRATIONS) {
        if (m.version <= version) continue;
        db.exec(m.sql);
        record.run(m.version, Date.now());
      }
    }).immediate();
  }

  /** The database's schema version; throws if this code cannot work with it. */
  private checkVersion(): number {
    const version = this.currentVersion();
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        'version',
        this.file,
        `database ${this.file} has schema version ${version}, newer than this Stride knows (${SCHEMA_VERSION}): upgrade Stride, or use another --db file; Stride did not change it`,
      );
    }
    if (version === 0) {
      const tables = this.db
        .prepare("SELECT count(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        .get() as { n: number };
      if (tables.n > 0) {
        throw new StoreError(
          'corrupt',
          this.file,
          `database ${this.file} is a SQLite database of another program (it has tables but no Stride schema version); Stride did not change it: use another --db file`,
        );
      }
    }
    return version;
  }

  private currentVersion(): number {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
      .get();
    if (exists === undefined) return 0;
    const row = this.db.prepare('SELECT max(version) AS v FROM schema_version').get() as {
      v: number | null;
    };
    return row.v ?? 0;
  }

  private readonly flushSoon = (): void => {
    this.scheduled = undefined;
    if (this.closed) return;
    try {
      this.writeNow();
      this.failure = undefined;
    } catch (err) {
      // Never thrown out of a timer: the next append() or flush() reports it.
      this.failure = wrap(err, this.file, 'writing the journal');
    }
  };

  private flushNow(doing: string): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    try {
      this.writeNow();
      this.failure = undefined;
    } catch (err) {
      this.failure = wrap(err, this.file, doing);
      throw this.failure;
    }
  }

  private writeNow(): void {
    if (this.pendingBatches.length === 0) return;
    this.writePending();
    // Only after the commit: a failed transaction keeps every batch for the next try.
    this.pendingBatches = [];
    this.pendingMetas = [];
    this.pendingEntries = 0;
  }

  /** Runs inside the transaction. Sequences advance in memory; a rollback leaves gaps only. */
  private writeBatches(): void {
    const { insertJournal, insertResult, insertAttempt, addTally } = this.stmt;
    const metas = this.pendingMetas;
    const batches = this.pendingBatches;
    for (let b = 0; b < batches.length; b++) {
      const meta = metas[b]!;
      const batch = batches[b]!;
      if (batch.transitions.length > 0) {
        const { baseAt, entries } = encodeBatch(batch.transitions);
        insertJournal.run(meta.base + ++meta.journalSeq, meta.key, baseAt, entries);
      }
      const t: Tally = emptyTally();
      foldBatch(
        batch,
        (result, final) => {
          // Bound straight from the result (no row object): this runs once per case. The
          // values are those of codec.toResultRow, which the MemoryStore keeps.
          const e = result.error;
          const reason = result.reason;
          insertResult.run(
            meta.base + ++meta.resultSeq,
            meta.key,
            result.id,
            repeatIndexOf(result.input),
            result.status,
            result.attempts,
            result.priority,
            result.startedAt ?? null,
            result.finishedAt ?? null,
            result.executionTimeMs,
            e === undefined ? null : e.code,
            e === undefined ? null : e.name,
            e === undefined ? null : e.message,
            e?.status ?? null,
            reason === undefined ? null : JSON.stringify(reason),
            result.usage.tokens,
            result.usage.cost,
            result.usage.costUnknown === true ? 1 : 0,
            toJson(result.input),
            toJson(result.output),
            final === undefined ? null : final.startedAt,
            final === undefined ? null : final.usage.tokens,
            final === undefined ? null : final.usage.cost,
            final?.upstream === undefined ? null : JSON.stringify(final.upstream),
          );
          tallyResult(t, result.status as TerminalStatus, result.usage.costUnknown === true);
          if (final !== undefined) tallyAttempt(t, final);
        },
        (attempt) => {
          const a = toAttemptRow(attempt);
          insertAttempt.run(
            meta.base + ++meta.attemptSeq,
            meta.key,
            a.case_id,
            a.number,
            a.started_at,
            a.ended_at,
            a.state,
            a.error_code,
            a.error_name,
            a.error_message,
            a.error_status,
            a.tokens,
            a.cost,
            a.upstream,
          );
          tallyAttempt(t, attempt);
        },
      );
      addTally.run(
        t.succeeded,
        t.failed,
        t.timeout,
        t.cancelled,
        t.error,
        t.attempts,
        t.tokens,
        t.cost,
        t.costUnknown,
        // The open session's last sign of life: a session that dies counts up to here.
        Date.now(),
        meta.key,
      );
    }
  }

  private open(): void {
    if (this.closed) {
      throw new StoreError('closed', this.file, `the store of ${this.file} is closed`);
    }
  }

  private guard<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw wrap(err, this.file, doing);
    }
  }

  private unknown(runId: string): StoreError {
    return new StoreError(
      'unknown_run',
      this.file,
      `no run ${JSON.stringify(runId)} in ${this.file}`,
    );
  }

  private meta(runId: string): RunMeta {
    const cached = this.metas.get(runId);
    if (cached !== undefined) return cached;
    const row = this.guard(
      'reading a run',
      () =>
        this.stmt.runMeta.get(runId) as
          | { key: number; journal_seq: number; result_seq: number; attempt_seq: number }
          | undefined,
    );
    if (row === undefined) throw this.unknown(runId);
    const meta: RunMeta = {
      key: row.key,
      base: row.key * RANGE,
      journalSeq: row.journal_seq,
      resultSeq: row.result_seq,
      attemptSeq: row.attempt_seq,
    };
    this.metas.set(runId, meta);
    return meta;
  }

  /** Before a streamed read: the store is open, everything appended is written, the run exists. */
  private prepareRead(runId: string): number {
    this.open();
    this.flushNow('reading a run');
    return this.meta(runId).key;
  }

  /**
   * Rows of a query, read one at a time on a read-only connection of its own: the writer stays
   * free (better-sqlite3 refuses writes on a connection with an open iterator) and the reader
   * sees one consistent snapshot.
   */
  private *stream<R>(sql: string, params: readonly unknown[]): Generator<R> {
    let reader: Database.Database;
    try {
      reader = new (loadDriver(this.file))(this.file, {
        readonly: true,
        fileMustExist: true,
        timeout: this.busyTimeoutMs,
        ...binding(),
      });
    } catch (err) {
      throw wrap(err, this.file, 'opening a reader');
    }
    let rows: IterableIterator<R> | undefined;
    try {
      rows = this.guard('reading', () =>
        reader.prepare(sql).iterate(...params),
      ) as IterableIterator<R>;
      for (;;) {
        const step = this.guard('reading', () => rows!.next());
        if (step.done) return;
        yield step.value;
      }
    } finally {
      rows?.return?.();
      reader.close();
    }
  }

  private summary(row: RunRow): RunSummary {
    return {
      id: row.id,
      parentId: row.parent_id ?? undefined,
      kind: row.kind as PlanKind,
      plan: row.plan,
      planHash: row.plan_hash,
      status: row.status as StoredRunStatus,
      startedAt: row.started_at,
      finishedAt: optional(row.finished_at),
      stoppedBy:
        row.stop_rule === null
          ? undefined
          : { rule: row.stop_rule as StopRule, message: row.stop_message ?? '' },
      resumes: row.resumes,
      activeMs: activeTime(row.active_ms, row.session_started_at, row.last_at),
      counts: toRunCounts(row),
    };
  }
}
