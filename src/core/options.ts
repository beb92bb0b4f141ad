/**
 * Run options: the one place where defaults are merged and every field is validated, so a bad
 * option fails at construction with its name and value, never halfway through a run.
 */

import type { Clock } from './clock.js';
import { InvalidOptionError } from './errors.js';
import type { AdaptiveOptions } from './pace.js';
import { type RateLimit, type RateLimiterRegistry, validateRateLimit } from './rate.js';

/**
 * The seeds' `RetryPolicy`. Delay before retry n (n = 1 for the first retry) is
 * `min(maxBackoffMs, backoffMs * backoffMultiplier^(n-1))`, then jitter; a Retry-After wins.
 *
 * @example
 * ```ts
 * const retry: RetryPolicy = { maxAttempts: 3, backoffMs: 2000, backoffMultiplier: 1.5 };
 * // waits 2000 ms, then 3000 ms
 * ```
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. 1 disables retries. @default 3 */
  readonly maxAttempts?: number;
  /** @default 1000 */
  readonly backoffMs?: number;
  /** @default 2 */
  readonly backoffMultiplier?: number;
  /** @default 60_000 */
  readonly maxBackoffMs?: number;
  /** 'full': uniform in [0, d]; 'equal': d/2 + uniform in [0, d/2]. @default 'none' */
  readonly jitter?: 'none' | 'full' | 'equal';
  /**
   * Retries of a case the target refused with a 429 (not a spent quota). A refused attempt was
   * turned away before any work, so it does not count against `maxAttempts`; this bounds how
   * often one case may be refused before it ends `error` (`RATE_LIMITED`). @default 10
   */
  readonly maxRateLimitRetries?: number;
}

/** Run-level stop rules, checked after every settled task. */
export interface StopConditions {
  /** Stop when failures (failed + timeout + error) reach this count, or, if 0 < x < 1, this fraction of settled tasks (once `minSettled` have settled). */
  readonly maxFailures?: number;
  /** Stop at the first task that fails for good (failed, timeout, error): rule `fail_fast`. */
  readonly failFast?: boolean;
  /** Settled tasks needed before a fractional `maxFailures` applies. @default 10 */
  readonly minSettled?: number;
  /** Run deadline in ms from start: in-flight work is aborted, the rest cancelled (reason `deadline`). */
  readonly deadlineMs?: number;
  /** Stop once the reported cost reaches this. */
  readonly maxCost?: number;
  /** Stop once the reported tokens reach this. */
  readonly maxTokens?: number;
  /** Stop after this many authentication errors in a row (0 disables). @default 3 */
  readonly maxConsecutiveAuthErrors?: number;
  /** On a stop rule: abort in-flight work, or let it finish. @default 'abort' */
  readonly inFlight?: 'abort' | 'drain';
}

/**
 * An LLM token budget per rate key: each attempt reserves an estimate before it starts, and the
 * reservation is reconciled with what the target reports through `ctx.reportUsage`.
 */
export interface TokenBudget {
  /** Tokens per minute. */
  readonly perMinute: number;
  /** Bucket capacity. @default perMinute */
  readonly burst?: number;
  /** Tokens reserved per attempt before any usage is known; then the running mean of reports. @default 500 */
  readonly estimate?: number;
}

/** The seeds' batch mode: admit `size` tasks, wait for all of them, back off, go on. */
export interface BatchOptions {
  readonly size: number;
  /** Pause between batches. @default 0 */
  readonly backoffMs?: number;
}

/**
 * Options of one run. Every field is optional.
 *
 * @example
 * ```ts
 * const options: RunOptions = {
 *   concurrency: 20,
 *   timeoutMs: 60_000,
 *   rate: { perMinute: 600, burst: 10 },
 *   retry: { maxAttempts: 3, backoffMs: 2000, backoffMultiplier: 1.5 },
 *   stop: { maxFailures: 50, deadlineMs: 2 * 3600_000 },
 * };
 * ```
 */
