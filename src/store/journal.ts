/**
 * The run journal: it listens to a Run and writes every transition, every ended attempt and the
 * run's end through a Store, so that the run can be listed, shown and resumed.
 *
 * Its listeners only push onto arrays: the batch of a tick is handed to the store on
 * `setImmediate`, and the store writes it later still (SQLite: one transaction per tick). The
 * scheduler never waits for a disk. On `done` the journal hands over what is left, records the
 * run's end and flushes; `journal.closed` resolves when all of it is durable.
 *
 * Nothing secret is written: the plan only as a redacted snapshot (`snapshotPlan`), errors only
 * as the engine's ErrorInfo (code, name, message; never a stack), options only as their plain
 * JSON fields.
 */

import { type Clock, RealClock } from '../core/clock.js';
import type { Hold, RunExecutionResult, TaskTransition } from '../core/model.js';
import type { PaceChange } from '../core/pace.js';
import type { Run } from '../core/run.js';
import { attemptStateOf, upstreamIds } from './codec.js';
import { attachLive, type LiveOptions } from './live.js';
import type { RunLease } from './lock.js';
import type { PlanSnapshot } from './plan.js';
import type { AttemptRecord, JournalBatch, Store } from './port.js';

/** Options of `attachJournal`. */
export interface JournalOptions {
  /** The stored run's id. @default run.runId */
  readonly runId?: string;
  /** The plan, redacted (`snapshotPlan(manifest)`). @default an unnamed test plan */
  readonly plan?: PlanSnapshot;
  /**
   * The run's options, as recorded: only plain JSON fields are kept (functions, signals, clocks
   * and other class instances are dropped). @default {}
   */
  readonly options?: unknown;
  /** The run this one re-runs cases of. */
  readonly parentId?: string;
  /** Continue the journal of an existing run (resume) instead of creating one. @default false */
  readonly resume?: boolean;
  /** The run's clock, to date the run in epoch milliseconds. @default new RealClock() */
  readonly clock?: Clock;
  /**
   * The run's lock, when the caller took it already (a resume locks the run before it records
   * its maybe-sent attempts). The journal releases it when the run's end is durable, when the
   * journal fails and on `detach`. @default the journal takes the lock itself
   * (`store.lockRun`), so two sessions never drive one run
   */
  readonly lease?: RunLease;
  /**
   * Publish the run's live state and take control requests from other processes
   * (`store/live.ts`), or `false` not to. @default on, polling every 250 ms
   */
  readonly live?: false | Omit<LiveOptions, 'clock'>;
  /**
   * Called once when the store fails (disk full, locked database). The journal has held the run
   * already (hold `journal`: no request leaves whose start is not on disk) and keeps what the
   * run does from then on in memory, to write it once the run ended (`Journal.failure`).
   * @default lets the requests in flight finish (they were sent and are paid for), then cancels
   * the run, so no more money is spent on results that might not be kept
   */
  readonly onError?: (error: unknown) => void;
}

/** What became of a journal that failed (`Journal.failure`). */
export interface JournalFailure {
  /** The store's error (as `Journal.error`). */
  readonly error: unknown;
  /** Attempts in flight when it failed: let finish, not aborted (their requests were sent). */
  readonly inFlight: number;
  /**
   * Everything the run did after the failure (the answers of the attempts in flight, the cases
   * cancelled) was written once the run had stopped: the journal lost nothing. The stored run
   * is then `interrupted`, resumable.
   */
  readonly written: boolean;
  /**
   * When `written` is false: the cases whose verdict came back but may not be in the journal
   * (a resume may send them again), in the order they ended. Empty when `written`.
   */
  readonly unwritten: readonly string[];
}

/** A journal attached to a run. */
export interface Journal {
  readonly runId: string;
  /**
   * Adds to a run-clock time to get epoch milliseconds, as the stored times are dated: a result
   * converted live with it shows the timestamp its stored copy converts to.
   */
  readonly epochOffset: number;
  /**
   * Resolves once the run's end and everything before it are durable; rejects with the store's
   * error if writing failed. Await it after `run.start()`.
   */
  readonly closed: Promise<void>;
  /** The store's error, once one happened. */
  readonly error: unknown;
  /** Once the run after a store failure ended (or the journal was detached): what was kept. */
  readonly failure: JournalFailure | undefined;
  /** Hands over what is buffered and waits until the store made it durable. */
  flush(): Promise<void>;
  /** Stops journaling without recording an end (what is buffered is still handed over). */
  detach(): Promise<void>;
}

