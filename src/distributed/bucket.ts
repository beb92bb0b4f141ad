/**
 * A token bucket kept in Redis, shared by every worker and every run that uses the same Redis
 * and the same target key. One Lua script does refill + take atomically on Redis's own clock
 * (`TIME`), so machines with skewed clocks still share one exact bucket: no window of W seconds
 * holds more than `burst + rate * W` takes, across all of them. A 429's Retry-After cools the
 * shared bucket down for everyone (`coolDown`).
 *
 * A token taken on time can still be sent late: a worker the machine does not schedule between
 * its take and its request sends it together with the requests of workers that took theirs
 * later (issue #16 item 7: 5 requests in 100 ms against a bound of 3). So a worker checks the
 * token's age right before the request leaves (`isStale`) and takes another for a stale one.
 */

import type { Redis } from 'ioredis';
import { type Clock, RealClock } from '../core/index.js';

/**
 * KEYS[1] the bucket hash. ARGV: perMinute, burst, cost.
 * Returns { wait, now }: wait is 0 when taken, else the milliseconds to wait before trying again;
 * now is Redis's clock (epoch ms), the instant the window bound is about.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per_ms = tonumber(ARGV[1]) / 60000
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'until')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
local cool = tonumber(b[3]) or 0
if tokens == nil then tokens = burst; at = now end
if now < cool then return { cool - now, now } end
tokens = math.min(burst, tokens + (now - at) * per_ms)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = math.ceil((cost - tokens) / per_ms) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + 60000)
return { wait, now }
`;

/** KEYS[1] the bucket hash. ARGV: ms. Empties the bucket and blocks takes for `ms`. */
const COOL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cool = now + tonumber(ARGV[1])
local prev = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
if cool > prev then redis.call('HSET', KEYS[1], 'until', tostring(cool), 'tokens', '0', 'at', tostring(cool)) end
-- Never shorten the key's life below a longer cooldown already in place.
redis.call('PEXPIRE', KEYS[1], math.max(cool, prev) - now + 60000)
return 0
`;

/** Takes remembered to learn how fast Redis's answers reach this process (`ageOf`). */
const SAMPLES = 32;

/**
 * The oldest a shared token may be when its request leaves: half a token period (50 ms at
 * 600/min), and never below 10 ms: at high rates a tighter rule would drop most tokens for the
 * jitter of an ordinary event loop, when 10 ms of tokens is a small part of any window.
 *
 * @example
 * ```ts
 * staleAfterMs({ perMinute: 600, burst: 2 }); // 50
 * ```
 */
export function staleAfterMs(rate: SharedRate): number {
  return Math.max(MIN_STALE_MS, 30_000 / rate.perMinute);
}

const MIN_STALE_MS = 10;

/** A rate limit as the plans write it. */
export interface SharedRate {
  readonly perMinute: number;
  readonly burst: number;
}

/**
 * Token buckets in Redis, by key.
 *
 * @example
 * ```ts
 * const buckets = new RedisBuckets(redis, 'stride');
 * await buckets.take('dify:app-1', { perMinute: 600, burst: 10 }, signal); // waits its turn
 * ```
 */
/** The bucket scripts as commands: ioredis runs them by SHA and reloads them after a restart. */
interface BucketCommands {
  strideTake(
    key: string,
    perMinute: number,
    burst: number,
    cost: number,
  ): Promise<[number, number]>;
  strideCool(key: string, ms: number): Promise<number>;
}

export class RedisBuckets {
  private readonly commands: BucketCommands;
  /**
   * The last takes' `local clock at the reply - Redis's take time`: the clocks' offset plus the
   * reply's transit. Their minimum is the fastest a token has reached this process; a token is
   * as old as it is beyond that. A ring, so a clock step on either side is learned again after
   * SAMPLES takes instead of making every token look stale forever.
   */
  private readonly samples: number[] = [];
  private sampleAt = 0;

  constructor(
    redis: Redis,
    private readonly prefix = 'stride',
    private readonly clock: Clock = new RealClock(),
  ) {
    // defineCommand is idempotent per connection: several RedisBuckets may share one.
    redis.defineCommand('strideTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('strideCool', { numberOfKeys: 1, lua: COOL });
    this.commands = redis as unknown as BucketCommands;
  }

  private key(name: string): string {
    return `${this.prefix}:bucket:${name}`;
  }

  /** Tries once: resolves 0 if a token was taken, else the milliseconds to wait. */
  async tryTake(name: string, rate: SharedRate, cost = 1): Promise<number> {
    return (await this.tryOnce(name, rate, cost)).wait;
  }

  private async tryOnce(
    name: string,
    rate: SharedRate,
    cost: number,
  ): Promise<{ wait: number; at: number }> {
    const [wait, at] = await this.commands.strideTake(
      this.key(name),
      rate.perMinute,
      rate.burst,
      cost,
    );
    // Every answer, a take or a refusal, shows how fast Redis's clock reaches this process.
    this.samples[this.sampleAt] = this.clock.now() - Number(at);
    this.sampleAt = (this.sampleAt + 1) % SAMPLES;
    return { wait: Number(wait), at: Number(at) };
  }

  /**
   * How long ago, in ms, a token taken at `takenAt` (Redis's clock, as `take` returns it) was
   * taken, beyond the fastest a take's answer has reached this process. Clock offsets between
   * this machine and Redis's cancel out; a constant transit does too (it delays every request
   * alike, so it bunches none).
   */
  ageOf(takenAt: number): number {
    if (this.samples.length === 0) return 0;
    return Math.max(0, this.clock.now() - takenAt - Math.min(...this.samples));
  }

  /**
   * Whether a token taken at `takenAt` is too old to be sent now: older than `staleAfterMs(rate)`.
   * The worker checks right before the request leaves and takes another token for a stale one
   * (the stale one stays spent: the bucket counted it). So the requests leave within that
   * tolerance of their takes, and no window of W holds more than `burst + rate * W` sends plus
   * half a token, where the takes hold `burst + rate * W` exactly.
   */
  isStale(takenAt: number, rate: SharedRate): boolean {
    return this.ageOf(takenAt) > staleAfterMs(rate);
  }

  /**
   * Waits until a token is taken (or the signal aborts) and resolves with when it was taken, in
   * epoch ms on Redis's clock: the instant the window bound `burst + rate * W` is about, whatever
   * the clocks of the machines involved. `onWait` is called once, with the first wait, if the
   * first try finds the bucket empty (the worker tells its coordinator that this wait is not the
   * attempt's: docs/distributed.md).
   */
  async take(
    name: string,
    rate: SharedRate,
    signal?: AbortSignal,
    cost = 1,
    onWait?: (ms: number) => void,
  ): Promise<number> {
    for (let tries = 0; ; tries++) {
      const { wait, at } = await this.tryOnce(name, rate, cost);
      if (wait <= 0) return at;
      if (tries === 0) onWait?.(wait);
      await this.clock.sleep(Math.max(1, wait), signal);
    }
  }

  /** Blocks the bucket for `ms` (a 429 with Retry-After), for every worker and run. */
  async coolDown(name: string, ms: number): Promise<void> {
    await this.commands.strideCool(this.key(name), Math.ceil(ms));
  }
}
