import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, test } from 'vitest';
import { isStrideError, Run, VirtualClock } from '../../src/core/index.js';
import {
  attachJournal,
  DEFAULT_DB_PATH,
  SCHEMA_VERSION,
  SqliteStore,
  StoreError,
} from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { errorCodesQuery, resultsQuery } from '../../src/store/sqlite-results.js';
import { newRun, storeContract } from './contract.js';
import { collect, retriesThenSucceeds, succeeds } from './fixtures.js';
import { tempDb, tempDir } from './helpers.js';

storeContract('SqliteStore', () => new SqliteStore({ path: tempDb() }));

function failureOf(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError');
}

async function rejection(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

describe('SqliteStore: the file', () => {
  test('creates its folder, uses WAL, records its schema version', async () => {
    const path = join(tempDir(), 'a', 'b', 'stride.db');
    const store = new SqliteStore({ path });
    expect(store.file).toBe(path);
    expect(existsSync(path)).toBe(true);
    await store.createRun(newRun('r1'));
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(
      raw.prepare('SELECT version FROM schema_version ORDER BY version').pluck().all(),
    ).toEqual(MIGRATIONS.map((m) => m.version));
    raw.close();
    await store.close();
    expect(DEFAULT_DB_PATH).toBe('.stride/stride.db');
  });

  test('transitions are packed one row per flush, and the transitions view unpacks them', async () => {
    const path = tempDb();
    const store = new SqliteStore({ path });
    await store.createRun(newRun('r1'));
    store.append('r1', succeeds('a', 0));
    store.append('r1', retriesThenSucceeds('b', 100));
    await store.flush();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT count(*) FROM journal').pluck().get()).toBe(2);
    const rows = raw
      .prepare(
        "SELECT case_id, from_state, to_state, attempt FROM transitions WHERE run_id = 'r1' ORDER BY batch, position",
      )
      .raw()
      .all();
    expect(rows).toHaveLength(9);
    expect(rows[0]).toEqual(['a', 'pending', 'queued', 0]);
    expect(rows.at(-1)).toEqual(['b', 'running', 'succeeded', 2]);
    const attempts = raw
      .prepare("SELECT case_id, number, state FROM all_attempts WHERE run_id = 'r1' ORDER BY 1, 2")
      .raw()
      .all();
    expect(attempts).toEqual([
      ['a', 1, 'succeeded'],
      ['b', 1, 'error'],
      ['b', 2, 'succeeded'],
    ]);
    raw.close();
    await store.close();
  });

  test('appends are written one transaction per tick, and a reopened store sees everything', async () => {
    const path = tempDb();
    const store = new SqliteStore({ path });
    await store.createRun(newRun('r1'));
    for (let i = 0; i < 100; i++) store.append('r1', succeeds(`c${i}`, i));
    const raw = new Database(path, { readonly: true });
    const count = raw.prepare('SELECT count(*) FROM results').pluck();
    expect(count.get()).toBe(0); // buffered
    await new Promise((resolve) => setImmediate(resolve));
    expect(count.get()).toBe(100); // written by the tick's one transaction
    raw.close();
    await store.close();
    const again = new SqliteStore({ path });
    expect((await collect(again.results('r1'))).length).toBe(100);
    await again.close();
  });
});

describe('SqliteStore: a run that never yields to the event loop', () => {
  test('is written in bounded transactions while it runs, not all at the end', async () => {
    const path = tempDb();
    const store = new SqliteStore({ path });
    // No-op targets settle in microtasks: the whole run happens without one macrotask turn.
    const run = new Run(
      Array.from({ length: 5_000 }, (_, i) => ({ input: i })),
      { execute: async () => undefined },
      { concurrency: 16 },
    );
    const raw = new Database(path, { readonly: true });
    const journalRows = raw.prepare('SELECT count(*) FROM journal').pluck();
    const rowsDuringRun: number[] = [];
    let settled = 0;
    run.on('transition', (t) => {
      if (t.to === 'succeeded' && ++settled % 1000 === 0)
        rowsDuringRun.push(journalRows.get() as number);
    });
    const journal = await attachJournal(run, store);
    await run.start();
    await journal.closed;
    expect(rowsDuringRun.at(-1)).toBeGreaterThan(rowsDuringRun[0]!);
    expect(rowsDuringRun[0]).toBeGreaterThan(0);
    expect((await store.getRun(run.runId))?.counts.succeeded).toBe(5_000);
    expect((await collect(store.transitions(run.runId))).length).toBe(15_000);
    raw.close();
    await store.close();
  });
});

describe('SqliteStore: migrations', () => {
  test('a database of schema version 1 is migrated, its data kept', async () => {
    const path = tempDb();
    const raw = new Database(path);
    raw.exec(
      'CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
    );
    raw.exec(MIGRATIONS.find((m) => m.version === 1)!.sql);
    raw.prepare('INSERT INTO schema_version VALUES (1, 0)').run();
    raw
      .prepare(
        `INSERT INTO runs (id, kind, plan, plan_hash, plan_json, options_json, status, started_at, succeeded)
         VALUES ('old', 'test', 'p', 'h', '{}', '{}', 'completed', 1000, 1)`,
      )
      .run();
    // v8 derives active time where it is known: one session, finished; a resumed run's is not
    raw
      .prepare(
        `INSERT INTO runs (id, kind, plan, plan_hash, plan_json, options_json, status, started_at, finished_at, resumes)
         VALUES ('one-session', 'test', 'p', 'h', '{}', '{}', 'completed', 1000, 61000, 0),
                ('resumed', 'test', 'p', 'h', '{}', '{}', 'completed', 1000, 9000000, 1)`,
      )
      .run();
    raw
      .prepare(
        `INSERT INTO results (id, run_key, case_id, status, attempts, priority, execution_ms, tokens, cost, input)
         VALUES (4294967297, 1, 'a', 'succeeded', 1, 0, 5, 0, 0, '{"q":1}')`,
      )
      .run();
    raw.close();

    const store = new SqliteStore({ path });
    expect(store.schemaVersion).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBeGreaterThan(1);
    const run = await store.getRun('old');
    expect(run).toMatchObject({ id: 'old', parentId: undefined, status: 'completed' });
    expect(run?.counts.succeeded).toBe(1);
    expect((await collect(store.results('old')))[0]).toMatchObject({ id: 'a', input: { q: 1 } });
    expect(run?.counts.costUnknown).toBe(0);
    expect((await store.getRun('one-session'))?.activeMs).toBe(60_000);
    expect((await store.getRun('resumed'))?.activeMs).toBeUndefined();
    await store.createRun(newRun('new', { parentId: 'old' }));
    expect((await store.getRun('new'))?.parentId).toBe('old');
    await store.close();

    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT version FROM schema_version').pluck().all()).toEqual(
      MIGRATIONS.map((m) => m.version),
    );
    check.close();
  });

  test('v7: a deep page and the errors by code read the results indexes, also on a migrated v6 database', async () => {
    const path = tempDb();
    const raw = new Database(path);
    raw.exec(
      'CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
    );
    for (const m of MIGRATIONS.filter((m) => m.version <= 6)) {
      raw.exec(m.sql);
      raw.prepare('INSERT INTO schema_version VALUES (?, 0)').run(m.version);
    }
    raw
      .prepare(
        `INSERT INTO runs (id, kind, plan, plan_hash, plan_json, options_json, status, started_at)
         VALUES ('old', 'test', 'p', 'h', '{}', '{}', 'completed', 1000)`,
      )
      .run();
    const insert = raw.prepare(
      `INSERT INTO results (id, run_key, case_id, status, attempts, priority, execution_ms, tokens, cost, error_code)
       VALUES (?, 1, ?, ?, 1, 0, 5, 0, 0, ?)`,
    );
    for (let i = 1; i <= 30; i++) {
      const failed = i % 3 === 0;
      insert.run(2 ** 32 + i, `c${i}`, failed ? 'failed' : 'succeeded', failed ? 'HTTP_400' : null);
    }
    raw.close();

    const store = new SqliteStore({ path });
    const ids = async (o: Parameters<SqliteStore['results']>[1]) =>
      (await collect(store.results('old', o))).map((r) => r.id);
    expect(await ids({ offset: 25, limit: 3 })).toEqual(['c26', 'c27', 'c28']);
    expect(await ids({ status: ['failed'], offset: 8 })).toEqual(['c27', 'c30']);
    expect(await store.errorCodes('old')).toEqual({ HTTP_400: 10 });
    await store.close();

    // The plans: index entries, never a scan of the result rows.
    const check = new Database(path, { readonly: true });
    const plan = (q: { sql: string; params: unknown[] }) =>
      (check.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.params) as { detail: string }[])
        .map((r) => r.detail)
        .join('; ');
    const deep = plan(resultsQuery(1, {}, { offset: 25, limit: 3 }));
    expect(deep).toContain('COVERING INDEX results_by_run');
    expect(deep).not.toMatch(/SCAN results/);
    const failed = plan(resultsQuery(1, { status: ['failed', 'error'] }, { offset: 8, limit: 3 }));
    expect(failed).toContain('COVERING INDEX results_by_status');
    expect(failed).not.toMatch(/SCAN results|TEMP B-TREE/);
    const codes = plan(errorCodesQuery(1));
    expect(codes).toContain('COVERING INDEX results_by_status');
    expect(codes).not.toMatch(/SCAN results/);
    check.close();
  });

  test('a database of a newer schema version is refused with a clear error, and left unchanged', async () => {
    const path = tempDb();
    await new SqliteStore({ path }).close();
    const raw = new Database(path);
    raw.prepare('INSERT INTO schema_version VALUES (999, 0)').run();
    raw.close();
    const before = readFileSync(path);
    const err = failureOf(() => new SqliteStore({ path }));
    expect(err.failure).toBe('version');
    expect(err.code).toBe('STORE_VERSION');
    expect(err.file).toBe(path);
    expect(err.message).toContain(path);
    expect(err.message).toContain('schema version 999');
    expect(err.message).toContain(`newer than this Stride knows (${SCHEMA_VERSION})`);
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});

describe('SqliteStore: damaged and foreign files', () => {
  test('garbage bytes: a clear error naming the file, and the file is not touched', () => {
    const path = tempDb('garbage.db');
    const garbage = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 256));
    writeFileSync(path, garbage);
    const err = failureOf(() => new SqliteStore({ path }));
    expect(err.failure).toBe('corrupt');
    expect(err.code).toBe('STORE_CORRUPT');
    expect(isStrideError(err)).toBe(true);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/not a SQLite database/);
    expect(readFileSync(path).equals(garbage)).toBe(true);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  test('a SQLite header over damaged pages: a clear error, the file not touched', () => {
    const path = tempDb('damaged.db');
    const bytes = Buffer.alloc(4096 * 3, 0xa5);
    Buffer.from('SQLite format 3\0', 'latin1').copy(bytes, 0);
    writeFileSync(path, bytes);
    const err = failureOf(() => new SqliteStore({ path }));
    expect(err.failure).toBe('corrupt');
    expect(err.message).toContain(path);
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  test('damaged data pages under an intact header: every read names the file, STORE_CORRUPT', async () => {
    // A byte flipped inside a stored JSON text: SQLite keeps no checksums, so only the decoder
    // can notice. Each copy of the database is damaged in one place.
    const path = tempDb('data.db');
    const store = new SqliteStore({ path });
    await store.createRun(
      newRun('r1', {
        planJson: '{"workflowId":"PLAN-MARK"}',
        optionsJson: '{"note":"OPTS-MARK"}',
      }),
    );
    store.append('r1', succeeds('JRNL-MARK', 0, { output: { text: 'OUT-MARK' } }));
    await store.finishRun('r1', {
      status: 'completed',
      finishedAt: 1_700_000_000_100,
      statistics: undefined,
    });
    await store.close();
    expect(existsSync(`${path}-wal`)).toBe(false); // everything is in the main file
    const clean = readFileSync(path);
    const damaged = (marker: string, n: number): string => {
      const bytes = Buffer.from(clean);
      const at = bytes.indexOf(marker);
      expect(at).toBeGreaterThan(0);
      bytes[at + 2] = 0x01; // a control character inside a JSON string literal
      const copy = tempDb(`damaged-${n}.db`);
      writeFileSync(copy, bytes);
      return copy;
    };
    const reads: [string, string, (s: SqliteStore) => Promise<unknown>][] = [
      ['"PLAN-MARK"', 'the plan of run "r1"', (s) => s.getRun('r1')],
      ['"OPTS-MARK"', 'the options of run "r1"', (s) => s.loadRun('r1')],
      ['"OUT-MARK"', 'a result of run "r1"', (s) => collect(s.results('r1'))],
      ['"JRNL-MARK"', 'the journal of run "r1"', (s) => s.loadRun('r1')],
    ];
    for (const [n, [marker, what, read]] of reads.entries()) {
      const copy = damaged(marker, n);
      const before = readFileSync(copy);
      const s = new SqliteStore({ path: copy });
      const err = await rejection(read(s));
      expect(err.code).toBe('STORE_CORRUPT');
      expect(err.failure).toBe('corrupt');
      expect(err.file).toBe(copy);
      expect(err.message).toContain(`database ${copy} is damaged: ${what} cannot be read back`);
      expect(err.message).toMatch(/not valid JSON at position \d+/);
      expect(err.message).not.toContain('MARK'); // the stored text is never echoed
      await s.close();
      expect(readFileSync(copy).equals(before)).toBe(true);
    }
  });

  test("another program's SQLite database is refused, not written into", () => {
    const path = tempDb('other.db');
    const raw = new Database(path);
    raw.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    raw.close();
    const before = readFileSync(path);
    const err = failureOf(() => new SqliteStore({ path }));
    expect(err.failure).toBe('corrupt');
    expect(err.message).toMatch(/another program/);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test('a bad path or busy timeout is an InvalidOptionError naming the field', () => {
    expect(() => new SqliteStore({ path: ':memory:' })).toThrow(/invalid option path/);
    expect(() => new SqliteStore({ path: tempDb(), busyTimeoutMs: -1 })).toThrow(
      /invalid option busyTimeoutMs: -1/,
    );
  });
});

describe('SqliteStore: locks and full disks', () => {
  test('a database another process holds: a clear error naming the file, then it works again', async () => {
    const path = tempDb();
    const store = new SqliteStore({ path, busyTimeoutMs: 50 });
    await store.createRun(newRun('r1'));
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    // Opening only reads: it does not wait for the writer.
    const reader = new SqliteStore({ path, busyTimeoutMs: 50 });
    expect((await reader.listRuns()).map((r) => r.id)).toEqual(['r1']);
    const err = await rejection(store.createRun(newRun('r2')));
    expect(err.failure).toBe('locked');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/locked by another process/);
    store.append('r1', succeeds('a', 0));
    const flushErr = await rejection(store.flush());
    expect(flushErr.failure).toBe('locked');
    // While the failure stands, appends are refused, so the journal learns of it.
    expect(() => store.append('r1', succeeds('b', 1))).toThrow(StoreError);
    other.exec('ROLLBACK');
    other.close();
    await store.flush(); // the kept batch is written now: nothing was lost
    expect((await collect(store.results('r1'))).map((r) => r.id)).toEqual(['a']);
    await store.createRun(newRun('r2'));
    await reader.close();
    await store.close();
  });

  test('a full disk (an injected page limit) cancels the journaled run; nothing written is lost', async () => {
    const path = tempDb();
    const store = new SqliteStore({ path });
    const clock = new VirtualClock();
    const big = 'x'.repeat(2000);
    const run = new Run(
      Array.from({ length: 2000 }, (_, i) => ({ id: `c${i}`, input: i })),
      {
        async execute(task, ctx) {
          await clock.sleep(1 + (task.input % 5), ctx.signal);
          return big;
        },
      },
      { clock, concurrency: 16 },
    );
    const journal = await attachJournal(run, store, { clock });
    const db = (store as unknown as { db: Database.Database }).db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 40}`);
    const result = await run.start();
    const err = await rejection(journal.closed);
    expect(err.failure).toBe('io');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/full/);
    expect(result.status).toBe('cancelled');

    db.pragma('max_page_count = 1073741823');
    await store.flush(); // the batch that failed is still buffered, and now written
    const state = await store.loadRun(run.runId);
    const kept = await collect(store.results(run.runId));
    expect(state?.run.status).toBe('running'); // resumable: no end was recorded
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((r) => r.status === 'succeeded' && r.output === big)).toBe(true);
    // Every case the journal saw is either kept with its result or listed to resume.
    const seen = new Set((await collect(store.transitions(run.runId))).map((t) => t.taskId));
    expect(kept.length + (state?.unfinished.length ?? 0)).toBe(seen.size);
    await store.close();
  });
});
