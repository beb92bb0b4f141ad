/**
 * A driven run seen and steered from outside its process (the dashboard, a script, another
 * terminal), through the journal's own file: no port, no daemon.
 *
 * - **Live state.** The session driving a run writes a small `LiveState` (counts of this
 *   session, in flight, concurrency, retries, rate waits, holds, recent throughput) about once a
 *   second; any process reads it with `Store.readLive(runId)` without scanning results. The
 *   run's cumulative counts are on its run record (`getRun`), updated with every journal batch.
 * - **Outside control.** Another process asks with `Store.requestControl(runId, action, by)`;
 *   the session polls every `pollMs` (250 ms) for requests it has not taken, applies them in
 *   order and records the outcome and when: pause takes a `control` hold (released only by a
 *   control resume, never by the user's own resume or a drained consumer), cancel cancels the
 *   run like Ctrl-C's second stage would not: it ends `cancelled`, not resumable-interrupted.
 *
 * Decision (issue #15): a control table polled at a few hundred milliseconds in the same SQLite
 * file works on one machine and on a shared disk, needs no port, and survives either side's
 * restart; a socket would need discovery and a second security story. A request acts within
 * `pollMs` plus one tick.
 */

import { hostname } from 'node:os';
import type { Clock } from '../core/clock.js';
import type { Hold, HoldInfo, RunStatus } from '../core/model.js';
import type { PaceState } from '../core/pace.js';
import type { Run } from '../core/run.js';
import type { Store } from './port.js';

/** What another process may ask of a driven run. */
export type ControlAction = 'pause' | 'resume' | 'cancel';

/** A control request as stored. */
export interface ControlRequest {
  readonly id: number;
  readonly runId: string;
  readonly action: ControlAction;
  /** Who asked (e.g. `dashboard 127.0.0.1`, `cli pid 4242`). */
  readonly by: string;
  /** Epoch milliseconds. */
  readonly at: number;
  /** When the driving session took it (epoch ms), or undefined while it waits. */
  readonly takenAt: number | undefined;
  /** What the session did (`paused`, `already paused`, `resumed`, `cancelled`, ...). */
  readonly outcome: string | undefined;
}

/** Counts of the driving session (a resumed run's earlier sessions are on its run record). */
export interface SessionCounts {
  /** Cases that reached a terminal state in this session. */
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timeout: number;
  readonly error: number;
  readonly cancelled: number;
  /** Attempts started. */
  readonly attempts: number;
  /** Attempts after a case's first. */
  readonly retries: number;
  /** Times the head task waited for a rate token. */
  readonly rateWaits: number;
  /** Times a 429 or Retry-After cooled a bucket. */
  readonly coolDowns: number;
  readonly tokens: number;
  /** The known costs' sum: partial when `costUnknown` > 0, never the session's cost then. */
  readonly cost: number;
  /** Cases of this session whose cost is unknown (usage without a price, issue #18). */
  readonly costUnknown: number;
}

/** One sample of the throughput history (for a chart). */
export interface LiveSample {
  /** Epoch milliseconds. */
  readonly at: number;
  /** Cases done in this session so far. */
  readonly done: number;
  readonly inFlight: number;
  /**
   * Latency (the execution time, ms) of the cases that ended with an answer or an error since
   * the previous sample: median, 90th percentile and how many. Absent when none ended (unknown,
   * not 0); cancelled cases are left out (they were not answered).
   */
  readonly latency?: { readonly p50: number; readonly p90: number; readonly n: number };
}