/**
 * Transitions per batch at most: a run that never yields to the event loop (no-op targets) hands
 * its journal over every this many, so memory stays bounded.
 */
const MAX_BATCH = 512;

/** A case's states that are an answer (a cancel is not: a resume runs it again anyway). */
const VERDICTS: ReadonlySet<string> = new Set(['succeeded', 'failed', 'timeout', 'error']);

/** An attempt in flight: filled in as it goes, handed to the store as its AttemptRecord. */
interface LiveAttempt {
  caseId: string;
  number: number;
  startedAt: number;
  endedAt: number;
  state: AttemptRecord['state'];
  error: AttemptRecord['error'];
  usage: { tokens: number; cost: number };
  upstream: AttemptRecord['upstream'];
}

/** Plain JSON fields only: functions, signals, clocks and other class instances are dropped. */
function plainReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return undefined;
  }
  return value;
}

function optionsJson(options: unknown): string {
  if (options === undefined) return '{}';
  try {
    return JSON.stringify(options, plainReplacer) ?? '{}';
  } catch {
    return '{}';
  }
}

class RunJournal implements Journal {
  readonly runId: string;
  readonly closed: Promise<void>;
  error: unknown;
  failure: JournalFailure | undefined;

  private transitions: TaskTransition[] = [];
  /**
   * Batches handed to the store since it last said all was durable (a commit or a flush that
   * succeeded): after a failure, the verdicts in them may not be on disk.
   */
  private unsure: JournalBatch[] = [];
  /**
   * After a failure: the run's hold (nothing is sent), the attempts in flight then (a start the
   * gate withdraws unsent leaves this set without counting) and how many of them ended.
   */
  private hold: Hold | undefined;
  private inFlightAtFailure: Set<string> | undefined;
  private letFinish = 0;
  private attempts: AttemptRecord[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly live = new Map<string, LiveAttempt>();
  private readonly unsubscribe: (() => void)[];
  private attached = true;
  private failed = false;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };

  constructor(
    private readonly run: Run<unknown, unknown>,
    private readonly store: Store,
    runId: string,
    readonly epochOffset: number,
    private readonly onError: ((error: unknown) => void) | undefined,
    private readonly lease: RunLease,
  ) {
    this.runId = runId;
    this.closed = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Whatever ends the session (its end recorded, a failure, a detach) gives the run back.
    const release = () => {
      this.lease.release().catch(() => {});
    };
    this.closed.then(release, release);
    // Awaiting it is the caller's choice: an unobserved failure must not crash the process.
    this.closed.catch(() => {});
    this.unsubscribe = [
      run.on('transition', (t) => this.onTransition(t)),
      run.on('usage', (u) => {
        const live = this.live.get(u.taskId);
        if (live !== undefined && live.number === u.attempt) {
          live.usage.tokens += u.tokens;
          live.usage.cost += u.cost;
        }
      }),
      run.on('paceChanged', (c) => this.onPace(c)),
      run.on('done', (result) => this.onDone(result)),
      // The durability point: attempts started in a tick are sent only once this committed. Per
      // tick, not per microtask turn: under load one commit covers the answers of many sockets
      // (a commit per case was a fifth of a CLI run's CPU, bench/cpu-per-case.mjs).
      run.gateSends(this.commit, { tick: true }),
    ];
  }

  /**
   * The run's send gate: every transition so far (the starts about to be sent, the verdicts
   * that freed their slots) is handed over and committed, synchronously, before any request
   * leaves. False after a store failure: the held attempts are withdrawn unsent (and the run is
   * held, see `fail`).
   */
  private readonly commit = (): boolean => {
    if (!this.attached) return true;
    if (!this.handoff()) return false;
    try {
      this.store.commit();
      this.unsure = [];
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    }
  };

