/**
 * A run's life in the store, for test plans and action plans alike: creating the run or reopening
 * it (locked first, so a refused session writes nothing), loading its ONE resume state (the
 * record with the plan-hash check, each case's latest result chosen in SQL, the unfinished cases),
 * journaling the attempts the target may have received (`maybe_sent`: cut by a crash, or
 * redelivered after a worker was lost), attaching the journal, and the `redis` hold while a
 * dispatcher waits for Redis. See docs/architecture.md, "The run session".
 *
 * The run session (`RunSession`) opens every run through `openRunLife`, handing the plan adapter
 * an opener (`PlanHooks.open`); `runDurable`/`resume`/`rerun` and the action `Executor` called
 * without a session use the same function, so there is one resume path whoever drives the run.
 */

import type { Clock, ErrorInfo, Hold } from '../core/index.js';
import type { Run } from '../core/run.js';
import { attachJournal, type Journal } from '../store/journal.js';
import type { RunLease } from '../store/lock.js';
import type { PlanSnapshot } from '../store/plan.js';
import type { AttemptRecord, Store, UnfinishedCase } from '../store/port.js';
import { loadProgress, runNotFound, type StoredProgress } from '../store/resume.js';
import type { Dispatcher } from './dispatcher.js';

/** The error of a redelivered attempt's `maybe_sent` record (docs/errors.md). */
const REDELIVERED: ErrorInfo = {
  code: 'REDELIVERED',
  name: 'Redelivered',
  message: 'its worker was lost: delivered again to another worker',
};

/** A `maybe_sent` attempt record: attempt `number` of `caseId`, started (and ended) `at`. */
export function maybeSentAttempt(
  caseId: string,
  number: number,
  at: number,
  error?: ErrorInfo,
): AttemptRecord {
  return {
    caseId,
    number,
    startedAt: at,
    endedAt: at,
    state: 'maybe_sent',
    error: error === undefined ? undefined : { ...error },
    usage: { tokens: 0, cost: 0 },
    upstream: undefined,
  };
}

/**
 * Records, for each case that was running when the journal ends, a `maybe_sent` attempt: the
 * target may have received it. It started when the case last became `running` (`since`).
 */
async function recordMaybeSent(
  store: Store,
  runId: string,
  cases: readonly UnfinishedCase[],
): Promise<void> {
  if (cases.length === 0) return;
  const attempts = cases.map((c) => maybeSentAttempt(c.caseId, c.attempts, c.since));
  store.append(runId, { transitions: [], attempts });
  await store.flush();
}

/**
 * What the session uses of a run's dispatcher (the `Dispatcher` port's optional parts):
 * redeliveries are journaled, an outage holds the run.
 */
export type DispatchEvents = Pick<Dispatcher, 'watchRedeliveries' | 'watchOutages'>;

/** How a plan opens its run: what the session needs to create or reopen it. */
export interface RunOpening {
  /** The stored run's id (a resume: the run to reopen). @default the engine run's id */
  readonly runId?: string;
  /** The plan, redacted; its hash is checked against a reopened run's. */
  readonly plan: PlanSnapshot;
  /** The run's options, as recorded (plain JSON fields). */
  readonly options?: unknown;
  /** Reopen the stored run `runId` and load its resume state, instead of creating it. */
  readonly resume?: boolean;
  /** Resume even if the plan's hash differs from the stored run's. @default false */
  readonly force?: boolean;
  /** Keep the stored verdicts in memory (`RunLife.prior.verdicts`). @default true */
  readonly keepResults?: boolean;
  /** The run this one re-runs cases of. */
  readonly parentId?: string;
  /** The run's clock (dates the run and its records in epoch ms). @default a RealClock */
  readonly clock?: Clock;
}

/** A run opened in the store: locked (a resume) and with its resume state, not journaled yet. */
export interface RunLife {
  /** The resume state, loaded once (a resume only). */
  readonly prior: StoredProgress | undefined;
  /**
   * Creates or reopens the stored run and attaches the journal to `run` (not started yet);
   * `dispatch` is where its attempts go, when not in this process. The journal gives the lock
   * back when the run's end is durable.
   */
  // biome-ignore lint/suspicious/noExplicitAny: a run of any plan kind
  attach(run: Run<any, any>, dispatch?: DispatchEvents): Promise<Journal>;
  /** Gives the lock back if `attach` never took it over (a refusal before the run). */
  release(): Promise<void>;
}

