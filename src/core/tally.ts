/**
 * The run's counters: tasks by status, attempts, retries, refusals, interruptions, zombies and
 * the latency histogram. The Run moves them; `statistics()` reads them as the public result.
 */

import { LatencyHistogram } from './histogram.js';
import type { RunStatistics, TaskStatus } from './model.js';
import type { PaceStatistics } from './pace.js';

/** Counts of one run. */
export class RunTally {
  readonly counts: Record<TaskStatus, number> = {
    pending: 0,
    queued: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    timeout: 0,
    cancelled: 0,
    error: 0,
  };
  /** Tasks admitted. */
  total = 0;
  /** Attempts started. */
  attempts = 0;
  retries = 0;
  refused = 0;
  interrupted = 0;
  zombies = 0;
  readonly latency = new LatencyHistogram();

  /** Tasks in a terminal state. */
  get settled(): number {
    const c = this.counts;
    return c.succeeded + c.failed + c.timeout + c.cancelled + c.error;
  }

  /** The public statistics, with what the tally does not keep. */
  statistics(
    pace: PaceStatistics | undefined,
    tokens: number,
    cost: number,
    wallTimeMs: number,
  ): RunStatistics {
    const c = this.counts;
    const settled = c.succeeded + c.failed + c.timeout + c.error;
    return {
      totalTasks: this.total,
      byStatus: { ...c },
      succeededTasks: c.succeeded,
      failedTasks: c.failed,
      timeoutTasks: c.timeout,
      errorTasks: c.error,
      cancelledTasks: c.cancelled,
      attempts: this.attempts,
      retries: this.retries,
      refused: this.refused,
      ...(pace === undefined ? {} : { pace }),
      interrupted: this.interrupted,
      zombies: this.zombies,
      tokens,
      cost,
      wallTimeMs,
      latencyMs: this.latency.summary(),
      successRate: settled === 0 ? 0 : c.succeeded / settled,
    };
  }
}
