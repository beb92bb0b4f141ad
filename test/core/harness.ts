/**
 * Test-only helpers for the property and pitfall suites: detecting a run that can make no more
 * progress on a VirtualClock (instead of waiting on wall time), and counting windows of starts.
 * Also `runOnClock`, for runs over real sockets whose timers must not race the real work.
 */

import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { RunEvents, VirtualClock } from '../../src/core/index.js';

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

/**
 * Polls `predicate` (every 5 ms, up to `limitMs` of real time) and resolves once it holds. For
 * states reached through real I/O (a socket, a child process); the limit only ends a test that
 * would otherwise hang, it never decides an outcome.
 */
export async function until(
  predicate: () => boolean,
  what: string,
  limitMs = 20_000,
): Promise<void> {
  const end = Date.now() + limitMs;
  for (;;) {
    if (predicate()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Whether `signal` waits, not yet delivered, for process `pid` (Linux: /proc/<pid>/status). */
export function signalPending(pid: number, signal: NodeJS.Signals): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const bit = 1n << BigInt(constants.signals[signal] - 1);
  return ['SigPnd', 'ShdPnd'].some((field) => {
    const mask = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
    if (mask === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
    return (BigInt(`0x${mask}`) & bit) !== 0n;
  });
}

/**
 * Sends `signal` to a child process twice, as two signals: pending signals of one kind do not
 * queue, so two sent back to back can reach the process as one (a "second Ctrl-C" test then
 * waits out the first one's grace period instead). The second is sent once the kernel has
 * delivered the first, whatever the load.
 *
 * @example
 * ```ts
 * await signalTwice(child, 'SIGINT');
 * expect(await child.exited).toBe(130);
 * ```
 */
export async function signalTwice(
  child: { readonly pid?: number | undefined; kill(signal: NodeJS.Signals): unknown },
  signal: NodeJS.Signals,
): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) throw new Error('the child has no process id');
  child.kill(signal);
  await until(() => !signalPending(pid, signal), `the first ${signal} to be delivered`);
  child.kill(signal);
}

/** The part of a `Run` that `runOnClock` drives. */
export interface ClockDrivenRun<R> {
  on<K extends keyof RunEvents>(event: K, listener: RunEvents[K]): () => void;
  start(): Promise<R>;
  readonly progress: { readonly running: number };
}

/**
 * Runs `run` (built with `clock`, a VirtualClock without auto-advance) to its end over real I/O,
 * moving the clock 1 ms at a time, and only when `ready(running)` holds and no attempt whose
 * outcome is already decided still holds its slot. `running` maps each task holding a slot to its
 * attempt number; `ready` says that the real work that must happen before a timer fires (a
 * request reaching the server, a first event read) has happened. So a timeout, backoff or rate
 * wait never decides what a server's answer could have decided, whatever the machine's speed, and
 * an aborted attempt always settles before time moves again (it never turns zombie on virtual
 * time). Steps of 1 ms, because `advance` lets work start before it fires timers: an attempt
 * started then has a deadline past the step, so only attempts judged by `ready` can expire.
 */
export async function runOnClock<R>(
  run: ClockDrivenRun<R>,
  clock: VirtualClock,
  ready: (running: ReadonlyMap<string, number>) => boolean,
): Promise<R> {
  const running = new Map<string, number>();
  run.on('transition', (e) => {
    if (e.to === 'running') running.set(e.taskId, e.attempt);
    else if (e.from === 'running') running.delete(e.taskId);
  });
  let finished = false;
  const done = run.start().finally(() => {
    finished = true;
  });
  while (!finished) {
    await until(
      () => finished || (run.progress.running === running.size && ready(running)),
      'the run to wait on its clock',
    );
    if (!finished) await clock.advance(1);
  }
  return done;
}
