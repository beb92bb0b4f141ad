/**
 * The Dispatcher port: where an attempt runs once the scheduler decided when. In-process is the
 * default (no dispatcher: the target runs in this process); `BullmqDispatcher` (stride/distributed)
 * runs attempts on BullMQ workers. The engine never knows which: a dispatcher only hands the run
 * a Target.
 */

import type { Target } from '../core/index.js';
import type { RunManifest, TestCase } from '../plans/index.js';
import type { AnswerRecord } from '../store/port.js';

/**
 * What a resumed run tells its dispatcher: which attempts an earlier session may have sent
 * without the journal recording their outcome. Only those may be taken over from what an earlier
 * coordinator left (an outcome that arrived meanwhile, a job still running); every other earlier
 * attempt has its verdict in the journal and is never reused.
 */
export interface ResumeContext {
  /**
   * True for the attempt that was in flight when the journal ends (`maybe_sent`), and for the
   * next attempt of each case still to run (sent, maybe, before the journal recorded its start).
   */
  takesOver(caseId: string, attempt: number): boolean;
  /**
   * What the app answered a graded case whose grading a kill cut (`Store.answers`): the resumed
   * case is graded from it, and the app is not called again (issue #20).
   */
  answered?(caseId: string): AnswerRecord | undefined;
}

/** An attempt delivered again after its worker was lost. */
export interface Redelivery {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
}

export interface Dispatcher {
  /**
   * The Target that runs this plan's attempts where the dispatcher decides; `resume` when the
   * run continues an interrupted one.
   */
  targetFor(
    manifest: RunManifest,
    runId: string,
    resume?: ResumeContext,
  ): Promise<Target<TestCase, unknown>>;
  /** The run ended (or stopped): forget what was kept for it. */
  release?(runId: string): Promise<void>;
  /**
   * Subscribes to the attempts of run `runId` that come back after their worker was lost and
   * go out again (the lost worker may have sent them). The run session journals each as a
   * `maybe_sent` attempt with code `REDELIVERED`. Returns the unsubscribe function.
   */
  watchRedeliveries?(runId: string, listener: (e: Redelivery) => void): () => void;
  /**
   * Subscribes to the outages of the dispatcher's queue: `down` when it becomes unreachable (at
   * once if it is), `up` when it is back. The run session holds the run meanwhile (hold
   * `redis`: `RunSession.holders()`, the live state). Returns the unsubscribe function.
   */
  watchOutages?(listener: { down(): void; up(): void }): () => void;
  close(): Promise<void>;
}
