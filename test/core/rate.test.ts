import { describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  type RateLimit,
  RateLimiter,
  RateLimiterRegistry,
  Run,
  VirtualClock,
} from '../../src/core/index.js';

function limiter(
  limit: RateLimit,
  clock = new VirtualClock(),
): { l: RateLimiter; clock: VirtualClock } {
  return { l: new RateLimiter(limit, { clock }), clock };
}

describe('RateLimiter: the seeds examples', () => {
  it('new RateLimiter({ perMinute: 60, burst: 5 }) starts with 5 tokens available', () => {
    const { l } = limiter({ perMinute: 60, burst: 5 });
    expect(l.availableTokens).toBe(5);
    expect(l.perMinute).toBe(60);
    expect(l.burst).toBe(5);
  });

  it('defaults the burst to 1', () => {
    const { l } = limiter({ perMinute: 60 });
    expect(l.burst).toBe(1);
    expect(l.tryAcquire()).toBe(true);
    expect(l.tryAcquire()).toBe(false);
  });

  it('tryAcquire takes one token each time and refuses once the bucket is empty', () => {
    const { l } = limiter({ perMinute: 60, burst: 5 });
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      expect(l.tryAcquire()).toBe(true);
      seen.push(l.availableTokens);
    }
    expect(seen).toEqual([4, 3, 2, 1, 0]);
    expect(l.tryAcquire()).toBe(false);
    expect(l.availableTokens).toBe(0);
  });

  it('tryAcquire(n) takes n tokens at once or none', () => {
    const { l } = limiter({ perMinute: 60, burst: 5 });
    expect(l.tryAcquire(3)).toBe(true);
    expect(l.tryAcquire(3)).toBe(false);
    expect(l.availableTokens).toBe(2);
    expect(l.tryAcquire(2)).toBe(true);
    expect(l.availableTokens).toBe(0);
  });

  it('refills continuously (fractional tokens) and never above the burst', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 5 });
    for (let i = 0; i < 5; i++) l.tryAcquire();
    await clock.sleep(500);
    expect(l.availableTokens).toBeCloseTo(0.5, 12);
    expect(l.tryAcquire()).toBe(false);
    await clock.sleep(500);
    expect(l.tryAcquire()).toBe(true);
    await clock.sleep(3_600_000);
    expect(l.availableTokens).toBe(5);
  });
});

describe('RateLimiter.acquire on the virtual clock', () => {
  it('waits exactly the refill time for the next token', async () => {
    const waits: number[] = [];
    const clock = new VirtualClock({ onSchedule: (ms) => waits.push(ms) });
    const l = new RateLimiter({ perMinute: 60, burst: 5 }, { clock });
    for (let i = 0; i < 5; i++) await l.acquire();
    expect(clock.now()).toBe(0);
    expect(waits).toEqual([]);
    await l.acquire();
    expect(clock.now()).toBe(1000);
    expect(waits).toEqual([1000]);
    await l.acquire();
    expect(clock.now()).toBe(2000);
  });

  it('reports the wait in msUntilAvailable, 0 when a token is there', async () => {
    const { l, clock } = limiter({ perMinute: 120, burst: 2 });
    expect(l.msUntilAvailable()).toBe(0);
    l.tryAcquire(2);
    expect(l.msUntilAvailable()).toBe(500);
    expect(l.msUntilAvailable(2)).toBe(1000);
    await clock.sleep(200);
    expect(l.msUntilAvailable()).toBeCloseTo(300, 9);
  });

  it('waits for n tokens when acquiring n', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 3 });
    l.tryAcquire(3);
    await l.acquire(2);
    expect(clock.now()).toBe(2000);
    expect(l.availableTokens).toBeCloseTo(0, 9);
  });

  it('serves concurrent waiters one token apart, in the order they asked', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 1 });
    l.tryAcquire();
    const served: [string, number][] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((name) => l.acquire().then(() => served.push([name, clock.now()]))),
    );
    expect(served).toEqual([
      ['a', 1000],
      ['b', 2000],
      ['c', 3000],
    ]);
  });

  it('refuses a request larger than the bucket', async () => {
    const { l } = limiter({ perMinute: 60, burst: 2 });
    expect(l.msUntilAvailable(3)).toBe(Number.POSITIVE_INFINITY);
    expect(l.tryAcquire(3)).toBe(false);
    await expect(l.acquire(3)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(l.acquire(3)).rejects.toThrow(/tokens: 3/);
  });

  it('an aborted wait rejects with the reason and takes no token', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 1 });
    l.tryAcquire();
    const controller = new AbortController();
    const reason = new Error('gave up');
    clock.schedule(400, () => controller.abort(reason));
    await expect(l.acquire(1, controller.signal)).rejects.toBe(reason);
    expect(clock.now()).toBe(400);
    expect(clock.pending).toBe(0);
    await clock.sleep(600);
    // The token that refilled meanwhile is still there.
    expect(l.tryAcquire()).toBe(true);
  });

  it('a pre-aborted signal rejects without taking an available token', async () => {
    const { l } = limiter({ perMinute: 60, burst: 1 });
    const reason = new Error('already');
    await expect(l.acquire(1, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(l.availableTokens).toBe(1);
  });
});

