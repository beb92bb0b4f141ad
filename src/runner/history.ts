/**
 * `RunHistory`: the journal's library face. Runs test plans durably and, by run id alone,
 * resumes them, re-runs their errors or failures, lists them, shows one and streams its results.
 * The CLI's `run`, `resume`, `rerun`, `runs`, `show` and `report` are thin layers over it.
 */

import { basename, isAbsolute, join } from 'node:path';
import { type CancellationToken, type Clock, StrideError, type TaskStatus } from '../core/index.js';
import { checkCases, type LoadPlanOptions, loadPlan, type RunManifest } from '../plans/index.js';
import { ResultConverter, type TestResult } from '../report/convert.js';
import type { ListRunsOptions, Retention, RunRecord, RunSummary, Store } from '../store/port.js';
import {
  type DurableRunOptions,
  type DurableRunResult,
  rerun,
  resume,
  runDurable,
} from './durable.js';
import { ExecutorService } from './executor-service.js';

/** Which cases `rerun` sends again. */
export type RerunFilter =
  | 'errors'
  | 'failures'
  | { readonly statuses: readonly Exclude<TaskStatus, 'pending' | 'queued' | 'running'>[] };

/** Options of `RunHistory.resume`. */
export interface HistoryResumeOptions {
  /** Resume even if the plan file changed since the run started. @default false */
  readonly force?: boolean;
  readonly token?: CancellationToken;
  /** The plan to resume with; by default it is reloaded from the file the run was started from. */
  readonly manifest?: RunManifest;
  /** Called once the journal is attached, right before the run starts. */
  readonly onStart?: DurableRunOptions['onStart'];
  /** Hold every result in memory and resolve with them. @default true */
  readonly retainResults?: boolean;
}

/** Options of `RunHistory.rerun`. */
export interface HistoryRerunOptions extends HistoryResumeOptions {
  /** The new run's id. @default a generated one */
  readonly runId?: string;
}

/** Options of `RunHistory`. */
export interface RunHistoryOptions {
  /** Where runs are kept. */
  readonly store: Store;
  /** Runs the cases. @default `new ExecutorService()` (the built-in targets) */
  readonly service?: ExecutorService;
  /** The service's clock, to date stored runs. @default a RealClock */
  readonly clock?: Clock;
}

/** `errors` = error and timeout (the infrastructure gave no verdict); `failures` = failed. */
function statusesOf(filter: RerunFilter): Exclude<TaskStatus, 'pending' | 'queued' | 'running'>[] {
  if (filter === 'errors') return ['error', 'timeout'];
  if (filter === 'failures') return ['failed'];
  return [...filter.statuses];
}

function session(
  options: HistoryResumeOptions,
): Pick<DurableRunOptions, 'onStart' | 'retainResults'> {
  return {
    ...(options.onStart === undefined ? {} : { onStart: options.onStart }),
    ...(options.retainResults === undefined ? {} : { retainResults: options.retainResults }),
  };
}

/**
 * Durable test runs by run id.
 *
 * @example
 * ```ts
 * import { ExecutorService, loadPlan, RunHistory } from 'stride';
 * import { SqliteStore } from 'stride/store';
 *
 * const history = new RunHistory({ store: new SqliteStore(), service: new ExecutorService() });
 * const { runId } = await history.run(await loadPlan('plan.yaml'));
 * // later, in another process, after a crash:
 * await history.resume(runId);
 * await history.rerun(runId, 'errors');
 * for await (const r of history.results(runId)) console.log(r.executionId, r.status);
 * ```
 */
export class RunHistory {
  readonly store: Store;
  private readonly service: ExecutorService;
  private readonly clock: Clock | undefined;

  constructor(options: RunHistoryOptions) {
    this.store = options.store;
    this.service = options.service ?? new ExecutorService();
    this.clock = options.clock;
  }

  /** Runs a test plan, journaled: every transition, attempt and result is stored. */
  run(manifest: RunManifest, options: DurableRunOptions = {}): Promise<DurableRunResult> {
    return runDurable(this.service, manifest, this.store, this.withClock(options));
  }

