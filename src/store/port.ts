/**
 * The Store port: where runs, their journal of transitions, their attempts and their results are
 * kept, so that a run can be listed, shown, streamed and resumed after the process died.
 *
 * The port is small on purpose. A store persists what it is given and answers reads; it decides
 * nothing about scheduling (the engine does) and derives nothing about attempts (the journal,
 * `attachJournal`, does). Every implementation passes the same contract suite
 * (`test/store/contract.ts`).
 *
 * Times: `startedAt` / `finishedAt` of a run are epoch milliseconds (for listing); every time
 * inside the journal, the attempts and the results is the run's own clock time, as the engine
 * reported it, so a stored TaskResult equals the engine's. `RunRecord.clockOffsetMs` converts the
 * second into the first.
 */

import type { ErrorInfo } from '../core/errors.js';
import type {
  RunStatistics,
  StopInfo,
  TaskResult,
  TaskStatus,
  TaskTransition,
  TerminalStatus,
  Usage,
} from '../core/model.js';
import type { PaceReason } from '../core/pace.js';
import type { ControlAction, ControlRequest, LiveRecord, LiveState } from './live.js';
import type { LockHolder, RunLease } from './lock.js';

/** What kind of plan a run executes. */
export type PlanKind = 'test' | 'action';

/**
 * A stored run's status. `running` is also what a run left behind by a crash looks like: nothing
 * marks it finished. `interrupted` is for a graceful stop that leaves the run resumable.
 */
export type StoredRunStatus = 'running' | 'completed' | 'cancelled' | 'stopped' | 'interrupted';

/** What `createRun` needs. Nothing in it may hold a secret: the plan is redacted beforehand. */
export interface NewRun {
  /** Unique in the store. */
  readonly id: string;
  readonly kind: PlanKind;
  /** The plan's name (a test plan's `workflow_id`). */
  readonly plan: string;
  /** Identifies the plan's content; resume refuses a changed plan unless forced. */
  readonly planHash: string;
  /** The plan with its secrets redacted, as JSON text. */
  readonly planJson: string;
  /** The run's options (JSON-able fields only), as JSON text. */
  readonly optionsJson: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Added to a clock time of this run, gives epoch milliseconds. @default 0 */
  readonly clockOffsetMs?: number;
  /** The run this one re-runs cases of. */
  readonly parentId?: string;
}

/** Per-run tallies, kept up to date as the journal is appended. */
export interface RunCounts {
  /** Cases with a stored terminal result: the sum of the five statuses. */
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timeout: number;
  readonly cancelled: number;
  readonly error: number;
  /** Attempts that ended (every one of them was sent, and is paid for). */
  readonly attempts: number;
  /** Usage summed over ended attempts. */
  readonly tokens: number;
  /** The known costs' sum: with `costUnknown` > 0 a partial sum, never the run's cost. */
  readonly cost: number;
  /** Cases whose cost is unknown (usage reported without a price, issue #18). */
  readonly costUnknown: number;
}

/** One run as `listRuns` shows it. */
export interface RunSummary {
  readonly id: string;
  readonly parentId: string | undefined;
  readonly kind: PlanKind;
  /** The plan's name. */
  readonly plan: string;
  readonly planHash: string;
  readonly status: StoredRunStatus;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Epoch milliseconds; undefined until `finishRun`. */
  readonly finishedAt: number | undefined;
  /** Set when a stop rule ended the run. */
  readonly stoppedBy: StopInfo | undefined;
  /** How many times the run was re-opened to resume it. */
  readonly resumes: number;
  /**
   * Milliseconds the run's sessions ran, summed (wall time, `finishedAt - startedAt`, also holds
   * the gaps between sessions of a resumed run). A session that died without finishing counts up
   * to its last journal write. Undefined when unknown: a run resumed before schema v8.
   */
  readonly activeMs: number | undefined;
  readonly counts: RunCounts;
}

