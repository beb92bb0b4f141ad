/**
 * The rate gate: what an attempt must take, synchronously, right before it starts (retries
 * included): a token of the adaptive pace's rate, a token of its task's request bucket, and a
 * reservation from its token budget. When one is missing, everything taken is given back and
 * one timer wakes the loop when the first bucket can pay.
 */

import type { CancelTimer, Clock } from './clock.js';
import type { RateLimiter } from './rate.js';
import type { TaskRecord } from './task.js';
import type { TokenMeter } from './token-budget.js';

/** Rate tokens and token reservations of a run's attempts. */
export class RateGate {
  /** The adaptive pace's rate bucket, once the pace engaged one. */
  paceBucket: RateLimiter | undefined = undefined;
  private timer: CancelTimer | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly meter: TokenMeter,
    /** The adaptive pace's own rate is what holds the next attempt back. */
    private readonly paceWaited: () => void,
    /** A new wait was armed (the `rateLimited` event). */
    private readonly rateLimited: (key: string, waitMs: number) => void,
    /** The armed timer fired: the loop may try again. */
    private readonly wake: () => void,
  ) {}

  /**
   * Takes what the next attempt of `rec` needs. Returns the tokens reserved from the token
   * budget (0 without one), or -1 when it must wait: nothing is then taken, a timer is armed.
   */
  take<I, O>(rec: TaskRecord<I, O>): number {
    const pace = this.paceBucket;
    if (pace !== undefined && !pace.tryAcquire()) {
      this.paceWaited();
      this.arm(pace, rec.rateKey, 1);
      return -1;
    }
    const bucket = rec.bucket;
    if (bucket !== undefined && !bucket.tryAcquire()) {
      pace?.refund(1);
      this.arm(bucket, rec.rateKey, 1);
      return -1;
    }
    const tokenBucket = rec.tokenBucket;
    if (tokenBucket === undefined) return 0;
    const reserve = this.meter.estimate(tokenBucket);
    if (reserve > 0 && !tokenBucket.tryAcquire(reserve)) {
      pace?.refund(1);
      bucket?.refund(1);
      this.arm(tokenBucket, rec.rateKey, reserve);
      return -1;
    }
    return reserve;
  }

  /** Gives back what `take` took for an attempt that was not sent. */
  refund<I, O>(rec: TaskRecord<I, O>, reservedTokens: number): void {
    this.paceBucket?.refund(1);
    rec.bucket?.refund(1);
    if (reservedTokens > 0) rec.tokenBucket?.refund(reservedTokens);
  }

  /** Cancels the wake-up timer (pause, stop, end). */
  clear(): void {
    this.timer?.();
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private arm(bucket: RateLimiter, key: string, tokens: number): void {
    const wait = bucket.msUntilAvailable(tokens);
    const at = this.clock.now() + wait;
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.timer?.();
    this.timerAt = at;
    this.rateLimited(key, wait);
    this.timer = this.clock.schedule(wait, () => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.wake();
    });
  }
}
