/**
 * The SQLite schema, as the list of migrations that builds it. A database records every version
 * applied in `schema_version`; opening it applies the missing ones in one transaction, and a
 * database whose version is newer than the last one here is refused (an older Stride must not
 * write into a schema it does not know).
 *
 * Rules for adding one: append, never edit a released migration; each must be valid on a
 * database of the previous version with data in it.
 */

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'runs, journal, results, attempts',
    sql: `
      CREATE TABLE runs (
        key             INTEGER PRIMARY KEY,
        id              TEXT    NOT NULL UNIQUE,
        kind            TEXT    NOT NULL,
        plan            TEXT    NOT NULL,
        plan_hash       TEXT    NOT NULL,
        plan_json       TEXT    NOT NULL,
        options_json    TEXT    NOT NULL,
        status          TEXT    NOT NULL,
        started_at      INTEGER NOT NULL,
        clock_offset_ms REAL    NOT NULL DEFAULT 0,
        finished_at     INTEGER,
        stop_rule       TEXT,
        stop_message    TEXT,
        statistics      TEXT,
        resumes         INTEGER NOT NULL DEFAULT 0,
        succeeded       INTEGER NOT NULL DEFAULT 0,
        failed          INTEGER NOT NULL DEFAULT 0,
        timeout         INTEGER NOT NULL DEFAULT 0,
        cancelled       INTEGER NOT NULL DEFAULT 0,
        error           INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        tokens          REAL    NOT NULL DEFAULT 0,
        cost            REAL    NOT NULL DEFAULT 0
      );
      CREATE INDEX runs_by_start ON runs (started_at, key);

      -- The three tables below are keyed by id = run_key * 2^32 + n (n counts from 1 in each
      -- run): rows of one run are one range of the rowid b-tree, appended at its end, with no
      -- second index to maintain. Read a run's rows in order with
      -- WHERE id BETWEEN run_key * 4294967296 AND run_key * 4294967296 + 4294967295 ORDER BY id.

      -- One row per flush. entries: a JSON array of [case_id, from, to, at, attempt, detail?]
      -- where at is microseconds after base_at (clock milliseconds).
      CREATE TABLE journal (
        id      INTEGER PRIMARY KEY,
        run_key INTEGER NOT NULL,
        base_at REAL    NOT NULL,
        entries TEXT    NOT NULL
      );

      -- One row per terminal case, in completion order, with the attempt that ended it.
      CREATE TABLE results (
        id                 INTEGER PRIMARY KEY,
        run_key            INTEGER NOT NULL,
        case_id            TEXT    NOT NULL,
        repeat_index       INTEGER,
        status             TEXT    NOT NULL,
        attempts           INTEGER NOT NULL,
        priority           REAL    NOT NULL,
        started_at         REAL,
        finished_at        REAL,
        execution_ms       REAL    NOT NULL,
        error_code         TEXT,
        error_name         TEXT,
        error_message      TEXT,
        error_status       INTEGER,
        reason             TEXT,
        tokens             REAL    NOT NULL,
        cost               REAL    NOT NULL,
        input              TEXT,
        output             TEXT,
        attempt_started_at REAL,
        attempt_tokens     REAL,
        attempt_cost       REAL,
        upstream           TEXT
      );

      -- Every attempt that did not end its case (retried, interrupted, maybe sent).
      CREATE TABLE attempts (
        id            INTEGER PRIMARY KEY,
        run_key       INTEGER NOT NULL,
        case_id       TEXT    NOT NULL,
        number        INTEGER NOT NULL,
        started_at    REAL    NOT NULL,
        ended_at      REAL    NOT NULL,
        state         TEXT    NOT NULL,
        error_code    TEXT,
        error_name    TEXT,
        error_message TEXT,
        error_status  INTEGER,
        tokens        REAL    NOT NULL,
        cost          REAL    NOT NULL,
        upstream      TEXT
      );
    `,
  },
  {
    version: 2,
    description: 'run lineage (parent_id) and the read views transitions, all_attempts',
    sql: `
      ALTER TABLE runs ADD COLUMN parent_id TEXT;

      CREATE VIEW transitions AS
        SELECT r.id AS run_id, j.id & 4294967295 AS batch, CAST(e.key AS INTEGER) AS position,
               e.value ->> 0 AS case_id, e.value ->> 1 AS from_state, e.value ->> 2 AS to_state,
               j.base_at + (e.value ->> 3) / 1000.0 AS at, e.value ->> 4 AS attempt,
               e.value ->> 5 AS detail
        FROM journal j JOIN runs r ON r.key = j.run_key, json_each(j.entries) e;

      CREATE VIEW all_attempts AS
        SELECT r.id AS run_id, a.case_id, a.number, a.started_at, a.ended_at, a.state,
               a.error_code, a.error_message, a.tokens, a.cost, a.upstream
        FROM attempts a JOIN runs r ON r.key = a.run_key
        UNION ALL
        SELECT r.id, s.case_id, s.attempts, s.attempt_started_at, s.finished_at, s.status,
               s.error_code, s.error_message, s.attempt_tokens, s.attempt_cost, s.upstream
        FROM results s JOIN runs r ON r.key = s.run_key
        WHERE s.attempt_started_at IS NOT NULL;
    `,
  },
  {
    version: 3,
    description: 'run locks: which process drives a run (store/lock.ts)',
    sql: `
      -- One row per run being driven. Keyed by the run's id, not its key: a new run is locked
      -- before its row exists. start_ticks tells a reused pid from the holder.
      CREATE TABLE run_locks (
        run_id       TEXT    PRIMARY KEY,
        token        TEXT    NOT NULL,
        pid          INTEGER NOT NULL,
        host         TEXT    NOT NULL,
        start_ticks  INTEGER,
        since        INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 4,
    description: 'outside control (run_control) and live state (run_live) of a driven run',
    sql: `
      -- Requests from other processes (the dashboard, a script) to the session driving a run:
      -- pause, resume, cancel. The session polls for rows it has not taken, applies them in
      -- order and stamps taken_at and outcome.
      CREATE TABLE run_control (
        id        INTEGER PRIMARY KEY,
        run_id    TEXT    NOT NULL,
        action    TEXT    NOT NULL,
        by        TEXT    NOT NULL,
        at        INTEGER NOT NULL,
        taken_at  INTEGER,
        outcome   TEXT
      );
      CREATE INDEX run_control_open ON run_control (run_id, id) WHERE taken_at IS NULL;

      -- The driving session's live state, one row per run, rewritten about once a second: what
      -- another process reads without scanning results (docs/store.md, "Live state").
      CREATE TABLE run_live (
        run_id     TEXT    PRIMARY KEY,
        updated_at INTEGER NOT NULL,
        state      TEXT    NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    description: 'the adaptive pace of a run over time (run_pace)',
    sql: `
      -- One row per change of a run's adaptive pace (issue #17), oldest first by id; at is run
      -- clock milliseconds, as in the journal. Deleted with its run.
      CREATE TABLE run_pace (
        id          INTEGER PRIMARY KEY,
        run_key     INTEGER NOT NULL,
        at          REAL    NOT NULL,
        concurrency INTEGER NOT NULL,
        rate        REAL,
        reason      TEXT    NOT NULL,
        message     TEXT    NOT NULL
      );
      CREATE INDEX run_pace_by_run ON run_pace (run_key, id);
    `,
  },
  {
    version: 6,
    description: 'a case whose cost is unknown (results.cost_unknown)',
    sql: `
      -- 1 when an attempt reported usage without a cost (no price known, issue #18): cost is
      -- then a partial sum, never "free". Rows written before v6 read as known, as they were.
      ALTER TABLE results ADD COLUMN cost_unknown INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 7,
    description: "indexes of a run's results by run and by status (the dashboard's pages)",
    sql: `
      -- A page deep in a large run (LIMIT ... OFFSET) steps over index entries of a few bytes,
      -- not over every result row before it; results_by_status holds id before error_code so
      -- that a status's entries are in completion order, and errors by code are counted from
      -- the index alone (store/sqlite-results.ts). Built from the rows already there.
      CREATE INDEX results_by_run ON results (run_key);
      CREATE INDEX results_by_status ON results (run_key, status, id, error_code);
    `,
  },
  {
    version: 8,
    description: 'cases of unknown cost and active time per run (issue #18)',
    sql: `
      -- Cases whose cost is unknown, kept with the other counts so \`stride show\`, \`runs\` and
      -- the trend say "unknown for N cases" without scanning results.
      ALTER TABLE runs ADD COLUMN cost_unknown INTEGER NOT NULL DEFAULT 0;
      UPDATE runs SET cost_unknown =
        (SELECT count(*) FROM results s WHERE s.run_key = runs.key AND s.cost_unknown = 1);

      -- Active time: the sessions' running time, apart from the wall time between the first start
      -- and the last end (a resumed run's wall time includes the hours between its sessions).
      -- active_ms sums the ended sessions; session_started_at is the open session's start (epoch
      -- ms, NULL when none is open); last_at is the open session's last journal write, what a
      -- session that died without finishing counts up to. active_ms NULL: unknown (a run
      -- resumed before v8, whose sessions were not recorded).
      ALTER TABLE runs ADD COLUMN active_ms REAL;
      ALTER TABLE runs ADD COLUMN session_started_at INTEGER;
      ALTER TABLE runs ADD COLUMN last_at INTEGER;
      UPDATE runs SET
        active_ms = CASE WHEN resumes > 0 THEN NULL
                         WHEN finished_at IS NULL THEN 0
                         ELSE max(0, finished_at - started_at) END,
        session_started_at = CASE WHEN resumes = 0 AND finished_at IS NULL THEN started_at END;
    `,
  },
  {
    version: 9,
    description: 'the answers of graded cases, kept before they are graded (run_answers)',
    sql: `
      -- What the app answered a case that has gradings to run (issue #20), one row per answer,
      -- written when it answered: a resume after a kill grades the case from it instead of
      -- calling the app again. output is JSON text. Deleted with its run.
      CREATE TABLE run_answers (
        id         INTEGER PRIMARY KEY,
        run_key    INTEGER NOT NULL,
        case_id    TEXT    NOT NULL,
        attempt    INTEGER NOT NULL,
        output     TEXT    NOT NULL,
        latency_ms REAL    NOT NULL,
        tokens     REAL,
        cost       REAL
      );
      CREATE INDEX run_answers_by_run ON run_answers (run_key, id);
    `,
  },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
