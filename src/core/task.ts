/**
 * A task's live record and one attempt of it: the state the run loop mutates. Kept apart from the
 * loop so run.ts reads as the scheduling policy alone.
 */

import type { CancelTimer } from './clock.js';
import type { DeadlineCountdown, DeadlineEntry, DeadlineList } from './deadlines.js';
import type { ErrorInfo } from './errors.js';
import type {
  AttemptContext,
  CancelReason,
  RateLimitSnapshot,
  TaskResult,
  TaskSpec,
  TaskStatus,
  TaskView,
  Usage,
} from './model.js';
import type { RateLimiter } from './rate.js';

/** Receives usage reported through an attempt's context. */
export interface UsageSink<I, O> {
  addUsage(att: Attempt<I, O>, usage: Partial<Usage>): void;
  syncLimits(att: Attempt<I, O>, limits: RateLimitSnapshot): void;
  releaseSlot(att: Attempt<I, O>): void;
}

/**
 * A task's live record. It becomes the task's TaskResult when terminal (no copy), so its own
 * enumerable fields are exactly TaskResult's: the engine's bookkeeping (rate buckets, budget,
 * backoff timer, batch and dependency state) lives in ES private fields behind accessors, and
 * `JSON.stringify(result)` or `structuredClone(result)` give the documented fields only.
 */
export class TaskRecord<I, O> implements TaskResult<I, O>, TaskView<I> {
  status: TaskStatus = 'pending';
  attempts: number;
  output: O | undefined = undefined;
  error: ErrorInfo | undefined = undefined;
  reason: CancelReason | undefined = undefined;
  usage: Usage = { tokens: 0, cost: 0 };
  startedAt: number | undefined = undefined;
  finishedAt: number | undefined = undefined;
  executionTimeMs = 0;

  #interrupted = 0;
  #retrying = false;
  #batched = false;
  #waitingOn = 0;
  #backoffCancel: CancelTimer | undefined = undefined;
  readonly #timeoutMs: number | undefined;
  readonly #maxAttempts: number;
  readonly #bucket: RateLimiter | undefined;
  readonly #tokenBucket: RateLimiter | undefined;
  readonly #rateKey: string;

  constructor(
    readonly id: string,
    readonly input: I,
    readonly priority: number,
    timeoutMs: number | undefined,
    maxAttempts: number,
    bucket: RateLimiter | undefined,
    tokenBucket: RateLimiter | undefined,
    rateKey: string,
    attemptsBefore: number,
  ) {
    this.attempts = attemptsBefore;
    this.#timeoutMs = timeoutMs;
    this.#maxAttempts = maxAttempts;
    this.#bucket = bucket;
    this.#tokenBucket = tokenBucket;
    this.#rateKey = rateKey;
  }

  /** Attempts aborted by pause; they do not spend the retry budget. */
  get interrupted(): number {
    return this.#interrupted;
  }
  set interrupted(n: number) {
    this.#interrupted = n;
  }
  /** A retry is waiting in backoff or in the retry queue. */
  get retrying(): boolean {
    return this.#retrying;
  }
  set retrying(v: boolean) {
    this.#retrying = v;
  }
  /** Admitted into the current batch (batch mode). */
  get batched(): boolean {
    return this.#batched;
  }
  set batched(v: boolean) {
    this.#batched = v;
  }
  /** Dependencies that have not succeeded yet (`TaskSpec.dependsOn`). */
  get waitingOn(): number {
    return this.#waitingOn;
  }
  set waitingOn(n: number) {
    this.#waitingOn = n;
  }
  get backoffCancel(): CancelTimer | undefined {
    return this.#backoffCancel;
  }
  set backoffCancel(c: CancelTimer | undefined) {
    this.#backoffCancel = c;
  }
  get timeoutMs(): number | undefined {
    return this.#timeoutMs;
  }
  get maxAttempts(): number {
    return this.#maxAttempts;
  }
  get bucket(): RateLimiter | undefined {
    return this.#bucket;
  }
  get tokenBucket(): RateLimiter | undefined {
    return this.#tokenBucket;
  }
  /** The task's rate bucket key (TaskView). */
  get rateKey(): string {
    return this.#rateKey;
  }
}

export type AbortKind = 'timeout' | 'cancel' | 'pause';

/**
 * What a target receives as its AttemptContext: the documented fields and nothing of the
 * engine's (no slot, deadline or abort bookkeeping a target could read or break).
 */
class AttemptContextView<I, O> implements AttemptContext {
  readonly #att: Attempt<I, O>;
  constructor(att: Attempt<I, O>) {
    this.#att = att;
  }
  get signal(): AbortSignal {
    return this.#att.signal;
  }
  get attempt(): number {
    return this.#att.attempt;
  }
  get taskId(): string {
    return this.#att.rec.id;
  }
  reportUsage(usage: Partial<Usage>): void {
    this.#att.reportUsage(usage);
  }
  reportLimits(limits: RateLimitSnapshot): void {
    this.#att.reportLimits(limits);
  }
  holdTimeout(): () => void {
    return this.#att.holdTimeout();
  }
  releaseSlot(): void {
    this.#att.releaseSlot();
  }
}

