/**
 * Durable test runs: a test plan run journaled into a Store, resumed after the process died, and
 * re-run for the cases of chosen statuses. See docs/store.md, "Resume and rerun".
 *
 * Resume keeps every stored verdict (succeeded, failed, timeout, error): those cases are never
 * executed again. Every other case of the plan goes back into the queue: cases the journal saw
 * unfinished keep their attempt count (`TaskSpec.attemptsBefore`), and the ones that were
 * running when the process died are recorded as a `maybe_sent` attempt first (the target may
 * have received them: at-least-once for unfinished cases, never for stored verdicts). Cases with
 * a stored `cancelled` result (a cancelled or stopped session) are run again too.
 */

import type { CancellationToken, Clock, RunExecutionResult, TaskResult } from '../core/index.js';
import { StrideError } from '../core/index.js';
import type { Run } from '../core/run.js';
import type { RunManifest, TestCase } from '../plans/index.js';
import { type CaseOutcome, ResultConverter, type TestResult } from '../report/convert.js';
import type { Journal } from '../store/journal.js';
import { runLockedError } from '../store/lock.js';
import type { Store } from '../store/port.js';
import { checkPlanHash, runNotFound, type StoredProgress } from '../store/resume.js';
import type { ResumeContext } from './dispatcher.js';
import { type ExecutorService, taskFor } from './executor-service.js';
import { openRunLife, type RunOpener, type RunOpening } from './run-life.js';
import { snapshotPlan } from './snapshot.js';

/** What a durable run, a resume or a re-run resolves with. */
export interface DurableRunResult {
  /** The stored run's id. */
  readonly runId: string;
  /**
   * One TestResult per case of the run: for a resume, the stored verdicts and the new results
   * together (a case's latest result only).
   */
  readonly results: TestResult[];
  /** The engine's result of this session (only the cases executed in it). */
  readonly run: RunExecutionResult<TestCase, CaseOutcome>;
}

/** A durable session about to start: attach progress, result streaming and signal handling. */
export interface DurableSession {
  /** The stored run's id. */
  readonly runId: string;
  /** The engine's run, not started yet. */
  readonly run: Run<TestCase, CaseOutcome>;
  /** The journal writing the run into the store (for `gracefulStop`). */
  readonly journal: Journal;
  /** Converts one of this session's task results. */
  toTestResult(result: TaskResult<TestCase, CaseOutcome>): TestResult;
}

/** What every durable call accepts. */
interface DurableHooks {
  /** Called once the journal is attached, right before the run starts. */
  readonly onStart?: (session: DurableSession) => void;
  /**
   * Keep every result in memory and resolve with them (`results`, `run.tasks`). Turn it off for
   * runs too large to hold: read the results from the store instead. @default true
   */
  readonly retainResults?: boolean;
  /**
   * Opens the run in the store (creates or reopens it, loads the resume state, attaches the
   * journal): the run session's, when a session drives this call. @default `openRunLife`
   */
  readonly open?: RunOpener;
}

/** Options of `runDurable`. */
export interface DurableRunOptions extends DurableHooks {
  /** The stored run's id. @default the engine's generated run id */
  readonly runId?: string;
  readonly token?: CancellationToken;
  /** The service's clock, to date the stored run in epoch ms. @default a RealClock */
  readonly clock?: Clock;
  /** The run whose cases this one re-runs. */
  readonly parentId?: string;
}

/** Options of `resume`. */
export interface ResumeOptions extends DurableHooks {
  /** Resume even if the plan's hash differs from the stored run's. @default false */
  readonly force?: boolean;
  readonly token?: CancellationToken;
  readonly clock?: Clock;
}

/** Options of `rerun`. */
export interface RerunOptions extends DurableHooks {
  /** Re-run the cases whose stored result has one of these statuses. */
  readonly statuses: readonly TaskResult['status'][];
  /** The new run's id. @default a generated one */
  readonly runId?: string;
  /** Re-run even if the plan's hash differs from the stored run's. @default false */
  readonly force?: boolean;
  readonly token?: CancellationToken;
  readonly clock?: Clock;
}