/** One run with everything stored about it (`getRun`). */
export interface RunRecord extends RunSummary {
  /** The plan, secrets redacted, as JSON text. */
  readonly planJson: string;
  readonly optionsJson: string;
  readonly clockOffsetMs: number;
  /** The engine's statistics of the last session that finished the run. */
  readonly statistics: RunStatistics | undefined;
}

/** How a run ended, for `finishRun`. */
export interface RunEnd {
  readonly status: Exclude<StoredRunStatus, 'running'>;
  /** Epoch milliseconds. */
  readonly finishedAt: number;
  readonly stoppedBy?: StopInfo | undefined;
  readonly statistics?: RunStatistics | undefined;
}

/**
 * How one attempt ended. `interrupted`: aborted by a pause and re-queued (not counted against
 * the retry budget). `maybe_sent`: the process died while it ran, so the target may have
 * received it; recorded when a run is resumed.
 */
export type AttemptState = TerminalStatus | 'interrupted' | 'maybe_sent';

/** Ids the target gave a request (Dify's `workflow_run_id`, `task_id`, `message_id`, ...). */
export type UpstreamIds = Readonly<Record<string, string>>;

/** One attempt of one case. */
export interface AttemptRecord {
  readonly caseId: string;
  /** 1 for the first attempt; counts on across resumes. */
  readonly number: number;
  /** Clock time the attempt started. */
  readonly startedAt: number;
  /** Clock time its outcome was decided. */
  readonly endedAt: number;
  readonly state: AttemptState;
  /** The error that ended it (code and message; never a stack). */
  readonly error: ErrorInfo | undefined;
  /** Usage the target reported during this attempt. */
  readonly usage: Usage;
  readonly upstream: UpstreamIds | undefined;
}

/** A transition as stored: the event without the TaskResult (kept once, as the case's result). */
export type StoredTransition = TaskTransition extends infer T
  ? T extends TaskTransition
    ? Omit<T, 'result'>
    : never
  : never;

/**
 * One change of a run's adaptive pace (`paceChanged`), kept so that the report and the dashboard
 * can draw the pace over time.
 */
export interface PaceRecord {
  /** Run clock time of the change, as the journal's times. */
  readonly at: number;
  /** The effective concurrency after it. */
  readonly concurrency: number;
  /** The adapted rate per minute after it; undefined: the pace did not limit the rate. */
  readonly ratePerMinute: number | undefined;
  readonly reason: PaceReason;
  /** What it says to people: `concurrency 20 → 4: target answered 429 without Retry-After`. */
  readonly message: string;
}

/**
 * What the app answered a graded case, journaled before its gradings start (issue #20): a
 * session killed while grading leaves it, and the resume grades the case from it instead of
 * calling the app again. The case's result, once judged, holds the same output.
 */
export interface AnswerRecord {
  readonly caseId: string;
  /** The attempt that got it. */
  readonly attempt: number;
  /** The app's output, as the target returned it (JSON-able). */
  readonly output: unknown;
  /** The app call's latency (ms), grading excluded. */
  readonly latencyMs: number;
  /** The app's usage in that attempt, when reported. */
  readonly tokens?: number;
  readonly cost?: number;
}

/** What one `append` adds to a run's journal. */
export interface JournalBatch {
  /**
   * Transitions in the order they happened. A terminal one carries the case's TaskResult, which
   * the store keeps as the case's result.
   */
  readonly transitions: readonly TaskTransition[];
  /** Attempts that ended, in the order they ended. */
  readonly attempts: readonly AttemptRecord[];
}

/** A case that was not terminal when the run's journal ends. */
export interface UnfinishedCase {
  readonly caseId: string;
  /** Its last journaled state (never a terminal one). */
  readonly status: TaskStatus;
  /** Attempts started so far: a resumed run passes it on as `TaskSpec.attemptsBefore`. */
  readonly attempts: number;
  /** It was running when the journal ends: the target may have received that attempt. */
  readonly maybeSent: boolean;
  /** When it entered that state (run clock, ms): for a case in flight, when its attempt started. */
  readonly since: number;
}

