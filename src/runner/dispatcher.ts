/**
 * The Dispatcher port: where an attempt runs once the scheduler decided when. In-process is the
 * default (no dispatcher: the target runs in this process); `BullmqDispatcher` (stride/distributed)
 * runs attempts on BullMQ workers. The engine never knows which: a dispatcher only hands the run
 * a Target.
 */

import type { Target } from '../core/index.js';
import type { RunManifest, TestCase } from '../plans/index.js';

export interface Dispatcher {
  /** The Target that runs this plan's attempts where the dispatcher decides. */
  targetFor(manifest: RunManifest, runId: string): Promise<Target<TestCase, unknown>>;
  /**
   * True when rate limits are enforced where attempts start (the workers, through a bucket
   * shared by every run): the scheduler then keeps no bucket of its own for the plan's rate.
   */
  readonly sharesRateLimits: boolean;
  /** The run ended (or stopped): forget what was kept for it. */
  release?(runId: string): Promise<void>;
  close(): Promise<void>;
}