describe('RateLimiter refund and coolDown', () => {
  it('refund gives tokens back, never above the burst', () => {
    const { l } = limiter({ perMinute: 60, burst: 3 });
    l.tryAcquire(2);
    l.refund();
    expect(l.availableTokens).toBe(2);
    l.refund(5);
    expect(l.availableTokens).toBe(3);
  });

  it('coolDown hands out nothing for its duration, then restarts from an empty bucket', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 5 });
    l.coolDown(5000);
    expect(l.coolingUntil).toBe(5000);
    expect(l.availableTokens).toBe(0);
    expect(l.tryAcquire()).toBe(false);
    await clock.sleep(4999);
    expect(l.tryAcquire()).toBe(false);
    await clock.sleep(1);
    // Cooldown over, but the bucket restarts empty: no burst into the same wall.
    expect(l.availableTokens).toBe(0);
    expect(l.tryAcquire()).toBe(false);
    await l.acquire();
    expect(clock.now()).toBe(6000);
  });

  it('acquire started during a cooldown resolves one refill period after it ends', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 5 });
    clock.schedule(100, () => l.coolDown(2000));
    await clock.sleep(100);
    await l.acquire();
    expect(clock.now()).toBe(3100);
  });

  it('msUntilAvailable during a cooldown counts the cooldown and the refill after it', () => {
    // coolDown restarts from an empty bucket at the end of the cooldown, so tryAcquire can first
    // succeed at end + 1/rate. msUntilAvailable promises "ms until tryAcquire can succeed".
    const { l } = limiter({ perMinute: 60, burst: 5 });
    l.coolDown(5000);
    expect(l.msUntilAvailable()).toBe(6000);
  });

  it('a shorter coolDown does not shorten a running one; a longer one extends it', async () => {
    const { l, clock } = limiter({ perMinute: 60, burst: 1 });
    l.coolDown(3000);
    l.coolDown(1000);
    expect(l.coolingUntil).toBe(3000);
    await clock.sleep(500);
    l.coolDown(4000);
    expect(l.coolingUntil).toBe(4500);
    await l.acquire();
    expect(clock.now()).toBe(5500);
  });
});