  private onTransition(t: TaskTransition): void {
    this.transitions.push(t);
    switch (t.to) {
      case 'queued':
        // A lower count means the start was withdrawn before anything was sent (a pause
        // between "chosen" and "started"): not an attempt. Otherwise a pause aborted it.
        if (t.from === 'running') {
          const live = this.live.get(t.taskId);
          if (live !== undefined && t.attempt < live.number) this.live.delete(t.taskId);
          else this.endAttempt(t.taskId, t.at, 'interrupted', undefined, undefined);
        }
        break;
      case 'running':
        this.live.set(t.taskId, {
          caseId: t.taskId,
          number: t.attempt,
          startedAt: t.at,
          endedAt: t.at,
          state: 'interrupted',
          error: undefined,
          usage: { tokens: 0, cost: 0 },
          upstream: undefined,
        });
        break;
      case 'pending':
        this.endAttempt(t.taskId, t.at, attemptStateOf(t.error), t.error, undefined);
        break;
      case 'succeeded':
        if (t.from === 'running') {
          this.endAttempt(t.taskId, t.at, 'succeeded', undefined, t.result.output);
        }
        break;
      case 'cancelled':
        // A lower count: a held start withdrawn before its request left, so no attempt.
        if (t.from === 'running') {
          const live = this.live.get(t.taskId);
          if (live !== undefined && t.attempt < live.number) this.live.delete(t.taskId);
          else this.endAttempt(t.taskId, t.at, 'cancelled', undefined, undefined);
        }
        break;
      default:
        if (t.from === 'running') this.endAttempt(t.taskId, t.at, t.to, t.error, t.result.output);
    }
    if (this.transitions.length >= MAX_BATCH) this.handoff();
    else this.scheduled ??= setImmediate(this.handoffSoon);
  }

  private endAttempt(
    caseId: string,
    at: number,
    state: AttemptRecord['state'],
    error: AttemptRecord['error'],
    output: unknown,
  ): void {
    const live = this.live.get(caseId);
    if (live === undefined) return; // attached after it started: its start is unknown
    this.live.delete(caseId);
    if (this.inFlightAtFailure?.delete(caseId)) this.letFinish++;
    live.endedAt = at;
    live.state = state;
    live.error = error;
    if (output !== undefined) live.upstream = upstreamIds(output);
    this.attempts.push(live);
  }

  private readonly handoffSoon = (): void => {
    this.scheduled = undefined;
    this.handoff();
  };

