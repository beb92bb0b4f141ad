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

import { type CancelTimer, type Clock, RealClock } from './clock.js';
import { checkDependencies } from './dag.js';
import { DeadlineQueue } from './deadlines.js';
import {
  CancelledError,
  classifyError,
  describeValue,
  type ErrorClassification,
  type ErrorInfo,
  InvalidOptionError,
  PausedError,
  StrideError,
  TimeoutError,
  toErrorInfo,
} from './errors.js';
import { LatencyHistogram } from './histogram.js';
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
  type TaskSpec,
  type TaskStatus,
  type TaskTransition,
  type TerminalStatus,
  type Usage,
} from './model.js';
import {
  backoffDelay,
  type ResolvedRetry,
  type RunOptions,
  resolveRetry,
  validateConcurrency,
  validateRunOptions,
} from './options.js';
import {
  type PaceChange,
  PaceController,
  type PaceSignal,
  type PaceState,
  paceSignalOf,
} from './pace.js';
import { Fifo, PriorityFifo } from './queue.js';
import { type RateLimiter, RateLimiterRegistry } from './rate.js';
import { type AbortKind, Attempt, specProblem, TaskRecord, type UsageSink } from './task.js';

/** Where tasks come from: an array, any iterable, or an async iterable (streamed, never all in memory). */
export type TaskSource<I> = Iterable<TaskSpec<I>> | AsyncIterable<TaskSpec<I>>;

type Listeners = { [K in keyof RunEvents]: RunEvents[K][] };

let runCounter = 0;

function generatedRunId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID?.() ?? `run-${Date.now().toString(36)}-${(runCounter++).toString(36)}`;
}

