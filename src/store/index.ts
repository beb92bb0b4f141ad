/**
 * The run journal behind one Store port: memory and SQLite. See docs/store.md.
 *
 * @example
 * ```ts
 * import { snapshotPlan } from 'stride';
 * import { attachJournal, SqliteStore } from 'stride/store';
 *
 * const store = new SqliteStore(); // .stride/stride.db
 * const journal = await attachJournal(run, store, { plan: snapshotPlan(manifest) });
 * await run.start();
 * await journal.closed;
 * console.log(await store.listRuns({ limit: 5 }));
 * ```
 */

export { StoreError, type StoreFailure } from './errors.js';
export {
  attachJournal,
  type Journal,
  type JournalFailure,
  type JournalOptions,
} from './journal.js';
export type {
  ControlAction,
  ControlRequest,
  LiveRecord,
  LiveSample,
  LiveState,
  SessionCounts,
} from './live.js';
export {
  LOCK_HEARTBEAT_MS,
  LOCK_STALE_MS,
  type LockHolder,
  type RunLease,
} from './lock.js';
export { MemoryStore } from './memory.js';
export { SCHEMA_VERSION } from './migrations.js';
export type { PlanSnapshot } from './plan.js';
export type {
  AnswerRecord,
  AttemptRecord,
  AttemptState,
  JournalBatch,
  ListRunsOptions,
  NewRun,
  PaceRecord,
  PlanKind,
  ResultsOptions,
  ResumeState,
  Retention,
  RunCounts,
  RunEnd,
  RunRecord,
  RunSummary,
  Store,
  StoredRunStatus,
  StoredTransition,
  UnfinishedCase,
  UpstreamIds,
} from './port.js';
export {
  RUN_ID_EXPECTED,
  RUN_ID_MAX_LENGTH,
  runIdProblem,
  STORED_RUN_ID_MAX_LENGTH,
} from './run-id.js';
export { DEFAULT_DB_PATH, SqliteStore, type SqliteStoreOptions } from './sqlite.js';
