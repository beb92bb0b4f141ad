/**
 * The SQL of the SQLite store's result reads (`results`, `errorCodes`), kept apart from the
 * store's writes. A page deep in a large run and the errors by code are answered from the two
 * indexes of schema v7 (`results_by_run`, `results_by_status`): a few megabytes of index entries
 * instead of every result row before the page (about 900 bytes each, with input and output).
 *
 * The indexes are named (`INDEXED BY`): without ANALYZE statistics SQLite may pick the wrong one
 * (a status filter through `results_by_run` read every row of the run: 164 ms instead of 15 ms
 * over 100,000 results), and a missing index is then an error rather than a silent full scan.
 */

import type { ResultsOptions } from './port.js';

/** Row ids of a run's journal, results and attempts are `key * RANGE + n`. */
export const RANGE = 2 ** 32;

/** A statement and its parameters. */
export interface Query {
  readonly sql: string;
  readonly params: unknown[];
}

/** SQL of a case's dataset and tag, as the stored input (a test plan's case) holds them. */
const DATASET_SQL = "json_extract(input, '$.dataset') = ?";
const TAG_SQL = "EXISTS (SELECT 1 FROM json_each(input, '$.tags') WHERE value = ?)";

/**
 * The query of `Store.results`. A page (`offset`) filtered by nothing but statuses picks its row
 * ids from an index, then reads only those rows; anything else (a search, a dataset or a tag,
 * `latest`) reads the run's rows in order and filters them.
 */
export function resultsQuery(
  key: number,
  options: ResultsOptions,
  page: { offset: number; limit: number | undefined },
): Query {
  const { status, idContains, dataset, tag } = options;
  const lo = key * RANGE;
  const hi = lo + RANGE - 1;
  const search = idContains !== undefined && idContains !== '';
  const statusJson = status === undefined ? undefined : JSON.stringify(status);
  if (
    (page.offset > 0 || page.limit !== undefined) &&
    !search &&
    dataset === undefined &&
    tag === undefined &&
    options.latest !== true
  ) {
    // Ids in completion order from an index, then those rows by primary key: one statement,
    // one snapshot. results_by_status is ordered by id within a status (it holds id before
    // error_code); several statuses are merged (UNION ALL under ORDER BY is a merge in SQLite,
    // not a sort).
    const statuses = status === undefined ? [] : [...new Set(status)];
    if (status !== undefined && statuses.length === 0) {
      return { sql: 'SELECT * FROM results WHERE 0', params: [] };
    }
    const ids =
      status === undefined
        ? 'SELECT id FROM results INDEXED BY results_by_run WHERE run_key = ?'
        : statuses
            .map(
              () =>
                'SELECT id FROM results INDEXED BY results_by_status WHERE run_key = ? AND status = ?',
            )
            .join(' UNION ALL ');
    const idParams = status === undefined ? [key] : statuses.flatMap((s) => [key, s]);
    return {
      sql: `SELECT * FROM results WHERE id IN (${ids} ORDER BY id LIMIT ? OFFSET ?) ORDER BY id`,
      params: [...idParams, page.limit ?? -1, page.offset],
    };
  }
  let sql = 'SELECT * FROM results WHERE id BETWEEN ? AND ?';
  const params: unknown[] = [lo, hi];
  if (statusJson !== undefined) {
    sql += ' AND status IN (SELECT value FROM json_each(?))';
    params.push(statusJson);
  }
  if (search) {
    sql += ' AND instr(case_id, ?) > 0';
    params.push(idContains);
  }
  if (dataset !== undefined) {
    sql += ` AND ${DATASET_SQL}`;
    params.push(dataset);
  }
  if (tag !== undefined) {
    sql += ` AND ${TAG_SQL}`;
    params.push(tag);
  }
  if (options.latest === true) {
    // A cancelled row is kept only when it is its case's last; the subquery runs once, and
    // only when a cancelled row is met (SQLite evaluates an uncorrelated IN lazily).
    sql +=
      " AND (status <> 'cancelled' OR id IN (SELECT max(id) FROM results WHERE id BETWEEN ? AND ? GROUP BY case_id))";
    params.push(lo, hi);
  }
  sql += ' ORDER BY id';
  if (page.offset > 0 || page.limit !== undefined) {
    sql += ' LIMIT ? OFFSET ?';
    params.push(page.limit ?? -1, page.offset);
  }
  return { sql, params };
}

/** The query of `Store.errorCodes`: a covering scan of the run's failing entries of the index. */
export function errorCodesQuery(key: number): Query {
  return {
    sql: `SELECT coalesce(error_code, upper(status)) AS code, count(*) AS n
      FROM results INDEXED BY results_by_status
      WHERE run_key = ? AND status IN ('failed', 'timeout', 'error') GROUP BY code`,
    params: [key],
  };
}
