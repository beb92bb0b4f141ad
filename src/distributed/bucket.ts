/**
 * A token bucket kept in Redis, shared by every worker and every run that uses the same Redis
 * and the same target key. One Lua script does refill + take atomically on Redis's own clock
 * (`TIME`), so machines with skewed clocks still share one exact bucket: no window of W seconds
 * holds more than `burst + rate * W` takes, across all of them. A 429's Retry-After cools the
 * shared bucket down for everyone (`coolDown`).
 */

import type { Redis } from 'ioredis';

/**
 * KEYS[1] the bucket hash. ARGV: perMinute, burst, cost.
 * Returns 0 when taken, else the milliseconds to wait before trying again.
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
if now < cool then return cool - now end
tokens = math.min(burst, tokens + (now - at) * per_ms)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = math.ceil((cost - tokens) / per_ms) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + 60000)
return wait
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

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
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
export class RedisBuckets {
  private takeSha: Promise<string> | undefined;
  private coolSha: Promise<string> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'stride',
  ) {}

  /**
   * A script's SHA, loaded on first use. A failed load (Redis still loading, a restart) is not
   * kept: the next call loads again.
   */
  private sha(which: 'take' | 'cool'): Promise<string> {
    const cached = which === 'take' ? this.takeSha : this.coolSha;
    if (cached !== undefined) return cached;
    const loading = this.redis.script('LOAD', which === 'take' ? TAKE : COOL) as Promise<string>;
    const kept = loading.catch((err: unknown) => {
      if (which === 'take') this.takeSha = undefined;
      else this.coolSha = undefined;
      throw err;
    });
    if (which === 'take') this.takeSha = kept;
    else this.coolSha = kept;
    return kept;
  }

  private key(name: string): string {
    return `${this.prefix}:bucket:${name}`;
  }

  /** Tries once: resolves 0 if a token was taken, else the milliseconds to wait. */
  async tryTake(name: string, rate: SharedRate, cost = 1): Promise<number> {
    const sha = await this.sha('take');
    try {
      return Number(
        await this.redis.evalsha(sha, 1, this.key(name), rate.perMinute, rate.burst, cost),
      );
    } catch (err) {
      // A restarted Redis forgot its scripts: run the source once, which loads it again.
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return Number(
        await this.redis.eval(TAKE, 1, this.key(name), rate.perMinute, rate.burst, cost),
      );
    }
  }

  /** Waits until a token is taken (or the signal aborts). */
  async take(name: string, rate: SharedRate, signal?: AbortSignal, cost = 1): Promise<void> {
    for (;;) {
      const wait = await this.tryTake(name, rate, cost);
      if (wait <= 0) return;
      await sleep(Math.max(1, wait), signal);
    }
  }

  /** Blocks the bucket for `ms` (a 429 with Retry-After), for every worker and run. */
  async coolDown(name: string, ms: number): Promise<void> {
    const sha = await this.sha('cool');
    try {
      await this.redis.evalsha(sha, 1, this.key(name), Math.ceil(ms));
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      await this.redis.eval(COOL, 1, this.key(name), Math.ceil(ms));
    }
  }
}