/** The live state of a driven run: plain JSON data. */
export interface LiveState {
  readonly runId: string;
  /** The driving process. */
  readonly pid: number;
  readonly host: string;
  /** The engine's status (`running`, `pausing`, `paused`, `stopping`, or how it ended). */
  readonly status: RunStatus;
  /** Who holds it paused, oldest first (`since` in epoch ms). */
  readonly holds: readonly HoldInfo[];
  /** When this session started, epoch ms. */
  readonly sessionStartedAt: number;
  /** Cases the session has read from the plan so far (a streamed plan grows as it is read). */
  readonly seen: number;
  readonly counts: SessionCounts;
  readonly inFlight: number;
  /** The effective concurrency (the adaptive pace may hold it under the plan's). */
  readonly concurrency: number;
  /**
   * The adaptive pace: the plan's concurrency (`ceiling`), the adapted request rate per minute
   * (absent while the pace does not limit the rate) and its last change in words. The history
   * is `Store.paceChanges`.
   */
  readonly pace: {
    readonly adaptive: boolean;
    readonly ceiling: number;
    readonly ratePerMinute?: number;
    readonly lastChange?: string;
  };
  /** Cases done per second over the last `windowMs` (undefined before the first window). */
  readonly throughput: { readonly windowMs: number; readonly perSecond: number | undefined };
  /** Up to the last 120 samples, oldest first. */
  readonly samples: readonly LiveSample[];
}

/** A stored live state. */
export interface LiveRecord {
  readonly runId: string;
  /** When the session last wrote it, epoch ms: a row that stopped updating is a dead session. */
  readonly updatedAt: number;
  readonly state: LiveState;
}

/** Options of `attachLive`. */
export interface LiveOptions {
  /** How often to look for control requests. @default 250 */
  readonly pollMs?: number;
  /** How often to write the live state. @default 1000 */
  readonly everyMs?: number;
  /** The run's clock: dates the state in epoch ms as the journal dates the run. */
  readonly clock: Clock;
}

function paceOf(p: PaceState, lastChange: string | undefined): LiveState['pace'] {
  return {
    adaptive: p.adaptive,
    ceiling: p.ceiling,
    ...(p.ratePerMinute === undefined ? {} : { ratePerMinute: p.ratePerMinute }),
    ...(lastChange === undefined ? {} : { lastChange }),
  };
}

const SAMPLES = 120;

/** Median and 90th percentile (nearest rank) of a sample's latencies; undefined when none. */
export function latencyOf(xs: number[]): LiveSample['latency'] {
  if (xs.length === 0) return undefined;
  const s = xs.sort((a, b) => a - b);
  const rank = (q: number) => s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
  return { p50: rank(0.5), p90: rank(0.9), n: s.length };
}
const ENDED = new Set<RunStatus>(['completed', 'cancelled', 'stopped']);
const WINDOW_MS = 10_000;

/** What `attachLive` returns: stops polling and writes the final state. */
export interface LiveSession {
  stop(): void;
}

/**
 * Publishes a run's live state and applies control requests from other processes while it runs.
 * `attachJournal` calls it; it stops by itself when the run is done.
 */
