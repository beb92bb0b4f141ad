/**
 * The action-plan API of seed 004, idiomatic in TypeScript: `ActionPlan`, `ActionStep`,
 * `ExecutionResult`, `ExecutionStatus`, `StepResult`, `ResourceUsage`, `ResourceLimits`,
 * `ExecutionError` with `retryable`. Durations are milliseconds.
 */

import type { RetryPolicy } from '../core/index.js';
import type { JsonSchema, ToolSchema } from './tool.js';

/** A check on a step's output; a failed check fails the step (never retried). */
export type ValidationRule =
  | {
      /** The output (or the value at `path`) must match this schema. */
      readonly schema: ToolSchema;
      /** A JSONPath into the output (`$.status`). @default the whole output */
      readonly path?: string;
      readonly message?: string;
    }
  | {
      /** True passes; false or a string (the reason) fails. */
      readonly predicate: (output: unknown) => boolean | string;
      readonly message?: string;
    };

/** One step: a tool call with its arguments, after its dependencies succeeded. */
export interface ActionStep {
  /** Unique in its plan. */
  readonly id: string;
  /** The tool to call, by its name in the ToolRegistry (the seed's `ToolExecution.tool_name`). */
  readonly tool: string;
  /**
   * The tool's arguments. A string `${steps.<id>.output.<path>}` is replaced, when the step
   * starts, by that value of an earlier step's output (the whole string: the value keeps its
   * type; inside a longer string: its text).
   */
  readonly arguments?: Readonly<Record<string, unknown>>;
  /** Free-form parameters, kept in the step's result metadata. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** Ids of steps that must succeed first. */
  readonly dependencies?: readonly string[];
  /**
   * How long the step should take. Without `timeoutMs`, the step times out after
   * `timeoutPolicy.expectedDurationFactor` times this.
   */
  readonly expectedDurationMs?: number;
  /** Per-attempt timeout of this step. */
  readonly timeoutMs?: number;
  /** This step's attempts (the backoff is the executor's). */
  readonly retryPolicy?: Pick<RetryPolicy, 'maxAttempts'>;
  readonly validationRules?: readonly ValidationRule[];
}

/** A plan: steps forming a DAG. */
export interface ActionPlan {
  /** The plan's id: `getExecutionStatus(id)`, the journal's run id. */
  readonly id: string;
  readonly name?: string;
  readonly description?: string;
  readonly steps: readonly ActionStep[];
  /** Stop every other step at the first step that fails for good. @default executor's `failFast` */
  readonly failFast?: boolean;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /**
   * Paths (from the plan's root, e.g. `['steps', 0, 'arguments', 'token']`) of values that are
   * secrets: the journal stores `[redacted]` there. `loadActionPlan` fills it with every value
   * that came from `${VAR}` in a step's arguments or parameters.
   */
  readonly secretPaths?: readonly (readonly (string | number)[])[];
}

/** The seed's `ExecutionStatus`. */
export const ExecutionStatus = {
  Pending: 'pending',
  Running: 'running',
  Completed: 'completed',
  Failed: 'failed',
  Cancelled: 'cancelled',
  Paused: 'paused',
} as const;
export type ExecutionStatus = (typeof ExecutionStatus)[keyof typeof ExecutionStatus];

/** A step's status. `cancelled` covers "dependency failed" (see `metadata.cancelReason`). */
export const StepStatus = {
  Pending: 'pending',
  Running: 'running',
  Completed: 'completed',
  Failed: 'failed',
  Timeout: 'timeout',
  Cancelled: 'cancelled',
} as const;
export type StepStatus = (typeof StepStatus)[keyof typeof StepStatus];

/** The seed's `ExecutionErrorType`. */
export const ExecutionErrorType = {
  ToolNotFound: 'tool_not_found',
  ResourceExhausted: 'resource_exhausted',
  TimeoutError: 'timeout',
  NetworkError: 'network',
  ValidationError: 'validation',
  ToolError: 'tool_error',
  DependencyFailed: 'dependency_failed',
  Cancelled: 'cancelled',
  CompensationFailed: 'compensation_failed',
} as const;
export type ExecutionErrorType = (typeof ExecutionErrorType)[keyof typeof ExecutionErrorType];