/** One attempt: the state the run loop keeps for it. Targets see only its `context`. */
export class Attempt<I, O> implements AttemptContext, DeadlineEntry {
  /** The narrow view handed to the target. */
  readonly context: AttemptContext = new AttemptContextView(this);
  private controller: AbortController | undefined = undefined;
  abortReason: unknown = undefined;
  abortKind: AbortKind | undefined = undefined;
  /** The promise settled: the slot is free. */
  settled = false;
  /** The task's outcome for this attempt was applied (possibly before it settled, on timeout). */
  decided = false;
  zombie = false;
  /** `releaseSlot` gave its concurrency slot back before it settled (it is being graded). */
  slotReleased = false;
  /** Tokens reserved from the token budget before the start. */
  reservedTokens = 0;
  /** Tokens the target reported for this attempt, or undefined if it reported none. */
  reportedTokens: number | undefined = undefined;
  /** The adaptive pace's number of this start (0 without adaptive pace). */
  paceSeq = 0;
  /** Attempts of the run in flight when this one started (the pace's evidence on a refusal). */
  inFlightAtStart = 0;
  /** The target reported rate-limit headers for this attempt (`reportLimits`). */
  limitsReported = false;
  /** This attempt's timeout, if it has one; its countdown lives in the run's DeadlineQueue. */
  timeoutMs: number | undefined = undefined;
  deadline = 0;
  prevDeadline: DeadlineEntry | undefined = undefined;
  nextDeadline: DeadlineEntry | undefined = undefined;
  deadlineList: DeadlineList | undefined = undefined;
  deadlineQueue: DeadlineCountdown | undefined = undefined;
  /** Holds of the timeout in place (`holdTimeout`): no countdown while there is one. */
  private timeoutHolds = 0;
  zombieCancel: CancelTimer | undefined = undefined;

  constructor(
    private readonly run: UsageSink<I, O>,
    readonly rec: TaskRecord<I, O>,
    readonly attempt: number,
    readonly startedAt: number,
  ) {}

  get taskId(): string {
    return this.rec.id;
  }

  // Created on first read: most targets that never look at the signal pay nothing for it.
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(kind: AbortKind, reason: unknown): void {
    if (this.abortReason !== undefined) {
      // A later, stronger abort (cancel after pause) re-labels what the settlement means.
      if (kind === 'cancel') this.abortKind = 'cancel';
      return;
    }
    this.abortKind = kind;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  reportUsage(usage: Partial<Usage>): void {
    this.run.addUsage(this, usage);
  }

  reportLimits(limits: RateLimitSnapshot): void {
    this.run.syncLimits(this, limits);
  }

  releaseSlot(): void {
    this.run.releaseSlot(this);
  }

  // The countdown is taken out of the run's deadline queue and put back at its tail with the
  // full timeout: deadlines of one timeout value stay in start order, so the queue's one-timer
  // design holds (core/deadlines.ts).
  holdTimeout(): () => void {
    const queue = this.deadlineQueue;
    const ms = this.timeoutMs;
    if (queue === undefined || ms === undefined || this.decided) return () => {};
    if (this.timeoutHolds++ === 0) queue.remove(this);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--this.timeoutHolds === 0 && !this.decided && !this.settled && !this.slotReleased)
        queue.add(this, ms);
    };
  }
}

/** The first invalid field of a task spec, if any. */
export function specProblem(
  spec: TaskSpec<unknown>,
): { field: string; value: unknown; expected: string } | undefined {
  if (typeof spec !== 'object' || spec === null) {
    return { field: 'task', value: spec, expected: 'an object { id?, input }' };
  }
  if (spec.id !== undefined && (typeof spec.id !== 'string' || spec.id === '')) {
    return { field: 'id', value: spec.id, expected: 'a non-empty string' };
  }
  if (spec.priority !== undefined && !Number.isFinite(spec.priority)) {
    return { field: 'priority', value: spec.priority, expected: 'a finite number' };
  }
  if (spec.timeoutMs !== undefined && !(typeof spec.timeoutMs === 'number' && spec.timeoutMs > 0)) {
    return { field: 'timeoutMs', value: spec.timeoutMs, expected: 'a number > 0' };
  }
  if (
    spec.maxAttempts !== undefined &&
    !(Number.isInteger(spec.maxAttempts) && spec.maxAttempts >= 1)
  ) {
    return { field: 'maxAttempts', value: spec.maxAttempts, expected: 'an integer >= 1' };
  }
  if (
    spec.attemptsBefore !== undefined &&
    !(Number.isInteger(spec.attemptsBefore) && spec.attemptsBefore >= 0)
  ) {
    return { field: 'attemptsBefore', value: spec.attemptsBefore, expected: 'an integer >= 0' };
  }
  if (
    spec.interruptedBefore !== undefined &&
    !(
      Number.isInteger(spec.interruptedBefore) &&
      spec.interruptedBefore >= 0 &&
      spec.interruptedBefore <= (spec.attemptsBefore ?? 0)
    )
  ) {
    return {
      field: 'interruptedBefore',
      value: spec.interruptedBefore,
      expected: 'an integer from 0 to attemptsBefore',
    };
  }
  return undefined;
}