/** What resuming a run needs to know. Terminal results stay in the store: see `results()`. */
export interface ResumeState {
  readonly run: RunRecord;
  /** Cases seen in the journal without a terminal result, in the order they were first seen. */
  readonly unfinished: readonly UnfinishedCase[];
  /**
   * Per case without a verdict, the attempts that do not count against max_attempts
   * (`TaskSpec.interruptedBefore`): interrupted by a pause, aborted in flight by a cancel, or
   * refused with a 429 (retried as RATE_LIMITED). A maybe-sent attempt counts. Cases with none
   * are absent.
   */
  readonly unspent: ReadonlyMap<string, number>;
}

/** Options of `listRuns`. */
export interface ListRunsOptions {
  /** At most this many runs (the newest). @default all */
  readonly limit?: number;
}

/** Options of `results`. */
export interface ResultsOptions {
  /** Only results with one of these statuses (of the latest ones, with `latest`). @default all */
  readonly status?: readonly TerminalStatus[];
  /** Only cases whose id contains this text (case-sensitive). @default all */
  readonly idContains?: string;
  /** Only cases of this dataset (a test plan case's `dataset`). @default all */
  readonly dataset?: string;
  /** Only cases with this tag (one of a test plan case's `tags`). @default all */
  readonly tag?: string;
  /**
   * Skip this many matching results (in completion order). Filtered by nothing but `status`,
   * a page of a large run is picked from an index (SqliteStore), not read through everything
   * before it (the dashboard's case table). @default 0
   */
  readonly offset?: number;
  /** At most this many results. @default all */
  readonly limit?: number;
  /**
   * Only each case's latest result. A case has more than one only when a session cancelled it
   * and a resume ran it again (a verdict is never executed again), so the store drops the
   * `cancelled` rows that are followed by another row of their case, in one read.
   * @default false
   */
  readonly latest?: boolean;
}

/** What `prune` removes. Runs matching either rule go. */
export interface Retention {
  /** Runs that started more than this many milliseconds before `now`. */
  readonly maxAgeMs?: number;
  /** Keep only this many runs, the newest. */
  readonly maxRuns?: number;
  /** Epoch milliseconds to count the age from. @default Date.now() */
  readonly now?: number;
}

/**
 * Where runs are kept. Writes are appended in order; a store may buffer them (`SqliteStore`
 * writes one transaction per tick) and they are durable once `flush()` resolved. Every read
 * sees every write made before it.
 *
 * @example
 * ```ts
 * const store = new SqliteStore(); // .stride/stride.db
 * for (const run of await store.listRuns({ limit: 10 })) console.log(run.id, run.status, run.counts);
 * for await (const r of store.results(runId, { status: ['error'] })) console.log(r.id, r.error?.message);
 * await store.close();
 * ```
 */
export interface Store {
  /** Records a new run with status `running`. Throws if a run with that id exists. */
  createRun(run: NewRun): Promise<void>;

  /**
   * Re-opens an unfinished run to resume it: status back to `running`, `resumes` counted up, its
   * end cleared, a new session started at `at` (epoch ms, default now; a session still open,
   * one that died, is closed at its last journal write). Throws if the run does not exist.
   */
  reopenRun(runId: string, at?: number): Promise<void>;

  /**
   * Appends to a run's journal: transitions (terminal ones become the cases' results) and ended
   * attempts. Returns at once; the batch is durable once `flush()` resolved. Throws if the run
   * does not exist, or if an earlier buffered write failed (the store keeps that data and
   * retries it on the next `flush()`).
   */
  append(runId: string, batch: JournalBatch): void;

  /** Marks a run finished (after writing everything appended before). */
  finishRun(runId: string, end: RunEnd): Promise<void>;

  /** Everything a resume needs, or undefined if there is no such run. */
  loadRun(runId: string): Promise<ResumeState | undefined>;

  /** Runs, newest first. */
  listRuns(options?: ListRunsOptions): Promise<RunSummary[]>;

