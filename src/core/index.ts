/** The engine's public surface. Everything outside core reaches the engine through this file. */
export {
  type CancelTimer,
  type Clock,
  RealClock,
  VirtualClock,
  type VirtualClockOptions,
} from './clock.js';
export { checkDependencies, DependencyError } from './dag.js';
export * from './errors.js';
export * from './faces.js';
export {
  evalJsonPath,
  type JsonPathResult,
  type JsonPathSegment,
  parseJsonPath,
} from './jsonpath.js';
export * from './model.js';
export {
  type BatchOptions,
  backoffDelay,
  type RetryPolicy,
  type RunOptions,
  resolveRetry,
  type StopConditions,
  type TokenBudget,
} from './options.js';
export type {
  AdaptiveOptions,
  PaceChange,
  PaceReason,
  PaceState,
  PaceStatistics,
} from './pace.js';
export {
  type RateLimit,
  RateLimiter,
  type RateLimiterOptions,
  RateLimiterRegistry,
} from './rate.js';
export { Run, type TaskSource } from './run.js';
