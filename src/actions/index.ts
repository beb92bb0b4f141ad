/**
 * Action plans (seed 004): the `Executor`, its tools and types. See docs/actions.md.
 *
 * @example
 * ```ts
 * import { Executor, ToolRegistry } from 'stride';
 *
 * const executor = new Executor({ toolRegistry: ToolRegistry.withBuiltins({ root: './work' }), autoRollback: true });
 * const result = await executor.executePlan(plan);
 * if (result.status === 'failed') console.log(result.error?.type, result.rollback?.status);
 * ```
 */

export { actionPlan, type StartedActionRun } from './adapter.js';
export {
  builtinTools,
  fileTools,
  httpTool,
  sleepTool,
  transformTool,
} from './builtins.js';
export {
  ActionPlanError,
  type ExecutePlanOptions,
  Executor,
  type ExecutorEvents,
  type ExecutorOptions,
  ResourceExhaustedError,
} from './executor.js';
export { type ActionPlanFile, loadActionPlan, parseActionPlan, planKindOf } from './load.js';
export { ToolRegistry } from './registry.js';
export { checkJsonSchema, validateSchema, validateSchemaAsync } from './schema.js';
export { actionSnapshot } from './snapshot.js';
export { resolveArguments } from './template.js';
export type { JsonSchema, JsonType, Tool, ToolContext, ToolSchema, ToolUsage } from './tool.js';
export {
  type ActionPlan,
  type ActionStep,
  type CompensationResult,
  type ExecutionContext,
  type ExecutionError,
  ExecutionErrorType,
  type ExecutionResult,
  ExecutionStatus,
  type ResourceLimits,
  type ResourceUsage,
  type RollbackResult,
  type StepResult,
  StepStatus,
  type TimeoutPolicy,
  type ValidationRule,
} from './types.js';