export interface RunOptions {
  /** Attempts running at once: the ceiling of the adaptive pace. Changeable during the run. @default 10 */
  readonly concurrency?: number;
  /**
   * Adaptive pace (docs/architecture.md): when the target refuses without saying how long to
   * wait (a 429 without Retry-After or rate-limit headers, a 503), the effective concurrency goes
   * down, then, at its floor, the request rate; clean answers bring both back up to
   * `concurrency` and `rate`. `false` keeps the concurrency fixed. @default true
   */
  readonly adaptive?: boolean | AdaptiveOptions;
  /** Per-attempt timeout in ms; none if absent. */
  readonly timeoutMs?: number;
  /** Requests per minute and burst, per rate key. */
  readonly rate?: RateLimit;
  /** Tokens per minute, reserved per attempt and reconciled with reported usage. */
  readonly tokens?: TokenBudget;
  /** Shared buckets: pass the same registry to runs that share a provider budget. */
  readonly limiters?: RateLimiterRegistry;
  readonly retry?: RetryPolicy;
  readonly stop?: StopConditions;
  /** Batches instead of the default sliding window. */
  readonly batch?: BatchOptions;
  /** Aborting it cancels the run (like `run.cancel()`). */
  readonly signal?: AbortSignal;
  /** @default new RealClock() */
  readonly clock?: Clock;
  /** Randomness for jitter; inject a seeded one for reproducible runs. @default Math.random */
  readonly random?: () => number;
  /** How long an aborted attempt may take to settle before it counts as a zombie. @default 1000 */
  readonly zombieGraceMs?: number;
  /** Keep every TaskResult in `result.tasks`. Turn off for huge streamed plans. @default true */
  readonly retainResults?: boolean;
  /**
   * One task at a time, strictly in order: the next task starts only once the previous one
   * ended, including its retries and their backoffs (a saga's compensations run this way).
   * @default false
   */
  readonly ordered?: boolean;
  /** Tasks pulled ahead from an iterator (priorities apply within it). @default max(256, 4 * concurrency) */
  readonly lookahead?: number;
  /** Identifier of this run. @default a random id */
  readonly runId?: string;
  /** Start paused. @default false */
  readonly paused?: boolean;
}

/** Options after defaults: what the scheduler reads. */
export interface ResolvedRetry {
  maxAttempts: number;
  maxRateLimitRetries: number;
  backoffMs: number;
  backoffMultiplier: number;
  maxBackoffMs: number;
  jitter: 'none' | 'full' | 'equal';
}

function positiveInt(value: unknown, field: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionError(field, value, `an integer >= ${min}`);
  }
  return value;
}

function nonNegative(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(field, value, 'a finite number >= 0');
  }
  return value;
}

export function validateConcurrency(value: unknown, field = 'concurrency'): number {
  return positiveInt(value, field);
}

export function resolveRetry(retry: RetryPolicy | undefined, field = 'retry'): ResolvedRetry {
  const r = retry ?? {};
  const jitter = r.jitter ?? 'none';
  if (jitter !== 'none' && jitter !== 'full' && jitter !== 'equal') {
    throw new InvalidOptionError(`${field}.jitter`, jitter, "'none', 'full' or 'equal'");
  }
  const backoffMultiplier = r.backoffMultiplier ?? 2;
  if (
    typeof backoffMultiplier !== 'number' ||
    !Number.isFinite(backoffMultiplier) ||
    backoffMultiplier < 1
  ) {
    throw new InvalidOptionError(`${field}.backoffMultiplier`, backoffMultiplier, 'a number >= 1');
  }
  return {
    maxAttempts: positiveInt(r.maxAttempts ?? 3, `${field}.maxAttempts`),
    maxRateLimitRetries: positiveInt(
      r.maxRateLimitRetries ?? 10,
      `${field}.maxRateLimitRetries`,
      0,
    ),
    backoffMs: nonNegative(r.backoffMs ?? 1000, `${field}.backoffMs`),
    backoffMultiplier,
    maxBackoffMs: nonNegative(r.maxBackoffMs ?? 60_000, `${field}.maxBackoffMs`),
    jitter,
  };
}

