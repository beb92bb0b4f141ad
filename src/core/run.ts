/**
 * The run loop: the one scheduler every face of Stride runs on. It decides what starts and when
 * (readiness, priority, concurrency, rate, retries, stop rules, pause); the Target decides how.
 *
 * Invariants this file keeps (each pinned by a test):
 * - a slot is taken when an attempt starts and given back only when that attempt's promise
 *   settles, even after a timeout: work that ignores its abort keeps its slot (a zombie);
 * - every attempt takes a rate token synchronously right before it starts, retries included;
 * - no attempt starts while paused or stopping, or with an aborted signal;
 * - every wait (queued, backoff, rate token, batch gap) is cancelled by cancel;
 * - every task ends in exactly one terminal state.
 */

import { BatchGate } from './batch-gate.js';
import { type CancelTimer, type Clock, RealClock } from './clock.js';
import {
  CancelledError,
  classifyError,
  type ErrorInfo,
  InvalidOptionError,
  PausedError,
  TimeoutError,
} from './errors.js';
import { RunEmitter, transitionEvent } from './events.js';
import { type HoldOptions, Holds } from './holds.js';
import { InFlight } from './in-flight.js';
import { Intake, type IntakeHost } from './intake.js';
import {
  type CancelReason,
  type Hold,
  type HoldInfo,
  isTerminal,
  type RateLimitSnapshot,
  type RunEvents,
  type RunExecutionResult,
  type RunStatistics,
  type RunStatus,
  type StopInfo,
  type Target,
  type TaskStatus,
  type TerminalStatus,
  type Usage,
} from './model.js';
import {
  type ResolvedRetry,
  type RunOptions,
  resolveRetry,
  validateConcurrency,
  validateRunOptions,
} from './options.js';
import type { PaceState } from './pace.js';
import { RateLimiterRegistry } from './rate.js';
import { RateGate } from './rate-gate.js';
import { RetryPolicy } from './retry-policy.js';
import { RunPace } from './run-pace.js';
import type { GateCommit, GateOptions } from './send-gate.js';
import type { TaskSource } from './source.js';
import { StopRules } from './stop-rules.js';
import { RunTally } from './tally.js';
import { Attempt, type TaskRecord, type UsageSink } from './task.js';
import { TaskQueues } from './task-queues.js';
import { applyLimits, TokenMeter } from './token-budget.js';
import { Waiters } from './waiters.js';

export type { TaskSource } from './source.js';

let runCounter = 0;

function generatedRunId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID?.() ?? `run-${Date.now().toString(36)}-${(runCounter++).toString(36)}`;
}

/**
 * One run of a set of tasks against a target: the engine.
 *
 * @example
 * ```ts
 * const run = new Run(
 *   [{ id: 'a', input: 1 }, { id: 'b', input: 2 }],
 *   { execute: async (task) => task.input * 2 },
 *   { concurrency: 2, retry: { maxAttempts: 3 }, timeoutMs: 5_000 },
 * );
 * run.on('transition', (t) => console.log(t.taskId, t.from, '->', t.to));
 * const result = await run.start();
 * result.statistics.succeededTasks; // 2
 * ```
 */
export class Run<I = unknown, O = unknown> {
  readonly runId: string;
  private readonly clock: Clock;
  private readonly retry: ResolvedRetry;
  private readonly options: RunOptions;
  private readonly limiters: RateLimiterRegistry;
  private readonly retain: boolean;
  private readonly lookahead: number;
  /** The effective concurrency and the adaptive pace. */
  private readonly pacer: RunPace;
  /** The retry decision, with the 429 refusals of each task still running. */
  private readonly retryPolicy: RetryPolicy<I, O>;

  private statusValue: RunStatus = 'running';
  private started = false;
  private finished = false;
  private readonly runController = new AbortController();
  private readonly events = new RunEmitter();
  private readonly waiters = new Waiters();

  // Collaborators: the intake (source reader, admission, dependency graph), the gates, the
  // token budget, the stop rules
  private readonly intake: Intake<I, O>;
  private readonly batch: BatchGate | undefined;
  private readonly meter: TokenMeter;
  private readonly rateGate: RateGate;
  private readonly stopRules: StopRules;

  // Waiting tasks and the attempts in flight (the slots)
  private readonly queues: TaskQueues<I, O>;
  private readonly slots: InFlight<I, O>;
  private live = 0;
  private pumping = false;
  private deadlineTimer: CancelTimer | undefined;

