/**
 * The seed-004 `Executor`: action plans (a DAG of tool steps) on the one engine. Steps become
 * tasks with `dependsOn`; the engine owns readiness, concurrency, retries, timeouts, pause,
 * cancel and the fail-fast rule; this file adds tools, argument references, validation, the
 * saga (compensations) and resource limits. See docs/actions.md.
 */

import {
  type AttemptContext,
  type Clock,
  checkDependencies,
  classifyError,
  DependencyError,
  InvalidOptionError,
  RealClock,
  type RetryPolicy,
  Run,
  type RunExecutionResult,
  type RunOptions,
  StrideError,
  TaskFailedError,
  type TaskResult,
  type TaskSpec,
  type TaskView,
  ValidationError,
} from '../core/index.js';
import { evalJsonPath } from '../core/jsonpath.js';
import { REDACTED, redactLiterals, setIn } from '../plans/index.js';
import { openRunLife, type RunLife, type RunOpener } from '../runner/run-life.js';
import type { Journal } from '../store/journal.js';
import { attachJournal } from '../store/journal.js';
import type { Store } from '../store/port.js';
import type { StoredProgress } from '../store/resume.js';
import { ToolRegistry } from './registry.js';
import { validateSchema, validateSchemaAsync } from './schema.js';
import { actionSnapshot } from './snapshot.js';
import { resolveArguments } from './template.js';
import type { Tool, ToolContext, ToolUsage } from './tool.js';
import type {
  ActionPlan,
  ActionStep,
  CompensationResult,
  ExecutionContext,
  ExecutionError,
  ExecutionErrorType,
  ExecutionResult,
  ExecutionStatus,
  ResourceLimits,
  ResourceUsage,
  RollbackResult,
  StepResult,
  StepStatus,
  TimeoutPolicy,
} from './types.js';

/** Options of `new Executor(...)` (the seed's `with_*` builders). */
export interface ExecutorOptions {
  /** The tools steps can call. @default the built-in `sleep` and `transform` only */
  readonly toolRegistry?: ToolRegistry;
  /** Steps running at once. @default 4 */
  readonly maxConcurrentSteps?: number;
  readonly resourceLimits?: ResourceLimits;
  readonly timeoutPolicy?: TimeoutPolicy;
  /** Retries of steps and compensations: one retry layer, the engine's. @default 3 attempts, 500 ms backoff x2, full jitter */
  readonly retryPolicy?: RetryPolicy;
  /** Roll back (run the compensations) when a plan fails. @default false */
  readonly autoRollback?: boolean;
  /** Stop every other step at the first step that fails for good. @default false */
  readonly failFast?: boolean;
  /** Emit `step`, `plan` and `compensation` events (`executor.on`). @default true */
  readonly progressReporting?: boolean;
  /** Journal every plan (and rollback) into this store: resumable, listed by `stride runs`. */
  readonly store?: Store;
  /** How often memory is sampled while a plan runs, in ms. @default 100 */
  readonly memorySampleMs?: number;
  /** @default new RealClock() */
  readonly clock?: Clock;
  /** For the backoff jitter. @default Math.random */
  readonly random?: () => number;
}

/** The executor's events. */
export interface ExecutorEvents {
  step: (e: {
    planId: string;
    stepId: string;
    status: StepStatus;
    attempt: number;
    at: number;
  }) => void;
  plan: (e: { planId: string; status: ExecutionStatus; at: number }) => void;
  compensation: (e: {
    planId: string;
    stepId: string;
    status: CompensationResult['status'] | 'running';
    at: number;
  }) => void;
}

/** Options of `executePlan`. */
export interface ExecutePlanOptions {
  /** Aborting it cancels the plan (as `cancelExecution`). */
  readonly signal?: AbortSignal;
  /**
   * Continue a journaled plan after a crash or an interruption: steps with a stored verdict are
   * not run again (their outputs feed later steps); the rest run. Needs `store`.
   */
  readonly resume?: boolean;
  /**
   * Opens the plan's run in the store (creates or reopens it, loads the one resume state,
   * attaches the journal): the run session's (`RunSession`, through `actionPlan`).
   * @default `openRunLife` on the executor's store
   */
  readonly open?: RunOpener;
  /** Called with the engine's run and its journal right before the plan starts (the CLI installs its Ctrl-C handling here). */
  readonly onStart?: (session: {
    run: Run<ActionStep, unknown>;
    journal: Journal | undefined;
  }) => void;
}

type SagaState = 'registered' | 'completed' | 'unknown' | 'failed' | 'compensated';

/** A resumed step's attempts already spent (as a test case's: `TaskSpec.attemptsBefore`). */
function attemptsSpent(
  prior: StoredProgress | undefined,
  stepId: string,
): { attemptsBefore?: number; interruptedBefore?: number } {
  const before = prior?.attemptsBefore.get(stepId);
  if (before === undefined || before === 0) return {};
  const unspent = prior?.unspent.get(stepId);
  return unspent === undefined
    ? { attemptsBefore: before }
    : { attemptsBefore: before, interruptedBefore: unspent };
}

/** The saga log entry of one step, registered before the tool is called. */
interface SagaEntry {
  readonly stepId: string;
  readonly tool: string;
  args: Record<string, unknown>;
  state: SagaState;
  output: unknown;
  /** Completion order (ends of the tool call); in-flight entries sort last. */
  order: number;
}

interface Usage {
  cpuTimeMs: number;
  memoryPeakMb: number;
  diskReads: number;
  diskWrites: number;
  diskBytesRead: number;
  diskBytesWritten: number;
  networkRequests: number;
  toolInvocations: number;
}