export function attachLive(
  run: Run<unknown, unknown>,
  store: Store,
  runId: string,
  options: LiveOptions,
): LiveSession {
  const { clock } = options;
  const pollMs = options.pollMs ?? 250;
  const everyMs = options.everyMs ?? 1000;
  const epoch = clock.wallTime() - clock.now();
  const startedAt = clock.wallTime();
  let retries = 0;
  let rateWaits = 0;
  let coolDowns = 0;
  let concurrency = run.concurrency;
  let lastPaceChange: string | undefined;
  let controlHold: Hold | undefined;
  let stopped = false;
  let lastWrite = Number.NEGATIVE_INFINITY;
  let lastStatus: RunStatus | undefined;
  const samples: LiveSample[] = [];
  // Latencies of the cases ended since the last sample: at most one second of them.
  let latencies: number[] = [];
  const off = [
    run.on('transition', (t) => {
      if (t.to === 'running' && t.attempt > 1) retries++;
      else if ('result' in t && t.to !== 'cancelled') {
        latencies.push(t.result.executionTimeMs);
      }
    }),
    run.on('rateLimited', () => {
      rateWaits++;
    }),
    run.on('coolDown', () => {
      coolDowns++;
    }),
    run.on('concurrency', (e) => {
      concurrency = e.to;
    }),
    run.on('paceChanged', (c) => {
      lastPaceChange = c.message;
    }),
    // A change of state is worth showing at once, not at the next second.
    run.on('paused', () => publish()),
    run.on('resumed', () => publish()),
    run.on('done', () => stop()),
  ];

  const state = (): LiveState => {
    const p = run.progress;
    const done = p.settled;
    const now = clock.wallTime();
    const latency = latencyOf(latencies);
    latencies = [];
    samples.push({
      at: now,
      done,
      inFlight: p.running,
      ...(latency === undefined ? {} : { latency }),
    });
    if (samples.length > SAMPLES) samples.shift();
    const from = samples.find((s) => s.at >= now - WINDOW_MS);
    const span = from === undefined ? 0 : now - from.at;
    return {
      runId,
      pid: process.pid,
      host: hostname(),
      status: run.status,
      holds: run.holds().map((h) => ({ ...h, since: h.since + epoch })),
      sessionStartedAt: startedAt,
      seen: p.total,
      counts: {
        done,
        succeeded: p.byStatus.succeeded,
        failed: p.byStatus.failed,
        timeout: p.byStatus.timeout,
        error: p.byStatus.error,
        cancelled: p.byStatus.cancelled,
        attempts: p.attempts,
        retries,
        rateWaits,
        coolDowns,
        tokens: p.tokens,
        cost: p.cost,
        costUnknown: p.costUnknown,
      },
      inFlight: p.running,
      concurrency,
      pace: paceOf(run.pace, lastPaceChange),
      throughput: {
        windowMs: WINDOW_MS,
        perSecond:
          from === undefined || span < 1000 ? undefined : ((done - from.done) * 1000) / span,
      },
      samples: [...samples],
    };
  };

  const publish = (): void => {
    lastWrite = Date.now();
    lastStatus = run.status;
    try {
      store.writeLive(runId, state());
    } catch {
      // A busy or failing disk: the journal reports its own failure; the next write tries again.
    }
  };

  const apply = (req: ControlRequest): string => {
    if (stopped || ENDED.has(run.status)) return `ignored: the run already ended (${run.status})`;
    switch (req.action) {
      case 'pause':
        if (controlHold !== undefined) return 'already paused';
        controlHold = run.hold('control', { by: req.by });
        return 'paused';
      case 'resume': {
        if (controlHold === undefined) return 'not paused from outside';
        controlHold.release();
        controlHold = undefined;
        const others = run.holds().map((h) => h.reason);
        return others.length === 0 ? 'resumed' : `released; still held by ${others.join(', ')}`;
      }
      case 'cancel':
        run.cancel({ message: `cancelled by ${req.by}` });
        return 'cancelled';
    }
  };

  // Real timers, not the run's clock: requests come from the real world, and a poll on a
  // virtual clock would keep a test's clock busy forever.
  let timer: NodeJS.Timeout | undefined;
  const poll = (): void => {
    timer = undefined;
    if (stopped) return;
    let changed = false;
    try {
      changed = store.takeControl(runId, apply) > 0;
    } catch {
      // As above: try again at the next poll.
    }
    // pausing -> paused happens when the last attempt settles, without an event of its own.
    if (changed || run.status !== lastStatus || Date.now() - lastWrite >= everyMs) publish();
    if (!stopped) arm();
  };
  // Unref'd while the run has work of its own keeping the process up; ref'd while it is paused
  // from outside, or a paused process with nothing else to do would exit instead of waiting
  // for the resume.
  const arm = (): void => {
    timer = setTimeout(poll, pollMs);
    if (controlHold === undefined) timer.unref();
  };

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    for (const o of off) o();
    publish();
  };

  publish();
  arm();
  return { stop };
}