  // Holds: the run is paused while any is held (`hold`); `pause()` is the user's.
  private readonly holdBook: Holds;

  // Stop state
  private stopReason: CancelReason | undefined;
  private stopInfo: StopInfo | undefined;
  private readonly signalListener: (() => void) | undefined;

  // Statistics
  private readonly tally = new RunTally();
  private readonly counts = this.tally.counts;
  private startedAt = 0;
  private readonly results: TaskRecord<I, O>[] = [];
  private resultPromise: Promise<RunExecutionResult<I, O>> | undefined;
  private resolveResult: ((r: RunExecutionResult<I, O>) => void) | undefined;

  constructor(source: TaskSource<I>, target: Target<I, O>, options: RunOptions = {}) {
    validateRunOptions(options);
    if (typeof target !== 'object' || target === null || typeof target.execute !== 'function') {
      throw new InvalidOptionError('target', target, 'an object with an execute(task, ctx) method');
    }
    this.options = options;
    this.clock = options.clock ?? new RealClock();
    this.queues = new TaskQueues(this.clock);
    this.slots = new InFlight(this.clock, target, options.zombieGraceMs ?? 1000, {
      settled: (att, ok, value) => this.onSettled(att, ok, value),
      timedOut: (att) => this.onTimeout(att),
      zombie: (att) => this.onZombie(att),
      withdrawn: (att) => this.withdraw(att),
      changed: () => this.afterChange(),
    });
    this.retry = resolveRetry(options.retry);
    this.retryPolicy = new RetryPolicy(this.retry, options.random ?? Math.random);
    this.limiters = options.limiters ?? new RateLimiterRegistry(this.clock);
    this.retain = options.retainResults ?? true;
    this.lookahead = options.lookahead ?? Math.max(256, 4 * (options.concurrency ?? 10));
    this.runId = options.runId ?? generatedRunId();
    this.meter = new TokenMeter(options.tokens, this.limiters);
    this.rateGate = new RateGate(
      this.clock,
      this.meter,
      () => this.pacer.waitedForRate(),
      (key, waitMs) => this.events.emit('rateLimited', { key, waitMs, at: this.clock.now() }),
      () => this.afterChange(),
    );
    this.pacer = new RunPace(this.clock, options, this.rateGate, this.events);
    this.stopRules = new StopRules(options.stop);
    this.batch =
      options.batch === undefined
        ? undefined
        : new BatchGate(options.batch, this.clock, () => this.afterChange());
    this.holdBook = new Holds(
      this.clock,
      (o) => this.pauseNow(o),
      () => this.resumeNow(),
    );
    if (options.paused) {
      this.statusValue = 'paused';
      this.holdBook.pauseByUser({}, false);
    }
    this.intake = new Intake(
      source,
      {
        rateKey: target.key ?? 'default',
        rate: options.rate,
        limiters: this.limiters,
        meter: this.meter,
        maxAttempts: this.retry.maxAttempts,
        lookahead: this.lookahead,
      },
      this.intakeHost,
    );
    if (options.signal !== undefined) {
      const signal = options.signal;
      this.signalListener = () =>
        this.cancel({ message: String(signal.reason ?? 'aborted by signal') });
    }
  }

  // ---------------------------------------------------------------- public surface

  /** Current run state. */
  get status(): RunStatus {
    return this.statusValue;
  }

  /** Current concurrency limit: the effective one (see `pace`). */
  get concurrency(): number {
    return this.pacer.limit;
  }

  /** The pace now: the ceiling, the effective concurrency and the adapted rate. */
  get pace(): PaceState {
    return this.pacer.state;
  }

  /** Aborted when the run stops (cancel, stop rule, deadline): the parent of every attempt's signal. */
  get signal(): AbortSignal {
    return this.runController.signal;
  }

