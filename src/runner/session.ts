/**
 * The run session: the one layer between the engine and a face (the CLI, a library user, the
 * dashboard's driving process) that owns a run's life for test plans and action plans alike.
 * See docs/architecture.md, "The run session".
 *
 * A plan kind plugs in as a `PlanAdapter`: it builds its run and asks the session to open it
 * (`runner/run-life.ts`: the session creates or reopens the run in the store, loads the one
 * resume state, journals maybe-sent and redelivered attempts, holds the run while Redis is
 * unreachable, and attaches the journal, which takes the run's lock, publishes the live state
 * and takes outside control requests), then hands the started run to the session. The session then owns, the same way for
 * both kinds: the signals (SIGINT/SIGTERM graceful stop, then force), pause as counted holds
 * (who holds the run and why), and the output of finished cases to the reports with backpressure.
 */

import {
  type Hold,
  type HoldInfo,
  isTerminal,
  type TaskResult,
  type TerminalStatus,
} from '../core/index.js';
import type { Run } from '../core/run.js';
import type { TestResult } from '../report/convert.js';
import type { Journal } from '../store/journal.js';
import type { Store } from '../store/port.js';
import type { DurableRunResult, DurableSession } from './durable.js';
import { type GracefulStopInfo, gracefulStop, type SignalSource } from './graceful.js';
import { openRunLife, type RunLife, type RunOpener, type RunOpening } from './run-life.js';

/** A run as a plan adapter hands it to the session: journaled, not started yet. */
export interface StartedRun {
  /** The stored run's id. */
  readonly runId: string;
  /** The engine's run (test cases or action steps). */
  // biome-ignore lint/suspicious/noExplicitAny: the session serves runs of any input and output
  readonly run: Run<any, any>;
  /** The journal writing the run into the store. */
  readonly journal: Journal;
  /**
   * Converts a finished case into its report result, or undefined for a plan kind whose reports
   * are written from the journal after the run (action plans: a few steps, read once).
   */
  readonly toResult?: (result: TaskResult<never, never>) => TestResult;
}

/**
 * One plan kind's way to run under a session: build its run, have the session open it in the
 * store with `open` (create or reopen it, load the one resume state, journal the maybe-sent
 * attempts; `RunLife.attach` attaches the journal), call `onStart` once right before the run
 * starts, and resolve when it ended. `runner/durable.ts` (test plans: run, resume, rerun) and
 * the action `Executor` (`actions/adapter.ts`) are the two.
 *
 * @example
 * ```ts
 * const adapter: PlanAdapter<ExecutionResult> = {
 *   kind: 'action',
 *   start: (onStart, open) =>
 *     executor.executePlan(plan, {
 *       open,
 *       onStart: ({ run, journal }) => journal && onStart({ runId: plan.id, run, journal }),
 *     }),
 * };
 * ```
 */
export interface PlanAdapter<R> {
  readonly kind: 'test' | 'action';
  start(onStart: (started: StartedRun) => void, open: RunOpener): Promise<R>;
}

/** Where the session sends each finished case (a `ReportFanout`, or anything with `add`). */
export interface ResultSink {
  /** Takes one finished case; `to` is its terminal state. Awaited in order, one at a time. */
  add(result: TestResult, to: TerminalStatus): Promise<void>;
}

/** Options of a `RunSession`. */
export interface RunSessionOptions {
  /** The store the adapter journals into (a graceful stop records `interrupted` there). */
  readonly store: Store;
  /**
   * Where SIGINT/SIGTERM come from, or `false` for no graceful stop (a library run that handles
   * signals itself). @default process
   */
  readonly signals?: SignalSource | false;
  /** How long in-flight work may settle after the first signal. @default 10_000 */
  readonly graceMs?: number;
  /** Called once a graceful stop flushed the journal (the CLI prints the resume command). */
  readonly onStop?: (info: GracefulStopInfo) => void | Promise<void>;
  /** Called once the run is journaled, right before it starts (a face's progress line). */
  readonly onStart?: (started: StartedRun) => void;
  /**
   * Opens the sink of finished cases once the run is journaled (and so locked: a session
   * refused with RUN_LOCKED opens nothing). Its failure is `RunSession.outputError`.
   */
  readonly output?: (started: StartedRun) => Promise<ResultSink>;
  /**
   * Finished cases waiting for the sink before the session holds the run (`backpressure`);
   * the hold is released at half of it. @default 2_000
   */
  readonly highWaterMark?: number;
}

/** How a session's drive ended (a failure of the run or its journal rejects instead). */
export interface SessionOutcome<R> {
  /** What the adapter resolved with. */
  readonly result: R;
  /** Set when a signal stopped the run before its end: the stored run stays resumable. */
  readonly interrupted?: GracefulStopInfo;
}

/** A hold asked for before the run started: taken when it starts (unless released first). */
interface PendingHold {
  readonly reason: string;
  readonly by: string | undefined;
  taken: Hold | undefined;
  released: boolean;
}

/**
 * One run's life for either plan kind: the adapter journals it, the session owns signals,
 * holds, the output of finished cases with backpressure, and knows who holds the run paused.
 * The live state other processes read (counts, in flight, holds, throughput) and the outside
 * control requests are published by the journal the adapter attached (`store/live.ts`).
 *
 * @example
 * ```ts
 * const session = new RunSession(testPlan((hooks) => history.run(manifest, hooks)), { store });
 * const hold = session.hold('user', 'me'); // paused from its first moment
 * setTimeout(() => hold.release(), 1_000);
 * const { result, interrupted } = await session.drive();
 * ```
 */