/** What went wrong with a plan or a step. */
export interface ExecutionError {
  readonly type: ExecutionErrorType;
  readonly message: string;
  /** Whether running it again may succeed (a network error, a timeout), as the engine classified it. */
  readonly retryable: boolean;
  /** The step it came from, if any. */
  readonly stepId?: string;
  /** The catalogue code (docs/errors.md). */
  readonly code?: string;
  /** For `resource_exhausted`: which limit (`max_tool_invocations`, ...). */
  readonly limit?: string;
}

/** The seed's `StepResult`. */
export interface StepResult {
  readonly stepId: string;
  readonly status: StepStatus;
  readonly output: unknown;
  readonly error: string | undefined;
  /** Milliseconds from the first attempt's start to the end. */
  readonly executionTime: number;
  /** Attempts after the first. */
  readonly retryCount: number;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** Measured consumption of a plan (never estimated). */
export interface ResourceUsage {
  /** CPU time of this process while the plan ran (`process.cpuUsage` deltas). */
  readonly cpuTimeMs: number;
  /** Highest resident set size sampled while the plan ran. */
  readonly memoryPeakMb: number;
  /** Reads and writes by the built-in file tools (and any tool that reports them). */
  readonly diskReads: number;
  readonly diskWrites: number;
  readonly diskBytesRead: number;
  readonly diskBytesWritten: number;
  /** Requests made by the built-in http tool (and any tool that reports them). */
  readonly networkRequests: number;
  /** Tool calls, retries included (compensations are counted apart, in the rollback). */
  readonly toolInvocations: number;
}

/**
 * Limits a plan may not exceed; going over one fails the plan with `resource_exhausted` naming
 * it. (The seed's `max_cpu_cores` and `max_disk_space_mb` are not offered: one Node process
 * cannot enforce them honestly.)
 */
export interface ResourceLimits {
  /** Total wall time of the plan. */
  readonly maxExecutionTimeMs?: number;
  readonly maxToolInvocations?: number;
  readonly maxNetworkRequests?: number;
  readonly maxConcurrentSteps?: number;
  /** Resident set size ceiling, sampled every `memorySampleMs` while the plan runs. */
  readonly maxMemoryMb?: number;
}

/** Timeouts of steps and compensations. */
export interface TimeoutPolicy {
  /** Per-attempt timeout of a step without its own. @default 60_000 */
  readonly stepTimeoutMs?: number;
  /** A step with `expectedDurationMs` and no timeout times out after this many times it. @default 3 */
  readonly expectedDurationFactor?: number;
  /** Per-attempt timeout of a compensation. @default 30_000 */
  readonly compensationTimeoutMs?: number;
}

/** How one compensation ended. */
export interface CompensationResult {
  readonly stepId: string;
  readonly tool: string;
  readonly status: 'compensated' | 'failed';
  readonly attempts: number;
  readonly error?: string;
  /** The step's outcome was unknown (timed out, or in flight at a crash): compensated without its output. */
  readonly outcomeUnknown: boolean;
}

/** What a rollback did, in the order it did it (reverse completion order of the steps). */
export interface RollbackResult {
  readonly planId: string;
  /** `failed` if any compensation failed (its error is in `compensations`). */
  readonly status: 'completed' | 'failed';
  readonly compensations: readonly CompensationResult[];
}

/** The seed's `ExecutionResult`. */
export interface ExecutionResult {
  readonly planId: string;
  readonly status: ExecutionStatus;
  /** One per step, in plan order. */
  readonly stepResults: readonly StepResult[];
  /** Milliseconds. */
  readonly executionTime: number;
  readonly resourceUsage: ResourceUsage;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly error: ExecutionError | undefined;
  /** Set when `autoRollback` rolled the plan back. */
  readonly rollback?: RollbackResult;
}

/** What `executeStep` may be given: outputs of earlier steps, a signal. */
export interface ExecutionContext {
  readonly planId?: string;
  /** Outputs of earlier steps, for `${steps.<id>.output...}` in the arguments. */
  readonly outputs?: Readonly<Record<string, unknown>>;
  readonly signal?: AbortSignal;
}

export type { JsonSchema };