interface Execution {
  readonly plan: ActionPlan;
  status: ExecutionStatus;
  run: Run<ActionStep, unknown> | undefined;
  readonly outputs: Map<string, unknown>;
  readonly saga: Map<string, SagaEntry>;
  readonly usage: Usage;
  fatal: ExecutionError | undefined;
  journal: Journal | undefined;
  sagaSeq: number;
  result: ExecutionResult | undefined;
  rollback: RollbackResult | undefined;
  rollingBack: boolean;
}

const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 3,
  backoffMs: 500,
  backoffMultiplier: 2,
  maxBackoffMs: 10_000,
  jitter: 'full',
};

/** Thrown when a resource limit is reached; fails the whole plan. */
export class ResourceExhaustedError extends StrideError {
  constructor(
    readonly limit: string,
    message: string,
  ) {
    super('RESOURCE_EXHAUSTED', message, { retryable: false });
  }
}

function positive(field: string, value: unknown, integer: boolean): void {
  if (value === undefined) return;
  const ok = typeof value === 'number' && value > 0 && (!integer || Number.isInteger(value));
  if (!ok) throw new InvalidOptionError(field, value, integer ? 'an integer >= 1' : 'a number > 0');
}

function validateOptions(o: ExecutorOptions): void {
  if (o.toolRegistry !== undefined && !(o.toolRegistry instanceof ToolRegistry)) {
    throw new InvalidOptionError('toolRegistry', o.toolRegistry, 'a ToolRegistry');
  }
  positive('maxConcurrentSteps', o.maxConcurrentSteps, true);
  positive('memorySampleMs', o.memorySampleMs, false);
  const l = o.resourceLimits ?? {};
  positive('resourceLimits.maxExecutionTimeMs', l.maxExecutionTimeMs, false);
  positive('resourceLimits.maxToolInvocations', l.maxToolInvocations, true);
  positive('resourceLimits.maxNetworkRequests', l.maxNetworkRequests, true);
  positive('resourceLimits.maxConcurrentSteps', l.maxConcurrentSteps, true);
  positive('resourceLimits.maxMemoryMb', l.maxMemoryMb, false);
  const known = new Set([
    'maxExecutionTimeMs',
    'maxToolInvocations',
    'maxNetworkRequests',
    'maxConcurrentSteps',
    'maxMemoryMb',
  ]);
  for (const k of Object.keys(l)) {
    if (!known.has(k))
      throw new InvalidOptionError(
        `resourceLimits.${k}`,
        (l as Record<string, unknown>)[k],
        `one of ${[...known].join(', ')}`,
      );
  }
  const t = o.timeoutPolicy ?? {};
  positive('timeoutPolicy.stepTimeoutMs', t.stepTimeoutMs, false);
  positive('timeoutPolicy.expectedDurationFactor', t.expectedDurationFactor, false);
  positive('timeoutPolicy.compensationTimeoutMs', t.compensationTimeoutMs, false);
  for (const k of ['autoRollback', 'failFast', 'progressReporting'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean')
      throw new InvalidOptionError(k, o[k], 'true or false');
  }
}

/** Structural problems of a plan, found before anything runs. */
export class ActionPlanError extends StrideError {
  constructor(readonly problems: readonly string[]) {
    super('PLAN_INVALID', `invalid action plan: ${problems.join('; ')}`, { retryable: false });
  }
}

function checkPlan(plan: ActionPlan): void {
  const problems: string[] = [];
  if (typeof plan !== 'object' || plan === null)
    throw new ActionPlanError(['the plan must be an object']);
  if (typeof plan.id !== 'string' || plan.id === '')
    problems.push(`id: ${JSON.stringify(plan.id)} (expected a non-empty string)`);
  if (!Array.isArray(plan.steps) || plan.steps.length === 0)
    problems.push('steps: the plan has no steps');
  else {
    plan.steps.forEach((s, i) => {
      if (typeof s?.id !== 'string' || s.id === '')
        problems.push(`steps[${i}].id: ${JSON.stringify(s?.id)} (expected a non-empty string)`);
      if (typeof s?.tool !== 'string' || s.tool === '')
        problems.push(`steps[${i}].tool: ${JSON.stringify(s?.tool)} (expected a tool name)`);
    });
    try {
      checkDependencies(
        plan.steps.map((s) => ({
          id: s.id,
          input: s,
          ...(s.dependencies === undefined ? {} : { dependsOn: s.dependencies }),
        })),
      );
    } catch (err) {
      if (err instanceof DependencyError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new ActionPlanError(problems);
}

function errorType(code: string | undefined, status: string): ExecutionErrorType {
  if (status === 'timeout' || code === 'TIMEOUT') return 'timeout';
  switch (code) {
    case 'RESOURCE_EXHAUSTED':
      return 'resource_exhausted';
    case 'TOOL_NOT_FOUND':
      return 'tool_not_found';
    case 'NETWORK_ERROR':
    case 'RATE_LIMITED':
      return 'network';
    case 'VALIDATION_ERROR':
    case 'TASK_FAILED':
      return 'validation';
    case 'CANCELLED':
      return 'cancelled';
    default:
      return 'tool_error';
  }
}

const STEP_STATUS: Record<string, StepStatus> = {
  pending: 'pending',
  queued: 'pending',
  running: 'running',
  succeeded: 'completed',
  failed: 'failed',
  error: 'failed',
  timeout: 'timeout',
  cancelled: 'cancelled',
};

/**
 * Runs action plans: steps calling tools, in dependency order, with retries, timeouts,
 * pause / resume / cancel, resource limits and saga rollback.
 *
 * @example
 * ```ts
 * import { Executor, ToolRegistry } from 'stride';
 *
 * const tools = ToolRegistry.withBuiltins({ root: './sandbox' });
 * const executor = new Executor({ toolRegistry: tools, maxConcurrentSteps: 4, autoRollback: true });
 * const result = await executor.executePlan({
 *   id: 'deploy-1',
 *   steps: [
 *     { id: 'write', tool: 'file.write', arguments: { path: 'release.txt', content: 'v2' } },
 *     { id: 'read', tool: 'file.read', arguments: { path: '${steps.write.output.path}' }, dependencies: ['write'] },
 *   ],
 * });
 * console.log(result.status, result.resourceUsage.toolInvocations);
 * ```
 */
export class Executor {
  readonly toolRegistry: ToolRegistry;
  private readonly options: ExecutorOptions;
  private readonly clock: Clock;
  private readonly retry: RetryPolicy;
  private readonly executions = new Map<string, Execution>();
  private readonly listeners: { [K in keyof ExecutorEvents]: ExecutorEvents[K][] } = {
    step: [],
    plan: [],
    compensation: [],
  };

  constructor(options: ExecutorOptions = {}) {
    validateOptions(options);
    this.options = options;
    this.toolRegistry = options.toolRegistry ?? ToolRegistry.withBuiltins({});
    this.clock = options.clock ?? new RealClock();
    this.retry = { ...DEFAULT_RETRY, ...options.retryPolicy };
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof ExecutorEvents>(event: K, listener: ExecutorEvents[K]): () => void {
    const list = this.listeners[event] as ExecutorEvents[K][];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  private emit<K extends keyof ExecutorEvents>(
    event: K,
    payload: Parameters<ExecutorEvents[K]>[0],
  ): void {
    if (this.options.progressReporting === false) return;
    for (const l of [...this.listeners[event]]) (l as (p: typeof payload) => void)(payload);
  }

  /**
   * Executes a plan: resolves with its ExecutionResult (never rejects for a failed step; a plan
   * with a cycle, an unknown dependency or a duplicate id rejects with `ActionPlanError` before
   * anything runs).
   */
  async executePlan(plan: ActionPlan, options: ExecutePlanOptions = {}): Promise<ExecutionResult> {
    checkPlan(plan);
    const existing = this.executions.get(plan.id);
    if (existing !== undefined && (existing.status === 'running' || existing.status === 'paused')) {
      throw new StrideError('INVALID_STATE', `plan "${plan.id}" is already running`);
    }
    const exec = newExecution(plan, 'pending');
    this.executions.set(plan.id, exec);
    const started = this.clock.now();
    const cpuBefore = process.cpuUsage();
    this.sampleMemory(exec);

    // Unknown tools: nothing runs, the plan fails with tool_not_found (the seed's error type).
    const missing = plan.steps.filter((s) => !this.toolRegistry.has(s.tool));
    if (missing.length > 0) {
      exec.fatal = {
        type: 'tool_not_found',
        message: missing.map((s) => `step "${s.id}": ${this.noTool(s.tool)}`).join('; '),
        retryable: false,
        stepId: missing[0]!.id,
        code: 'TOOL_NOT_FOUND',
      };
      exec.status = 'failed';
      const result = this.buildResult(exec, undefined, new Map(), started, cpuBefore);
      exec.result = result;
      return result;
    }

    const limits = this.options.resourceLimits ?? {};
    const concurrency = Math.min(
      this.options.maxConcurrentSteps ?? 4,
      limits.maxConcurrentSteps ?? Number.POSITIVE_INFINITY,
    );
    // Without a store nothing is awaited: the plan is running as soon as this call returns.
    const opening = this.openLife(plan, options, {
      maxConcurrentSteps: concurrency,
      resourceLimits: limits,
      retryPolicy: this.retry,
    });
    const life = opening === undefined ? undefined : await opening;
    let run: Run<ActionStep, unknown>;
    let prior: { done: Map<string, TaskResult> } | undefined;
    try {
      prior = life?.prior === undefined ? undefined : this.loadPrior(exec, life.prior);
      run = new Run<ActionStep, unknown>(
        this.tasksOf(exec, prior?.done ?? new Map(), life?.prior),
        this.targetFor(exec),
        this.engineOptions({
          concurrency,
          runId: plan.id,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          stop: {
            ...((plan.failFast ?? this.options.failFast) === true ? { failFast: true } : {}),
            ...(limits.maxExecutionTimeMs === undefined
              ? {}
              : { deadlineMs: limits.maxExecutionTimeMs }),
          },
        }),
      );
    } catch (err) {
      await life?.release();
      throw err;
    }
    exec.run = run;
    run.on('transition', (t) => {
      if (t.to === 'queued' || t.to === 'pending') return;
      this.emit('step', {
        planId: plan.id,
        stepId: t.taskId,
        status: STEP_STATUS[t.to]!,
        attempt: t.attempt,
        at: t.at,
      });
    });
    run.on('paused', () => this.setStatus(exec, 'paused'));
    run.on('resumed', () => this.setStatus(exec, 'running'));
    if (life !== undefined) exec.journal = await life.attach(run);
    options.onStart?.({ run, journal: exec.journal });
    const sampler = setInterval(() => this.sampleMemory(exec), this.options.memorySampleMs ?? 100);
    sampler.unref();
    // Held from its first moment (a session's hold taken before the start) it starts paused.
    this.setStatus(exec, run.holds().length > 0 ? 'paused' : 'running');
    let engine: RunExecutionResult<ActionStep, unknown>;
    try {
      engine = await run.start();
      await exec.journal?.closed;
    } finally {
      clearInterval(sampler);
    }
    this.sampleMemory(exec);
    const stepsById = new Map<string, TaskResult<ActionStep, unknown>>();
    for (const r of engine.tasks) stepsById.set(r.id, r);
    if (engine.stoppedBy?.rule === 'deadline' && exec.fatal === undefined) {
      exec.fatal = {
        type: 'resource_exhausted',
        limit: 'max_execution_time',
        message: `the plan ran past resourceLimits.maxExecutionTimeMs (${limits.maxExecutionTimeMs} ms)`,
        retryable: false,
        code: 'RESOURCE_EXHAUSTED',
      };
    }
    exec.status = this.finalStatus(exec, engine, stepsById, prior?.done);
    const result = this.buildResult(exec, engine, stepsById, started, cpuBefore, prior?.done);
    exec.result = result;
    this.emit('plan', { planId: plan.id, status: exec.status, at: this.clock.now() });
    if (exec.status === 'failed' && this.options.autoRollback === true) {
      const rollback = await this.rollbackExecution(plan.id);
      const withRollback = { ...result, rollback };
      exec.result = withRollback;
      return withRollback;
    }
    return result;
  }

  /**
   * Executes one step alone (for tests and debugging): its tool, arguments (references resolved
   * from `context.outputs`), validation, timeout and retries, without a plan around it.
   */
  async executeStep(step: ActionStep, context: ExecutionContext = {}): Promise<StepResult> {
    const plan: ActionPlan = {
      id: context.planId ?? `step-${step.id}`,
      steps: [{ ...step, dependencies: [] }],
    };
    checkPlan(plan);
    if (!this.toolRegistry.has(step.tool)) {
      return {
        stepId: step.id,
        status: 'failed',
        output: undefined,
        error: this.noTool(step.tool),
        executionTime: 0,
        retryCount: 0,
        metadata: { tool: step.tool, errorType: 'tool_not_found' },
      };
    }
    const exec = newExecution(plan, 'running', new Map(Object.entries(context.outputs ?? {})));
    const run = new Run<ActionStep, unknown>(
      this.tasksOf(exec, new Map()),
      this.targetFor(exec),
      this.engineOptions({
        concurrency: 1,
        ...(context.signal === undefined ? {} : { signal: context.signal }),
      }),
    );
    const engine = await run.start();
    return this.stepResult(step, engine.tasks[0]);
  }

  /** Cancels a running plan: in-flight steps are aborted, the rest cancelled. */
  async cancelExecution(planId: string): Promise<void> {
    const exec = this.get(planId);
    exec.run?.cancel({ message: `plan ${planId} cancelled` });
    await exec.run?.result;
  }

  /** Pauses a running plan: no step starts; steps in flight finish. */
  async pauseExecution(planId: string): Promise<void> {
    const exec = this.get(planId);
    if (exec.run === undefined || exec.status !== 'running') {
      throw new StrideError('INVALID_STATE', `plan "${planId}" is ${exec.status}, not running`);
    }
    exec.run.pause();
    this.setStatus(exec, 'paused');
  }

  /** Resumes a paused plan. */
  async resumeExecution(planId: string): Promise<void> {
    const exec = this.get(planId);
    if (exec.run === undefined || exec.status !== 'paused') {
      throw new StrideError('INVALID_STATE', `plan "${planId}" is ${exec.status}, not paused`);
    }
    exec.run.resume();
    // Only the user's hold is released: another owner's (a graceful stop, the dashboard) stays.
    this.setStatus(exec, exec.run.holds().length > 0 ? 'paused' : 'running');
  }

  /** The plan's status now. */
  async getExecutionStatus(planId: string): Promise<ExecutionStatus> {
    return this.get(planId).status;
  }

  /** The plan's latest result (after it ended), with its rollback if one ran. */
  getExecutionResult(planId: string): ExecutionResult | undefined {
    return this.executions.get(planId)?.result;
  }

  /**
   * Rolls back a failed or cancelled plan: the compensations of completed steps, and of steps
   * whose outcome is unknown (timed out, aborted, in flight at a crash), in reverse completion
   * order, one at a time, shielded from cancellation, each with its own timeout and retries. A
   * compensation that fails is reported in the result, never swallowed; rolling back again
   * retries only those. With a store, the rollback is journaled as the run `<planId>:rollback`,
   * and a rollback cut by a crash continues where it stopped (`{ plan }` lets a new process
   * roll back a plan it did not run).
   */
  async rollbackExecution(
    planId: string,
    options: { plan?: ActionPlan } = {},
  ): Promise<RollbackResult> {
    let exec = this.executions.get(planId);
    if (exec === undefined) {
      if (options.plan === undefined || this.options.store === undefined) {
        throw new StrideError(
          'RUN_NOT_FOUND',
          `no execution of plan "${planId}" here: pass { plan } with a store to roll back a journaled plan`,
        );
      }
      exec = await this.restore(options.plan);
    }
    if (exec.status === 'running' || exec.status === 'paused') {
      throw new StrideError(
        'INVALID_STATE',
        `plan "${planId}" is ${exec.status}: cancel it before rolling it back`,
      );
    }
    if (exec.rollingBack)
      throw new StrideError('INVALID_STATE', `plan "${planId}" is already rolling back`);
    exec.rollingBack = true;
    try {
      return await this.compensate(exec);
    } finally {
      exec.rollingBack = false;
    }
  }

  // ------------------------------------------------------------------ internals

  /**
   * The engine options every run of this executor shares (plans, single steps, rollbacks): its
   * clock, retry policy and randomness; no auth stop rule (a tool's 401 is that step's error).
   */
  private engineOptions(extra: RunOptions): RunOptions {
    return {
      clock: this.clock,
      retry: this.retry,
      ...(this.options.random === undefined ? {} : { random: this.options.random }),
      ...extra,
      stop: { maxConsecutiveAuthErrors: 0, ...extra.stop },
    };
  }

  private noTool(name: string): string {
    return `no tool "${name}" (registered: ${this.toolRegistry.names().join(', ')})`;
  }

  private get(planId: string): Execution {
    const exec = this.executions.get(planId);
    if (exec === undefined)
      throw new StrideError('RUN_NOT_FOUND', `no execution of plan "${planId}"`);
    return exec;
  }

  private setStatus(exec: Execution, status: ExecutionStatus): void {
    if (exec.status === status) return;
    exec.status = status;
    this.emit('plan', { planId: exec.plan.id, status, at: this.clock.now() });
  }

  private sampleMemory(exec: Execution): void {
    const mb = process.memoryUsage.rss() / 1_048_576;
    if (mb > exec.usage.memoryPeakMb) exec.usage.memoryPeakMb = mb;
    const max = this.options.resourceLimits?.maxMemoryMb;
    if (max !== undefined && mb > max) {
      this.exhaust(
        exec,
        'max_memory_mb',
        `resident memory ${mb.toFixed(0)} MB went over resourceLimits.maxMemoryMb (${max} MB)`,
      );
    }
  }

  /** A limit was reached: the plan fails with resource_exhausted and everything stops. */
  private exhaust(exec: Execution, limit: string, message: string): ResourceExhaustedError {
    const err = new ResourceExhaustedError(limit, message);
    if (exec.fatal === undefined) {
      exec.fatal = {
        type: 'resource_exhausted',
        limit,
        message,
        retryable: false,
        code: 'RESOURCE_EXHAUSTED',
      };
      exec.run?.cancel({ message });
    }
    return err;
  }

  private tasksOf(
    exec: Execution,
    done: ReadonlyMap<string, TaskResult>,
    prior?: StoredProgress,
  ): TaskSpec<ActionStep>[] {
    const t = this.options.timeoutPolicy ?? {};
    const tasks: TaskSpec<ActionStep>[] = [];
    for (const step of exec.plan.steps) {
      if (done.has(step.id)) continue;
      // A dependency with a stored verdict is not in this run: success satisfies it, anything else
      // cancels the step before the run (see loadPrior).
      const deps = (step.dependencies ?? []).filter((d) => !done.has(d));
      const timeoutMs =
        step.timeoutMs ??
        (step.expectedDurationMs === undefined
          ? (t.stepTimeoutMs ?? 60_000)
          : step.expectedDurationMs * (t.expectedDurationFactor ?? 3));
      tasks.push({
        id: step.id,
        // What the journal stores as the task's input: secrets redacted. The target runs the
        // plan's own step (looked up by id), with the real values.
        input: redactStep(exec.plan, step),
        timeoutMs,
        ...(deps.length === 0 ? {} : { dependsOn: deps }),
        ...(step.retryPolicy?.maxAttempts === undefined
          ? {}
          : { maxAttempts: step.retryPolicy.maxAttempts }),
        ...attemptsSpent(prior, step.id),
      });
    }
    return tasks;
  }

  private usageFor(exec: Execution): ToolUsage {
    const limits = this.options.resourceLimits ?? {};
    return {
      networkRequest: () => {
        if (
          limits.maxNetworkRequests !== undefined &&
          exec.usage.networkRequests >= limits.maxNetworkRequests
        ) {
          throw this.exhaust(
            exec,
            'max_network_requests',
            `resourceLimits.maxNetworkRequests (${limits.maxNetworkRequests}) reached`,
          );
        }
        exec.usage.networkRequests++;
      },
      diskRead: (bytes) => {
        exec.usage.diskReads++;
        exec.usage.diskBytesRead += bytes;
      },
      diskWrite: (bytes) => {
        exec.usage.diskWrites++;
        exec.usage.diskBytesWritten += bytes;
      },
    };
  }

  private targetFor(exec: Execution) {
    const limits = this.options.resourceLimits ?? {};
    const usage = this.usageFor(exec);
    return {
      key: `actions:${exec.plan.id}`,
      execute: async (task: TaskView<ActionStep>, ctx: AttemptContext): Promise<unknown> => {
        const step = exec.plan.steps.find((s) => s.id === task.id) ?? task.input;
        const tool = this.toolRegistry.get(step.tool) as Tool<Record<string, unknown>, unknown>;
        const args = resolveArguments(step.arguments ?? {}, exec.outputs, step.id);
        if (tool.schema !== undefined) {
          const problems = validateSchema(tool.schema, args, '$');
          if (problems.length > 0) {
            throw new ValidationError(
              `step "${step.id}": arguments of tool "${tool.name}" are invalid: ${problems.join('; ')}`,
            );
          }
        }
        if (
          limits.maxToolInvocations !== undefined &&
          exec.usage.toolInvocations >= limits.maxToolInvocations
        ) {
          throw this.exhaust(
            exec,
            'max_tool_invocations',
            `resourceLimits.maxToolInvocations (${limits.maxToolInvocations}) reached before step "${step.id}"`,
          );
        }
        // Counted before any await: two steps starting together cannot both pass the limit.
        exec.usage.toolInvocations++;
        // The saga: the compensation is registered (and journaled) before the tool runs, so a
        // crash while it runs still leaves a record to compensate. An earlier attempt that may
        // have taken effect (unknown outcome) keeps its entry: a retry that then fails must not
        // erase what is to be undone.
        let entry: SagaEntry | undefined;
        if (tool.compensate !== undefined) {
          const earlier = exec.saga.get(step.id);
          const mayHaveActed = earlier !== undefined && earlier.state === 'unknown';
          entry = {
            stepId: step.id,
            tool: tool.name,
            args,
            state: mayHaveActed ? 'unknown' : 'registered',
            output: undefined,
            order: mayHaveActed ? earlier.order : Number.POSITIVE_INFINITY,
          };
          exec.saga.set(step.id, entry);
          await exec.journal?.flush();
        }
        const toolCtx: ToolContext = {
          signal: ctx.signal,
          attempt: ctx.attempt,
          stepId: step.id,
          planId: exec.plan.id,
          usage,
        };
        let output: unknown;
        try {
          output = await tool.execute(args, toolCtx);
        } catch (err) {
          if (entry !== undefined) {
            // Aborted mid-call (timeout, cancel): it may have taken effect. Otherwise it failed,
            // unless an earlier attempt's outcome is unknown (kept above).
            if (ctx.signal.aborted) entry.state = 'unknown';
            else if (entry.state !== 'unknown') entry.state = 'failed';
            entry.order = ++exec.sagaSeq;
          }
          throw err;
        }
        if (entry !== undefined) {
          entry.state = 'completed';
          entry.output = output;
          entry.order = ++exec.sagaSeq;
        }
        const problem = await this.validate(step, output, ctx);
        if (problem !== undefined) {
          throw new TaskFailedError(`step "${step.id}": output failed validation: ${problem}`, {
            output,
          });
        }
        exec.outputs.set(step.id, output);
        return output;
      },
    };
  }

  /**
   * The first validation rule the output breaks, as a message. A `pattern` too large to match on
   * this thread runs on the pattern worker, ended by the attempt's signal (its timeout, a cancel).
   */
  private async validate(
    step: ActionStep,
    output: unknown,
    ctx: AttemptContext,
  ): Promise<string | undefined> {
    for (const rule of step.validationRules ?? []) {
      if ('predicate' in rule) {
        const verdict = rule.predicate(output);
        if (verdict !== true)
          return (
            rule.message ?? (typeof verdict === 'string' ? verdict : 'the predicate returned false')
          );
        continue;
      }
      let value = output;
      if (rule.path !== undefined) {
        const found = evalJsonPath(output, rule.path);
        if (!found.found) return rule.message ?? `${rule.path} is missing`;
        value = found.value;
      }
      // A getter: reading ctx.signal creates the attempt's AbortController; only the worker needs it.
      const problems = await validateSchemaAsync(rule.schema, value, rule.path ?? '$', {
        get signal() {
          return ctx.signal;
        },
      });
      if (problems.length > 0)
        return rule.message === undefined
          ? problems.join('; ')
          : `${rule.message} (${problems.join('; ')})`;
    }
    return undefined;
  }

  private stepResult(
    step: ActionStep,
    r: TaskResult<ActionStep, unknown> | undefined,
    stored?: TaskResult,
  ): StepResult {
    const res = r ?? stored;
    if (res === undefined) {
      return {
        stepId: step.id,
        status: 'pending',
        output: undefined,
        error: undefined,
        executionTime: 0,
        retryCount: 0,
        metadata: { tool: step.tool },
      };
    }
    const reason = res.reason;
    return {
      stepId: step.id,
      status: STEP_STATUS[res.status]!,
      output: res.output,
      error:
        res.error?.message ??
        (reason?.kind === 'dependency_failed'
          ? `dependency "${reason.dependency}" failed`
          : undefined),
      executionTime: res.executionTimeMs,
      retryCount: Math.max(0, res.attempts - 1),
      metadata: {
        tool: step.tool,
        attempts: res.attempts,
        ...(res.error?.code === undefined ? {} : { errorCode: res.error.code }),
        ...(reason === undefined
          ? {}
          : {
              cancelReason:
                reason.kind === 'dependency_failed'
                  ? `dependency_failed:${reason.dependency}`
                  : reason.kind === 'stop_rule'
                    ? `stop_rule:${reason.rule}`
                    : reason.kind,
            }),
        ...(step.parameters === undefined ? {} : { parameters: step.parameters }),
        ...(stored !== undefined && r === undefined ? { resumedFrom: 'journal' } : {}),
      },
    };
  }

  private finalStatus(
    exec: Execution,
    engine: RunExecutionResult<ActionStep, unknown>,
    steps: ReadonlyMap<string, TaskResult>,
    done: ReadonlyMap<string, TaskResult> | undefined,
  ): ExecutionStatus {
    if (exec.fatal !== undefined) return 'failed';
    if (engine.status === 'cancelled') return 'cancelled';
    const all = exec.plan.steps.map((s) => steps.get(s.id) ?? done?.get(s.id));
    return all.every((r) => r?.status === 'succeeded') ? 'completed' : 'failed';
  }

  private buildResult(
    exec: Execution,
    engine: RunExecutionResult<ActionStep, unknown> | undefined,
    steps: ReadonlyMap<string, TaskResult<ActionStep, unknown>>,
    started: number,
    cpuBefore: NodeJS.CpuUsage,
    done?: ReadonlyMap<string, TaskResult>,
  ): ExecutionResult {
    const cpu = process.cpuUsage(cpuBefore);
    exec.usage.cpuTimeMs = (cpu.user + cpu.system) / 1000;
    const stepResults = exec.plan.steps.map((s) =>
      this.stepResult(s, steps.get(s.id), done?.get(s.id)),
    );
    let error = exec.fatal;
    if (error === undefined && exec.status === 'cancelled') {
      error = {
        type: 'cancelled',
        message: `plan "${exec.plan.id}" was cancelled`,
        retryable: false,
        code: 'CANCELLED',
      };
    }
    if (error === undefined && exec.status === 'failed') {
      // The first step that failed for good, in completion order.
      const first = [...(done?.values() ?? []), ...(engine?.tasks ?? [])].find(
        (r) => r.status === 'failed' || r.status === 'error' || r.status === 'timeout',
      );
      if (first !== undefined) {
        const cls =
          first.error === undefined
            ? undefined
            : classifyError(
                Object.assign(new Error(first.error.message), {
                  code: first.error.code,
                  status: first.error.status,
                }),
              );
        error = {
          type: errorType(first.error?.code, first.status),
          message: `step "${first.id}" ${first.status}: ${first.error?.message ?? ''}`.trimEnd(),
          retryable: cls?.retryable ?? false,
          stepId: first.id,
          ...(first.error?.code === undefined ? {} : { code: first.error.code }),
        };
      }
    }
    const usage: ResourceUsage = {
      ...exec.usage,
      memoryPeakMb: Math.round(exec.usage.memoryPeakMb * 10) / 10,
    };
    return {
      planId: exec.plan.id,
      status: exec.status,
      stepResults,
      executionTime: this.clock.now() - started,
      resourceUsage: usage,
      metadata: {
        ...(exec.plan.metadata ?? {}),
        ...(exec.plan.name === undefined ? {} : { name: exec.plan.name }),
        steps: exec.plan.steps.length,
        ...(engine?.stoppedBy === undefined ? {} : { stoppedBy: engine.stoppedBy.rule }),
        ...(done === undefined || done.size === 0 ? {} : { resumedSteps: done.size }),
      },
      error,
    };
  }

  /**
   * Opens the plan's run in the store through the session's opener (or `openRunLife` without a
   * session): undefined without a store. A resume is locked and its state loaded there, once.
   */
  private openLife(
    plan: ActionPlan,
    options: ExecutePlanOptions,
    recorded: unknown,
  ): Promise<RunLife> | undefined {
    const store = this.options.store;
    if (store === undefined) {
      if (options.resume === true) throw new StrideError('INVALID_STATE', 'resume needs a store');
      return undefined;
    }
    const open = options.open ?? ((o) => openRunLife(store, o));
    return open({
      runId: plan.id,
      plan: actionSnapshot(plan),
      options: recorded,
      resume: options.resume === true,
      clock: this.clock,
    });
  }

  /**
   * The action plan's side of a resume, from the state the session loaded (`RunLife.prior`):
   * the steps with a verdict (their outputs feed later steps) and the saga log rebuilt.
   */
  private loadPrior(exec: Execution, state: StoredProgress): { done: Map<string, TaskResult> } {
    const done = new Map(state.verdicts);
    this.rebuildSaga(
      exec,
      done,
      state.unfinished.map((u) => u.caseId),
    );
    for (const [id, r] of done) if (r.status === 'succeeded') exec.outputs.set(id, r.output);
    // A step whose dependency has a stored failure would never run: it stays cancelled.
    const failed = new Set([...done].filter(([, r]) => r.status !== 'succeeded').map(([id]) => id));
    let grew = true;
    while (grew) {
      grew = false;
      for (const s of exec.plan.steps) {
        if (done.has(s.id) || failed.has(s.id)) continue;
        const bad = (s.dependencies ?? []).find((d) => failed.has(d));
        if (bad !== undefined) {
          failed.add(s.id);
          done.set(s.id, cancelledResult(s, bad));
          grew = true;
        }
      }
    }
    return { done };
  }

  /** The saga log from stored results: completed steps with outputs, and unknown outcomes. */
  private rebuildSaga(
    exec: Execution,
    done: ReadonlyMap<string, TaskResult>,
    unfinished: readonly string[],
  ): void {
    const byId = new Map(exec.plan.steps.map((s) => [s.id, s]));
    const outputs = new Map<string, unknown>();
    for (const [id, r] of done) if (r.status === 'succeeded') outputs.set(id, r.output);
    const add = (id: string, state: SagaState, output: unknown) => {
      const step = byId.get(id);
      if (step === undefined) return;
      const tool = this.toolRegistry.get(step.tool);
      if (tool?.compensate === undefined) return;
      let args: Record<string, unknown>;
      try {
        args = resolveArguments(step.arguments ?? {}, outputs, id);
      } catch {
        args = { ...(step.arguments ?? {}) };
      }
      exec.saga.set(id, {
        stepId: id,
        tool: tool.name,
        args,
        state,
        output,
        order: ++exec.sagaSeq,
      });
    };
    for (const [id, r] of done) {
      if (r.status === 'succeeded') add(id, 'completed', r.output);
      else if (r.status === 'timeout') add(id, 'unknown', undefined);
    }
    for (const id of unfinished) add(id, 'unknown', undefined);
  }

  /** A plan this process did not run, restored from the journal for a rollback. */
  private async restore(plan: ActionPlan): Promise<Execution> {
    checkPlan(plan);
    const exec = newExecution(plan, 'failed');
    // Opened as a resume would (locked: never a plan another process drives; its maybe-sent
    // steps journaled), read, and let go: the rollback is a run of its own.
    const life = await this.openLife(plan, { resume: true }, {});
    await life?.release();
    if (life?.prior !== undefined) this.loadPrior(exec, life.prior);
    this.executions.set(plan.id, exec);
    return exec;
  }

  /** Runs the compensations, one at a time, in reverse completion order, journaled if a store is set. */
  private async compensate(exec: Execution): Promise<RollbackResult> {
    const planId = exec.plan.id;
    const rollbackId = `${planId}:rollback`;
    const store = this.options.store;
    // Already compensated (this process, or a journaled rollback cut by a crash): skipped.
    const compensated = new Set<string>();
    let storedRollback = false;
    if (store !== undefined) {
      const state = await store.loadRun(rollbackId);
      if (state !== undefined) {
        storedRollback = true;
        for await (const r of store.results(rollbackId, { latest: true, status: ['succeeded'] }))
          compensated.add(r.id.replace(/^undo:/, ''));
      }
    }
    const entries = [...exec.saga.values()]
      .filter((e) => e.state === 'completed' || e.state === 'unknown' || e.state === 'registered')
      .filter((e) => !compensated.has(e.stepId))
      .sort((a, b) => b.order - a.order);
    const t = this.options.timeoutPolicy ?? {};
    const previous = exec.rollback?.compensations.filter((c) => c.status === 'compensated') ?? [];
    const usage = this.usageFor(exec);
    // The journal stores each task's input: the step and tool only, never the arguments (they
    // may hold secrets). The compensation itself reads its saga entry.
    const byUndo = new Map(entries.map((e) => [`undo:${e.stepId}`, e]));
    const tasks: TaskSpec<{ stepId: string; tool: string }>[] = entries.map((e) => ({
      id: `undo:${e.stepId}`,
      input: { stepId: e.stepId, tool: e.tool },
      timeoutMs: t.compensationTimeoutMs ?? 30_000,
    }));
    const results: CompensationResult[] = [...previous];
    if (tasks.length > 0) {
      // Shielded from cancellation: no signal is passed, so cancelling the plan does not stop it.
      const run = new Run<{ stepId: string; tool: string }, void>(
        tasks,
        {
          key: `rollback:${planId}`,
          execute: async (task, ctx) => {
            // The previous compensation's result is made durable before this one acts: a crash
            // in between must not make the next process undo that step a second time. (The
            // journal writes once per tick; ordered mode starts this one in the same tick.)
            await journal?.flush();
            const e = byUndo.get(task.id)!;
            const tool = this.toolRegistry.get(e.tool) as Tool<Record<string, unknown>, unknown>;
            this.emit('compensation', {
              planId,
              stepId: e.stepId,
              status: 'running',
              at: this.clock.now(),
            });
            await tool.compensate!(e.args, e.state === 'completed' ? e.output : undefined, {
              signal: ctx.signal,
              attempt: ctx.attempt,
              stepId: e.stepId,
              planId,
              usage,
            });
          },
        },
        this.engineOptions({ ordered: true, concurrency: 1, runId: rollbackId }),
      );
      let journal: Journal | undefined;
      if (store !== undefined) {
        journal = await attachJournal(run, store, {
          runId: rollbackId,
          plan: {
            ...actionSnapshot(exec.plan),
            name: `${exec.plan.name ?? exec.plan.id} (rollback)`,
          },
          options: {},
          resume: storedRollback,
          parentId: planId,
          clock: this.clock,
        });
      }
      const engine = await run.start();
      await journal?.closed;
      for (const r of engine.tasks) {
        const e = byUndo.get(r.id)!;
        const ok = r.status === 'succeeded';
        const outcomeUnknown = e.state !== 'completed';
        if (ok) e.state = 'compensated';
        const c: CompensationResult = {
          stepId: e.stepId,
          tool: e.tool,
          status: ok ? 'compensated' : 'failed',
          attempts: r.attempts,
          outcomeUnknown,
          ...(ok ? {} : { error: r.error?.message ?? r.status }),
        };
        results.push(c);
        this.emit('compensation', {
          planId,
          stepId: e.stepId,
          status: c.status,
          at: this.clock.now(),
        });
      }
    }
    const rollback: RollbackResult = {
      planId,
      status: results.some((c) => c.status === 'failed') ? 'failed' : 'completed',
      compensations: results,
    };
    exec.rollback = rollback;
    return rollback;
  }
}

/** A fresh execution record: nothing run, nothing used. */
function newExecution(
  plan: ActionPlan,
  status: ExecutionStatus,
  outputs: Map<string, unknown> = new Map(),
): Execution {
  return {
    plan,
    status,
    run: undefined,
    outputs,
    saga: new Map(),
    usage: {
      cpuTimeMs: 0,
      memoryPeakMb: 0,
      diskReads: 0,
      diskWrites: 0,
      diskBytesRead: 0,
      diskBytesWritten: 0,
      networkRequests: 0,
      toolInvocations: 0,
    },
    fatal: undefined,
    journal: undefined,
    sagaSeq: 0,
    result: undefined,
    rollback: undefined,
    rollingBack: false,
  };
}

/**
 * A step as the journal and the reports keep it: the values at the plan's `secretPaths` (from
 * `${VAR}`) replaced, and the secrets written literally too (`redactLiterals`: a credential-named
 * key's string, a URL's user info and credential query parameters).
 */
function redactStep(plan: ActionPlan, step: ActionStep): ActionStep {
  const index = plan.steps.indexOf(step);
  const paths = (plan.secretPaths ?? []).filter((p) => p[0] === 'steps' && p[1] === index);
  let copy: unknown = JSON.parse(JSON.stringify(step));
  for (const path of paths) copy = setIn(copy, path.slice(2), REDACTED);
  return redactLiterals(copy) as ActionStep;
}

function cancelledResult(step: ActionStep, dependency: string): TaskResult {
  return {
    id: step.id,
    input: step,
    status: 'cancelled',
    attempts: 0,
    output: undefined,
    error: undefined,
    reason: { kind: 'dependency_failed', dependency },
    usage: { tokens: 0, cost: 0 },
    startedAt: undefined,
    finishedAt: undefined,
    executionTimeMs: 0,
  } as unknown as TaskResult;
}
