/**
 * The run's intake: how a task gets from the plan into the run. The task-source reader pulls
 * specs (up to the lookahead, or the whole plan when priorities or dependencies need it), the
 * admission turns each into a record or says why the run cannot take it, and the dependency
 * graph parks a task until every task it depends on succeeded. The Run is told what to queue
 * and what to end (`IntakeHost`).
 */

import { Admission } from './admission.js';
import type { ErrorInfo } from './errors.js';
import { DependencyGraph } from './graph.js';
import type { CancelReason, TaskSpec, TerminalStatus } from './model.js';
import type { RateLimit, RateLimiterRegistry } from './rate.js';
import { TaskReader, type TaskSource } from './source.js';
import type { TaskRecord } from './task.js';
import type { TokenMeter } from './token-budget.js';

/** What the intake needs of the run it feeds. */
export interface IntakeHost<I, O> {
  /** Why the run is stopping, or undefined while it is not. */
  stopping(): CancelReason | undefined;
  /** A task entered the run (`pending`). */
  admitted(rec: TaskRecord<I, O>): void;
  /** A task may start: queue it. */
  ready(rec: TaskRecord<I, O>): void;
  /** Ends a task before it ever started. */
  finish(
    rec: TaskRecord<I, O>,
    status: 'cancelled' | 'error',
    error: ErrorInfo | undefined,
    reason: CancelReason | undefined,
  ): void;
  /** Tasks read and ready to start (the lookahead bounds these). */
  waiting(): number;
  /** A task read asynchronously may start now. */
  pump(): void;
  /** An asynchronous read ended (a batch read, the end, or a failure). */
  changed(): void;
}

/** Where admitted tasks take their rate and token buckets and their attempt budget. */
export interface IntakeOptions {
  readonly rateKey: string;
  readonly rate: RateLimit | undefined;
  readonly limiters: RateLimiterRegistry;
  readonly meter: TokenMeter;
  readonly maxAttempts: number;
  readonly lookahead: number;
}

/** Reads, admits and (with dependencies) parks the tasks of one run. */
export class Intake<I, O> {
  private readonly reader: TaskReader<I>;
  private readonly graph: DependencyGraph<I, O> | undefined;
  private readonly admission: Admission<I, O>;
  /** Priorities or dependencies: the plan is read whole, so they order or check all of it. */
  private readonly whole: boolean;

  constructor(
    source: TaskSource<I>,
    options: IntakeOptions,
    private readonly host: IntakeHost<I, O>,
  ) {
    this.reader = new TaskReader(
      source,
      {
        admit: (spec) => this.admit(spec),
        waiting: () => host.waiting(),
        stopping: () => host.stopping() !== undefined,
        pump: () => host.pump(),
        changed: () => host.changed(),
      },
      options.lookahead,
    );
    this.graph = DependencyGraph.of(source);
    this.admission = new Admission(
      options.rateKey,
      options.rate,
      options.limiters,
      options.meter,
      options.maxAttempts,
      this.graph !== undefined,
    );
    this.whole = this.reader.hasPriorities || this.graph !== undefined;
  }

  /** The source has nothing more (ended, or failed). */
  get done(): boolean {
    return this.reader.done;
  }

  /** The error that ended the source early, if any. */
  get error(): ErrorInfo | undefined {
    return this.reader.error;
  }

  /** The plan's length when known up front (an array), else 0. */
  get plannedTotal(): number {
    return this.reader.plannedTotal;
  }

  /** Reads tasks up to the lookahead (the whole plan when it must be read whole). */
  refill(): void {
    this.reader.refill(this.whole);
  }

  /** The run stops: every task parked on its dependencies is taken out (to be cancelled). */
  takeParked(): TaskRecord<I, O>[] {
    return this.graph === undefined ? [] : this.graph.takeParked();
  }

  /** The run stops: everything left in the source is read, so every task ends (cancelled). */
  drain(): void {
    this.reader.drain();
  }

  /** A task ended: its dependents learn it. */
  ended(rec: TaskRecord<I, O>, status: TerminalStatus): void {
    if (this.graph !== undefined)
      this.graph.settle(rec, status, this.dependencyReady, this.dependencyFailed);
  }

  private admit(spec: TaskSpec<I>): void {
    const host = this.host;
    const rec = this.admission.admit(spec);
    host.admitted(rec);
    const stopping = host.stopping();
    if (stopping !== undefined) {
      host.finish(rec, 'cancelled', undefined, stopping);
      return;
    }
    const rejected = this.admission.rejected;
    if (rejected !== undefined) {
      host.finish(rec, 'error', rejected, undefined);
      return;
    }
    const deps = spec.dependsOn;
    if (this.graph !== undefined && deps !== undefined && deps.length > 0) {
      const parked = this.graph.park(rec, deps);
      if (parked.kind === 'failed') {
        host.finish(rec, 'cancelled', undefined, {
          kind: 'dependency_failed',
          dependency: parked.dependency,
        });
        return;
      }
      if (parked.kind === 'parked') return;
    }
    host.ready(rec);
  }

  /** Every dependency of `d` succeeded: it is queued (or cancelled, when the run stops). */
  private readonly dependencyReady = (d: TaskRecord<I, O>): void => {
    const stopping = this.host.stopping();
    if (stopping !== undefined) this.host.finish(d, 'cancelled', undefined, stopping);
    else this.host.ready(d);
  };

  /** A dependency of `d` did not succeed. A stopping run cancels for its own reason. */
  private readonly dependencyFailed = (d: TaskRecord<I, O>, dependency: string): void => {
    const reason = this.host.stopping() ?? { kind: 'dependency_failed', dependency };
    this.host.finish(d, 'cancelled', undefined, reason);
  };
}
