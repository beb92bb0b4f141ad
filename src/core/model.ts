/**
 * The task model: the seeds' eight states, the typed transition events, and the shapes of task
 * and run results. Pure types and a few helpers; no behaviour lives here.
 */

import type { ErrorInfo } from './errors.js';
import type { PaceChange, PaceStatistics } from './pace.js';

/** The seeds' eight task states. */
export const TaskStatus = {
  PENDING: 'pending',
  QUEUED: 'queued',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  TIMEOUT: 'timeout',
  CANCELLED: 'cancelled',
  ERROR: 'error',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

export type TerminalStatus = 'succeeded' | 'failed' | 'timeout' | 'cancelled' | 'error';

export const TERMINAL_STATUSES: readonly TerminalStatus[] = [
  'succeeded',
  'failed',
  'timeout',
  'cancelled',
  'error',
];

/** True for the five states a task never leaves. */
export function isTerminal(status: TaskStatus): status is TerminalStatus {
  return (
    status === 'succeeded' ||
    status === 'failed' ||
    status === 'timeout' ||
    status === 'cancelled' ||
    status === 'error'
  );
}

/** The stop rules a run knows. */
export type StopRule =
  | 'max_failures'
  | 'deadline'
  | 'max_cost'
  | 'max_tokens'
  | 'auth_errors'
  | 'source_error'
  | 'zombies'
  | 'fail_fast';

/** Why a task was cancelled. */
export type CancelReason =
  | { readonly kind: 'user'; readonly message?: string }
  | { readonly kind: 'stop_rule'; readonly rule: StopRule }
  | { readonly kind: 'dependency_failed'; readonly dependency: string }
  | { readonly kind: 'deadline' };

/** A unit of work as the caller describes it. */
export interface TaskSpec<I = unknown> {
  /** Stable identity: results, journals and resume key on it. Generated (`task-N`) if absent. */
  readonly id?: string;
  /** What the target receives. */
  readonly input: I;
  /** Higher runs first among tasks ready at the same time. @default 0 */
  readonly priority?: number;
  /** Per-attempt timeout for this task, overriding the run's. */
  readonly timeoutMs?: number;
  /** Rate bucket key, overriding the target's. */
  readonly rateKey?: string;
  /** Attempts for this task, overriding the run's retry policy. */
  readonly maxAttempts?: number;
  /**
   * Attempts started in an earlier (crashed or stopped) session: resume keeps the count, so
   * attempt numbers go on. When those that count (all but `interruptedBefore`) already reach
   * `maxAttempts`, the task is not sent again: it ends `error` with code `ATTEMPTS_EXHAUSTED`.
   * @default 0
   */
  readonly attemptsBefore?: number;
  /**
   * Of `attemptsBefore`, those a pause interrupted: like the run's own interrupted attempts,
   * they do not count against `maxAttempts`. @default 0
   */
  readonly interruptedBefore?: number;
  /**
   * Ids of tasks that must succeed before this one is queued. If one of them ends any other way,
   * this task is cancelled with reason `dependency_failed`. Needs the tasks as an array (the
   * graph is checked before anything runs: unknown ids, duplicates and cycles are rejected).
   */
  readonly dependsOn?: readonly string[];
}

/** Token and cost usage, reported by the target through `ctx.reportUsage`. */
export interface Usage {
  tokens: number;
  /** The sum of the costs reported; a partial sum when `costUnknown` is set. */
  cost: number;
  /**
   * Set when a report carried usage but no cost (no price is known: an OpenAI target without
   * prices, a blocking Dify workflow, an HTTP target without `costPath`): `cost` is then not the
   * cost, and reports say "cost unknown" instead of adding it as 0. A target may set it itself.
   */
  costUnknown?: boolean;
}

/** The task as a target sees it: identity and input, resolved defaults. */
export interface TaskView<I = unknown> {
  readonly id: string;
  readonly input: I;
  readonly priority: number;
  readonly rateKey: string;
}

/**
 * What a provider said about its limits (OpenAI's `x-ratelimit-*`, Retry-After), as a target
 * parsed it from a response. Every field is optional.
 */
export interface RateLimitSnapshot {
  readonly limitRequests?: number;
  readonly remainingRequests?: number;
  readonly resetRequestsMs?: number;
  readonly limitTokens?: number;
  readonly remainingTokens?: number;
  readonly resetTokensMs?: number;
  readonly retryAfterMs?: number;
}

/** What a target gets with every attempt. */
export interface AttemptContext {
  /** Aborted on this attempt's timeout, on cancel, on a stop rule, on pause with abort. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly taskId: string;
  /** Adds usage to this task (summed over attempts: every attempt is paid for). */
  reportUsage(usage: Partial<Usage>): void;
  /**
   * Re-syncs the task's rate buckets from what the provider reported: its figures include other
   * clients of the same key, so they can only lower what the buckets hand out, never raise it.
   */
  reportLimits(limits: RateLimitSnapshot): void;
  /**
   * Stops this attempt's timeout until the returned function is called; from then on it counts
   * in full again. For a target that must wait for something that is not its request: the
   * BullMQ dispatcher while a worker waits for a token of the shared rate bucket, since in
   * process an attempt starts only once it has its token. Holds nest; releasing twice, or after
   * the attempt ended, does nothing. Contexts made by hand may leave it out.
   */
  holdTimeout?(): () => void;
  /**
   * The provider answered: the rest of this attempt (grading its answer, issue #20) runs without
   * one of the run's concurrency slots, so the next attempt can start while this one is graded.
   * The attempt's timeout stops there (the rest has its own bounds: the grader's timeout); its
   * task stays `running` until the promise settles, and a cancel or a stop still aborts it.
   * Calling it twice, or after the attempt was decided, does nothing. Contexts made by hand may
   * leave it out.
   */
  releaseSlot?(): void;
}

/**
 * The Target port: how one attempt of a task is executed.
 *
 * @example
 * ```ts
 * const target: Target<{ q: string }, string> = {
 *   key: 'echo',
 *   async execute(task, ctx) {
 *     ctx.signal.throwIfAborted();
 *     return task.input.q.toUpperCase();
 *   },
 * };
 * ```
 */
export interface Target<I = unknown, O = unknown> {
  /** Default rate bucket key for this target's tasks. @default 'default' */
  readonly key?: string;
  execute(task: TaskView<I>, ctx: AttemptContext): Promise<O>;
}

/** The seeds' `TaskResult`: a task's final record. */
export interface TaskResult<I = unknown, O = unknown> {
  readonly id: string;
  readonly status: TaskStatus;
  readonly input: I;
  readonly priority: number;
  /** Attempts started (including any before a resume). */
  readonly attempts: number;
  readonly output: O | undefined;
  /** For failed / timeout / error: the last attempt's error. */
  readonly error: ErrorInfo | undefined;
  /** For cancelled: why. */
  readonly reason: CancelReason | undefined;
  readonly usage: Usage;
  /** Clock time the first attempt started, or undefined if none did. */
  readonly startedAt: number | undefined;
  /** Clock time the task became terminal. */
  readonly finishedAt: number | undefined;
  /** finishedAt - startedAt, or 0 if it never started. */
  readonly executionTimeMs: number;
}

interface TransitionBase {
  readonly taskId: string;
  readonly from: TaskStatus;
  /** Clock time. */
  readonly at: number;
  readonly attempt: number;
}

/** Every change of a task's state, as one discriminated union: the journal's input. */
export type TaskTransition =
  | (TransitionBase & { readonly to: 'queued'; readonly retry: boolean })
  | (TransitionBase & {
      readonly to: 'pending';
      readonly retryInMs: number;
      readonly error: ErrorInfo;
    })
  | (TransitionBase & { readonly to: 'running' })
  | (TransitionBase & { readonly to: 'succeeded'; readonly result: TaskResult })
  | (TransitionBase & {
      readonly to: 'failed' | 'timeout' | 'error';
      readonly error: ErrorInfo;
      readonly result: TaskResult;
    })
  | (TransitionBase & {
      readonly to: 'cancelled';
      readonly reason: CancelReason;
      readonly result: TaskResult;
    });

export type RunStatus =
  | 'running'
  | 'pausing'
  | 'paused'
  | 'stopping'
  | 'completed'
  | 'cancelled'
  | 'stopped';

/** Who holds a run paused (`Run.hold`). Plain data. */
export interface HoldInfo {
  /** Why: `user` (pause()), `signal` (a graceful stop), `backpressure`, `dashboard`, `outage`, ... */
  readonly reason: string;
  /** Who asked, when known (a user name, a process, a dashboard client). */
  readonly by?: string;
  /** Run clock time the hold was taken. */
  readonly since: number;
}

/** A hold on a run (`Run.hold`): the run stays paused until every hold is released. */
export interface Hold {
  readonly reason: string;
  /** Gives the hold back; the run resumes when it was the last one. Idempotent. */
  release(): void;
}

/** The run-level outcome of a stop rule. */
export interface StopInfo {
  readonly rule: StopRule;
  readonly message: string;
}

/** Latency percentiles over attempt durations, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** The seeds' statistics, extended. */
export interface RunStatistics {
  readonly totalTasks: number;
  readonly byStatus: Readonly<Record<TaskStatus, number>>;
  readonly succeededTasks: number;
  readonly failedTasks: number;
  readonly timeoutTasks: number;
  readonly errorTasks: number;
  readonly cancelledTasks: number;
  /** Attempts started in this run. */
  readonly attempts: number;
  /** Attempts that were retries (attempt number > 1). */
  readonly retries: number;
  /**
   * Attempts the target refused with a 429 (not a spent quota): turned away before any work,
   * they do not count against maxAttempts (bounded by `retry.maxRateLimitRetries`).
   */
  readonly refused: number;
  /** The adaptive pace over the run (absent with `adaptive: false`). */
  readonly pace?: PaceStatistics;
  /** Attempts aborted by a pause and re-queued (they do not count against maxAttempts). */
  readonly interrupted: number;
  /** Attempts that ignored their abort past the grace period; they kept their slot. */
  readonly zombies: number;
  readonly tokens: number;
  readonly cost: number;
  /** Clock milliseconds from start to finish. */
  readonly wallTimeMs: number;
  readonly latencyMs: LatencySummary;
  /** succeeded / (terminal tasks that are not cancelled), or 0. */
  readonly successRate: number;
}

/** The seeds' `RunExecutionResult`. */
export interface RunExecutionResult<I = unknown, O = unknown> {
  readonly runId: string;
  readonly status: 'completed' | 'cancelled' | 'stopped';
  /** Set when a stop rule ended the run. */
  readonly stoppedBy: StopInfo | undefined;
  /** Every task's result, in completion order (empty when `retainResults` is false). */
  readonly tasks: readonly TaskResult<I, O>[];
  readonly statistics: RunStatistics;
  readonly startedAt: number;
  readonly finishedAt: number;
}

/** Typed listener map for a run's events. Listeners run synchronously and must not throw. */
export interface RunEvents {
  transition: (event: TaskTransition) => void;
  /** The head task waits for a rate token. */
  rateLimited: (event: { key: string; waitMs: number; at: number }) => void;
  /** A 429 or a Retry-After cooled a bucket down. */
  coolDown: (event: { key: string; ms: number; at: number }) => void;
  /** An attempt still runs `zombieGraceMs` after its abort. */
  zombie: (event: { taskId: string; attempt: number; at: number }) => void;
  /** Usage reported by a target. */
  usage: (event: { taskId: string; attempt: number; tokens: number; cost: number }) => void;
  paused: (event: { at: number; abortInFlight: boolean }) => void;
  resumed: (event: { at: number }) => void;
  /** The effective concurrency changed (`setConcurrency`, or the adaptive pace). */
  concurrency: (event: { from: number; to: number; at: number }) => void;
  /** The adaptive pace changed the effective concurrency or rate, and why. */
  paceChanged: (event: PaceChange) => void;
  stopping: (event: { at: number; reason: CancelReason }) => void;
  done: (result: RunExecutionResult) => void;
}
