/**
 * A task's live record and one attempt of it: the state the run loop mutates. Kept apart from the
 * loop so run.ts reads as the scheduling policy alone.
 */

import type { CancelTimer } from './clock.js';
import type { DeadlineEntry, DeadlineList } from './deadlines.js';
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
}

/** A task's live record. It becomes the task's TaskResult when terminal (no copy). */
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
  /** Attempts aborted by pause; they do not spend the retry budget. */
  interrupted = 0;
  /** A retry is waiting in backoff or in the retry queue. */
  retrying = false;
  /** Admitted into the current batch (batch mode). */
  batched = false;
  /** Dependencies that have not succeeded yet (`TaskSpec.dependsOn`). */
  waitingOn = 0;
  backoffCancel: CancelTimer | undefined = undefined;

  constructor(
    readonly id: string,
    readonly input: I,
    readonly priority: number,
    readonly timeoutMs: number | undefined,
    readonly maxAttempts: number,
    readonly bucket: RateLimiter | undefined,
    readonly tokenBucket: RateLimiter | undefined,
    readonly rateKey: string,
    attemptsBefore: number,
  ) {
    this.attempts = attemptsBefore;
  }
}

export type AbortKind = 'timeout' | 'cancel' | 'pause';

/** One attempt; it is also the AttemptContext the target receives. */
export class Attempt<I, O> implements AttemptContext, DeadlineEntry {
  private controller: AbortController | undefined = undefined;
  abortReason: unknown = undefined;
  abortKind: AbortKind | undefined = undefined;
  /** The promise settled: the slot is free. */
  settled = false;
  /** The task's outcome for this attempt was applied (possibly before it settled, on timeout). */
  decided = false;
  zombie = false;
  /** Tokens reserved from the token budget before the start. */
  reservedTokens = 0;
  /** Tokens the target reported for this attempt, or undefined if it reported none. */
  reportedTokens: number | undefined = undefined;
  /** This attempt's timeout, if it has one; its countdown lives in the run's DeadlineQueue. */
  timeoutMs: number | undefined = undefined;
  deadline = 0;
  prevDeadline: DeadlineEntry | undefined = undefined;
  nextDeadline: DeadlineEntry | undefined = undefined;
  deadlineList: DeadlineList | undefined = undefined;
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
