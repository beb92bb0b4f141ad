/**
 * The batch gate (`RunOptions.batch`, the seeds' batch mode): at most `size` tasks per batch;
 * the next batch opens once every task of the last one ended and a gap passed.
 */

import type { CancelTimer, Clock } from './clock.js';
import type { BatchOptions } from './options.js';
import type { TaskRecord } from './task.js';

/** Admits tasks batch by batch. */
export class BatchGate {
  private admitted = 0;
  private live = 0;
  private gapDone = true;
  private timer: CancelTimer | undefined;

  /** `opened` is called when a gap between batches ended. */
  constructor(
    private readonly batch: BatchOptions,
    private readonly clock: Clock,
    private readonly opened: () => void,
  ) {}

  /** May a new task start now? Completing a batch starts the gap before the next. */
  open(): boolean {
    const batch = this.batch;
    if (this.admitted < batch.size) return this.gapDone;
    if (this.live > 0) return false;
    // The batch is complete: start the gap, then open the next batch.
    this.admitted = 0;
    const gap = batch.backoffMs ?? 0;
    if (gap === 0) return true;
    this.gapDone = false;
    this.timer = this.clock.schedule(gap, () => {
      this.timer = undefined;
      this.gapDone = true;
      this.opened();
    });
    return false;
  }

  /** A task starts its first attempt: it belongs to the current batch. */
  admit<I, O>(rec: TaskRecord<I, O>): void {
    if (rec.batched) return;
    rec.batched = true;
    this.admitted++;
    this.live++;
  }

  /** A task ended. */
  ended<I, O>(rec: TaskRecord<I, O>): void {
    if (rec.batched) this.live--;
  }

  /** Cancels the gap's timer (the run stops or ends). */
  close(): void {
    this.timer?.();
    this.timer = undefined;
  }
}
