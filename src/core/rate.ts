/**
 * Token-bucket rate limiting. One bucket per target key, shared by every run that uses the same
 * `RateLimiterRegistry`. The bucket refills continuously (not per window), which is what keeps the
 * invariant "no window of W seconds holds more than burst + rate * W starts" at every window
 * position: fixed windows (BullMQ, p-queue's default) let about twice the limit through at an edge.
 */

import { type Clock, RealClock } from './clock.js';
import { InvalidOptionError } from './errors.js';

/**
 * The seeds' `RateLimit`: requests per minute plus a burst.
 *
 * @example
 * ```ts
 * const limit: RateLimit = { perMinute: 600, burst: 10 };
 * ```
 */
export interface RateLimit {
  /** Sustained starts per minute. */
  readonly perMinute: number;
  /** Bucket capacity: starts allowed at once after a quiet period. @default 1 */
  readonly burst?: number;
}

export interface RateLimiterOptions {
  /** @default new RealClock() */
  clock?: Clock;
}

// Float tolerance: a bucket that computes 0.9999999999 tokens after exactly the right wait
// must not make the caller wait again for a femtosecond.
const EPSILON = 1e-9;

/**
 * A token bucket (the seeds' `RateLimiter`): capacity `burst`, refilled at `perMinute / 60`
 * tokens per second, starting full.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ perMinute: 60, burst: 5 });
 * limiter.availableTokens; // 5
 * limiter.tryAcquire();    // true
 * await limiter.acquire(); // waits when the bucket is empty
 * ```
 */
export class RateLimiter {
  readonly burst: number;
  private perMinuteValue: number;
  private perMs: number;
  private readonly clock: Clock;
  private tokens: number;
  private updatedAt: number;
  private coolUntil = Number.NEGATIVE_INFINITY;

  constructor(limit: RateLimit, options: RateLimiterOptions = {}) {
    validateRateLimit(limit, 'rate');
    this.perMinuteValue = limit.perMinute;
    this.burst = limit.burst ?? 1;
    this.perMs = limit.perMinute / 60_000;
    this.clock = options.clock ?? new RealClock();
    this.tokens = this.burst;
    this.updatedAt = this.clock.now();
  }

  /** Sustained starts per minute. */
  get perMinute(): number {
    return this.perMinuteValue;
  }

  /**
   * Changes the refill rate from now on (the adaptive pace lowers and raises it): what was
   * refilled so far is kept, the rest refills at the new rate.
   */
  setRate(perMinute: number): void {
    validateRateLimit({ perMinute }, 'rate');
    this.refill(this.clock.now());
    this.perMinuteValue = perMinute;
    this.perMs = perMinute / 60_000;
  }

  /** Tokens available now (fractional while refilling). */
  get availableTokens(): number {
    this.refill(this.clock.now());
    return this.clock.now() < this.coolUntil ? 0 : this.tokens;
  }

  /** Takes `tokens` if available now; never waits. */
  tryAcquire(tokens = 1): boolean {
    const now = this.clock.now();
    if (now < this.coolUntil) return false;
    this.refill(now);
    if (this.tokens + EPSILON < tokens) return false;
    this.tokens -= tokens;
    return true;
  }

  /**
   * Milliseconds until `tryAcquire(tokens)` can succeed (0 if it can now). Infinity if the request
   * exceeds the bucket's capacity.
   */
  msUntilAvailable(tokens = 1): number {
    if (tokens > this.burst) return Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    this.refill(now);
    // During a cooldown the bucket refills only from the cooldown's end (updatedAt).
    const from = Math.max(now, this.updatedAt, this.coolUntil);
    const missing = tokens - this.tokens;
    const refillWait = missing <= EPSILON ? 0 : missing / this.perMs;
    return from - now + refillWait;
  }

  /** Waits until `tokens` are available, then takes them. Rejects if `signal` aborts first. */
  async acquire(tokens = 1, signal?: AbortSignal): Promise<void> {
    if (tokens > this.burst) {
      throw new InvalidOptionError('tokens', tokens, `at most the burst (${this.burst})`);
    }
    for (;;) {
      signal?.throwIfAborted();
      if (this.tryAcquire(tokens)) return;
      await this.clock.sleep(this.msUntilAvailable(tokens), signal);
    }
  }

  /**
   * Takes `tokens` now even if the bucket goes negative: the reconciliation of a token budget
   * whose estimate was too low. The debt delays later acquisitions.
   */
  forceTake(tokens: number): void {
    this.refill(this.clock.now());
    this.tokens -= tokens;
  }

  /**
   * Lowers the tokens available now to at most `n` (a provider's "remaining" figure, which counts
   * other clients of the same key too). Never raises them.
   */
  clampAvailable(n: number): void {
    if (!Number.isFinite(n) || n < 0) return;
    this.refill(this.clock.now());
    if (this.tokens > n) this.tokens = n;
  }

  /** Gives back tokens taken for a start that did not happen (never above capacity). */
  refund(tokens = 1): void {
    this.refill(this.clock.now());
    this.tokens = Math.min(this.burst, this.tokens + tokens);
  }

  /**
   * The target said "slow down" (a 429, a Retry-After): hand out nothing for `ms`, then restart
   * from an empty bucket so the restart is paced, not a burst into the same wall.
   */
  coolDown(ms: number): void {
    const now = this.clock.now();
    const until = now + Math.max(0, ms);
    if (until <= this.coolUntil) return;
    this.refill(now);
    this.coolUntil = until;
    this.tokens = 0;
    this.updatedAt = until;
  }

  /** When the current cooldown ends (clock time), or -Infinity. */
  get coolingUntil(): number {
    return this.coolUntil;
  }

  private refill(now: number): void {
    if (now <= this.updatedAt) return;
    this.tokens = Math.min(this.burst, this.tokens + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }
}

/** Throws InvalidOptionError unless `limit` is a usable RateLimit. */
export function validateRateLimit(limit: RateLimit, field: string): void {
  if (typeof limit !== 'object' || limit === null) {
    throw new InvalidOptionError(field, limit, 'an object { perMinute, burst }');
  }
  if (
    typeof limit.perMinute !== 'number' ||
    !Number.isFinite(limit.perMinute) ||
    limit.perMinute <= 0
  ) {
    throw new InvalidOptionError(`${field}.perMinute`, limit.perMinute, 'a number > 0');
  }
  if (limit.burst !== undefined && (!Number.isInteger(limit.burst) || limit.burst < 1)) {
    throw new InvalidOptionError(`${field}.burst`, limit.burst, 'an integer >= 1');
  }
}

/**
 * Buckets by key. Share one registry between runs (or executors) that call the same provider so
 * they share one budget and one 429 cooldown.
 *
 * @example
 * ```ts
 * const limits = new RateLimiterRegistry(clock);
 * const a = limits.get('dify:app-1', { perMinute: 600, burst: 10 });
 * ```
 */
export class RateLimiterRegistry {
  private readonly buckets = new Map<string, RateLimiter>();

  constructor(private readonly clock: Clock = new RealClock()) {}

  /** The bucket for `key`, created with `limit` on first use (later limits are ignored). */
  get(key: string, limit: RateLimit): RateLimiter {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new RateLimiter(limit, { clock: this.clock });
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  /** The bucket for `key`, if one exists. */
  peek(key: string): RateLimiter | undefined {
    return this.buckets.get(key);
  }
}
