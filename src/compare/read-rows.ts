/**
 * Where a comparison reads its rows: through the Store port (any store), or, for a SqliteStore,
 * straight from its file with one read-only query per run that lets SQLite pick the few fields a
 * comparison needs out of each row's JSON.
 *
 * Why the direct path (docs/architecture.md, "Comparing runs"): through the port every row's
 * input and output are parsed into objects, then converted, only to keep a status, a dataset and
 * a hash of the answer; on two 100,000-case runs that parsing and its garbage were two thirds of
 * the command's time. The query reads the documented `results` table (docs/store.md) and is
 * checked against the port path by test/compare/compare.test.ts.
 */

import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { ResultConverter, type TestResult } from '../report/convert.js';
import { datasetOf } from '../report/text.js';
import { fromResultRow, type ResultRow } from '../store/codec.js';
import { StoreError } from '../store/errors.js';
import type { RunRecord, Store } from '../store/port.js';
import { SqliteStore } from '../store/sqlite.js';
import { baseIdOf, type CompactRow, comparable, type RowReader } from './read.js';
import type { SampleStatus } from './types.js';

function sampleStatus(r: TestResult): SampleStatus {
  return r.metadata.taskStatus === 'cancelled' ? 'cancelled' : r.status;
}

function convert(run: RunRecord, task: Parameters<typeof ResultConverter.convert>[0]) {
  return ResultConverter.convert(task, { workflowId: run.plan, epochOffsetMs: run.clockOffsetMs });
}

/** Rows through `Store.results`: works with every store. */
export function portReader(store: Store): RowReader {
  return {
    async scan(run, visit) {
      let pos = 0;
      for await (const task of store.results(run.id)) {
        const r = convert(run, task);
        visit({
          pos: pos++,
          caseId: r.executionId,
          repeat: r.metadata.repeatIndex,
          status: sampleStatus(r),
          dataset: datasetOf(r),
          seconds: r.executionTime,
          tokens: r.tokensUsed,
          cost: r.cost,
          answer: comparable(r.outputs),
          score: r.score,
        });
      }
    },
    async fetch(run, positions) {
      const wanted = new Set(positions);
      const out = new Map<number, TestResult>();
      let pos = 0;
      for await (const task of store.results(run.id)) {
        const at = pos++;
        if (!wanted.has(at)) continue;
        out.set(at, convert(run, task));
        if (out.size === wanted.size) break;
      }
      return out;
    },
  };
}

const RANGE = 2 ** 32;

/**
 * The answer of a test plan's stored output (`{ output, assertions, latencyMs }`): the output's
 * `text` when it is a string, else the output itself (text as is, anything else as JSON).
 */
const COMPACT_SQL = `
  SELECT id, case_id, repeat_index, status, execution_ms, tokens,
    CASE WHEN cost_unknown = 1 THEN NULL ELSE cost END AS cost,
    CASE WHEN json_valid(input) THEN json_extract(input, '$.dataset') END AS dataset,
    CASE
      WHEN NOT json_valid(output) THEN output
      WHEN json_type(output, '$.assertions') = 'array' AND json_type(output, '$.output.text') = 'text'
        THEN json_extract(output, '$.output.text')
      WHEN json_type(output, '$.assertions') = 'array' THEN json_extract(output, '$.output')
      WHEN json_type(output, '$.text') = 'text' THEN json_extract(output, '$.text')
      WHEN json_type(output) = 'text' THEN json_extract(output, '$')
      ELSE output
    END AS answer,
    (input IS NOT NULL AND NOT json_valid(input)) OR (output IS NOT NULL AND NOT json_valid(output))
      AS damaged,
    CASE WHEN json_valid(output) AND json_type(output, '$.assertions') = 'array'
      THEN json_extract(output, '$.score') END AS score
  FROM results WHERE id BETWEEN ? AND ? ORDER BY id`;

