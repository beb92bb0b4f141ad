/**
 * The run's side of the adaptive pace (core/pace.ts): the effective concurrency the loop obeys,
 * what each attempt tells the pace (started, answered, refused), and the events a change makes.
 * With `adaptive: false` the limit is the option's and nothing adapts.
 */

import type { Clock } from './clock.js';
import type { ErrorClassification } from './errors.js';
import type { RunEmitter } from './events.js';
import type { RunOptions } from './options.js';
import {
  type PaceChange,
  PaceController,
  type PaceSignal,
  type PaceState,
  type PaceStatistics,
  paceSignalOf,
} from './pace.js';
import type { RateGate } from './rate-gate.js';
import type { Attempt } from './task.js';

/** `RunPace.lastRefusal` of a task the target refuses for itself. */
const OWN_REFUSALS = -1;

/** The effective concurrency and the adaptive pace of one run. */
export class RunPace {
  /** The effective concurrency: the option's, or what the adaptive pace lowered it to. */
  limit: number;
  /** The adaptive pace (undefined with `adaptive: false`). */
  private readonly controller: PaceController | undefined;
  /**
   * The pace's number of each refused task's last bare 429 (`PaceController.refused`), or
   * OWN_REFUSALS once the task was refused again under the same pace. Weak: a task that ends
   * is forgotten with its record.
   */
  private readonly lastRefusal = new WeakMap<object, number>();

  constructor(
    private readonly clock: Clock,
    options: RunOptions,
    private readonly rateGate: RateGate,
    private readonly events: RunEmitter,
  ) {
    this.limit = options.concurrency ?? 10;
    const adaptive = options.adaptive ?? true;
    this.controller =
      adaptive === false
        ? undefined
        : new PaceController(
            clock,
            this.limit,
            adaptive === true ? {} : adaptive,
            options.rate?.perMinute,
          );
  }

  /** The pace now: the ceiling, the effective concurrency and the adapted rate. */
  get state(): PaceState {
    return (
      this.controller?.state ?? {
        adaptive: false,
        ceiling: this.limit,
        concurrency: this.limit,
        minConcurrency: this.limit,
        ratePerMinute: undefined,
      }
    );
  }

  /** The pace over the run, or undefined without adaptive pace. */
  statistics(): PaceStatistics | undefined {
    return this.controller?.statistics();
  }

  /** The run waited for the adapted rate's token. */
  waitedForRate(): void {
    this.controller?.waitedForRate();
  }

  /** `att` starts now with `inFlight` other attempts of the run in flight. */
  started<I, O>(att: Attempt<I, O>, now: number, inFlight: number): void {
    if (this.controller === undefined) return;
    att.paceSeq = this.controller.started(now);
    att.inFlightAtStart = inFlight;
  }

  /** The target answered `att` (a success, or an answer judged wrong). */
  answered<I, O>(att: Attempt<I, O>): void {
    const pace = this.controller;
    if (pace !== undefined)
      this.apply(pace.answered(att.paceSeq, att.inFlightAtStart, this.clock.now()));
  }

  /**
   * Tells the adaptive pace what a failed attempt means: a refusal without Retry-After lowers
   * the pace (returned, so the retry knows to wait for the pace instead of a timer); a wrong
   * answer is still an answer. `own`: a case refused again under the pace that refused it
   * before (`PaceController.refused`), which the pace ignores.
   */
  failed<I, O>(
    err: unknown,
    cls: ErrorClassification,
    att: Attempt<I, O> | undefined,
  ): PaceSignal | 'own' | undefined {
    const pace = this.controller;
    if (pace === undefined || att === undefined) return undefined;
    const signal = paceSignalOf(err, cls, att.limitsReported);
    if (signal === undefined) {
      if (cls.code === 'TASK_FAILED') this.answered(att);
      return undefined;
    }
    const previous = this.lastRefusal.get(att.rec);
    if (previous === OWN_REFUSALS) return 'own';
    if (signal === 'rate_limited') this.lastRefusal.set(att.rec, att.paceSeq);
    const verdict = pace.refused(
      att.paceSeq,
      att.inFlightAtStart,
      signal,
      this.clock.now(),
      signal === 'rate_limited' ? previous : undefined,
    );
    if (verdict === 'own') {
      // Once its own, always: each decrease would otherwise count it once more.
      this.lastRefusal.set(att.rec, OWN_REFUSALS);
      return 'own';
    }
    this.apply(verdict);
    return signal;
  }

  /**
   * A new concurrency limit from the user: with adaptive pace it is the new ceiling, and an
   * effective limit the pace lowered stays at most what it was.
   */
  setCeiling(n: number): void {
    const from = this.limit;
    const at = this.clock.now();
    const change = this.controller?.setCeiling(n, at);
    this.limit = this.controller?.limit ?? n;
    this.events.emit('concurrency', { from, to: this.limit, at });
    if (change !== undefined) this.events.emit('paceChanged', change);
  }

  private apply(change: PaceChange | undefined): void {
    if (change === undefined) return;
    this.rateGate.paceBucket = this.controller!.bucket;
    const { from, to } = change.concurrency;
    this.limit = to;
    if (from !== to) this.events.emit('concurrency', { from, to, at: change.at });
    this.events.emit('paceChanged', change);
  }
}