describe('RateLimiter option validation', () => {
  it('names the field and shows the bad value', () => {
    expect(() => new RateLimiter({ perMinute: -1 })).toThrow(InvalidOptionError);
    try {
      new RateLimiter({ perMinute: -1 });
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'INVALID_OPTION', name: 'InvalidOptionError' });
      expect((err as Error).message).toContain('rate.perMinute');
      expect((err as Error).message).toContain('-1');
    }
  });

  it.each([
    [{ perMinute: 0 }, 'rate.perMinute', '0'],
    [{ perMinute: Number.NaN }, 'rate.perMinute', 'NaN'],
    [{ perMinute: Number.POSITIVE_INFINITY }, 'rate.perMinute', 'Infinity'],
    [{ perMinute: '60' as unknown as number }, 'rate.perMinute', '"60"'],
    [{ perMinute: 60, burst: 0 }, 'rate.burst', '0'],
    [{ perMinute: 60, burst: 1.5 }, 'rate.burst', '1.5'],
    [{ perMinute: 60, burst: -3 }, 'rate.burst', '-3'],
  ])('rejects %o naming %s and %s', (limit, fieldName, shown) => {
    expect(() => new RateLimiter(limit)).toThrow(InvalidOptionError);
    expect(() => new RateLimiter(limit)).toThrow(`invalid option ${fieldName}: ${shown} (expected`);
  });

  it('rejects a missing limit object', () => {
    expect(() => new RateLimiter(null as unknown as RateLimit)).toThrow(
      /invalid option rate: null/,
    );
  });

  it('accepts fractional per-minute rates', async () => {
    const { l, clock } = limiter({ perMinute: 0.5 });
    l.tryAcquire();
    await l.acquire();
    expect(clock.now()).toBe(120_000);
  });
});

describe('RateLimiterRegistry', () => {
  it('returns one bucket per key and keeps the limit of its first use', () => {
    const clock = new VirtualClock();
    const reg = new RateLimiterRegistry(clock);
    expect(reg.peek('dify:app-1')).toBeUndefined();
    const a = reg.get('dify:app-1', { perMinute: 600, burst: 10 });
    const again = reg.get('dify:app-1', { perMinute: 1, burst: 1 });
    expect(again).toBe(a);
    expect(again.perMinute).toBe(600);
    expect(again.burst).toBe(10);
    expect(reg.peek('dify:app-1')).toBe(a);
    const b = reg.get('dify:app-2', { perMinute: 60, burst: 2 });
    expect(b).not.toBe(a);
    a.tryAcquire(10);
    expect(b.availableTokens).toBe(2);
  });

  it('buckets from a registry run on its clock', async () => {
    const clock = new VirtualClock();
    const bucket = new RateLimiterRegistry(clock).get('k', { perMinute: 60 });
    bucket.tryAcquire();
    await bucket.acquire();
    expect(clock.now()).toBe(1000);
  });

  it('two runs sharing a registry share one budget', async () => {
    const clock = new VirtualClock();
    const limiters = new RateLimiterRegistry(clock);
    const starts: [string, number][] = [];
    const execute = async (task: { id: string }) => {
      starts.push([task.id, clock.now()]);
      return task.id;
    };
    const options = { clock, limiters, rate: { perMinute: 60, burst: 2 }, concurrency: 10 };
    const a = new Run(
      ['a0', 'a1', 'a2'].map((id) => ({ id, input: id })),
      { key: 'provider', execute },
      options,
    );
    const b = new Run(
      ['b0', 'b1', 'b2'].map((id) => ({ id, input: id })),
      { key: 'provider', execute },
      options,
    );
    const [ra, rb] = await Promise.all([a.start(), b.start()]);
    expect(ra.statistics.succeededTasks + rb.statistics.succeededTasks).toBe(6);
    expect(starts.map(([, at]) => at).sort((x, y) => x - y)).toEqual([
      0, 0, 1000, 2000, 3000, 4000,
    ]);
    expect(starts.slice(0, 2).map(([id]) => id)).toEqual(['a0', 'a1']);
  });

  it('runs with different target keys use different buckets', async () => {
    const clock = new VirtualClock();
    const limiters = new RateLimiterRegistry(clock);
    const starts: number[] = [];
    const execute = async () => {
      starts.push(clock.now());
    };
    const options = { clock, limiters, rate: { perMinute: 60, burst: 1 } };
    await Promise.all([
      new Run([{ input: 1 }], { key: 'x', execute }, options).start(),
      new Run([{ input: 1 }], { key: 'y', execute }, options).start(),
    ]);
    expect(starts).toEqual([0, 0]);
  });
});