/**
 * Rows read straight from a SqliteStore's file (read-only; the writer is never blocked), or
 * undefined for any other store. Damaged rows are STORE_CORRUPT naming the file and run.
 */
export function directReader(store: Store): RowReader | undefined {
  if (!(store instanceof SqliteStore) || store.file === ':memory:') return undefined;
  const file = store.file;
  const open = (): Database.Database => {
    const Driver = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    return new Driver(file, { readonly: true, fileMustExist: true });
  };
  const keyOf = (db: Database.Database, run: RunRecord): number => {
    const row = db.prepare('SELECT key FROM runs WHERE id = ?').get(run.id) as
      | { key: number }
      | undefined;
    if (row === undefined)
      throw new StoreError('unknown_run', file, `no run "${run.id}" in ${file}`);
    return row.key;
  };
  // Only the driver's errors and unreadable JSON mean a damaged file; anything else is
  // rethrown as it is.
  const damaged = (run: RunRecord, err: unknown) =>
    !(err instanceof Error) || (err.name !== 'SqliteError' && !(err instanceof SyntaxError))
      ? err
      : new StoreError(
          'corrupt',
          file,
          `database ${file}: the results of run "${run.id}" could not be read (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): the file is damaged`,
          err,
        );
  return {
    async scan(run, visit) {
      let db: Database.Database | undefined;
      try {
        db = open();
        const key = keyOf(db, run);
        const lo = key * RANGE;
        // One row object for the whole scan (the visitor copies what it keeps), and raw arrays
        // from the driver: a 100,000-row run leaves almost no garbage behind.
        const row: {
          -readonly [K in keyof CompactRow]: CompactRow[K];
        } = {
          pos: 0,
          caseId: '',
          repeat: undefined,
          status: 'success',
          dataset: 'default',
          seconds: 0,
          tokens: 0,
          cost: 0,
          answer: '',
          score: undefined,
        };
        const stmt = db.prepare(COMPACT_SQL).raw(true);
        for (const r of stmt.iterate(lo, lo + RANGE - 1) as Iterable<unknown[]>) {
          if (r[9] === 1) {
            throw new StoreError(
              'corrupt',
              file,
              `database ${file}: the result of case "${String(r[1])}" of run "${run.id}" is not valid JSON: the file is damaged`,
            );
          }
          const status = r[3] as string;
          row.pos = (r[0] as number) - lo;
          row.caseId = r[1] as string;
          row.repeat = (r[2] as number | null) ?? undefined;
          row.status =
            status === 'cancelled' ? 'cancelled' : ResultConverter.mapStatus(status as never);
          row.seconds = (r[4] as number) / 1000;
          row.tokens = r[5] as number;
          row.cost = (r[6] as number | null) ?? undefined;
          row.dataset = typeof r[7] === 'string' ? r[7] : 'default';
          row.answer = typeof r[8] === 'string' ? r[8] : String(r[8]);
          row.score = typeof r[10] === 'number' ? r[10] : undefined;
          visit(row);
        }
      } catch (err) {
        throw damaged(run, err);
      } finally {
        db?.close();
      }
    },
    async fetch(run, positions) {
      const out = new Map<number, TestResult>();
      let db: Database.Database | undefined;
      try {
        db = open();
        const lo = keyOf(db, run) * RANGE;
        const one = db.prepare('SELECT * FROM results WHERE id = ?');
        for (const pos of positions) {
          const row = one.get(lo + pos) as ResultRow | undefined;
          if (row !== undefined) out.set(pos, convert(run, fromResultRow(row)));
        }
      } catch (err) {
        throw damaged(run, err);
      } finally {
        db?.close();
      }
      return out;
    },
  };
}

/** The reader for a store: direct for a SqliteStore file (unless `direct` is false), else the port. */
export function readerFor(store: Store, direct = true): RowReader {
  return (direct ? directReader(store) : undefined) ?? portReader(store);
}

export { baseIdOf };