  /** A live snapshot for progress displays and tests. */
  get progress(): {
    total: number;
    byStatus: Readonly<Record<TaskStatus, number>>;
    running: number;
    zombiesRunning: number;
    settled: number;
    attempts: number;
    tokens: number;
    /** The known costs' sum: partial when `costUnknown` > 0. */
    cost: number;
    /** Tasks whose cost is unknown (usage reported without a price). */
    costUnknown: number;
  } {
    const c = this.counts;
    return {
      total: Math.max(this.tally.total, this.intake.plannedTotal),
      byStatus: { ...c },
      running: this.slots.running,
      zombiesRunning: this.slots.zombiesRunning,
      settled: this.tally.settled,
      attempts: this.tally.attempts,
      tokens: this.meter.tokens,
      cost: this.meter.cost,
      costUnknown: this.meter.costUnknownTasks,
    };
  }

  /** Adds a listener; returns a function that removes it. Listeners run synchronously. */
  on<K extends keyof RunEvents>(event: K, listener: RunEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  /** Starts the run (once) and returns its result. Cancelling resolves it; it never rejects. */
  start(): Promise<RunExecutionResult<I, O>> {
    if (this.resultPromise !== undefined) return this.resultPromise;
    this.resultPromise = new Promise((resolve) => {
      this.resolveResult = resolve;
    });
    this.started = true;
    this.startedAt = this.clock.now();
    const stop = this.options.stop;
    if (stop?.deadlineMs !== undefined) {
      this.deadlineTimer = this.clock.schedule(stop.deadlineMs, () => {
        this.deadlineTimer = undefined;
        this.stop({ kind: 'deadline' }, 'abort', {
          rule: 'deadline',
          message: `run deadline of ${stop.deadlineMs} ms reached`,
        });
      });
    }
    if (this.options.signal !== undefined) {
      if (this.options.signal.aborted) this.signalListener!();
      else this.options.signal.addEventListener('abort', this.signalListener!, { once: true });
    }
    this.refill();
    this.pump();
    this.maybeFinish();
    return this.resultPromise;
  }

  /** The run's result; starts the run if needed. */
  get result(): Promise<RunExecutionResult<I, O>> {
    return this.start();
  }

  /**
   * Holds the run paused for `reason` until the returned hold is released: the run is paused
   * while any hold is held, so owners that pause for different reasons (the user, a signal's
   * graceful stop, a slow consumer, the dashboard, a Redis outage) never resume each other's
   * pause. The first hold pauses at once (dispatch stops; in-flight attempts finish, or are
   * aborted and re-queued with `abortInFlight`); releasing the last one resumes. `holds()` says
   * who holds the run. `pause()` / `resume()` are the `user` hold.
   *
   * @example
   * ```ts
   * const hold = run.hold('backpressure');
   * await drain();
   * hold.release(); // resumes unless someone else still holds the run
   * ```
   */
  hold(reason: string, options: HoldOptions = {}): Hold {
    return this.holdBook.take(reason, options);
  }

  /** Who holds the run paused, oldest first (empty when nobody does). */
  holds(): HoldInfo[] {
    return this.holdBook.list();
  }

  /**
   * Stops dispatch at once: the `user` hold (see `hold`). In-flight attempts finish (default),
   * or are aborted and their tasks re-queued with `abortInFlight` (those attempts do not spend
   * the retry budget).
   */
  pause(options: { abortInFlight?: boolean } = {}): void {
    this.holdBook.pauseByUser(options, this.finished);
  }

  /**
   * Releases the `user` hold: dispatch resumes unless another owner still holds the run (a
   * graceful stop, backpressure; see `holds()`).
   */
  resume(): void {
    this.holdBook.resumeByUser();
  }

  private pauseNow(options: { abortInFlight?: boolean }): void {
    if (this.statusValue !== 'running') {
      if (
        !(
          options.abortInFlight &&
          (this.statusValue === 'pausing' || this.statusValue === 'paused')
        )
      )
        return;
    }
    this.statusValue = this.slots.active > 0 ? 'pausing' : 'paused';
    this.rateGate.clear();
    const abortInFlight = options.abortInFlight ?? false;
    if (abortInFlight) this.slots.abortUndecided('pause', new PausedError());
    this.events.emit('paused', { at: this.clock.now(), abortInFlight });
    this.waiters.notify();
  }

  private resumeNow(): void {
    if (this.statusValue !== 'paused' && this.statusValue !== 'pausing') return;
    this.statusValue = 'running';
    this.events.emit('resumed', { at: this.clock.now() });
    this.refill();
    this.pump();
    this.maybeFinish();
    this.waiters.notify();
  }

  /**
   * Cancels the run: no attempt starts any more, in-flight attempts are aborted (or drained with
   * `drain: true`), every other task ends `cancelled` (reason `user`). The result resolves with
   * the partial results; cancelling is not an error.
   */
  cancel(options: { drain?: boolean; message?: string } = {}): void {
    const reason: CancelReason =
      options.message === undefined ? { kind: 'user' } : { kind: 'user', message: options.message };
    this.stop(reason, options.drain ? 'drain' : 'abort', undefined);
  }

  /**
   * Changes the concurrency limit; lowering it never interrupts running attempts. With adaptive
   * pace it is the new ceiling: an effective limit the pace lowered stays at most what it was.
   */
  setConcurrency(n: number): void {
    validateConcurrency(n);
    this.pacer.setCeiling(n);
    this.pump();
  }

  /**
   * Installs a durability point (the journal's, `attachJournal`): the attempts started in one
   * microtask turn (one event-loop tick with `{ tick: true }` on the RealClock) are held, `commit` is called once, synchronously, and only then are they
   * sent. What `commit` makes durable thus holds the start of every attempt before its request
   * leaves, and the verdict that freed a slot before the slot is used again. Without a gate an
   * attempt is sent the moment it starts. `commit` returns `false` when it could not make them
   * durable: the held attempts are then not sent (each is given back and its task re-queued, as
   * a pause would). One gate per run; `commit` must not throw. Returns a function that removes
   * the gate (held attempts are then sent at once).
   */
  gateSends(commit: GateCommit, options: GateOptions = {}): () => void {
    // A tick's wait only on the real clock: a VirtualClock advances itself from `setImmediate`
    // once the microtasks drained, so a send held for the tick would find its time moved on
    // (timeouts fired before the request left). There the microtask turn stays the group.
    const tick = options.tick === true && this.clock instanceof RealClock;
    return this.slots.gateSends(commit, { tick });
  }

  /** Resolves once `predicate` holds, checked after every state change. */
  waitFor(predicate: () => boolean): Promise<void> {
    return this.waiters.waitFor(predicate);
  }

  /** Resolves when no attempt is in flight (zombies aside). */
  onIdle(): Promise<void> {
    return this.waitFor(() => this.slots.active === 0);
  }

  /** Resolves when the run is paused and its in-flight work has settled. */
  onPaused(): Promise<void> {
    return this.waitFor(() => this.statusValue === 'paused' || this.finished);
  }

  // ---------------------------------------------------------------- the loop

  /** Starts every attempt that may start now. Re-entrant calls are ignored (the loop re-checks). */
  private pump(): void {
    if (this.pumping || !this.started || this.finished) return;
    this.pumping = true;
    const q = this.queues;
    try {
      while (this.statusValue === 'running' && this.slots.running < this.pacer.limit) {
        if (this.options.ordered === true && (this.slots.running > 0 || q.backingOffAny)) break;
        if (q.queued < this.lookahead / 2) this.refill();
        const fromRetry = q.retry.size > 0;
        const rec = fromRetry ? q.retry.peek()! : q.ready.peek();
        if (rec === undefined) break;
        if (!fromRetry && this.batch !== undefined && !this.batch.open()) break;
        const reserve = this.rateGate.take(rec);
        if (reserve < 0) break;
        if (fromRetry) q.retry.shift();
        else q.ready.shift();
        this.batch?.admit(rec);
        this.startAttempt(rec, reserve);
      }
    } finally {
      this.pumping = false;
    }
  }

  private startAttempt(rec: TaskRecord<I, O>, reservedTokens: number): void {
    const now = this.clock.now();
    rec.attempts++;
    this.tally.attempts++;
    if (rec.retrying) {
      rec.retrying = false;
      this.tally.retries++;
    }
    if (rec.startedAt === undefined) rec.startedAt = now;
    this.transition(rec, 'running', rec.attempts);
    if (this.statusValue !== 'running' || isTerminal(rec.status)) {
      // A listener paused or stopped the run between "chosen" and "started": nothing is sent.
      // Give back the tokens and the attempt; the task waits at the head of the retry queue.
      this.rateGate.refund(rec, reservedTokens);
      rec.attempts--;
      this.tally.attempts--;
      if (isTerminal(rec.status)) return;
      if (this.stopReason !== undefined) {
        this.finish(rec, 'cancelled', undefined, this.stopReason);
        return;
      }
      this.requeue(rec);
      return;
    }
    const att = new Attempt<I, O>(this.sink, rec, rec.attempts, now);
    att.reservedTokens = reservedTokens;
    this.pacer.started(att, now, this.slots.running);
    this.slots.launch(att, rec.timeoutMs ?? this.options.timeoutMs);
  }

  /** The task waits at the head of the retry queue (its attempt was given back or interrupted). */
  private requeue(rec: TaskRecord<I, O>): void {
    this.queues.retry.push(rec);
    this.transition(rec, 'queued', rec.attempts, true);
  }

  /** A pausing run whose last live attempt ended is paused. */
  private checkPaused(): void {
    if (this.statusValue === 'pausing' && this.slots.active === 0) this.statusValue = 'paused';
  }

  // ---------------------------------------------------------------- settlement

  /**
   * A held attempt aborted before it was sent (its slot is free already): like a start a
   * listener withdrew, it is no attempt (its tokens and its number are given back). A pause
   * re-queues the task; a stop ends it cancelled.
   */
  private withdraw(att: Attempt<I, O>): void {
    const rec = att.rec;
    this.rateGate.refund(rec, att.reservedTokens);
    rec.attempts--;
    this.tally.attempts--;
    this.checkPaused();
    if (isTerminal(rec.status)) return;
    if (att.abortKind === 'pause' && this.stopReason === undefined) this.requeue(rec);
    else this.finish(rec, 'cancelled', undefined, this.stopReason ?? { kind: 'user' });
  }

  private onTimeout(att: Attempt<I, O>): void {
    if (att.abortKind === 'pause') {
      // Aborted by a pause and still running at its timeout: still the pause's interruption,
      // not a failure of the task.
      att.decided = true;
      this.requeueInterrupted(att.rec);
      this.afterChange();
      return;
    }
    const err = new TimeoutError(
      `attempt ${att.attempt} of task ${att.rec.id} timed out after ${att.timeoutMs} ms`,
    );
    this.slots.abort(att, 'timeout', err);
    att.decided = true;
    this.tally.latency.record(this.clock.now() - att.startedAt);
    this.attemptFailed(att.rec, err, att);
    this.afterChange();
  }

  /** The attempt's promise settled (its slot is free): decide its task unless already decided. */
  private onSettled(att: Attempt<I, O>, ok: boolean, value: unknown): void {
    this.meter.reconcile(att);
    if (!att.decided) {
      att.decided = true;
      this.tally.latency.record(this.clock.now() - att.startedAt);
      const rec = att.rec;
      if (ok) {
        this.stopRules.answered();
        rec.output = value as O;
        this.pacer.answered(att);
        this.finish(rec, 'succeeded');
      } else if (att.abortKind === 'pause') {
        this.requeueInterrupted(rec);
      } else if (att.abortKind === 'cancel') {
        this.finish(rec, 'cancelled', undefined, this.stopReason ?? { kind: 'user' });
      } else {
        this.attemptFailed(rec, value, att);
      }
    }
    this.checkPaused();
    this.afterChange();
  }

  private onZombie(att: Attempt<I, O>): void {
    this.tally.zombies++;
    this.events.emit('zombie', { taskId: att.rec.id, attempt: att.attempt, at: this.clock.now() });
    // The work ignores its abort; decide its task now so the run is not held hostage. The slot
    // stays taken until the promise settles (maybe never).
    if (!att.decided) {
      att.decided = true;
      if (att.abortKind === 'pause') this.requeueInterrupted(att.rec);
      else this.finish(att.rec, 'cancelled', undefined, this.stopReason ?? { kind: 'user' });
    }
    this.checkPaused();
    this.afterChange();
  }

  private requeueInterrupted(rec: TaskRecord<I, O>): void {
    rec.interrupted++;
    this.tally.interrupted++;
    if (this.stopReason !== undefined) this.finish(rec, 'cancelled', undefined, this.stopReason);
    else this.requeue(rec);
  }

  private attemptFailed(rec: TaskRecord<I, O>, err: unknown, att?: Attempt<I, O>): void {
    const cls = classifyError(err);
    this.stopRules.failed(cls.auth);
    if (cls.rateLimited) this.tally.refused++;
    const { retry, delayMs, info } = this.retryPolicy.failed(
      rec,
      err,
      cls,
      this.stopReason !== undefined,
    );
    const signal = this.pacer.failed(err, cls, att);
    let delay = delayMs;
    // A bare 429 under adaptive pace: the lowered pace is the wait, not a timer. A case refused
    // again (`own`) waits its own backoff, and the run's bucket does not cool for it: the other
    // cases are admitted (before, ten always-refused cases cooled it in turn and starved the rest).
    if (signal === 'rate_limited') delay = 0;
    else if (cls.rateLimited && rec.bucket !== undefined && signal !== 'own') {
      rec.bucket.coolDown(delay);
      this.events.emit('coolDown', { key: rec.rateKey, ms: delay, at: this.clock.now() });
    }
    if (!retry) {
      // A failed verdict may still carry what the target answered (TaskFailedError's output).
      const output = (err as { output?: unknown } | null)?.output;
      if (output !== undefined) rec.output = output as O;
      this.finish(rec, cls.status, info);
      return;
    }
    rec.retrying = true;
    rec.error = info;
    this.queues.backoff(rec, delay, this.retryDue);
    this.transition(rec, 'pending', rec.attempts, false, delay, info);
  }

  private finish(
    rec: TaskRecord<I, O>,
    status: TerminalStatus,
    error?: ErrorInfo,
    reason?: CancelReason,
  ): void {
    if (isTerminal(rec.status)) return;
    const now = this.clock.now();
    this.retryPolicy.ended(rec);
    rec.finishedAt = now;
    rec.executionTimeMs = rec.startedAt === undefined ? 0 : now - rec.startedAt;
    if (status === 'succeeded') rec.error = undefined;
    else if (error !== undefined) rec.error = error;
    if (status === 'cancelled') rec.reason = reason ?? { kind: 'user' };
    this.live--;
    this.batch?.ended(rec);
    if (this.retain) this.results.push(rec);
    this.transition(rec, status, rec.attempts);
    if (this.stopReason === undefined) this.checkStopRules();
    this.intake.ended(rec, status);
  }

  private checkStopRules(): void {
    const info = this.stopRules.check(
      this.counts,
      this.meter.tokens,
      this.meter.cost,
      this.meter.costUnknownTasks,
    );
    if (info !== undefined)
      this.stop({ kind: 'stop_rule', rule: info.rule }, this.stopRules.inFlight, info);
  }

  /** Stops the run: the shared path of cancel, stop rules and the deadline. */
  private stop(reason: CancelReason, mode: 'abort' | 'drain', info: StopInfo | undefined): void {
    if (this.stopReason !== undefined || this.finished) return;
    this.stopReason = reason;
    this.stopInfo = info;
    this.statusValue = 'stopping';
    this.events.emit('stopping', { at: this.clock.now(), reason });
    this.rateGate.clear();
    this.batch?.close();
    if (reason.kind !== 'deadline') {
      this.deadlineTimer?.();
      this.deadlineTimer = undefined;
    }
    const error =
      reason.kind === 'user'
        ? new CancelledError(reason.message ?? 'run cancelled')
        : new CancelledError(info?.message ?? 'run stopped');
    if (mode === 'abort') this.runController.abort(error);
    for (const rec of this.queues.drain()) this.finish(rec, 'cancelled', undefined, reason);
    for (const rec of this.intake.takeParked()) this.finish(rec, 'cancelled', undefined, reason);
    if (mode === 'abort') this.slots.abortUndecided('cancel', error);
    // Every task of the plan gets its terminal state, also those never pulled from the source.
    this.intake.drain();
    this.afterChange();
  }

  // ---------------------------------------------------------------- source

  /** Pulls tasks from the source into the ready queue, up to the lookahead. */
  private refill(): void {
    if (this.started) this.intake.refill();
  }

  /** The error that ended the task source early, if any. */
  get sourceFailure(): ErrorInfo | undefined {
    return this.intake.error;
  }

  /** What the intake sees of the run. */
  private readonly intakeHost: IntakeHost<I, O> = {
    stopping: () => this.stopReason,
    admitted: () => {
      this.tally.total++;
      this.live++;
      this.counts.pending++;
    },
    // State first, event second: a listener that cancels must find the task in its queue.
    ready: (rec) => {
      this.queues.ready.push(rec, rec.priority);
      this.transition(rec, 'queued', rec.attempts, false);
    },
    finish: (rec, status, error, reason) => this.finish(rec, status, error, reason),
    waiting: () => this.queues.ready.size,
    pump: () => this.pump(),
    changed: () => this.afterChange(),
  };

  // ---------------------------------------------------------------- bookkeeping

  /** What an attempt's context reports to (not part of the Run's public surface). */
  private readonly sink: UsageSink<I, O> = {
    addUsage: (att, usage) => this.addUsage(att, usage),
    syncLimits: (att, limits) => this.syncLimits(att, limits),
    releaseSlot: (att) => {
      // The slot goes to the next attempt; the task settles when this one does (issue #20).
      if (!this.slots.releaseSlot(att)) return;
      this.checkPaused();
      this.afterChange();
    },
  };

  /** A retry's backoff ended: it is queued. */
  private readonly retryDue = (rec: TaskRecord<I, O>): void => {
    this.transition(rec, 'queued', rec.attempts, true);
    this.afterChange();
  };

  /** Called by an attempt's `reportLimits`. */
  private syncLimits(att: Attempt<I, O>, limits: RateLimitSnapshot): void {
    applyLimits(att, limits, (key, ms) =>
      this.events.emit('coolDown', { key, ms, at: this.clock.now() }),
    );
  }

  /** Called by an attempt's `reportUsage`. */
  private addUsage(att: Attempt<I, O>, usage: Partial<Usage>): void {
    const { tokens, cost } = this.meter.add(att, usage);
    this.events.emit('usage', { taskId: att.rec.id, attempt: att.attempt, tokens, cost });
  }

  private transition(
    rec: TaskRecord<I, O>,
    to: TaskStatus,
    attempt: number,
    retry = false,
    retryInMs = 0,
    error?: ErrorInfo,
  ): void {
    const from = rec.status;
    this.counts[from]--;
    this.counts[to]++;
    rec.status = to;
    const listeners = this.events.listeners.transition;
    if (listeners.length === 0) return;
    this.events.dispatch(
      listeners,
      transitionEvent(rec, from, to, this.clock.now(), attempt, retry, retryInMs, error),
    );
  }

  private afterChange(): void {
    this.checkZombieStall();
    this.pump();
    this.maybeFinish();
    this.waiters.notify();
  }

  /**
   * Every slot is held by work that ignores its abort: nothing can ever start again, so the run
   * stops (rule `zombies`) instead of hanging.
   */
  private checkZombieStall(): void {
    if (this.stopReason !== undefined || this.finished || !this.started) return;
    const slots = this.slots;
    if (slots.zombiesRunning < this.pacer.limit || slots.active !== 0) return;
    if (this.queues.waiting === 0 && this.intake.done) return;
    this.stop({ kind: 'stop_rule', rule: 'zombies' }, 'abort', {
      rule: 'zombies',
      message: `all ${this.pacer.limit} slots are held by attempts that ignore their abort`,
    });
  }

  private maybeFinish(): void {
    if (this.finished || !this.started || !this.intake.done || this.live > 0) return;
    if (this.slots.active > 0) return;
    this.finished = true;
    this.rateGate.clear();
    this.slots.clear();
    this.deadlineTimer?.();
    this.batch?.close();
    if (this.options.signal !== undefined)
      this.options.signal.removeEventListener('abort', this.signalListener!);
    const sourceError = this.intake.error;
    if (this.stopReason === undefined && sourceError !== undefined) {
      this.stopInfo = {
        rule: 'source_error',
        message: `task source failed: ${sourceError.message}`,
      };
    }
    const status: 'completed' | 'cancelled' | 'stopped' =
      this.stopReason?.kind === 'user'
        ? 'cancelled'
        : this.stopInfo !== undefined
          ? 'stopped'
          : 'completed';
    this.statusValue = status;
    const result: RunExecutionResult<I, O> = {
      runId: this.runId,
      status,
      stoppedBy: this.stopInfo,
      tasks: this.results,
      statistics: this.statistics(),
      startedAt: this.startedAt,
      finishedAt: this.clock.now(),
    };
    this.events.emit('done', result as RunExecutionResult);
    this.resolveResult!(result);
    this.waiters.notify();
  }

  /** Statistics so far (final once the run is done). */
  statistics(): RunStatistics {
    return this.tally.statistics(
      this.pacer.statistics(),
      this.meter.tokens,
      this.meter.cost,
      this.clock.now() - this.startedAt,
    );
  }
}
