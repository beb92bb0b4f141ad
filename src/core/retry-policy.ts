/**
 * The retry decision for a failed attempt: may the task try again, after how long, and with
 * which error if not. 429 refusals are counted apart: a refusal came before any work, so it does
 * not spend `maxAttempts`; `maxRateLimitRetries` bounds it instead.
 */

import type { ErrorClassification, ErrorInfo } from './errors.js';
import { toErrorInfo } from './errors.js';
import { backoffDelay, type ResolvedRetry } from './options.js';
import type { TaskRecord } from './task.js';

/** What to do after a failed attempt. */
export interface RetryVerdict {
  /** Try again (after `delayMs`), or end the task with `info`. */
  readonly retry: boolean;
  /** The backoff, or the server's Retry-After. */
  readonly delayMs: number;
  readonly info: ErrorInfo;
}

/** Decides retries; keeps the refusal count of each task still running. */
export class RetryPolicy<I, O> {
  private readonly refusals = new Map<TaskRecord<I, O>, number>();

  constructor(
    private readonly retry: ResolvedRetry,
    private readonly random: () => number,
  ) {}

  /** The verdict on `rec`'s failed attempt; `stopping` forbids a retry. */
  failed(
    rec: TaskRecord<I, O>,
    err: unknown,
    cls: ErrorClassification,
    stopping: boolean,
  ): RetryVerdict {
    let refusals = this.refusals.get(rec) ?? 0;
    if (cls.rateLimited) this.refusals.set(rec, ++refusals);
    const max = this.retry.maxRateLimitRetries;
    const spent = rec.attempts - rec.interrupted - refusals;
    const retry = cls.retryable && spent < rec.maxAttempts && refusals <= max && !stopping;
    const delayMs =
      cls.retryAfterMs ??
      backoffDelay(this.retry, Math.max(1, cls.rateLimited ? refusals : spent), this.random);
    const info = toErrorInfo(err, cls.code);
    if (cls.rateLimited && refusals > max)
      info.message += ` (refused ${refusals} times; the ${max} rate-limit retries are spent)`;
    return { retry, delayMs, info };
  }

  /** `rec` ended: its refusals are forgotten. */
  ended(rec: TaskRecord<I, O>): void {
    if (this.refusals.size > 0) this.refusals.delete(rec);
  }
}