/** Validates every field of RunOptions; throws InvalidOptionError naming the first bad one. */
export function validateRunOptions(o: RunOptions): void {
  if (o.concurrency !== undefined) validateConcurrency(o.concurrency);
  if (
    o.adaptive !== undefined &&
    typeof o.adaptive !== 'boolean' &&
    (typeof o.adaptive !== 'object' || o.adaptive === null)
  )
    throw new InvalidOptionError('adaptive', o.adaptive, 'true, false or { minConcurrency }');
  if (o.timeoutMs !== undefined && nonNegative(o.timeoutMs, 'timeoutMs') === 0) {
    throw new InvalidOptionError('timeoutMs', o.timeoutMs, 'a number > 0');
  }
  if (o.rate !== undefined) validateRateLimit(o.rate, 'rate');
  if (o.tokens !== undefined) {
    validateRateLimit({ perMinute: o.tokens.perMinute }, 'tokens');
    if (o.tokens.burst !== undefined) positiveInt(o.tokens.burst, 'tokens.burst');
    if (o.tokens.estimate !== undefined) nonNegative(o.tokens.estimate, 'tokens.estimate');
  }
  resolveRetry(o.retry);
  const s = o.stop;
  if (s !== undefined) {
    if (s.maxFailures !== undefined) {
      const f = s.maxFailures;
      const ok = typeof f === 'number' && ((Number.isInteger(f) && f >= 1) || (f > 0 && f < 1));
      if (!ok)
        throw new InvalidOptionError(
          'stop.maxFailures',
          f,
          'an integer >= 1 or a fraction 0 < x < 1',
        );
    }
    if (s.minSettled !== undefined) positiveInt(s.minSettled, 'stop.minSettled');
    if (s.failFast !== undefined && typeof s.failFast !== 'boolean') {
      throw new InvalidOptionError('stop.failFast', s.failFast, 'true or false');
    }
    if (s.deadlineMs !== undefined) nonNegative(s.deadlineMs, 'stop.deadlineMs');
    if (s.maxCost !== undefined) nonNegative(s.maxCost, 'stop.maxCost');
    if (s.maxTokens !== undefined) nonNegative(s.maxTokens, 'stop.maxTokens');
    if (s.maxConsecutiveAuthErrors !== undefined)
      positiveInt(s.maxConsecutiveAuthErrors, 'stop.maxConsecutiveAuthErrors', 0);
    if (s.inFlight !== undefined && s.inFlight !== 'abort' && s.inFlight !== 'drain') {
      throw new InvalidOptionError('stop.inFlight', s.inFlight, "'abort' or 'drain'");
    }
  }
  if (o.batch !== undefined) {
    positiveInt(o.batch.size, 'batch.size');
    if (o.batch.backoffMs !== undefined) nonNegative(o.batch.backoffMs, 'batch.backoffMs');
  }
  if (o.zombieGraceMs !== undefined) nonNegative(o.zombieGraceMs, 'zombieGraceMs');
  if (o.lookahead !== undefined) positiveInt(o.lookahead, 'lookahead');
  if (o.random !== undefined && typeof o.random !== 'function') {
    throw new InvalidOptionError('random', o.random, 'a function returning [0, 1)');
  }
}

/** Delay before retry number `retry` (1 for the first retry), before any Retry-After. */
export function backoffDelay(policy: ResolvedRetry, retry: number, random: () => number): number {
  const raw = policy.backoffMs * policy.backoffMultiplier ** (retry - 1);
  const capped = Math.min(policy.maxBackoffMs, raw);
  switch (policy.jitter) {
    case 'full':
      return random() * capped;
    case 'equal':
      return capped / 2 + (random() * capped) / 2;
    default:
      return capped;
  }
}
