/**
 * From the engine's TaskResult (eight states) to the collector's TestResult (four statuses), as
 * seed 001's `ResultConverter` did.
 */

import { StrideError, type TaskResult, type TaskStatus } from '../core/index.js';
import type { AssertionOutcome, TestCase } from '../plans/index.js';

/** The seeds' four test statuses. */
export const TestStatus = {
  SUCCESS: 'success',
  FAILED: 'failed',
  TIMEOUT: 'timeout',
  ERROR: 'error',
} as const;
export type TestStatus = (typeof TestStatus)[keyof typeof TestStatus];

/** What a test-plan task returns: the target's output, with the verdict of each assertion. */
export interface CaseOutcome {
  readonly output: unknown;
  readonly assertions: readonly AssertionOutcome[];
  /** Milliseconds the target took for the attempt that produced this output. */
  readonly latencyMs: number;
  /** The weighted mean of the assertions' scores (0..1); absent without assertions. */
  readonly score?: number;
}

/** The seeds' `TestResult` (seed 001), plus the assertion verdicts. */
export interface TestResult {
  readonly workflowId: string;
  /** The case's id (the seeds took the task id). */
  readonly executionId: string;
  /** When the case first started (or ended, if it never started). */
  readonly timestamp: Date;
  readonly status: TestStatus;
  /** Seconds from the first attempt's start to the verdict; 0 if it never started. */
  readonly executionTime: number;
  readonly tokensUsed: number;
  /**
   * The case's cost; undefined when it is unknown (an attempt reported usage but no price, see
   * `Usage.costUnknown`): written as `null`, summed by no report, never read as free.
   */
  readonly cost: number | undefined;
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The target's output (for Dify workflows, its `outputs`-bearing result). */
  readonly outputs: unknown;
  readonly errorMessage: string | undefined;
  readonly dataset: string | undefined;
  readonly metadata: {
    readonly dataset: string | undefined;
    readonly scenario: string | undefined;
    readonly attemptCount: number;
    /** The engine's state, before the 8 -> 4 mapping. */
    readonly taskStatus: TaskStatus;
    readonly errorCode: string | undefined;
    /** Why a cancelled case was cancelled (user, stop_rule:<rule>, deadline, ...). */
    readonly cancelReason: string | undefined;
    readonly tags: readonly string[];
    readonly repeatIndex: number | undefined;
  };
  readonly assertions: readonly AssertionOutcome[];
  /**
   * The case's score, 0..1: the weighted mean of its assertions' scores. Undefined when the case
   * has no assertions or produced no output to judge (an error, a timeout).
   */
  readonly score: number | undefined;
}

/** Where a conversion gets what the TaskResult does not carry. */
export interface ConvertContext {
  /** The plan's `workflow_id`. @default '' */
  readonly workflowId?: string;
  /**
   * Adds to a clock time to get epoch milliseconds (`clock.wallTime() - clock.now()` of the run's
   * clock). @default Date.now() - performance.now(), right for the RealClock
   */
  readonly epochOffsetMs?: number;
}

const STATUS_MAP: Readonly<Record<TaskStatus, TestStatus>> = {
  succeeded: 'success',
  failed: 'failed',
  timeout: 'timeout',
  error: 'error',
  // Not a verdict on the case: reported as ERROR, with the real state in metadata.taskStatus.
  cancelled: 'error',
  pending: 'error',
  queued: 'error',
  running: 'error',
};

function isCaseOutcome(value: unknown): value is CaseOutcome {
  return (
    typeof value === 'object' &&
    value !== null &&
    'assertions' in value &&
    Array.isArray((value as CaseOutcome).assertions) &&
    'output' in value
  );
}

function isTestCase(value: unknown): value is TestCase {
  return typeof value === 'object' && value !== null && 'inputs' in value && 'id' in value;
}

function reasonText(result: TaskResult): string | undefined {
  const r = result.reason;
  if (r === undefined) return undefined;
  switch (r.kind) {
    case 'stop_rule':
      return `stop_rule:${r.rule}`;
    case 'dependency_failed':
      return `dependency_failed:${r.dependency}`;
    default:
      return r.kind;
  }
}

/** A stored outcome's score; unknown (not made up) for one stored before scores existed. */
function scoreOf(outcome: CaseOutcome): number | undefined {
  return typeof outcome.score === 'number' ? outcome.score : undefined;
}

/**
 * The seeds' `ResultConverter`.
 *
 * @example
 * ```ts
 * const testResult = ResultConverter.convert(taskResult, { workflowId: 'support-bot' });
 * testResult.status; // 'success' | 'failed' | 'timeout' | 'error'
 * ```
 */
export const ResultConverter = {
  /** The 8 -> 4 status mapping of seed 001. */
  mapStatus(status: TaskStatus): TestStatus {
    return STATUS_MAP[status];
  },

  /** Converts one result. Throws MISSING_ARGUMENT for a missing result, as the seed did. */
  convert(taskResult: TaskResult | null | undefined, context: ConvertContext = {}): TestResult {
    if (taskResult == null) {
      throw new StrideError('MISSING_ARGUMENT', 'taskResult is required (got nothing to convert)');
    }
    const input = taskResult.input;
    const testCase = isTestCase(input) ? input : undefined;
    const outcome = isCaseOutcome(taskResult.output) ? taskResult.output : undefined;
    const offset = context.epochOffsetMs ?? Date.now() - performance.now();
    const at = taskResult.startedAt ?? taskResult.finishedAt ?? performance.now();
    const failedAssertions = outcome?.assertions.filter((a) => !a.passed) ?? [];
    const errorMessage =
      taskResult.status === 'succeeded'
        ? undefined
        : (taskResult.error?.message ??
          (taskResult.status === 'cancelled'
            ? `cancelled (${reasonText(taskResult)})`
            : undefined) ??
          (failedAssertions.length > 0
            ? failedAssertions.map((a) => a.message).join('; ')
            : undefined));
    return {
      workflowId: context.workflowId ?? '',
      executionId: taskResult.id,
      timestamp: new Date(offset + at),
      status: STATUS_MAP[taskResult.status],
      executionTime: taskResult.executionTimeMs / 1000,
      tokensUsed: taskResult.usage.tokens,
      cost: taskResult.usage.costUnknown === true ? undefined : taskResult.usage.cost,
      inputs:
        testCase?.inputs ??
        (typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {}),
      outputs: outcome !== undefined ? outcome.output : (taskResult.output ?? {}),
      errorMessage,
      dataset: testCase?.dataset,
      metadata: {
        dataset: testCase?.dataset,
        scenario: testCase?.scenario,
        attemptCount: taskResult.attempts,
        taskStatus: taskResult.status,
        errorCode: taskResult.error?.code,
        cancelReason: reasonText(taskResult),
        tags: testCase?.tags ?? [],
        repeatIndex: testCase?.repeatIndex,
      },
      assertions: outcome?.assertions ?? [],
      score: outcome === undefined ? undefined : scoreOf(outcome),
    };
  },

  /** Converts a list. Throws MISSING_ARGUMENT for a missing list, as the seed did. */
  convertBatch(
    taskResults: readonly TaskResult[] | null | undefined,
    context: ConvertContext = {},
  ): TestResult[] {
    if (taskResults == null) {
      throw new StrideError('MISSING_ARGUMENT', 'taskResults is required (got nothing to convert)');
    }
    return taskResults.map((r) => ResultConverter.convert(r, context));
  },
} as const;