export class RunSession<R> {
  #started: StartedRun | undefined;
  readonly #pending = new Set<PendingHold>();
  #writing: Promise<void> = Promise.resolve();
  #waiting = 0;
  #outputError: unknown;
  #driven = false;
  #life: RunLife | undefined;

  constructor(
    private readonly adapter: PlanAdapter<R>,
    private readonly options: RunSessionOptions,
  ) {}

  /** The plan kind of this session. */
  get kind(): 'test' | 'action' {
    return this.adapter.kind;
  }

  /** The run once it is journaled (undefined before, or if it was refused). */
  get started(): StartedRun | undefined {
    return this.#started;
  }

  /**
   * The run as the session opened it in the store (undefined before): its resume state
   * (`prior`, a resume only), loaded once for either plan kind.
   */
  get life(): RunLife | undefined {
    return this.#life;
  }

  /** Why the output could not be opened, if it could not (each format's own: the sink's). */
  get outputError(): unknown {
    return this.#outputError;
  }

  /**
   * Holds the run paused for `reason` (`user`, `dashboard`, `backpressure`, ...) until the hold
   * is released; the run goes on once no hold is left, so owners never resume each other's
   * pause. Asked before the run starts, the hold is taken as it starts.
   */
  hold(reason: string, by?: string): Hold {
    const started = this.#started;
    if (started !== undefined) return started.run.hold(reason, by === undefined ? {} : { by });
    const pending: PendingHold = { reason, by, taken: undefined, released: false };
    this.#pending.add(pending);
    return {
      reason,
      release: () => {
        pending.released = true;
        this.#pending.delete(pending);
        pending.taken?.release();
      },
    };
  }

  /** Who holds the run paused now, oldest first (before it starts: the holds asked for). */
  holders(): HoldInfo[] {
    const started = this.#started;
    if (started !== undefined) return started.run.holds();
    return [...this.#pending].map((p) => ({
      reason: p.reason,
      ...(p.by === undefined ? {} : { by: p.by }),
      since: 0,
    }));
  }

  /**
   * Runs the plan through its adapter to its end, or until a signal stops it (then
   * `interrupted` says how). Resolves after every finished case reached the output.
   */
  async drive(): Promise<SessionOutcome<R>> {
    if (this.#driven) throw new Error('a RunSession drives its run once');
    this.#driven = true;
    let interrupted: GracefulStopInfo | undefined;
    let dispose: () => void = () => {};
    const onStart = (started: StartedRun): void => {
      this.#started = started;
      for (const p of this.#pending) {
        p.taken = started.run.hold(p.reason, p.by === undefined ? {} : { by: p.by });
      }
      this.#pending.clear();
      this.options.onStart?.(started);
      this.feedOutput(started);
      const signals = this.options.signals;
      if (signals === false) return;
      dispose = gracefulStop(started.run, started.journal, {
        store: this.options.store,
        graceMs: this.options.graceMs ?? 10_000,
        ...(signals === undefined ? {} : { process: signals }),
        onStop: async (info) => {
          if (info.resumable) interrupted = info;
          await this.options.onStop?.(info);
        },
      });
    };
    // The session creates or reopens the run, for both plan kinds (one resume path).
    const open: RunOpener = async (opening: RunOpening) => {
      if (this.#life !== undefined) throw new Error('a RunSession opens its run once');
      this.#life = await openRunLife(this.options.store, opening);
      return this.#life;
    };
    try {
      const result = await this.adapter.start(onStart, open);
      return interrupted === undefined ? { result } : { result, interrupted };
    } finally {
      dispose();
      await this.#writing;
    }
  }

  /** Feeds each finished case to the output, holding the run while the output lags. */
  private feedOutput(started: StartedRun): void {
    const open = this.options.output;
    const convert = started.toResult;
    if (open === undefined || convert === undefined) return;
    let sink: ResultSink | undefined;
    this.#writing = open(started).then(
      (opened) => {
        sink = opened;
      },
      (err: unknown) => {
        this.#outputError = err;
      },
    );
    const high = this.options.highWaterMark ?? 2_000;
    let lagging: Hold | undefined;
    started.run.on('transition', (t) => {
      if (!isTerminal(t.to) || !('result' in t)) return;
      const result = convert(t.result as TaskResult<never, never>);
      this.#waiting++;
      if (this.#waiting >= high && lagging === undefined) {
        lagging = started.run.hold('backpressure', { by: 'the report files' });
      }
      this.#writing = this.#writing.then(async () => {
        if (sink !== undefined) await sink.add(result, t.to);
        this.#waiting--;
        if (lagging !== undefined && this.#waiting <= high / 2) {
          lagging.release();
          lagging = undefined;
        }
      });
    });
  }
}

/**
 * The test-plan adapter: `start` is a durable call (`runDurable`, `resume`, `rerun`, or their
 * `RunHistory` faces) given the session's hooks. Results are not kept in memory: the session
 * streams each one to its output.
 *
 * @example
 * ```ts
 * const session = new RunSession(
 *   testPlan((hooks) => history.resume(runId, hooks)),
 *   { store: history.store },
 * );
 * ```
 */
export function testPlan(
  start: (hooks: {
    onStart: (session: DurableSession) => void;
    retainResults: false;
    open: RunOpener;
  }) => Promise<DurableRunResult>,
): PlanAdapter<DurableRunResult> {
  return {
    kind: 'test',
    start: (onStart, open) =>
      start({
        retainResults: false,
        open,
        onStart: (s) =>
          onStart({
            runId: s.runId,
            run: s.run,
            journal: s.journal,
            toResult: (r) => s.toTestResult(r),
          }),
      }),
  };
}