  /**
   * Gives the tick's batch to the store. Returns false if the store refused it, or failed
   * before: then the batch stays here, to be written once the run ended (`rescue`).
   */
  private handoff(): boolean {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.failed) return false;
    if (!this.attached) return true;
    if (this.transitions.length === 0 && this.attempts.length === 0) return true;
    const batch: JournalBatch = { transitions: this.transitions, attempts: this.attempts };
    try {
      this.store.append(this.runId, batch);
    } catch (err) {
      this.fail(err);
      return false;
    }
    this.transitions = [];
    this.attempts = [];
    this.unsure.push(batch);
    return true;
  }

  private onDone(result: RunExecutionResult): void {
    if (!this.handoff()) {
      this.stopListening();
      this.hold?.release();
      this.rescue(result.finishedAt + this.epochOffset).then(
        () => this.settle.reject(this.error),
        () => this.settle.reject(this.error),
      );
      return;
    }
    this.stopListening();
    this.store
      .finishRun(this.runId, {
        status: result.status,
        finishedAt: result.finishedAt + this.epochOffset,
        stoppedBy: result.stoppedBy,
        statistics: result.statistics,
      })
      .then(
        () => this.settle.resolve(),
        (err: unknown) => {
          this.fail(err);
          this.settle.reject(err);
        },
      );
  }

  /**
   * After a failure, once the run stopped: writes what the store kept of the failed write (it
   * retries it on flush), then everything the run did since, and, given the run's end
   * (`finishedAt`, epoch ms), records the run `interrupted` (resumable). Sets `failure`: whether
   * all of it is durable, and if not, which answered cases may be missing. What could not be
   * written stays here for a later `flush()`.
   */
  private async rescue(finishedAt?: number): Promise<void> {
    let written = false;
    try {
      await this.store.flush();
      this.unsure = [];
      if (this.transitions.length > 0 || this.attempts.length > 0) {
        const batch: JournalBatch = { transitions: this.transitions, attempts: this.attempts };
        this.store.append(this.runId, batch);
        this.transitions = [];
        this.attempts = [];
        this.unsure.push(batch);
        await this.store.flush();
        this.unsure = [];
      }
      if (finishedAt !== undefined) {
        await this.store.finishRun(this.runId, {
          status: 'interrupted',
          finishedAt,
          statistics: undefined,
        });
      }
      written = true;
    } catch {
      // The disk still refuses: `failure` says which answers may be missing.
    }
    const unwritten = new Set<string>();
    if (!written) {
      for (const t of [...this.unsure.flatMap((b) => b.transitions), ...this.transitions]) {
        if (VERDICTS.has(t.to)) unwritten.add(t.taskId);
      }
    }
    this.failure = {
      error: this.error,
      inFlight: this.letFinish,
      written,
      unwritten: [...unwritten],
    };
  }

  /** A change of the adaptive pace: written at once, for the report and the dashboard. */
  private onPace(c: PaceChange): void {
    if (!this.attached || this.failed) return;
    try {
      this.store.appendPace(this.runId, {
        at: c.at,
        concurrency: c.concurrency.to,
        ratePerMinute: c.ratePerMinute.to,
        reason: c.reason,
        message: c.message,
      });
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * The store failed. Nothing more is sent (a hold: the gate withdraws what it holds), but the
   * journal keeps listening: the answers of the attempts in flight were paid for, and are kept
   * here until the run ended, then written (`rescue`). By default the run is cancelled once
   * those attempts settled.
   */
  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.error = err;
    const message = err instanceof Error ? err.message : String(err);
    const run = this.run;
    if (run.status === 'running' || run.status === 'pausing' || run.status === 'paused') {
      this.inFlightAtFailure = new Set(this.live.keys());
      this.hold = run.hold('journal', { by: `the run journal failed: ${message}` });
    }
    if (this.onError !== undefined) {
      this.onError(err);
    } else if (this.hold !== undefined) {
      run.onIdle().then(() => run.cancel({ message: `the run journal failed: ${message}` }));
    }
  }

  private stopListening(): void {
    if (!this.attached) return;
    this.attached = false;
    for (const off of this.unsubscribe) off();
  }

  async flush(): Promise<void> {
    if (this.failed) {
      await this.rescue();
      if (!this.failure?.written) throw this.error;
      return;
    }
    if (!this.handoff()) throw this.error;
    try {
      await this.store.flush();
      this.unsure = [];
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  async detach(): Promise<void> {
    const ok = this.handoff();
    this.stopListening();
    // The journal no longer governs the run: its hold goes with it.
    this.hold?.release();
    try {
      if (!ok) {
        await this.rescue();
        throw this.error;
      }
      await this.store.flush();
    } catch (err) {
      // `closed` must settle either way: a caller awaiting it (a run stopped by Ctrl-C on a
      // failing disk) would otherwise wait forever.
      this.settle.reject(err);
      throw err;
    }
    this.settle.resolve();
  }
}

/**
 * Journals a run into a store: creates the stored run (or re-opens it with `resume`), then
 * writes every transition, every ended attempt and the run's end. Attach it before
 * `run.start()`.
 *
 * @example
 * ```ts
 * const store = new SqliteStore();
 * const prepared = await service.prepare(manifest);
 * const journal = await attachJournal(prepared.run, store, { plan: snapshotPlan(manifest) });
 * const result = await prepared.run.start();
 * await journal.closed; // the results and the run's end are on disk
 * ```
 */
export async function attachJournal<I, O>(
  run: Run<I, O>,
  store: Store,
  options: JournalOptions = {},
): Promise<Journal> {
  const runId = options.runId ?? run.runId;
  const clock = options.clock ?? new RealClock();
  const epochOffset = clock.wallTime() - clock.now();
  // Locked before anything is written: a refused session leaves the store as it was.
  const lease = options.lease ?? (await store.lockRun(runId));
  try {
    if (options.resume === true) {
      await store.reopenRun(runId, clock.wallTime());
    } else {
      const plan = options.plan;
      await store.createRun({
        id: runId,
        kind: plan?.kind ?? 'test',
        plan: plan?.name ?? '',
        planHash: plan?.hash ?? '',
        planJson: plan?.json ?? 'null',
        optionsJson: optionsJson(options.options),
        startedAt: clock.wallTime(),
        clockOffsetMs: epochOffset,
        ...(options.parentId === undefined ? {} : { parentId: options.parentId }),
      });
    }
  } catch (err) {
    await lease.release();
    throw err;
  }
  const journal = new RunJournal(
    run as Run<unknown, unknown>,
    store,
    runId,
    epochOffset,
    options.onError,
    lease,
  );
  if (options.live !== false) {
    const live = attachLive(run as Run<unknown, unknown>, store, runId, {
      ...options.live,
      clock,
    });
    // A detached or failed journal ends the session as surely as the run's end does.
    journal.closed.then(live.stop, live.stop);
  }
  return journal;
}
