/**
 * Graceful stop of a journaled run on SIGINT / SIGTERM. See docs/store.md, "Graceful stop".
 *
 * First signal: dispatch pauses at once (`run.pause()`), in-flight attempts get up to `graceMs`
 * to settle (then they are aborted and re-queued), the journal is flushed and detached, and the
 * run is cancelled in memory only, so `run.start()` resolves and the caller can exit. The stored
 * run is never recorded as finished: it stays resumable (`interrupted` when a store is given,
 * otherwise `running`, as after a crash). A second signal aborts in-flight attempts at once.
 */

import { type Clock, RealClock } from '../core/index.js';
import type { Run } from '../core/run.js';
import type { Journal } from '../store/journal.js';
import type { Store } from '../store/port.js';

/** What emits the signals: `process`, or an EventEmitter in tests. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

/** What `onStop` is told once the stop is done. */
export interface GracefulStopInfo {
  /** The stored run's id. */
  readonly runId: string;
  /** True unless the run ended by itself during the grace period (then it is finished). */
  readonly resumable: boolean;
  /** The signal that started the stop. */
  readonly signal: NodeJS.Signals;
  /** True if in-flight attempts had to be aborted (grace period over, or a second signal). */
  readonly aborted: boolean;
  /** The journal's error, if flushing it failed (what was written before stays resumable). */
  readonly error?: unknown;
}

/** Options of `gracefulStop`. */
export interface GracefulStopOptions {
  /** How long in-flight attempts may take to settle after the first signal. @default 10_000 */
  readonly graceMs?: number;
  /** How long aborted attempts may take to hand back after the abort. @default 1_000 */
  readonly abortWaitMs?: number;
  /** @default ['SIGINT', 'SIGTERM'] */
  readonly signals?: readonly NodeJS.Signals[];
  /** Called once the journal is flushed and detached; the CLI prints the resume command and exits 130. */
  readonly onStop?: (info: GracefulStopInfo) => void | Promise<void>;
  /** Where signals come from. @default process */
  readonly process?: SignalSource;
  /** The store the journal writes to: the run is recorded there as `interrupted`. */
  readonly store?: Store;
  /** The clock of the grace timers (the run's clock in tests). @default a RealClock */
  readonly clock?: Clock;
}

/** Removes the signal listeners (a stop already under way goes on). */
export type GracefulStopDisposer = () => void;

const FINISHED = new Set(['completed', 'cancelled', 'stopped']);

/** Resolves true if `promise` settles before `ms` on `clock`, false otherwise. */
function within(clock: Clock, ms: number, promise: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = clock.schedule(ms, () => resolve(false));
    promise.then(
      () => {
        cancel();
        resolve(true);
      },
      () => {
        cancel();
        resolve(true);
      },
    );
  });
}

/**
 * Installs the signal handlers of a graceful stop for a journaled run. Call the returned
 * function to remove them (after the run ended).
 *
 * @example
 * ```ts
 * const journal = await attachJournal(prepared.run, store, { plan: snapshotPlan(manifest) });
 * const dispose = gracefulStop(prepared.run, journal, {
 *   store,
 *   onStop: async ({ runId }) => {
 *     await store.close();
 *     console.error(`stopped; resume with: stride resume ${runId}`);
 *     process.exit(130);
 *   },
 * });
 * await prepared.run.start();
 * await journal.closed;
 * dispose();
 * ```
 */
export function gracefulStop<I, O>(
  run: Run<I, O>,
  journal: Journal,
  options: GracefulStopOptions = {},
): GracefulStopDisposer {
  const r = run as Run<unknown, unknown>;
  const graceMs = options.graceMs ?? 10_000;
  const abortWaitMs = options.abortWaitMs ?? 1_000;
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const source: SignalSource = options.process ?? process;
  const clock = options.clock ?? new RealClock();
  let stopping = false;
  let hurry: () => void = () => {};
  const hurried = new Promise<void>((resolve) => {
    hurry = resolve;
  });
  let aborted = false;

  const abortInFlight = (): void => {
    if (aborted) return;
    aborted = true;
    // Held, never released: the run ends (cancelled) once the journal is detached.
    r.hold('signal', { by: 'a second signal', abortInFlight: true });
  };

  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    // No attempt starts from here on. A hold of its own: nobody else's resume() (a user, a
    // drained consumer) can restart dispatch during the stop.
    r.hold('signal', { by: signal });
    const settled = await within(clock, graceMs, Promise.race([r.onIdle(), hurried]));
    if (!settled || aborted || r.progress.running - r.progress.zombiesRunning > 0) {
      abortInFlight();
      await within(clock, abortWaitMs, r.onIdle());
    }
    let error: unknown;
    const finished = FINISHED.has(r.status);
    try {
      if (finished) {
        await journal.closed; // it ended by itself: its end is recorded
      } else {
        await journal.flush();
        // Recorded before the detach, which gives the run's lock back: no other process can
        // take the run over between the two and have this one's `interrupted` written over it.
        await options.store?.finishRun(journal.runId, {
          status: 'interrupted',
          finishedAt: clock.wallTime(),
          statistics: undefined,
        });
        await journal.detach(); // the journal's own end is not recorded: the run stays resumable
      }
    } catch (err) {
      error = err;
    }
    // Let `run.start()` resolve; the journal no longer listens, so nothing of it is stored.
    if (!finished) r.cancel({ message: `stopped by ${signal}` });
    await options.onStop?.({
      runId: journal.runId,
      resumable: !finished,
      signal,
      aborted,
      ...(error === undefined ? {} : { error }),
    });
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      abortInFlight();
      hurry();
      return;
    }
    stopping = true;
    // onStop's own failure is the caller's: surface it as an unhandled rejection would.
    stop(signal).catch((err: unknown) => {
      queueMicrotask(() => {
        throw err;
      });
    });
  };
  for (const s of signals) source.on(s, onSignal);
  return () => {
    for (const s of signals) source.off(s, onSignal);
  };
}
