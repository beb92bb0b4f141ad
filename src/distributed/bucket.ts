/**
 * A token bucket kept in Redis, shared by every worker and every run that uses the same Redis
 * and the same target key. One Lua script does refill + take atomically on Redis's own clock
 * (`TIME`), so machines with skewed clocks still share one exact bucket: no window of W seconds
 * holds more than `burst + rate * W` takes, across all of them. A 429's Retry-After cools the
 * shared bucket down for everyone (`coolDown`).
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
    return { wait: Number(wait), at: Number(at) };
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