  /** One run, or undefined. */
  getRun(runId: string): Promise<RunRecord | undefined>;

  /**
   * A run's terminal results in completion order, read as they are consumed (memory stays flat
   * however large the run). Break out of the loop to stop early.
   */
  results(runId: string, options?: ResultsOptions): AsyncIterableIterator<TaskResult>;

  /**
   * How many of a run's failed, timeout and error results each error code has (a result
   * without an error counts under its status in capitals, `TIMEOUT`). Reads only the codes, not
   * the results: the dashboard's errors by code.
   */
  errorCodes(runId: string): Promise<Record<string, number>>;

  /** A run's attempts (or one case's), ordered by case id, then attempt number. */
  attempts(runId: string, caseId?: string): AsyncIterableIterator<AttemptRecord>;

  /** A run's journal, in the order it was appended. */
  transitions(runId: string): AsyncIterableIterator<StoredTransition>;

  /**
   * Records a change of the run's adaptive pace (the journal does, on `paceChanged`).
   * Synchronous and small, like `writeLive`: a change is rare (a few a second at most) and is
   * not part of any case's record. Throws if the run does not exist.
   */
  appendPace(runId: string, change: PaceRecord): void;

  /** The run's pace changes, oldest first, every session's (a resume starts at the plan's pace). */
  paceChanges(runId: string): Promise<PaceRecord[]>;

  /**
   * Records what the app answered a graded case before its gradings start (issue #20), written
   * at once like `appendPace` (a resume after a kill must find it). Throws if the run does not
   * exist.
   */
  appendAnswer(runId: string, answer: AnswerRecord): void;

  /** The run's journaled answers, the latest per case (for a resume: grade, don't call again). */
  answers(runId: string): Promise<Map<string, AnswerRecord>>;

  /** Deletes runs outside the retention; resolves with how many were deleted. */
  prune(retention: Retention): Promise<number>;

  /**
   * Takes the run's lock for this session: exactly one session drives a run at a time (see
   * `store/lock.ts`). The run need not exist yet (a new run is locked before it is created).
   * Throws `RUN_LOCKED`, naming the holder, when a live session of any process holds it; a lock
   * whose holder died is taken over. `attachJournal` takes it unless given a lease; release it
   * when the session ends (the journal does). `close()` releases every lock the store holds.
   */
  lockRun(runId: string): Promise<RunLease>;

  /** Who drives the run now: the live holder of its lock, or undefined. */
  runLock(runId: string): Promise<LockHolder | undefined>;

  /**
   * Replaces the run's live state (the driving session calls it about once a second, see
   * `store/live.ts`). Synchronous and small: it never waits for the journal's batch.
   */
  writeLive(runId: string, state: LiveState): void;

  /** The run's last live state, with when it was written, or undefined if none was. */
  readLive(runId: string): Promise<LiveRecord | undefined>;

  /**
   * Asks the session driving the run to pause, resume or cancel it (from any process on the
   * same journal). Resolves with the stored request; the session applies it within its poll
   * interval and stamps `takenAt` and `outcome` (see `controlRequests`).
   */
  requestControl(runId: string, action: ControlAction, by: string): Promise<ControlRequest>;

  /**
   * For the driving session: takes the run's waiting requests in order, calls `apply` for each
   * and stores what it returned as the outcome, all in one transaction. Returns how many.
   */
  takeControl(runId: string, apply: (request: ControlRequest) => string): number;

  /** Every control request of the run, oldest first (who paused it, and what came of it). */
  controlRequests(runId: string): Promise<ControlRequest[]>;

  /** Writes everything buffered; resolves once it is durable. */
  flush(): Promise<void>;

  /**
   * Writes everything buffered now, synchronously (SQLite: one transaction), and throws the
   * store's error if that failed. The journal calls it once per turn before the run sends the
   * attempts it started (`Run.gateSends`).
   */
  commit(): void;

  /** Flushes and releases the store. Further calls throw. */
  close(): Promise<void>;
}
