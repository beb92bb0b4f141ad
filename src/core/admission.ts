/**
 * Admission: a task spec read from the source becomes the engine's TaskRecord, with its rate
 * and token buckets and its attempt budget; a spec the run cannot take says why. A malformed
 * task is that task's error, not the run's: the rest of the plan still runs.
 */

import { describeValue, type ErrorInfo } from './errors.js';
import type { TaskSpec } from './model.js';
import type { RateLimit, RateLimiterRegistry } from './rate.js';
import { specProblem, TaskRecord } from './task.js';
import type { TokenMeter } from './token-budget.js';

/** Turns task specs into records. */
export class Admission<I, O> {
  private seq = 0;
  /**
   * Why the run cannot take the record `admit` returned last (it ends `error` at once), or
   * undefined. A field, not a returned pair: no allocation per task on the hot path (bench S1).
   */
  rejected: ErrorInfo | undefined = undefined;

  constructor(
    private readonly defaultKey: string,
    private readonly rate: RateLimit | undefined,
    private readonly limiters: RateLimiterRegistry,
    private readonly meter: TokenMeter,
    private readonly maxAttempts: number,
    /** The plan's dependency graph exists (the tasks came as an array). */
    private readonly hasGraph: boolean,
  ) {}

  /** The record of `spec`; unnamed tasks are `task-<n>` in reading order. */
  admit(spec: TaskSpec<I>): TaskRecord<I, O> {
    this.seq++;
    const problem = specProblem(spec);
    const id =
      (problem === undefined || problem.field !== 'id' ? spec?.id : undefined) ??
      `task-${this.seq}`;
    const key = (problem === undefined ? spec.rateKey : undefined) ?? this.defaultKey;
    const bucket =
      this.rate !== undefined ? this.limiters.get(key, this.rate) : this.limiters.peek(key);
    const valid = problem === undefined;
    const rec = new TaskRecord<I, O>(
      id,
      spec?.input as I,
      (valid ? spec.priority : undefined) ?? 0,
      valid ? spec.timeoutMs : undefined,
      (valid ? spec.maxAttempts : undefined) ?? this.maxAttempts,
      bucket,
      this.meter.bucketFor(key),
      key,
      (valid ? spec.attemptsBefore : undefined) ?? 0,
    );
    if (!valid) {
      this.rejected = {
        code: 'VALIDATION_ERROR',
        name: 'ValidationError',
        message: `task ${id}: invalid ${problem.field}: ${describeValue(problem.value)} (expected ${problem.expected})`,
      };
      return rec;
    }
    rec.interrupted = spec.interruptedBefore ?? 0;
    const spent = rec.attempts - rec.interrupted;
    if (spent >= rec.maxAttempts) {
      // A resumed task whose budget an earlier session spent, the last attempt with no known
      // outcome (it was in flight when the process died): one more would go past maxAttempts.
      this.rejected = {
        code: 'ATTEMPTS_EXHAUSTED',
        name: 'AttemptsExhaustedError',
        message: `task ${id}: ${spent} of ${rec.maxAttempts} attempts were spent before this run, the last with no known outcome: none is left`,
      };
      return rec;
    }
    if (!this.hasGraph && (spec.dependsOn?.length ?? 0) > 0) {
      this.rejected = {
        code: 'VALIDATION_ERROR',
        name: 'ValidationError',
        message: `task ${id}: dependsOn needs the tasks as an array, so the graph can be checked before anything runs`,
      };
      return rec;
    }
    this.rejected = undefined;
    return rec;
  }
}
