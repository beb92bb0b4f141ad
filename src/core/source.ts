/**
 * The task-source reader: pulls tasks from an array, an iterable or an async iterable into the
 * run, a lookahead at a time (a streamed plan is never all in memory). A source that throws ends
 * the plan there (`error`).
 */

import { type ErrorInfo, InvalidOptionError, toErrorInfo } from './errors.js';
import type { TaskSpec } from './model.js';

/** Where tasks come from: an array, any iterable, or an async iterable (streamed, never all in memory). */
export type TaskSource<I> = Iterable<TaskSpec<I>> | AsyncIterable<TaskSpec<I>>;

/** What the reader needs of the run it feeds. */
export interface ReaderHost<I> {
  /** Takes one task into the run. */
  admit(spec: TaskSpec<I>): void;
  /** Tasks read and ready to start (the lookahead bounds these). */
  waiting(): number;
  /** The run is stopping: everything left is read (each task to be cancelled). */
  stopping(): boolean;
  /** A task read asynchronously may start now. */
  pump(): void;
  /** An asynchronous read ended (a batch read, the end, or a failure). */
  changed(): void;
}

function isAsyncIterable<T>(x: unknown): x is AsyncIterable<T> {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === 'function'
  );
}

/** Reads a TaskSource into a run. */
export class TaskReader<I> {
  /** The source has nothing more (ended, or failed). */
  done = false;
  /** The error that ended the source early, if any. */
  error: ErrorInfo | undefined = undefined;
  /** The plan's length when known up front (an array), else 0. */
  readonly plannedTotal: number = 0;
  /** An array whose tasks have priorities: read whole, so they order the whole plan. */
  readonly hasPriorities: boolean = false;
  private readonly syncIterator: Iterator<TaskSpec<I>> | undefined;
  private readonly asyncIterator: AsyncIterator<TaskSpec<I>> | undefined;
  private filling = false;

  constructor(
    source: TaskSource<I>,
    private readonly host: ReaderHost<I>,
    private readonly lookahead: number,
  ) {
    if (Array.isArray(source)) {
      this.syncIterator = source[Symbol.iterator]();
    } else if (isAsyncIterable<TaskSpec<I>>(source)) {
      this.asyncIterator = source[Symbol.asyncIterator]();
    } else if (
      source != null &&
      typeof (source as Iterable<TaskSpec<I>>)[Symbol.iterator] === 'function'
    ) {
      this.syncIterator = (source as Iterable<TaskSpec<I>>)[Symbol.iterator]();
    } else {
      throw new InvalidOptionError(
        'tasks',
        source,
        'an array, an iterable or an async iterable of tasks',
      );
    }
    // An array with priorities is admitted whole so they order the whole plan; without them it
    // is pulled like any iterator: records are created just in time, which keeps them in cache
    // and memory flat (bench S1/S4). Its length still gives progress a known total.
    if (Array.isArray(source)) {
      this.plannedTotal = source.length;
      this.hasPriorities = source.some(
        (t: TaskSpec<I> | undefined) => t?.priority !== undefined && t.priority !== 0,
      );
    }
  }

  /** Reads tasks up to the lookahead (the whole source with `whole`). */
  refill(whole: boolean): void {
    if (this.done) return;
    if (this.syncIterator !== undefined) {
      const limit = whole ? Number.POSITIVE_INFINITY : this.lookahead;
      while (!this.done && this.host.waiting() < limit) this.pullOneSync();
    } else {
      this.fillAsync();
    }
  }

  /** Reads everything left: a stopping run gives every task of the plan its terminal state. */
  drain(): void {
    if (this.syncIterator !== undefined) {
      while (!this.done) this.pullOneSync();
    } else if (this.asyncIterator !== undefined) {
      this.fillAsync();
    }
  }

  private pullOneSync(): void {
    let step: IteratorResult<TaskSpec<I>>;
    try {
      step = this.syncIterator!.next();
    } catch (err) {
      this.failed(err);
      return;
    }
    if (step.done) {
      this.done = true;
      return;
    }
    this.host.admit(step.value);
  }

  private fillAsync(): void {
    if (this.filling || this.done) return;
    this.filling = true;
    const it = this.asyncIterator!;
    const host = this.host;
    const loop = async (): Promise<void> => {
      try {
        while (!this.done && (host.stopping() || host.waiting() < this.lookahead)) {
          const step = await it.next();
          if (step.done) {
            this.done = true;
            break;
          }
          host.admit(step.value);
          if (!host.stopping()) host.pump();
        }
      } catch (err) {
        this.failed(err);
      } finally {
        this.filling = false;
      }
      host.changed();
    };
    void loop();
  }

  /**
   * A source that throws (a bad line deep in a case file) ends the plan there: every task read
   * before it still runs, nothing after it exists, and the run ends `stopped` by `source_error`.
   */
  private failed(err: unknown): void {
    this.done = true;
    this.error = toErrorInfo(err, 'CASES_INVALID');
  }
}