async function execute(
  service: ExecutorService,
  manifest: RunManifest,
  store: Store,
  opening: RunOpening,
  token: CancellationToken | undefined,
  select: ((testCase: TestCase) => ReturnType<typeof taskFor> | undefined) | undefined,
  session: DurableHooks,
  /** What a dispatcher may take over from an earlier session (a resume). */
  takeover?: (prior: StoredProgress) => Promise<ResumeContext>,
  /** Turns the resume state into the case selection (a resume). */
  selectFrom?: (prior: StoredProgress) => typeof select,
): Promise<{
  runId: string;
  run: RunExecutionResult<TestCase, CaseOutcome>;
  fresh: TestResult[];
  prior: StoredProgress | undefined;
}> {
  const retain = session.retainResults ?? true;
  // The run session opens the run when it drives this one (the same function otherwise).
  const open = session.open ?? ((o: RunOpening) => openRunLife(store, o));
  const life = await open({ ...opening, keepResults: retain });
  const prior = life.prior;
  const extra = {
    ...(opening.runId === undefined ? {} : { runId: opening.runId }),
    ...(retain ? {} : { retainResults: false }),
  };
  let prepared: Awaited<ReturnType<ExecutorService['prepare']>>;
  try {
    prepared = await service.prepare(
      manifest,
      token,
      extra,
      prior === undefined || selectFrom === undefined ? select : selectFrom(prior),
      prior === undefined || takeover === undefined ? undefined : await takeover(prior),
    );
  } catch (err) {
    await life.release();
    throw err;
  }
  try {
    // Redeliveries are journaled and a Redis outage holds the run: by the session, for every face.
    const journal = await life.attach(prepared.run, prepared.dispatcher);
    const answerRunId = journal.runId;
    prepared.onAnswer((a) => {
      // Kept so that a kill during the grading costs no second app call (issue #20). A store
      // that failed here fails the journal's next write too, which stops the run; this answer
      // is then only lost to a resume, which calls the app again (at least once, as before).
      try {
        store.appendAnswer(answerRunId, a);
      } catch {}
    });
    session.onStart?.({
      runId: journal.runId,
      run: prepared.run,
      journal,
      // With the journal's clock offset, so a result converted live (results.jsonl, the reports
      // fed while the run goes) carries the timestamp its stored copy converts to.
      toTestResult: (r) =>
        ResultConverter.convert(r, {
          workflowId: manifest.workflowId,
          epochOffsetMs: journal.epochOffset,
        }),
    });
    const run = await prepared.run.start();
    await journal.closed;
    const failure = prepared.sourceError();
    if (failure !== undefined && run.statistics.totalTasks === 0 && opening.resume !== true) {
      throw failure;
    }
    return {
      runId: journal.runId,
      run,
      fresh: run.tasks.map((r) => prepared.toTestResult(r)),
      prior,
    };
  } finally {
    await life.release();
    await prepared.close();
  }
}

/**
 * Runs a test plan journaled into `store`: the run, every transition, attempt and result are
 * kept, so it can be resumed (`resume`) or re-run (`rerun`).
 *
 * @example
 * ```ts
 * const store = new SqliteStore();
 * const { runId, results } = await runDurable(new ExecutorService(), manifest, store);
 * // after a crash: await resume(new ExecutorService(), manifest, store, runId);
 * ```
 */
