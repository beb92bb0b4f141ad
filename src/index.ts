/**
 * Stride: runs plans reliably, at the pace the target allows.
 *
 * This file is the curated public API: what users need, nothing internal. Names from the
 * original Python module (the seeds) are kept: `RunManifest`, `ExecutionPolicy`, `RetryPolicy`,
 * `RateLimit`, `TestCase`, `TaskStatus`, `TaskResult`, `CancellationToken`, `RunExecutionResult`,
 * `ConcurrentExecutor`, `TaskScheduler`, `StubExecutor`, `RateLimiter`, `ResultConverter`,
 * `ExecutorService`, `TestResult`, `TestStatus`; and from the action-plan seed: `Executor`,
 * `ActionPlan`, `ActionStep`, `ExecutionResult`, `ExecutionStatus`, `StepResult`,
 * `ResourceUsage`, `ResourceLimits`, `ExecutionError`, `ToolRegistry`.
 *
 * @example
 * ```ts
 * import { ExecutorService, loadPlan } from 'stride';
 *
 * const service = new ExecutorService({ functions: { bot: async (testCase) => askMyBot(testCase.inputs) } });
 * const results = await service.executeTestPlan(await loadPlan('plan.yaml'));
 * console.log(results.filter((r) => r.status !== 'success').length, 'not passed');
 * ```
 */

// Installs runManifest on the seeds' faces (core reads plans only through it).
import './runner/manifest.js';

// Action plans (seed 004, see docs/actions.md)
export {
  type ActionPlan,
  ActionPlanError,
  type ActionPlanFile,
  type ActionStep,
  type CompensationResult,
  type ExecutePlanOptions,
  type ExecutionContext,
  type ExecutionError,
  ExecutionErrorType,
  type ExecutionResult,
  ExecutionStatus,
  Executor,
  type ExecutorEvents,
  type ExecutorOptions as ActionExecutorOptions,
  loadActionPlan,
  parseActionPlan,
  ResourceExhaustedError,
  type ResourceLimits,
  type ResourceUsage,
  type RollbackResult,
  type StepResult,
  StepStatus,
  type TimeoutPolicy,
  type Tool,
  type ToolContext,
  ToolRegistry,
  type ToolSchema,
  type ToolUsage,
  type ValidationRule,
} from './actions/index.js';
// Comparing runs: regressions against a baseline, the paired test, trends (docs/compare.md).
export { COMPARE_DETAILS, type CompareOptions, compareRuns } from './compare/compare.js';
export { writeComparisonHtml } from './compare/html.js';
export { caseVerdict, type Interval, mcnemar, type PairedTest, wilson } from './compare/stats.js';
export { comparisonMarkdown, formatComparison } from './compare/text.js';
export {
  passRateTrend,
  type RunFigures,
  runFigures,
  sparkline,
  type TrendPoint,
} from './compare/trend.js';
export type {
  CaseChange,
  CaseSide,
  CaseVerdict,
  CompareSummary,
  Comparison,
  DatasetComparison,
  Rate,
  RunInfo,
  SampleStatus,
  SideSummary,
} from './compare/types.js';
export { type Clock, RealClock, VirtualClock, type VirtualClockOptions } from './core/clock.js';
export { checkDependencies, DependencyError } from './core/dag.js';
// Errors (see docs/errors.md)
export {
  CancelledError,
  classifyError,
  type ErrorClassification,
  type ErrorCode,
  type ErrorInfo,
  HttpError,
  InvalidOptionError,
  isStrideError,
  NonRetryableError,
  PausedError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
  StrideError,
  TaskFailedError,
  TimeoutError,
  ValidationError,
} from './core/errors.js';
// The seeds' faces over the engine
export {
  CancellationToken,
  ConcurrentExecutor,
  type ExecutorOptions,
  type ManifestLike,
  type StubBehavior,
  StubExecutor,
  type StubExecutorOptions,
  type StubOutput,
  seededRandom,
  type TaskExecutionFunc,
  TaskScheduler,
} from './core/faces.js';
// The engine
export {
  type AttemptContext,
  type CancelReason,
  type Hold,
  type HoldInfo,
  isTerminal,
  type LatencySummary,
  type RateLimitSnapshot,
  type RunEvents,
  type RunExecutionResult,
  type RunStatistics,
  type RunStatus,
  type StopInfo,
  type StopRule,
  type Target,
  type TaskResult,
  type TaskSpec,
  TaskStatus,
  type TaskTransition,
  type TaskView,
  type TerminalStatus,
  type Usage,
} from './core/model.js';
export type {
  BatchOptions,
  RetryPolicy,
  RunOptions,
  StopConditions,
  TokenBudget,
} from './core/options.js';
export { type RateLimit, RateLimiter, RateLimiterRegistry } from './core/rate.js';
export { Run, type TaskSource } from './core/run.js';
// Test plans (see docs/plans.md)
export {
  type Assertion,
  type AssertionOutcome,
  checkCases,
  customAssertion,
  type DatasetSpec,
  type ExecutionPolicy,
  evaluateAssertions,
  evaluateAssertionsAsync,
  iterateCases,
  loadPlan,
  PlanError,
  type PlanIssue,
  parseDuration,
  parsePlan,
  printPlan,
  type RunManifest,
  readCases,
  redact,
  redactUrl,
  type TargetConfig,
  type TestCase,
} from './plans/index.js';
export {
  type CaseOutcome,
  type ConvertContext,
  ResultConverter,
  type TestResult,
  TestStatus,
} from './report/convert.js';
export {
  type DurableRunOptions,
  type DurableRunResult,
  type RerunOptions,
  type ResumeOptions,
  rerun,
  resume,
  runDurable,
} from './runner/durable.js';
export {
  type CaseFunction,
  ExecutorService,
  type ExecutorServiceOptions,
  type PreparedTestRun,
  runOptionsFor,
  type TargetFactory,
} from './runner/executor-service.js';
export {
  type GracefulStopInfo,
  type GracefulStopOptions,
  gracefulStop,
  type SignalSource,
} from './runner/graceful.js';
export {
  type HistoryRerunOptions,
  type HistoryResumeOptions,
  type RerunFilter,
  RunHistory,
  type RunHistoryOptions,
} from './runner/history.js';
export {
  type PlanAdapter,
  type ResultSink,
  RunSession,
  type RunSessionOptions,
  type SessionOutcome,
  type StartedRun,
  testPlan,
} from './runner/session.js';
export { snapshotPlan } from './runner/snapshot.js';
