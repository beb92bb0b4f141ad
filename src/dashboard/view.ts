/**
 * What the dashboard shows of a run, as plain JSON data built from the store's own reads: the
 * stored summary (one row), the driver's live state (one row), the run lock (one row). Nothing
 * here scans results, so the runs list and a run's header cost a few rows per run however many
 * cases it has.
 */

import type { RunStatistics } from '../core/model.js';
import type { ControlRequest, LiveRecord } from '../store/live.js';
import type { LockHolder } from '../store/lock.js';
import type { PaceRecord, RunSummary, Store } from '../store/port.js';

/**
 * A run's status as the dashboard shows it: the stored status, refined by the live state while a
 * session drives it (`paused`, `pausing`, `stopping`), and `abandoned` for a run stored as
 * `running` that no live process drives (its process died; `stride resume` continues it).
 */
export type ShownStatus =
  | 'running'
  | 'pausing'
  | 'paused'
  | 'stopping'
  | 'completed'
  | 'cancelled'
  | 'stopped'
  | 'interrupted'
  | 'abandoned';

/** One row of the runs list (`GET /api/runs`). */
export interface RunRow extends RunSummary {
  readonly shownStatus: ShownStatus;
  /** A live process drives the run now: control requests will be taken. */
  readonly driven: boolean;
  /**
   * Cases with a stored result (`done`) out of the cases known to the run (`total`): a driven
   * run's total is what its session has read of the plan so far plus the earlier sessions'
   * results; a finished run's is its results. Null while unknown (a run stored as running that
   * no process drives).
   */
  readonly progress: { readonly done: number; readonly total: number | null };
  /**
   * Succeeded over results (cancelled included, as the run's report counts them); null when the
   * run has no result, or when it was resumed (superseded rows would skew a count-based rate:
   * the run page reads its results for that).
   */
  readonly passRate: number | null;
  /** Milliseconds from start to end (or to now while it runs). */
  readonly durationMs: number;
}

/** One run in detail (`GET /api/runs/:id`, and each event of `/api/runs/:id/events`). */
export interface RunView extends RunRow {
  /** The driver's live state, or null if no session ever published one. */
  readonly live: LiveRecord | null;
  /** The process holding the run's lock, or null. */
  readonly driver: LockHolder | null;
  /** The last control requests (who paused, resumed or cancelled, and what came of it). */
  readonly control: readonly ControlRequest[];
  /** The adaptive pace's changes, oldest first. */
  readonly pace: readonly PaceRecord[];
  /** The engine's statistics of the session that finished the run (null while it runs). */
  readonly statistics: RunStatistics | null;
}

function shown(run: RunSummary, live: LiveRecord | undefined, driven: boolean): ShownStatus {
  if (run.status !== 'running') return run.status;
  if (!driven) return 'abandoned';
  const s = live?.state.status;
  return s === 'paused' || s === 'pausing' || s === 'stopping' ? s : 'running';
}

/** A run's row from its summary, live state and lock holder (no result is read). */
export function runRow(
  run: RunSummary,
  live: LiveRecord | undefined,
  driver: LockHolder | undefined,
  now = Date.now(),
): RunRow {
  // `runLock` answers only a live holder (a dead process's lock is not reported).
  const driven = run.status === 'running' && driver !== undefined;
  const done = run.counts.total;
  let total: number | null = null;
  if (run.status !== 'running') total = done;
  else if (driven && live !== undefined && live.state.runId === run.id) {
    const earlier = Math.max(0, done - live.state.counts.done);
    total = Math.max(done, earlier + live.state.seen);
  }
  const passRate =
    run.resumes > 0 || run.counts.total === 0 ? null : run.counts.succeeded / run.counts.total;
  return {
    ...run,
    shownStatus: shown(run, live, driven),
    driven,
    progress: { done, total },
    passRate,
    durationMs: Math.max(0, (run.finishedAt ?? now) - run.startedAt),
  };
}

/** The runs list: every run (or the newest `limit`), each with its live state when running. */
export async function listRunRows(
  store: Store,
  filter: { plan?: string; status?: string; limit?: number } = {},
): Promise<RunRow[]> {
  const runs = await store.listRuns(filter.limit === undefined ? {} : { limit: filter.limit });
  const rows: RunRow[] = [];
  for (const run of runs) {
    if (filter.plan !== undefined && run.plan !== filter.plan) continue;
    // Only a running run has a driver and a live state worth a read.
    const [live, driver] =
      run.status === 'running'
        ? await Promise.all([store.readLive(run.id), store.runLock(run.id)])
        : [undefined, undefined];
    const row = runRow(run, live, driver);
    if (filter.status !== undefined && row.shownStatus !== filter.status) continue;
    rows.push(row);
  }
  return rows;
}

/** One run in detail, or undefined if the store has no such run. */
export async function runView(store: Store, runId: string): Promise<RunView | undefined> {
  const run = await store.getRun(runId);
  if (run === undefined) return undefined;
  const [live, driver, control, pace] = await Promise.all([
    store.readLive(runId),
    store.runLock(runId),
    store.controlRequests(runId),
    store.paceChanges(runId),
  ]);
  const { planJson: _plan, optionsJson: _options, statistics, clockOffsetMs: _o, ...summary } = run;
  return {
    ...runRow(summary, live, run.status === 'running' ? driver : undefined),
    live: live ?? null,
    driver: driver ?? null,
    control: control.slice(-20),
    pace,
    statistics: statistics ?? null,
  };
}