export async function runDurable(
  service: ExecutorService,
  manifest: RunManifest,
  store: Store,
  options: DurableRunOptions = {},
): Promise<DurableRunResult> {
  const { runId, run, fresh } = await execute(
    service,
    manifest,
    store,
    {
      ...(options.runId === undefined ? {} : { runId: options.runId }),
      plan: snapshotPlan(manifest),
      options: manifest.executionPolicy,
      ...(options.parentId === undefined ? {} : { parentId: options.parentId }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    },
    options.token,
    undefined,
    options,
  );
  return { runId, results: fresh, run };
}

/** The status of every case's latest stored result (chosen by the store, in SQL). */
async function latestStatuses(store: Store, runId: string): Promise<Map<string, string>> {
  const latest = new Map<string, string>();
  for await (const r of store.results(runId, { latest: true })) latest.set(r.id, r.status);
  return latest;
}

/** The run's record only (no journal read). */
async function recordOrThrow(store: Store, runId: string) {
  const run = await store.getRun(runId);
  if (run === undefined) throw runNotFound(runId);
  return run;
}

/**
 * Resumes a stored run of `manifest` into the same run id: stored verdicts are kept and never
 * executed again; every other case runs, with the attempts it already spent. A run can be
 * resumed more than once. Refuses a plan whose hash changed unless `force`. The run is opened
 * (locked, its resume state loaded once, its maybe-sent attempts journaled) by `openRunLife`,
 * or by the run session driving this resume.
 */
export async function resume(
  service: ExecutorService,
  manifest: RunManifest,
  store: Store,
  runId: string,
  options: ResumeOptions = {},
): Promise<DurableRunResult> {
  const { run, fresh, prior } = await execute(
    service,
    manifest,
    store,
    {
      runId,
      plan: snapshotPlan(manifest),
      options: manifest.executionPolicy,
      resume: true,
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    },
    options.token,
    undefined,
    options,
    (prior) => takeoverOf(store, runId, prior),
    selectionOf,
  );
  const results: TestResult[] = [];
  for (const r of prior?.verdicts.values() ?? []) {
    results.push(
      ResultConverter.convert(r as TaskResult<TestCase, CaseOutcome>, {
        workflowId: manifest.workflowId,
        epochOffsetMs: prior!.run.clockOffsetMs,
      }),
    );
  }
  results.push(...fresh);
  return { runId, results, run };
}

/** A resume's cases: those without a verdict, with the attempts they already spent. */
function selectionOf(state: StoredProgress) {
  return (testCase: TestCase) => {
    if (state.done.has(testCase.id)) return undefined;
    const task = taskFor(testCase);
    const before = state.attemptsBefore.get(testCase.id);
    if (before === undefined || before === 0) return task;
    // Attempts a pause interrupted or a cancel aborted do not count against max_attempts; a
    // maybe-sent one does: a case whose last allowed attempt was in flight at the crash is not
    // sent again (the engine ends it ATTEMPTS_EXHAUSTED).
    const unspent = state.unspent.get(testCase.id);
    return unspent === undefined
      ? { ...task, attemptsBefore: before }
      : { ...task, attemptsBefore: before, interruptedBefore: unspent };
  };
}

/**
 * What a resumed run's dispatcher may take over from the earlier session, and the answers of
 * cases a kill cut while they were graded (graded again from them, never re-sent).
 */
async function takeoverOf(
  store: Store,
  runId: string,
  state: StoredProgress,
): Promise<ResumeContext> {
  const inFlight = new Set(state.unfinished.filter((u) => u.maybeSent).map((u) => u.caseId));
  const answers = await store.answers(runId);
  return {
    answered: (caseId) => (state.done.has(caseId) ? undefined : answers.get(caseId)),
    takesOver: (caseId, attempt) => {
      if (state.done.has(caseId)) return false;
      const before = state.attemptsBefore.get(caseId) ?? 0;
      return attempt === before + 1 || (attempt === before && inFlight.has(caseId));
    },
  };
}

/**
 * Re-runs the cases of a stored run whose latest result has one of `statuses`, as a new run
 * whose parent is `runId`.
 */
export async function rerun(
  service: ExecutorService,
  manifest: RunManifest,
  store: Store,
  runId: string,
  options: RerunOptions,
): Promise<DurableRunResult> {
  // The record is enough: a rerun reads the results, never the journal's transitions.
  const record = await recordOrThrow(store, runId);
  // A run still being driven has no settled statuses to choose from yet.
  const holder = await store.runLock(runId);
  if (holder !== undefined) throw runLockedError(runId, holder);
  const plan = snapshotPlan(manifest);
  checkPlanHash(plan.hash, record.planHash, runId, options.force);
  const wanted = new Set<string>(options.statuses);
  const ids = new Set<string>();
  for (const [id, status] of await latestStatuses(store, runId))
    if (wanted.has(status)) ids.add(id);
  if (ids.size === 0) {
    throw new StrideError(
      'EMPTY_PLAN',
      `run "${runId}" has no case with status ${options.statuses.join(' or ')}: nothing to re-run`,
    );
  }
  const {
    runId: id,
    run,
    fresh,
  } = await execute(
    service,
    manifest,
    store,
    {
      ...(options.runId === undefined ? {} : { runId: options.runId }),
      plan,
      options: manifest.executionPolicy,
      parentId: runId,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    },
    options.token,
    (testCase) => (ids.has(testCase.id) ? taskFor(testCase) : undefined),
    options,
  );
  return { runId: id, results: fresh, run };
}