  /**
   * Resumes a run that did not finish (a crash, a Ctrl-C, a stop rule, a cancel): stored
   * verdicts are kept and never executed again; every other case runs. The plan is reloaded from
   * its file (with secrets from today's environment) and the run's own options and selection
   * (CLI overrides included) are applied again; a plan whose content changed is refused unless
   * `force`.
   */
  async resume(runId: string, options: HistoryResumeOptions = {}): Promise<DurableRunResult> {
    const manifest = options.manifest ?? (await this.planOf(runId));
    return resume(this.service, manifest, this.store, runId, {
      ...session(options),
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(this.clock === undefined ? {} : { clock: this.clock }),
    });
  }

  /** Re-runs a run's errors (error, timeout), failures, or cases of chosen statuses, as a new run linked to it. */
  async rerun(
    runId: string,
    filter: RerunFilter,
    options: HistoryRerunOptions = {},
  ): Promise<DurableRunResult> {
    const manifest = options.manifest ?? (await this.planOf(runId));
    return rerun(this.service, manifest, this.store, runId, {
      statuses: statusesOf(filter),
      ...session(options),
      ...(options.runId === undefined ? {} : { runId: options.runId }),
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(this.clock === undefined ? {} : { clock: this.clock }),
    });
  }

  /** Runs, newest first. */
  listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    return this.store.listRuns(options);
  }

  /** One run with everything stored about it; throws `RUN_NOT_FOUND` if there is none. */
  async getRun(runId: string): Promise<RunRecord> {
    const run = await this.store.getRun(runId);
    if (run === undefined) {
      const known = (await this.store.listRuns({ limit: 3 })).map((r) => r.id);
      throw new StrideError(
        'RUN_NOT_FOUND',
        `no run "${runId}" in the store${known.length > 0 ? ` (latest: ${known.join(', ')})` : ' (it has no runs yet)'}`,
      );
    }
    return run;
  }

  /**
   * A run's results as TestResults, one per case (its latest: a case cancelled by an interrupted
   * session and finished by a resume shows once, finished), in completion order. Streamed from
   * the store in one pass, each case's latest result chosen by the store (in SQL): memory stays
   * flat however large the run.
   */
  async *results(
    runId: string,
    options: { readonly status?: readonly TestResult['status'][] } = {},
  ): AsyncGenerator<TestResult> {
    const run = await this.getRun(runId);
    const context = { workflowId: run.plan, epochOffsetMs: run.clockOffsetMs };
    // Each case's latest row, chosen by the store in the same read (a case cancelled by an
    // interrupted session and finished by a resume has two).
    const wanted = options.status === undefined ? undefined : new Set<string>(options.status);
    for await (const r of this.store.results(runId, { latest: true })) {
      const result = ResultConverter.convert(r, context);
      if (wanted === undefined || wanted.has(result.status)) yield result;
    }
  }

  /** Deletes runs outside the retention; resolves with how many were deleted. */
  prune(retention: Retention): Promise<number> {
    return this.store.prune(retention);
  }

  /**
   * The plan of a stored run, ready to run again: reloaded from the file it was started from
   * (secrets come from the environment, never from the store), with the run's stored execution
   * policy and selection, which carry any overrides it was started with.
   */
  async planOf(runId: string, load: LoadPlanOptions = {}): Promise<RunManifest> {
    const run = await this.getRun(runId);
    const stored = JSON.parse(run.planJson) as Partial<RunManifest>;
    if (stored.file === undefined || stored.baseDir === undefined) {
      throw new StrideError(
        'INVALID_STATE',
        `run "${runId}" was started from a plan given as text, not a file: pass its manifest to resume or rerun it`,
      );
    }
    const file = isAbsolute(stored.file)
      ? stored.file
      : join(stored.baseDir, basename(stored.file));
    const fresh = await loadPlan(file, { ...load, baseDir: stored.baseDir, checkCases: false });
    const manifest = {
      ...fresh,
      ...(stored.executionPolicy === undefined ? {} : { executionPolicy: stored.executionPolicy }),
      ...(stored.select === undefined ? {} : { select: stored.select }),
    };
    // Checked with the run's own selection, before anything runs.
    if (load.checkCases !== false) await checkCases(manifest);
    return manifest;
  }

  private withClock(options: DurableRunOptions): DurableRunOptions {
    return this.clock === undefined || options.clock !== undefined
      ? options
      : { ...options, clock: this.clock };
  }
}
