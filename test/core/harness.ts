/**
 * Test-only helpers for the property and pitfall suites: detecting a run that can make no more
 * progress on a VirtualClock (instead of waiting on wall time), and counting windows of starts.
 */

import type { VirtualClock } from '../../src/core/index.js';

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export type Outcome<T> = { done: true; value: T } | { done: false };

/**
 * Waits for `promise` while the virtual clock auto-advances. Returns `{ done: false }` once the
 * clock has no timer left and the promise still has not settled after a few more macrotask turns:
 * with no real I/O involved, nothing can ever settle it (the run hangs).
 */
export async function settleOrStall<T>(
  promise: Promise<T>,
  clock: VirtualClock,
  maxTurns = 2_000_000,
): Promise<Outcome<T>> {
  let box: { value: T } | undefined;
  let failure: { error: unknown } | undefined;
  promise.then(
    (value) => {
      box = { value };
    },
    (error: unknown) => {
      failure = { error };
    },
  );
  let idle = 0;
  for (let i = 0; i < maxTurns; i++) {
    await turn();
    if (failure !== undefined) throw failure.error;
    if (box !== undefined) return { done: true, value: box.value };
    if (clock.pending === 0) {
      if (++idle >= 6) return { done: false };
    } else {
      idle = 0;
    }
  }
  throw new Error(`settleOrStall: still running after ${maxTurns} turns`);
}

/**
 * The largest number of `times` inside any closed window [s, s + w] that starts at one of the
 * times (the sliding windows where the count can peak).
 */
export function maxInWindow(times: readonly number[], w: number): { count: number; at: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = { count: 0, at: Number.NaN };
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    const s = sorted[i]!;
    if (j < i) j = i;
    while (j < sorted.length && sorted[j]! <= s + w) j++;
    if (j - i > best.count) best = { count: j - i, at: s };
  }
  return best;
}

/** The token-bucket bound on starts in a window of `w` ms: floor(burst + rate * w). */
export function windowBound(perMinute: number, burst: number, w: number): number {
  return Math.floor(burst + (perMinute / 60_000) * w + 1e-9);
}
