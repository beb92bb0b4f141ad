/**
 * The token budget (`RunOptions.tokens`) and the usage meter: what the run reserves from a token
 * bucket before an attempt starts, what it settles once the attempt reported its usage, and the
 * run's token and cost totals. Also where a target's reported rate-limit headers clamp the
 * buckets (`reportLimits`).
 */

import { InvalidOptionError } from './errors.js';
import type { RateLimitSnapshot, Usage } from './model.js';
import type { TokenBudget } from './options.js';
import type { RateLimiter, RateLimiterRegistry } from './rate.js';
import type { Attempt } from './task.js';

/** Token reservations and usage totals of one run. */
export class TokenMeter {
  /** Tokens and cost reported so far by every attempt. */
  tokens = 0;
  cost = 0;
  /** Tasks that reported usage without a cost: `cost` is then a partial sum (issue #18). */
  costUnknownTasks = 0;
  private reportedTokenSum = 0;
  private reportedAttempts = 0;

  constructor(
    private readonly budget: TokenBudget | undefined,
    private readonly limiters: RateLimiterRegistry,
  ) {}

  /** The token bucket of rate key `key`, or undefined without a token budget. */
  bucketFor(key: string): RateLimiter | undefined {
    const budget = this.budget;
    if (budget === undefined) return undefined;
    return this.limiters.get(`tokens:${key}`, {
      perMinute: budget.perMinute,
      burst: budget.burst ?? budget.perMinute,
    });
  }

  /**
   * Tokens to reserve for the next attempt: the configured estimate until usage is known, then
   * the running mean of reported usage; never more than the bucket can ever hold.
   */
  estimate(bucket: RateLimiter): number {
    const mean =
      this.reportedAttempts > 0 ? this.reportedTokenSum / this.reportedAttempts : undefined;
    return Math.min(bucket.burst, Math.max(1, Math.round(mean ?? this.budget?.estimate ?? 500)));
  }

  /** Settles a reservation: charge an underestimate (as debt), refund an overestimate. */
  reconcile<I, O>(att: Attempt<I, O>): void {
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

  /** Adds an attempt's reported usage to it, its task and the run; returns what was added. */
  add<I, O>(att: Attempt<I, O>, usage: Partial<Usage>): Usage {
    const tokens = usage.tokens ?? 0;
    const cost = usage.cost ?? 0;
    if (!Number.isFinite(tokens) || tokens < 0)
      throw new InvalidOptionError('usage.tokens', tokens, 'a number >= 0');
    if (!Number.isFinite(cost) || cost < 0)
      throw new InvalidOptionError('usage.cost', cost, 'a number >= 0');
    att.reportedTokens = (att.reportedTokens ?? 0) + tokens;
    att.rec.usage.tokens += tokens;
    att.rec.usage.cost += cost;
    // Usage without a cost: the price is unknown, and 0 here would read as free.
    if (
      (usage.cost === undefined || usage.costUnknown === true) &&
      att.rec.usage.costUnknown !== true
    ) {
      att.rec.usage.costUnknown = true;
      this.costUnknownTasks++;
    }
    this.tokens += tokens;
    this.cost += cost;
    return { tokens, cost };
  }
}

/**
 * Applies the rate-limit headers a target reported for an attempt: the task's request and
 * token buckets are clamped to what the server says remains, and cooled down until its reset
 * when nothing remains (`coolDown` is told each bucket it cooled).
 */
export function applyLimits<I, O>(
  att: Attempt<I, O>,
  limits: RateLimitSnapshot,
  coolDown: (key: string, ms: number) => void,
): void {
  att.limitsReported = true;
  const rec = att.rec;
  const key = rec.rateKey;
  const cool = (bucket: RateLimiter | undefined, ms: number | undefined, name: string) => {
    if (bucket === undefined || ms === undefined || !(ms > 0)) return;
    bucket.coolDown(ms);
    coolDown(name, ms);
  };
  if (limits.remainingRequests !== undefined) rec.bucket?.clampAvailable(limits.remainingRequests);
  if (limits.remainingRequests === 0) cool(rec.bucket, limits.resetRequestsMs, key);
  if (limits.remainingTokens !== undefined) {
    rec.tokenBucket?.clampAvailable(limits.remainingTokens);
    if (limits.remainingTokens === 0) cool(rec.tokenBucket, limits.resetTokensMs, `tokens:${key}`);
  }
}