function isAsyncIterable<T>(x: unknown): x is AsyncIterable<T> {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === 'function'
  );
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
  private readonly target: Target<I, O>;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly retry: ResolvedRetry;
  private readonly options: RunOptions;
  private readonly limiters: RateLimiterRegistry;
  private readonly defaultKey: string;
  private readonly zombieGraceMs: number;
  private readonly retain: boolean;
  private readonly lookahead: number;
  /** The effective concurrency: the option's, or what the adaptive pace lowered it to. */
  private concurrencyLimit: number;
  /** The adaptive pace (undefined with `adaptive: false`) and its rate gate, if engaged. */
  private readonly paceController: PaceController | undefined;
  private paceBucket: RateLimiter | undefined;
  /** Refusals (429s) per task still running: they do not count against maxAttempts. */
  private readonly refusals = new Map<TaskRecord<I, O>, number>();

  private statusValue: RunStatus = 'running';
  private started = false;
  private finished = false;
  private readonly runController = new AbortController();
  private readonly listeners: Listeners = {
    transition: [],
    rateLimited: [],
    coolDown: [],
    zombie: [],
    usage: [],
    paused: [],
    resumed: [],
    concurrency: [],
    paceChanged: [],
    stopping: [],
    done: [],
  };
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  // Source
  private syncIterator: Iterator<TaskSpec<I>> | undefined;
  private asyncIterator: AsyncIterator<TaskSpec<I>> | undefined;
  private sourceDone = false;
  private filling = false;
  private seq = 0;

  // Queues and in-flight work
  private readonly ready = new PriorityFifo<TaskRecord<I, O>>();
  private readonly retryQueue = new Fifo<TaskRecord<I, O>>();
  private readonly backingOff = new Set<TaskRecord<I, O>>();
  private readonly inFlight = new Set<Attempt<I, O>>();
  private running = 0;
  private zombiesRunning = 0;
  private live = 0;
  private pumping = false;
  private rateTimer: CancelTimer | undefined;
  private rateTimerAt = Number.POSITIVE_INFINITY;
  private deadlineTimer: CancelTimer | undefined;
  private batchTimer: CancelTimer | undefined;
  private batchAdmitted = 0;
  private batchLive = 0;
  private batchGapDone = true;
  /** The journal's durability point (`gateSends`), and the attempts waiting for it. */
  private sendGate: (() => void) | undefined;
  private held: Attempt<I, O>[] = [];
  private releaseQueued = false;

  // Holds: the run is paused while any is held (`hold`); `pause()` is the user's.
  private readonly holdSet = new Set<HoldInfo>();
  private userHold: Hold | undefined;

  // Stop state
  private stopReason: CancelReason | undefined;
  private stopInfo: StopInfo | undefined;
  private consecutiveAuth = 0;
  private readonly signalListener: (() => void) | undefined;

  // Statistics
  private readonly counts: Record<TaskStatus, number> = {
    pending: 0,
    queued: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    timeout: 0,
    cancelled: 0,
    error: 0,
  };
  private total = 0;
  private attemptsStarted = 0;
  private retries = 0;
  private refused = 0;
  private interrupted = 0;
  private zombies = 0;
  private tokens = 0;
  private cost = 0;
  private startedAt = 0;
  private readonly latency = new LatencyHistogram();
  private readonly deadlines: DeadlineQueue<Attempt<I, O>>;
  private readonly results: TaskRecord<I, O>[] = [];
  private resultPromise: Promise<RunExecutionResult<I, O>> | undefined;
  private resolveResult: ((r: RunExecutionResult<I, O>) => void) | undefined;

  constructor(source: TaskSource<I>, target: Target<I, O>, options: RunOptions = {}) {
    validateRunOptions(options);
    if (typeof target !== 'object' || target === null || typeof target.execute !== 'function') {
      throw new InvalidOptionError('target', target, 'an object with an execute(task, ctx) method');
    }
    this.options = options;
    this.target = target;
    this.clock = options.clock ?? new RealClock();
    this.deadlines = new DeadlineQueue(this.clock, (att) => this.onTimeout(att));
    this.random = options.random ?? Math.random;
    this.retry = resolveRetry(options.retry);
    this.limiters = options.limiters ?? new RateLimiterRegistry(this.clock);
    this.defaultKey = target.key ?? 'default';
    this.zombieGraceMs = options.zombieGraceMs ?? 1000;
    this.retain = options.retainResults ?? true;
    this.concurrencyLimit = options.concurrency ?? 10;
    const adaptive = options.adaptive ?? true;
    this.paceController =
      adaptive === false
        ? undefined
        : new PaceController(
            this.clock,
            this.concurrencyLimit,
            adaptive === true ? {} : adaptive,
            options.rate?.perMinute,
          );
    this.lookahead = options.lookahead ?? Math.max(256, 4 * this.concurrencyLimit);
    this.runId = options.runId ?? generatedRunId();
    if (options.paused) {
      this.statusValue = 'paused';
      this.userHold = this.hold('user');
    }

    if (Array.isArray(source)) {
      this.syncIterator = source[Symbol.iterator]();
    } else if (isAsyncIterable<TaskSpec<I>>(source)) {
      this.asyncIterator = source[Symbol.asyncIterator]();
    } else if (
      source != null &&
      typeof (source as Iterable<TaskSpec<I>>)[Symbol.iterator] === 'function'
    ) {
      this.syncIterator = (source as Iterable<TaskSpec<I>>)[Symbol.iterator]();
    } else {
      throw new InvalidOptionError(
        'tasks',
        source,
        'an array, an iterable or an async iterable of tasks',
      );
    }
    // An array with priorities is admitted whole so they order the whole plan; without them it
    // is pulled like any iterator: records are created just in time, which keeps them in cache
    // and memory flat (bench S1/S4). Its length still gives progress a known total.
    if (Array.isArray(source)) {
      this.plannedTotal = source.length;
      this.admitWhole = source.some(
        (t: TaskSpec<I> | undefined) => t?.priority !== undefined && t.priority !== 0,
      );
      // A graph is checked whole before anything runs, and admitted whole: a dependency may
      // finish before its dependents would have been pulled.
      if (source.some((t: TaskSpec<I> | undefined) => (t?.dependsOn?.length ?? 0) > 0)) {
        checkDependencies(source);
        this.graph = { parked: new Set(), dependents: new Map(), ended: new Map() };
        this.admitWhole = true;
      }
    }
    if (options.signal !== undefined) {
      const signal = options.signal;
      this.signalListener = () =>
        this.cancel({ message: String(signal.reason ?? 'aborted by signal') });
    }
  }

  private admitWhole = false;
  private plannedTotal = 0;
  /**
   * Dependencies, when the tasks have any: tasks waiting on others (`parked`, still `pending`),
   * who waits on whom, and how every task ended (a dependency may end before its dependent is
   * admitted).
   */
  private graph:
    | {
        readonly parked: Set<TaskRecord<I, O>>;
        readonly dependents: Map<string, TaskRecord<I, O>[]>;
        readonly ended: Map<string, TerminalStatus>;
      }
    | undefined;

  // ---------------------------------------------------------------- public surface

  /** Current run state. */
  get status(): RunStatus {
    return this.statusValue;
  }

  /** Current concurrency limit: the effective one (see `pace`). */
  get concurrency(): number {
    return this.concurrencyLimit;
  }

  /** The pace now: the ceiling, the effective concurrency and the adapted rate. */
  get pace(): PaceState {
    return (
      this.paceController?.state ?? {
        adaptive: false,
        ceiling: this.concurrencyLimit,
        concurrency: this.concurrencyLimit,
        minConcurrency: this.concurrencyLimit,
        ratePerMinute: undefined,
      }
    );
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
    cost: number;
  } {
    const c = this.counts;
    return {
      total: Math.max(this.total, this.plannedTotal),
      byStatus: { ...c },
      running: this.running,
      zombiesRunning: this.zombiesRunning,
      settled: c.succeeded + c.failed + c.timeout + c.cancelled + c.error,
      attempts: this.attemptsStarted,
      tokens: this.tokens,
      cost: this.cost,
    };
  }

  /** Adds a listener; returns a function that removes it. Listeners run synchronously. */
  on<K extends keyof RunEvents>(event: K, listener: RunEvents[K]): () => void {
    const list = this.listeners[event] as RunEvents[K][];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
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
  hold(reason: string, options: { by?: string; abortInFlight?: boolean } = {}): Hold {
    const entry: HoldInfo = {
      reason,
      ...(options.by === undefined ? {} : { by: options.by }),
      since: this.clock.now(),
    };
    this.holdSet.add(entry);
    this.pauseNow(options);
    let released = false;
    return {
      reason,
      release: () => {
        if (released) return;
        released = true;
        this.holdSet.delete(entry);
        if (this.holdSet.size === 0) this.resumeNow();
      },
    };
  }

  /** Who holds the run paused, oldest first (empty when nobody does). */
  holds(): HoldInfo[] {
    return [...this.holdSet];
  }

  /**
   * Stops dispatch at once: the `user` hold (see `hold`). In-flight attempts finish (default),
   * or are aborted and their tasks re-queued with `abortInFlight` (those attempts do not spend
   * the retry budget).
   */
  pause(options: { abortInFlight?: boolean } = {}): void {
    if (this.userHold === undefined && !this.finished) {
      this.userHold = this.hold('user', options);
    } else {
      this.pauseNow(options);
    }
  }

  /**
   * Releases the `user` hold: dispatch resumes unless another owner still holds the run (a
   * graceful stop, backpressure; see `holds()`).
   */
  resume(): void {
    const hold = this.userHold;
    this.userHold = undefined;
    hold?.release();
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
    this.statusValue = this.running - this.zombiesRunning > 0 ? 'pausing' : 'paused';
    this.clearRateTimer();
    const abortInFlight = options.abortInFlight ?? false;
    if (abortInFlight) {
      for (const att of this.inFlight) {
        if (!att.decided) this.abortAttempt(att, 'pause', new PausedError());
      }
    }
    this.emit('paused', { at: this.clock.now(), abortInFlight });
    this.notify();
  }

  private resumeNow(): void {
    if (this.statusValue !== 'paused' && this.statusValue !== 'pausing') return;
    this.statusValue = 'running';
    this.emit('resumed', { at: this.clock.now() });
    this.refill();
    this.pump();
    this.maybeFinish();
    this.notify();
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
    const from = this.concurrencyLimit;
    const at = this.clock.now();
    const change = this.paceController?.setCeiling(n, at);
    this.concurrencyLimit = this.paceController?.limit ?? n;
    this.emit('concurrency', { from, to: this.concurrencyLimit, at });
    if (change !== undefined) this.emit('paceChanged', change);
    this.pump();
  }

  /**
   * Installs a durability point (the journal's, `attachJournal`): the attempts started in one
   * microtask turn are held, `commit` is called once, synchronously, and only then are they
   * sent. What `commit` makes durable thus holds the start of every attempt before its request
   * leaves, and the verdict that freed a slot before the slot is used again. Without a gate an
   * attempt is sent the moment it starts. One gate per run; `commit` must not throw. Returns a
   * function that removes the gate (held attempts are then sent at once).
   */
  gateSends(commit: () => void): () => void {
    if (this.sendGate !== undefined)
      throw new StrideError(
        'INVALID_STATE',
        'this run already has a send gate (one journal per run)',
      );
    this.sendGate = commit;
    return () => {
      if (this.sendGate === commit) this.sendGate = undefined;
    };
  }

  /** Resolves once `predicate` holds, checked after every state change. */
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ check: predicate, resolve }));
  }

  /** Resolves when no attempt is in flight (zombies aside). */
  onIdle(): Promise<void> {
    return this.waitFor(() => this.running - this.zombiesRunning === 0);
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
    try {
      while (this.statusValue === 'running' && this.running < this.concurrencyLimit) {
        if (this.options.ordered === true && (this.running > 0 || this.backingOff.size > 0)) break;
        if (this.ready.size + this.retryQueue.size < this.lookahead / 2) this.refill();
        const fromRetry = this.retryQueue.size > 0;
        const rec = fromRetry ? this.retryQueue.peek()! : this.ready.peek();
        if (rec === undefined) break;
        if (!fromRetry && this.options.batch !== undefined && !this.batchGateOpen()) break;
        const pace = this.paceBucket;
        if (pace !== undefined && !pace.tryAcquire()) {
          this.paceController!.waitedForRate();
          this.armRateTimer(pace, rec.rateKey, 1);
          break;
        }
        const bucket = rec.bucket;
        if (bucket !== undefined && !bucket.tryAcquire()) {
          pace?.refund(1);
          this.armRateTimer(bucket, rec.rateKey, 1);
          break;
        }
        const reserve = rec.tokenBucket === undefined ? 0 : this.tokenEstimate(rec.tokenBucket);
        if (reserve > 0 && !rec.tokenBucket!.tryAcquire(reserve)) {
          pace?.refund(1);
          bucket?.refund(1);
          this.armRateTimer(rec.tokenBucket!, rec.rateKey, reserve);
          break;
        }
        if (fromRetry) this.retryQueue.shift();
        else this.ready.shift();
        if (this.options.batch !== undefined && !rec.batched) {
          rec.batched = true;
          this.batchAdmitted++;
          this.batchLive++;
        }
        this.startAttempt(rec, reserve);
      }
    } finally {
      this.pumping = false;
    }
  }

  private startAttempt(rec: TaskRecord<I, O>, reservedTokens: number): void {
    const now = this.clock.now();
    rec.attempts++;
    this.attemptsStarted++;
    if (rec.retrying) {
      rec.retrying = false;
      this.retries++;
    }
    if (rec.startedAt === undefined) rec.startedAt = now;
    this.transition(rec, 'running', rec.attempts);
    if (this.statusValue !== 'running' || isTerminal(rec.status)) {
      // A listener paused or stopped the run between "chosen" and "started": nothing is sent.
      // Give back the tokens and the attempt; the task waits at the head of the retry queue.
      this.paceBucket?.refund(1);
      rec.bucket?.refund(1);
      if (reservedTokens > 0) rec.tokenBucket?.refund(reservedTokens);
      rec.attempts--;
      this.attemptsStarted--;
      if (isTerminal(rec.status)) return;
      if (this.stopReason !== undefined) {
        this.finish(rec, 'cancelled', undefined, this.stopReason);
        return;
      }
      this.retryQueue.push(rec);
      this.transition(rec, 'queued', rec.attempts, true);
      return;
    }
    const att = new Attempt<I, O>(this.sink, rec, rec.attempts, now);
    att.reservedTokens = reservedTokens;
    if (this.paceController !== undefined) {
      att.paceSeq = this.paceController.started(now);
      att.inFlightAtStart = this.running;
    }
    this.inFlight.add(att);
    this.running++;
    const timeout = rec.timeoutMs ?? this.options.timeoutMs;
    if (timeout !== undefined) {
      att.timeoutMs = timeout;
      this.deadlines.add(att, timeout);
    }
    if (this.sendGate !== undefined) {
      // Held until the gate ran: the journal commits this start (and every verdict before it,
      // so the slot's last answer) before the request leaves. One commit per microtask turn.
      this.held.push(att);
      if (!this.releaseQueued) {
        this.releaseQueued = true;
        queueMicrotask(this.releaseHeld);
      }
      return;
    }
    this.send(att);
  }

  private send(att: Attempt<I, O>): void {
    let promise: Promise<O>;
    try {
      promise = this.target.execute(att.rec, att.context);
      if (promise === null || typeof (promise as Promise<O>)?.then !== 'function')
        promise = Promise.resolve(promise);
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (value) => this.onSettled(att, true, value),
      (err: unknown) => this.onSettled(att, false, err),
    );
  }

  /**
   * Runs the gate once for every attempt held since the last turn, then sends them. An attempt
   * aborted while held (a cancel, a stop rule or a pause with `abortInFlight` in the same turn)
   * never reached the target: it is withdrawn, not sent.
   */
  private readonly releaseHeld = (): void => {
    this.releaseQueued = false;
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    const commit = this.sendGate;
    if (commit !== undefined) {
      try {
        commit();
      } catch (err) {
        // The gate's owner handles its own failures (the journal cancels the run): a throw is a
        // bug, surfaced loudly like a throwing listener's.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    let withdrawn = false;
    for (const att of held) {
      if (att.settled) continue;
      if (att.decided) this.onSettled(att, false, att.abortReason);
      else if (att.abortReason !== undefined) {
        this.withdraw(att);
        withdrawn = true;
      } else this.send(att);
    }
    if (withdrawn) this.afterChange();
  };

  /**
   * A held attempt aborted before it was sent: like a start a listener withdrew, it is no
   * attempt (its tokens and its number are given back). A pause re-queues the task; a stop
   * ends it cancelled.
   */
  private withdraw(att: Attempt<I, O>): void {
    const rec = att.rec;
    att.settled = true;
    att.decided = true;
    if (att.timeoutMs !== undefined) this.deadlines.remove(att);
    att.zombieCancel?.();
    att.zombieCancel = undefined;
    this.inFlight.delete(att);
    this.running--;
    this.paceBucket?.refund(1);
    rec.bucket?.refund(1);
    if (att.reservedTokens > 0) rec.tokenBucket?.refund(att.reservedTokens);
    rec.attempts--;
    this.attemptsStarted--;
    if (this.statusValue === 'pausing' && this.running - this.zombiesRunning === 0)
      this.statusValue = 'paused';
    if (isTerminal(rec.status)) return;
    if (att.abortKind === 'pause' && this.stopReason === undefined) {
      this.retryQueue.push(rec);
      this.transition(rec, 'queued', rec.attempts, true);
    } else {
      this.finish(rec, 'cancelled', undefined, this.stopReason ?? { kind: 'user' });
    }
  }

  private onTimeout(att: Attempt<I, O>): void {
    const timeoutMs = att.timeoutMs;
    if (att.settled || att.decided) return;
    if (att.abortKind === 'pause') {
      // Aborted by a pause and still running at its timeout: still the pause's interruption,
      // not a failure of the task.
      att.decided = true;
      this.requeueInterrupted(att.rec);
      this.afterChange();
      return;
    }
    const err = new TimeoutError(
      `attempt ${att.attempt} of task ${att.rec.id} timed out after ${timeoutMs} ms`,
    );
    this.abortAttempt(att, 'timeout', err);
    att.decided = true;
    this.latency.record(this.clock.now() - att.startedAt);
    this.attemptFailed(att.rec, err, att);
    this.afterChange();
  }

  private onSettled(att: Attempt<I, O>, ok: boolean, value: unknown): void {
    if (att.settled) return;
    att.settled = true;
    if (att.timeoutMs !== undefined) this.deadlines.remove(att);
    att.zombieCancel?.();
    this.inFlight.delete(att);
    this.running--;
    this.reconcileTokens(att);
    if (att.zombie) this.zombiesRunning--;
    if (!att.decided) {
      att.decided = true;
      this.latency.record(this.clock.now() - att.startedAt);
      const rec = att.rec;
      if (ok) {
        this.consecutiveAuth = 0;
        rec.output = value as O;
        this.paceAnswered(att);
        this.finish(rec, 'succeeded');
      } else if (att.abortKind === 'pause') {
        this.requeueInterrupted(rec);
      } else if (att.abortKind === 'cancel') {
        this.finish(rec, 'cancelled', undefined, this.stopReason ?? { kind: 'user' });
      } else {
        this.attemptFailed(rec, value, att);
      }
    }
    if (this.statusValue === 'pausing' && this.running - this.zombiesRunning === 0)
      this.statusValue = 'paused';
    this.afterChange();
  }

  private abortAttempt(att: Attempt<I, O>, kind: AbortKind, reason: unknown): void {
    const first = att.abortReason === undefined;
    att.abort(kind, reason);
    if (first && !att.settled) {
      att.zombieCancel = this.clock.schedule(this.zombieGraceMs, () => this.onZombie(att));
    }
  }

  private onZombie(att: Attempt<I, O>): void {
    att.zombieCancel = undefined;
    if (att.settled) return;
    att.zombie = true;
    this.zombies++;
    this.zombiesRunning++;
    this.emit('zombie', { taskId: att.rec.id, attempt: att.attempt, at: this.clock.now() });
    // The work ignores its abort; decide its task now so the run is not held hostage. The slot
    // stays taken until the promise settles (maybe never).
    if (!att.decided) {
      att.decided = true;
      if (att.abortKind === 'pause') this.requeueInterrupted(att.rec);
      else this.finish(att.rec, 'cancelled', undefined, this.stopReason ?? { kind: 'user' });
    }
    if (this.statusValue === 'pausing' && this.running - this.zombiesRunning === 0)
      this.statusValue = 'paused';
    this.afterChange();
  }

  private requeueInterrupted(rec: TaskRecord<I, O>): void {
    rec.interrupted++;
    this.interrupted++;
    if (this.stopReason !== undefined) {
      this.finish(rec, 'cancelled', undefined, this.stopReason);
      return;
    }
    this.retryQueue.push(rec);
    this.transition(rec, 'queued', rec.attempts, true);
  }

  /**
   * Tells the adaptive pace what a failed attempt means: a refusal without Retry-After lowers
   * the pace (returned, so the retry knows to wait for the pace instead of a timer); a wrong
   * answer is still an answer.
   */
  private paceSignal(
    err: unknown,
    cls: ErrorClassification,
    att: Attempt<I, O> | undefined,
  ): PaceSignal | undefined {
    const pace = this.paceController;
    if (pace === undefined || att === undefined) return undefined;
    const signal = paceSignalOf(err, cls, att.limitsReported);
    if (signal !== undefined) {
      this.applyPace(pace.refused(att.paceSeq, att.inFlightAtStart, signal, this.clock.now()));
    } else if (cls.code === 'TASK_FAILED') this.paceAnswered(att);
    return signal;
  }

  private paceAnswered(att: Attempt<I, O>): void {
    const pace = this.paceController;
    if (pace !== undefined)
      this.applyPace(pace.answered(att.paceSeq, att.inFlightAtStart, this.clock.now()));
  }

  private applyPace(change: PaceChange | undefined): void {
    if (change === undefined) return;
    this.paceBucket = this.paceController!.bucket;
    const { from, to } = change.concurrency;
    this.concurrencyLimit = to;
    if (from !== to) this.emit('concurrency', { from, to, at: change.at });
    this.emit('paceChanged', change);
  }

  private attemptFailed(rec: TaskRecord<I, O>, err: unknown, att?: Attempt<I, O>): void {
    const cls = classifyError(err);
    if (cls.auth) this.consecutiveAuth++;
    else this.consecutiveAuth = 0;
    // A 429 (not a spent quota) was refused before any work: it is no failed attempt of the
    // case, so it does not spend maxAttempts; maxRateLimitRetries bounds it instead.
    let refusals = this.refusals.get(rec) ?? 0;
    if (cls.rateLimited) {
      this.refusals.set(rec, ++refusals);
      this.refused++;
    }
    const spent = rec.attempts - rec.interrupted - refusals;
    const canRetry =
      cls.retryable &&
      spent < rec.maxAttempts &&
      refusals <= this.retry.maxRateLimitRetries &&
      this.stopReason === undefined;
    const signal = this.paceSignal(err, cls, att);
    let delay =
      cls.retryAfterMs ??
      backoffDelay(this.retry, Math.max(1, cls.rateLimited ? refusals : spent), this.random);
    // A bare 429 under adaptive pace: the lowered pace is the wait, not a timer.
    if (signal === 'rate_limited') delay = 0;
    else if (cls.rateLimited && rec.bucket !== undefined) {
      rec.bucket.coolDown(delay);
      this.emit('coolDown', { key: rec.rateKey, ms: delay, at: this.clock.now() });
    }
    const info = toErrorInfo(err, cls.code);
    if (cls.rateLimited && refusals > this.retry.maxRateLimitRetries)
      info.message += ` (refused ${refusals} times; the ${this.retry.maxRateLimitRetries} rate-limit retries are spent)`;
    if (!canRetry) {
      // A failed verdict may still carry what the target answered (TaskFailedError's output).
      const output = (err as { output?: unknown } | null)?.output;
      if (output !== undefined) rec.output = output as O;
      this.finish(rec, cls.status, info);
      return;
    }
    rec.retrying = true;
    rec.error = info;
    this.backingOff.add(rec);
    // A zero delay still goes through a timer: the retry's `pending` and `queued` stay two
    // transitions, and it waits behind the answers of this turn.
    rec.backoffCancel = this.clock.schedule(delay, () => {
      rec.backoffCancel = undefined;
      this.backingOff.delete(rec);
      this.retryQueue.push(rec);
      this.transition(rec, 'queued', rec.attempts, true);
      this.afterChange();
    });
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
    if (this.refusals.size > 0) this.refusals.delete(rec);
    rec.finishedAt = now;
    rec.executionTimeMs = rec.startedAt === undefined ? 0 : now - rec.startedAt;
    if (status === 'succeeded') rec.error = undefined;
    else if (error !== undefined) rec.error = error;
    if (status === 'cancelled') rec.reason = reason ?? { kind: 'user' };
    this.live--;
    if (rec.batched) this.batchLive--;
    if (this.retain) this.results.push(rec);
    this.transition(rec, status, rec.attempts);
    if (this.stopReason === undefined) this.checkStopRules();
    if (this.graph !== undefined) this.settleDependents(rec, status);
  }

  private checkStopRules(): void {
    const s = this.options.stop;
    const c = this.counts;
    const failures = c.failed + c.timeout + c.error;
    const authLimit = s?.maxConsecutiveAuthErrors ?? 3;
    let info: StopInfo | undefined;
    if (authLimit > 0 && this.consecutiveAuth >= authLimit) {
      info = {
        rule: 'auth_errors',
        message: `${this.consecutiveAuth} authentication errors in a row`,
      };
    } else if (s?.failFast === true && failures > 0) {
      info = { rule: 'fail_fast', message: 'a task failed and fail_fast is set' };
    } else if (s === undefined) {
      return;
    } else if (s.maxFailures !== undefined && s.maxFailures >= 1 && failures >= s.maxFailures) {
      info = {
        rule: 'max_failures',
        message: `${failures} failures reached max_failures ${s.maxFailures}`,
      };
    } else if (s.maxFailures !== undefined && s.maxFailures < 1) {
      const settled = failures + c.succeeded;
      if (settled >= (s.minSettled ?? 10) && failures / settled > s.maxFailures) {
        info = {
          rule: 'max_failures',
          message: `${failures} of ${settled} settled tasks failed, more than ${s.maxFailures * 100}%`,
        };
      }
    }
    if (info === undefined && s !== undefined) {
      if (s.maxCost !== undefined && this.cost >= s.maxCost) {
        info = { rule: 'max_cost', message: `cost ${this.cost} reached max_cost ${s.maxCost}` };
      } else if (s.maxTokens !== undefined && this.tokens >= s.maxTokens) {
        info = {
          rule: 'max_tokens',
          message: `${this.tokens} tokens reached max_tokens ${s.maxTokens}`,
        };
      }
    }
    if (info !== undefined)
      this.stop({ kind: 'stop_rule', rule: info.rule }, s?.inFlight ?? 'abort', info);
  }

  /** Stops the run: the shared path of cancel, stop rules and the deadline. */
  private stop(reason: CancelReason, mode: 'abort' | 'drain', info: StopInfo | undefined): void {
    if (this.stopReason !== undefined || this.finished) return;
    this.stopReason = reason;
    this.stopInfo = info;
    this.statusValue = 'stopping';
    this.emit('stopping', { at: this.clock.now(), reason });
    this.clearRateTimer();
    this.batchTimer?.();
    this.batchTimer = undefined;
    if (reason.kind !== 'deadline') {
      this.deadlineTimer?.();
      this.deadlineTimer = undefined;
    }
    const error =
      reason.kind === 'user'
        ? new CancelledError(reason.message ?? 'run cancelled')
        : new CancelledError(info?.message ?? 'run stopped');
    if (mode === 'abort') this.runController.abort(error);
    for (const rec of this.backingOff) {
      rec.backoffCancel?.();
      rec.backoffCancel = undefined;
      this.finish(rec, 'cancelled', undefined, reason);
    }
    this.backingOff.clear();
    for (const rec of this.retryQueue.drain()) this.finish(rec, 'cancelled', undefined, reason);
    for (const rec of this.ready.drain()) this.finish(rec, 'cancelled', undefined, reason);
    if (this.graph !== undefined) {
      const parked = [...this.graph.parked];
      this.graph.parked.clear();
      for (const rec of parked) this.finish(rec, 'cancelled', undefined, reason);
    }
    if (mode === 'abort') {
      for (const att of this.inFlight) {
        if (!att.decided) this.abortAttempt(att, 'cancel', error);
      }
    }
    // Every task of the plan gets its terminal state, also those never pulled from the source.
    this.drainSourceCancelled();
    this.afterChange();
  }

  private drainSourceCancelled(): void {
    if (this.syncIterator !== undefined) {
      while (!this.sourceDone) this.pullOneSync();
    } else if (this.asyncIterator !== undefined) {
      this.fillAsync();
    }
  }

  // ---------------------------------------------------------------- source

  /** Pulls tasks from the source into the ready queue, up to the lookahead. */
  private refill(): void {
    if (this.sourceDone || !this.started) return;
    if (this.syncIterator !== undefined) {
      const limit = this.admitWhole ? Number.POSITIVE_INFINITY : this.lookahead;
      while (!this.sourceDone && this.ready.size < limit) this.pullOneSync();
    } else {
      this.fillAsync();
    }
  }

  private pullOneSync(): void {
    let step: IteratorResult<TaskSpec<I>>;
    try {
      step = this.syncIterator!.next();
    } catch (err) {
      this.sourceFailed(err);
      return;
    }
    if (step.done) {
      this.sourceDone = true;
      return;
    }
    this.admit(step.value);
  }

  private fillAsync(): void {
    if (this.filling || this.sourceDone) return;
    this.filling = true;
    const it = this.asyncIterator!;
    const loop = async (): Promise<void> => {
      try {
        while (
          !this.sourceDone &&
          (this.stopReason !== undefined || this.ready.size < this.lookahead)
        ) {
          const step = await it.next();
          if (step.done) {
            this.sourceDone = true;
            break;
          }
          this.admit(step.value);
          if (this.stopReason === undefined) this.pump();
        }
      } catch (err) {
        this.sourceFailed(err);
      } finally {
        this.filling = false;
      }
      this.afterChange();
    };
    void loop();
  }

  /**
   * A source that throws (a bad line deep in a case file) ends the plan there: every task read
   * before it still runs, nothing after it exists, and the run ends `stopped` by `source_error`.
   */
  private sourceFailed(err: unknown): void {
    this.sourceDone = true;
    this.sourceError = toErrorInfo(err, 'CASES_INVALID');
  }

  private sourceError: ErrorInfo | undefined;

  /** The error that ended the task source early, if any. */
  get sourceFailure(): ErrorInfo | undefined {
    return this.sourceError;
  }

  private admit(spec: TaskSpec<I>): void {
    this.seq++;
    const problem = specProblem(spec);
    const id =
      (problem === undefined || problem.field !== 'id' ? spec?.id : undefined) ??
      `task-${this.seq}`;
    const key = (problem === undefined ? spec.rateKey : undefined) ?? this.defaultKey;
    const bucket =
      this.options.rate !== undefined
        ? this.limiters.get(key, this.options.rate)
        : this.limiters.peek(key);
    const tokenBucket =
      this.options.tokens !== undefined
        ? this.limiters.get(`tokens:${key}`, {
            perMinute: this.options.tokens.perMinute,
            burst: this.options.tokens.burst ?? this.options.tokens.perMinute,
          })
        : undefined;
    const valid = problem === undefined;
    const rec = new TaskRecord<I, O>(
      id,
      spec?.input as I,
      (valid ? spec.priority : undefined) ?? 0,
      valid ? spec.timeoutMs : undefined,
      (valid ? spec.maxAttempts : undefined) ?? this.retry.maxAttempts,
      bucket,
      tokenBucket,
      key,
      (valid ? spec.attemptsBefore : undefined) ?? 0,
    );
    if (valid) rec.interrupted = spec.interruptedBefore ?? 0;
    this.total++;
    this.live++;
    this.counts.pending++;
    if (this.stopReason !== undefined) {
      this.finish(rec, 'cancelled', undefined, this.stopReason);
      return;
    }
    if (problem !== undefined) {
      // A malformed task is that task's error, not the run's: the rest of the plan still runs.
      this.finish(rec, 'error', {
        code: 'VALIDATION_ERROR',
        name: 'ValidationError',
        message: `task ${id}: invalid ${problem.field}: ${describeValue(problem.value)} (expected ${problem.expected})`,
      });
      return;
    }
    const spent = rec.attempts - rec.interrupted;
    if (spent >= rec.maxAttempts) {
      // A resumed task whose budget an earlier session spent, the last attempt with no known
      // outcome (it was in flight when the process died): one more would go past maxAttempts.
      this.finish(rec, 'error', {
        code: 'ATTEMPTS_EXHAUSTED',
        name: 'AttemptsExhaustedError',
        message: `task ${id}: ${spent} of ${rec.maxAttempts} attempts were spent before this run, the last with no known outcome: none is left`,
      });
      return;
    }
    const deps = spec.dependsOn;
    if (deps !== undefined && deps.length > 0) {
      if (this.graph === undefined) {
        this.finish(rec, 'error', {
          code: 'VALIDATION_ERROR',
          name: 'ValidationError',
          message: `task ${id}: dependsOn needs the tasks as an array, so the graph can be checked before anything runs`,
        });
        return;
      }
      let waiting = 0;
      for (const d of deps) {
        const ended = this.graph.ended.get(d);
        if (ended === 'succeeded') continue;
        if (ended !== undefined) {
          this.finish(rec, 'cancelled', undefined, { kind: 'dependency_failed', dependency: d });
          return;
        }
        waiting++;
      }
      if (waiting > 0) {
        rec.waitingOn = waiting;
        this.graph.parked.add(rec);
        for (const d of deps) {
          if (this.graph.ended.has(d)) continue;
          const list = this.graph.dependents.get(d);
          if (list === undefined) this.graph.dependents.set(d, [rec]);
          else list.push(rec);
        }
        return;
      }
    }
    // State first, event second: a listener that cancels must find the task in its queue.
    this.ready.push(rec, rec.priority);
    this.transition(rec, 'queued', rec.attempts, false);
  }

  /** A task ended: its dependents are queued (all their dependencies succeeded) or cancelled. */
  private settleDependents(rec: TaskRecord<I, O>, status: TerminalStatus): void {
    const graph = this.graph!;
    graph.ended.set(rec.id, status);
    const waiting = graph.dependents.get(rec.id);
    if (waiting === undefined) return;
    graph.dependents.delete(rec.id);
    for (const d of waiting) {
      if (isTerminal(d.status)) continue;
      if (status !== 'succeeded') {
        graph.parked.delete(d);
        // A run being stopped cancels for its own reason: the dependency did not fail.
        this.finish(
          d,
          'cancelled',
          undefined,
          this.stopReason ?? { kind: 'dependency_failed', dependency: rec.id },
        );
      } else if (--d.waitingOn === 0) {
        graph.parked.delete(d);
        if (this.stopReason !== undefined) {
          this.finish(d, 'cancelled', undefined, this.stopReason);
        } else {
          this.ready.push(d, d.priority);
          this.transition(d, 'queued', d.attempts, false);
        }
      }
    }
  }

  // ---------------------------------------------------------------- waits

  private batchGateOpen(): boolean {
    const batch = this.options.batch!;
    if (this.batchAdmitted < batch.size) return this.batchGapDone;
    if (this.batchLive > 0) return false;
    // The batch is complete: start the gap, then open the next batch.
    this.batchAdmitted = 0;
    const gap = batch.backoffMs ?? 0;
    if (gap === 0) return true;
    this.batchGapDone = false;
    this.batchTimer = this.clock.schedule(gap, () => {
      this.batchTimer = undefined;
      this.batchGapDone = true;
      this.afterChange();
    });
    return false;
  }

  private armRateTimer(bucket: RateLimiter, key: string, tokens: number): void {
    const wait = bucket.msUntilAvailable(tokens);
    const at = this.clock.now() + wait;
    if (this.rateTimer !== undefined && this.rateTimerAt <= at) return;
    this.rateTimer?.();
    this.rateTimerAt = at;
    this.emit('rateLimited', { key, waitMs: wait, at: this.clock.now() });
    this.rateTimer = this.clock.schedule(wait, () => {
      this.rateTimer = undefined;
      this.rateTimerAt = Number.POSITIVE_INFINITY;
      this.afterChange();
    });
  }

  private clearRateTimer(): void {
    this.rateTimer?.();
    this.rateTimer = undefined;
    this.rateTimerAt = Number.POSITIVE_INFINITY;
  }

  // ---------------------------------------------------------------- bookkeeping

  /**
   * Tokens to reserve for the next attempt: the configured estimate until usage is known, then
   * the running mean of reported usage; never more than the bucket can ever hold.
   */
  private tokenEstimate(bucket: RateLimiter): number {
    const budget = this.options.tokens!;
    const mean =
      this.reportedAttempts > 0 ? this.reportedTokenSum / this.reportedAttempts : undefined;
    return Math.min(bucket.burst, Math.max(1, Math.round(mean ?? budget.estimate ?? 500)));
  }

  /** Settles a reservation: charge an underestimate (as debt), refund an overestimate. */
  private reconcileTokens(att: Attempt<I, O>): void {
    const bucket = att.rec.tokenBucket;
    if (bucket === undefined || att.reservedTokens === 0) return;
    // A target that reports nothing keeps its estimate charged: unknown is not free.
    if (att.reportedTokens === undefined) return;
    this.reportedTokenSum += att.reportedTokens;
    this.reportedAttempts++;
    const diff = att.reportedTokens - att.reservedTokens;
    if (diff > 0) bucket.forceTake(diff);
    else if (diff < 0) bucket.refund(-diff);
  }

  private reportedTokenSum = 0;
  private reportedAttempts = 0;

  /** What an attempt's context reports to (not part of the Run's public surface). */
  private readonly sink: UsageSink<I, O> = {
    addUsage: (att, usage) => this.addUsage(att, usage),
    syncLimits: (att, limits) => this.syncLimits(att, limits),
  };

  /** Called by an attempt's `reportLimits`. */
  private syncLimits(att: Attempt<I, O>, limits: RateLimitSnapshot): void {
    att.limitsReported = true;
    const rec = att.rec;
    const key = rec.rateKey;
    const cool = (bucket: RateLimiter | undefined, ms: number | undefined, name: string) => {
      if (bucket === undefined || ms === undefined || !(ms > 0)) return;
      bucket.coolDown(ms);
      this.emit('coolDown', { key: name, ms, at: this.clock.now() });
    };
    if (limits.remainingRequests !== undefined)
      rec.bucket?.clampAvailable(limits.remainingRequests);
    if (limits.remainingRequests === 0) cool(rec.bucket, limits.resetRequestsMs, key);
    if (limits.remainingTokens !== undefined) {
      rec.tokenBucket?.clampAvailable(limits.remainingTokens);
      if (limits.remainingTokens === 0)
        cool(rec.tokenBucket, limits.resetTokensMs, `tokens:${key}`);
    }
  }

  /** Called by an attempt's `reportUsage`. */
  private addUsage(att: Attempt<I, O>, usage: Partial<Usage>): void {
    const tokens = usage.tokens ?? 0;
    const cost = usage.cost ?? 0;
    if (!Number.isFinite(tokens) || tokens < 0)
      throw new InvalidOptionError('usage.tokens', tokens, 'a number >= 0');
    if (!Number.isFinite(cost) || cost < 0)
      throw new InvalidOptionError('usage.cost', cost, 'a number >= 0');
    att.reportedTokens = (att.reportedTokens ?? 0) + tokens;
    att.rec.usage.tokens += tokens;
    att.rec.usage.cost += cost;
    this.tokens += tokens;
    this.cost += cost;
    this.emit('usage', { taskId: att.rec.id, attempt: att.attempt, tokens, cost });
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
    const listeners = this.listeners.transition;
    if (listeners.length === 0) return;
    // Every literal is written out in full: a spread (`{ ...base, to }`) takes V8 off its
    // fast path and cost more than the rest of a task's bookkeeping (bench S1).
    const taskId = rec.id;
    const at = this.clock.now();
    let event: TaskTransition;
    switch (to) {
      case 'queued':
        event = { taskId, from, at, attempt, to, retry };
        break;
      case 'pending':
        event = { taskId, from, at, attempt, to, retryInMs, error: error! };
        break;
      case 'running':
        event = { taskId, from, at, attempt, to };
        break;
      case 'succeeded':
        event = { taskId, from, at, attempt, to, result: rec };
        break;
      case 'cancelled':
        event = { taskId, from, at, attempt, to, reason: rec.reason!, result: rec };
        break;
      default:
        event = { taskId, from, at, attempt, to, error: rec.error!, result: rec };
    }
    this.dispatch(listeners, event);
  }

  private emit<K extends keyof RunEvents>(event: K, payload: Parameters<RunEvents[K]>[0]): void {
    const list = this.listeners[event];
    if (list.length > 0) this.dispatch(list as ((p: typeof payload) => void)[], payload);
  }

  /**
   * Delivers events in the order they happened. A listener that changes the run (cancel, pause)
   * causes new events while others still wait for the current one: those are queued, never
   * delivered re-entrantly, so every listener sees a task's transitions in order.
   */
  private dispatch<P>(list: ((p: P) => void)[], payload: P): void {
    if (this.dispatching) {
      this.eventQueue.push(() => this.deliver(list, payload));
      return;
    }
    this.dispatching = true;
    try {
      this.deliver(list, payload);
      while (this.eventQueue.length > 0) this.eventQueue.shift()!();
    } finally {
      this.dispatching = false;
    }
  }

  private dispatching = false;
  private readonly eventQueue: (() => void)[] = [];

  private deliver<P>(list: ((p: P) => void)[], payload: P): void {
    for (const fn of list.length === 1 ? list : [...list]) {
      try {
        fn(payload);
      } catch (err) {
        // A throwing listener is a bug in the caller's code: surface it loudly, but never let it
        // corrupt the scheduler's bookkeeping halfway through a transition.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  private afterChange(): void {
    this.checkZombieStall();
    this.pump();
    this.maybeFinish();
    this.notify();
  }

  /**
   * Every slot is held by work that ignores its abort: nothing can ever start again, so the run
   * stops (rule `zombies`) instead of hanging.
   */
  private checkZombieStall(): void {
    if (this.stopReason !== undefined || this.finished || !this.started) return;
    if (this.zombiesRunning < this.concurrencyLimit || this.running !== this.zombiesRunning) return;
    const waiting =
      this.ready.size + this.retryQueue.size + this.backingOff.size > 0 || !this.sourceDone;
    if (!waiting) return;
    this.stop({ kind: 'stop_rule', rule: 'zombies' }, 'abort', {
      rule: 'zombies',
      message: `all ${this.concurrencyLimit} slots are held by attempts that ignore their abort`,
    });
  }

  private notify(): void {
    if (this.waiters.length === 0) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (w.check()) w.resolve();
      else this.waiters.push(w);
    }
  }

  private maybeFinish(): void {
    if (this.finished || !this.started || !this.sourceDone || this.live > 0) return;
    if (this.running - this.zombiesRunning > 0) return;
    this.finished = true;
    this.clearRateTimer();
    this.deadlines.clear();
    this.deadlineTimer?.();
    this.batchTimer?.();
    if (this.options.signal !== undefined)
      this.options.signal.removeEventListener('abort', this.signalListener!);
    if (this.stopReason === undefined && this.sourceError !== undefined) {
      this.stopInfo = {
        rule: 'source_error',
        message: `task source failed: ${this.sourceError.message}`,
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
    this.emit('done', result as RunExecutionResult);
    this.resolveResult!(result);
    this.notify();
  }

  /** Statistics so far (final once the run is done). */
  statistics(): RunStatistics {
    const c = this.counts;
    const settled = c.succeeded + c.failed + c.timeout + c.error;
    return {
      totalTasks: this.total,
      byStatus: { ...c },
      succeededTasks: c.succeeded,
      failedTasks: c.failed,
      timeoutTasks: c.timeout,
      errorTasks: c.error,
      cancelledTasks: c.cancelled,
      attempts: this.attemptsStarted,
      retries: this.retries,
      refused: this.refused,
      ...(this.paceController === undefined ? {} : { pace: this.paceController.statistics() }),
      interrupted: this.interrupted,
      zombies: this.zombies,
      tokens: this.tokens,
      cost: this.cost,
      wallTimeMs: this.clock.now() - this.startedAt,
      latencyMs: this.latency.summary(),
      successRate: settled === 0 ? 0 : c.succeeded / settled,
    };
  }
}
