/**
 * Where a task waits between its admission and its next attempt: the ready queue (by priority,
 * then reading order), the retry queue (a retry or an interrupted attempt goes first), and the
 * backoff before a retry (a timer per task). The Run's pump takes from the head; a stop takes
 * everything out to cancel it.
 */

import type { Clock } from './clock.js';
import { Fifo, PriorityFifo } from './queue.js';
import type { TaskRecord } from './task.js';

/** The waiting tasks of one run. */
export class TaskQueues<I, O> {
  readonly ready = new PriorityFifo<TaskRecord<I, O>>();
  readonly retry = new Fifo<TaskRecord<I, O>>();
  private readonly backingOff = new Set<TaskRecord<I, O>>();

  constructor(private readonly clock: Clock) {}

  /** Tasks queued to start (ready or retry), not those in backoff. */
  get queued(): number {
    return this.ready.size + this.retry.size;
  }

  /** Tasks queued or in backoff. */
  get waiting(): number {
    return this.ready.size + this.retry.size + this.backingOff.size;
  }

  /** A retry is waiting out its backoff. */
  get backingOffAny(): boolean {
    return this.backingOff.size > 0;
  }

  /**
   * Waits `delayMs`, then puts `rec` in the retry queue and calls `due`. A zero delay still goes
   * through a timer: the retry's `pending` and `queued` stay two transitions, and it waits
   * behind the answers of this turn.
   */
  backoff(rec: TaskRecord<I, O>, delayMs: number, due: (rec: TaskRecord<I, O>) => void): void {
    this.backingOff.add(rec);
    rec.backoffCancel = this.clock.schedule(delayMs, () => {
      rec.backoffCancel = undefined;
      this.backingOff.delete(rec);
      this.retry.push(rec);
      due(rec);
    });
  }

  /** Takes every waiting task out (backoff timers cancelled): backoff, then retry, then ready. */
  drain(): TaskRecord<I, O>[] {
    const out: TaskRecord<I, O>[] = [];
    for (const rec of this.backingOff) {
      rec.backoffCancel?.();
      rec.backoffCancel = undefined;
      out.push(rec);
    }
    this.backingOff.clear();
    for (const rec of this.retry.drain()) out.push(rec);
    for (const rec of this.ready.drain()) out.push(rec);
    return out;
  }
}