/** Opens a run (`RunOpening`) in `store`: the one way both plan kinds create or resume a run. */
export type RunOpener = (opening: RunOpening) => Promise<RunLife>;

/**
 * Opens a run in `store`. A resume: RUN_NOT_FOUND, then RUN_LOCKED (the run is locked before its
 * journal is read: what another session is writing is no resume state), then PLAN_CHANGED unless
 * `force`, each with nothing written; then the cases in flight when the journal ends are
 * journaled `maybe_sent`. A new run is created (and locked) by `attach`.
 *
 * @example
 * ```ts
 * const life = await openRunLife(store, { runId: 'r1', plan: snapshotPlan(manifest), resume: true });
 * const run = new Run(tasksNotIn(life.prior!.done), target);
 * const journal = await life.attach(run);
 * await run.start();
 * await journal.closed;
 * ```
 */
export async function openRunLife(store: Store, opening: RunOpening): Promise<RunLife> {
  let lease: RunLease | undefined;
  let prior: StoredProgress | undefined;
  if (opening.resume === true) {
    const runId = opening.runId;
    if (runId === undefined || (await store.getRun(runId)) === undefined) {
      throw runNotFound(runId ?? '');
    }
    lease = await store.lockRun(runId);
    try {
      prior = await loadProgress(store, runId, opening.plan.hash, {
        force: opening.force,
        keepResults: opening.keepResults,
      });
      await recordMaybeSent(
        store,
        runId,
        prior.unfinished.filter((u) => u.maybeSent),
      );
    } catch (err) {
      await lease.release();
      throw err;
    }
  }
  let attached = false;
  return {
    prior,
    attach: async (run, dispatch) => {
      attached = true;
      const journal = await attachJournal(run, store, {
        runId: opening.runId ?? run.runId,
        plan: opening.plan,
        options: opening.options ?? {},
        resume: opening.resume === true,
        ...(opening.parentId === undefined ? {} : { parentId: opening.parentId }),
        ...(opening.clock === undefined ? {} : { clock: opening.clock }),
        ...(lease === undefined ? {} : { lease }),
      });
      const clock = opening.clock;
      const now = () => (clock === undefined ? Date.now() : clock.wallTime());
      const stops = [
        journalRedeliveries(dispatch, store, journal.runId, now),
        holdWhileDown(dispatch, run),
      ];
      const stop = () => {
        for (const s of stops) s();
      };
      journal.closed.then(stop, stop);
      return journal;
    },
    release: async () => {
      if (!attached) await lease?.release();
    },
  };
}

/**
 * Journals every attempt of run `runId` that `dispatch` delivers again after its worker was
 * lost, as a `maybe_sent` attempt with code REDELIVERED. `now` dates it (epoch ms). Returns the
 * unsubscribe function (a no-op for a dispatcher without redeliveries).
 */
function journalRedeliveries(
  dispatch: DispatchEvents | undefined,
  store: Store,
  runId: string,
  now: () => number,
): () => void {
  const watch = dispatch?.watchRedeliveries;
  if (watch === undefined) return () => {};
  return watch.call(dispatch, runId, (e) => {
    store.append(e.runId, {
      transitions: [],
      attempts: [maybeSentAttempt(e.taskId, e.attempt, now(), REDELIVERED)],
    });
  });
}

/**
 * Holds `run` (reason `redis`) while the dispatcher's queue is unreachable: no attempt starts
 * that could only wait for it, and `holders()` and the live state say why the run stands still.
 */
function holdWhileDown(
  dispatch: DispatchEvents | undefined,
  // biome-ignore lint/suspicious/noExplicitAny: a run of any plan kind
  run: Run<any, any>,
): () => void {
  const watch = dispatch?.watchOutages;
  if (watch === undefined) return () => {};
  let hold: Hold | undefined;
  const unwatch = watch.call(dispatch, {
    down: () => {
      hold ??= run.hold('redis', { by: 'the dispatcher (Redis unreachable)' });
    },
    up: () => {
      hold?.release();
      hold = undefined;
    },
  });
  return () => {
    unwatch();
    hold?.release();
    hold = undefined;
  };
}
