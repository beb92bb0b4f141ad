/**
 * The Clock port: the only way the engine reads time or waits. One clock per run; tests inject a
 * VirtualClock so timing logic runs deterministically with no wall-clock sleeps.
 */

import { CancelledError } from './errors.js';

/** Cancels a scheduled callback; calling it twice is harmless. */
export type CancelTimer = () => void;

/**
 * The Clock port.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock();
 * const t0 = clock.now();
 * await clock.sleep(5_000); // returns at once in virtual time
 * clock.now() - t0; // 5000
 * ```
 */
export interface Clock {
  /** Milliseconds, monotonic, possibly fractional. Only differences are meaningful. */
  now(): number;
  /** Wall-clock epoch milliseconds, for timestamps shown to people and stored in journals. */
  wallTime(): number;
  /** Resolves after `ms`; rejects with the signal's reason if it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Calls `fn` after `ms`. Cheaper than `sleep` on hot paths (no promise, no listener): the
   * scheduler uses it for per-attempt timeouts and wake-ups.
   */
  schedule(ms: number, fn: () => void): CancelTimer;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new CancelledError();
}

/** Sleep built on `schedule`, shared by both clocks so abort handling is written once. */
function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      cancel();
      reject(abortReason(signal!));
    };
    const cancel = clock.schedule(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The real clock: `performance.now()` for intervals, `Date.now()` for timestamps. */
export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }

  wallTime(): number {
    return Date.now();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  schedule(ms: number, fn: () => void): CancelTimer {
    // Node may fire a timer up to 1 ms early relative to performance.now(); round up so a
    // wake-up for "a token is available in 3.2 ms" never arrives before the token.
    const handle = setTimeout(fn, Math.max(0, Math.ceil(ms)));
    return () => clearTimeout(handle);
  }
}

interface VirtualTimer {
  at: number;
  seq: number;
  fn: (() => void) | undefined;
}

export interface VirtualClockOptions {
  /** Starting value of `now()`. @default 0 */
  start?: number;
  /** Epoch milliseconds that `wallTime()` reports at `start`. @default 1_700_000_000_000 */
  epoch?: number;
  /**
   * Advance time by itself once every piece of work waits on a timer (detected when the
   * microtask queue has drained and a macrotask turn passed with nothing else to do).
   * Turn off to drive time by hand with `advance()` / `runAll()`. @default true
   */
  autoAdvance?: boolean;
  /** Called whenever something starts waiting: tests use it to trace "about to wait N ms". */
  onSchedule?: (ms: number, at: number) => void;
}

/**
 * A deterministic clock. Time only moves when every piece of work is waiting on one of its timers
 * (auto-advance), or when a test calls `advance()`. Timers due at the same instant fire in the
 * order they were scheduled.
 *
 * Limitation (by design): it cannot see real I/O. Work awaiting a socket is invisible to it, and
 * time may jump while that work is pending. Tests that use real sockets use the RealClock.
 */
export class VirtualClock implements Clock {
  private current: number;
  private readonly epoch: number;
  private readonly start: number;
  private readonly heap: VirtualTimer[] = [];
  private seq = 0;
  private live = 0;
  private tickQueued = false;
  private readonly autoAdvance: boolean;
  private readonly onSchedule: ((ms: number, at: number) => void) | undefined;

  constructor(options: VirtualClockOptions = {}) {
    this.start = options.start ?? 0;
    this.current = this.start;
    this.epoch = options.epoch ?? 1_700_000_000_000;
    this.autoAdvance = options.autoAdvance ?? true;
    this.onSchedule = options.onSchedule;
  }

  now(): number {
    return this.current;
  }

  wallTime(): number {
    return this.epoch + (this.current - this.start);
  }

  /** Number of timers still waiting. */
  get pending(): number {
    return this.live;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  schedule(ms: number, fn: () => void): CancelTimer {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: VirtualTimer = { at: this.current + delay, seq: this.seq++, fn };
    this.push(timer);
    this.live++;
    this.onSchedule?.(delay, timer.at);
    this.queueTick();
    return () => {
      if (timer.fn !== undefined) {
        timer.fn = undefined;
        this.live--;
      }
    };
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      await settle();
      const next = this.peekLive();
      if (next === undefined || next.at > target) break;
      this.fire(next);
    }
    this.current = Math.max(this.current, target);
    await settle();
  }

  /** Fires timers until none is left (or `limit` fired, to stop runaway loops). */
  async runAll(limit = 1_000_000): Promise<void> {
    for (let i = 0; i < limit; i++) {
      await settle();
      const next = this.peekLive();
      if (next === undefined) return;
      this.fire(next);
    }
    throw new Error(`VirtualClock.runAll: more than ${limit} timers fired`);
  }

  private queueTick(): void {
    if (!this.autoAdvance || this.tickQueued) return;
    this.tickQueued = true;
    setImmediate(this.tick);
  }

  // setImmediate runs after the microtask queue drains; a second turn lets work started by
  // I/O-free callbacks of the first turn schedule its own timers before time moves.
  private readonly tick = (): void => {
    setImmediate(() => {
      this.tickQueued = false;
      const next = this.peekLive();
      if (next === undefined) return;
      this.fire(next);
      if (this.live > 0) this.queueTick();
    });
  };

  private fire(timer: VirtualTimer): void {
    this.popTop();
    if (timer.at > this.current) this.current = timer.at;
    const fn = timer.fn;
    timer.fn = undefined;
    this.live--;
    fn?.();
  }

  private peekLive(): VirtualTimer | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (top.fn !== undefined) return top;
      this.popTop();
    }
    return undefined;
  }

  private less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(t: VirtualTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private popTop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
