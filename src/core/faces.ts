/**
 * The seeds' public names, as thin faces over the one engine (`Run`). Users of the original
 * Python module find `CancellationToken`, `ConcurrentExecutor`, `TaskScheduler` and
 * `StubExecutor` here; none of them schedules anything itself.
 */

import { type Clock, RealClock } from './clock.js';
import {
  InvalidOptionError,
  RateLimitedError,
  StrideError,
  TaskFailedError,
  TimeoutError,
} from './errors.js';
import type { AttemptContext, RunExecutionResult, Target, TaskView, Usage } from './model.js';
import type { RunOptions } from './options.js';
import { Run, type TaskSource } from './run.js';

/**
 * The seeds' cancellation token, over an AbortController.
 *
 * @example
 * ```ts
 * const token = new CancellationToken();
 * const pending = executor.run(tasks, {}, token);
 * token.cancel();
 * (await pending).status; // 'cancelled'
 * ```
 */
export class CancellationToken {
  private readonly controller = new AbortController();

  /** The signal to hand to anything that accepts one. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get isCancelled(): boolean {
    return this.controller.signal.aborted;
  }

  cancel(reason?: string): void {
    this.controller.abort(reason ?? 'cancelled by token');
  }

  /** Throws the signal's reason if cancelled. */
  throwIfCancelled(): void {
    this.controller.signal.throwIfAborted();
  }

  /** Calls `fn` once when cancelled (at once if already cancelled); returns an unsubscribe. */
  onCancel(fn: () => void): () => void {
    if (this.isCancelled) {
      fn();
      return () => {};
    }
    this.controller.signal.addEventListener('abort', fn, { once: true });
    return () => this.controller.signal.removeEventListener('abort', fn);
  }
}

/** A plain function that executes one task; the seeds' `task_execution_func`. */
export type TaskExecutionFunc<I, O> = (task: TaskView<I>, ctx: AttemptContext) => Promise<O>;

export interface ExecutorOptions<I, O> {
  /** The work of one attempt. Defaults to a stub that echoes the input. */
  taskExecutionFunc?: TaskExecutionFunc<I, O>;
  /** @default new RealClock() */
  clock?: Clock;
}

/**
 * The usage a seed-style result carries: the seeds' execution functions returned a TestResult,
 * and their converter read `tokens_used` and `cost` from it. An object with a numeric
 * `tokensUsed` counts as one (a bare `cost` field is too common in ordinary outputs to be read).
 */
export function seedResultUsage(value: unknown): Partial<Usage> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { tokensUsed, cost } = value as { tokensUsed?: unknown; cost?: unknown };
  if (typeof tokensUsed !== 'number' || !Number.isFinite(tokensUsed) || tokensUsed < 0)
    return undefined;
  return typeof cost === 'number' && Number.isFinite(cost) && cost >= 0
    ? { tokens: tokensUsed, cost }
    : { tokens: tokensUsed };
}

/**
 * Wraps a user's execution function so a TestResult it returns reports its `tokensUsed` and
 * `cost` as the attempt's usage, unless the function reported usage itself (then that is the
 * usage, counted once).
 */
export function withSeedUsage<I, O, T extends unknown[]>(
  fn: (input: I, ctx: AttemptContext, ...rest: T) => O | Promise<O>,
): (input: I, ctx: AttemptContext, ...rest: T) => Promise<O> {
  return async (input, ctx, ...rest) => {
    let reported = false;
    const counted: AttemptContext = {
      get signal() {
        return ctx.signal;
      },
      attempt: ctx.attempt,
      taskId: ctx.taskId,
      reportUsage(usage) {
        reported = true;
        ctx.reportUsage(usage);
      },
      reportLimits: (limits) => ctx.reportLimits(limits),
    };
    const output = await fn(input, counted, ...rest);
    if (!reported) {
      const usage = seedResultUsage(output);
      if (usage !== undefined) ctx.reportUsage(usage);
    }
    return output;
  };
}

/**
 * A test plan as `runManifest` takes it (the plans layer's `RunManifest`). Core reads a plan
 * only through the adapter the runner layer installs, so it knows no plan format.
 */
export interface ManifestLike {
  readonly workflowId: string;
  readonly datasets: readonly unknown[];
}

/** How a manifest becomes tasks and run options (installed by runner/manifest.ts). */
export interface ManifestAdapter {
  /** The manifest's cases as tasks; throws (EMPTY_PLAN, a PlanError) for a plan without any. */
  tasks(manifest: ManifestLike): TaskSource<unknown>;
  /** The run options its execution policy means. */
  options(manifest: ManifestLike): RunOptions;
}

let manifestAdapter: ManifestAdapter | undefined;

/**
 * Teaches the seeds' faces to run manifests. Called once by the runner layer when it loads
 * (`import 'stride'` does); core itself imports no other layer.
 */
export function installManifestAdapter(adapter: ManifestAdapter): void {
  manifestAdapter = adapter;
}

function withToken(options: RunOptions, token: CancellationToken | undefined): RunOptions {
  if (token === undefined) return options;
  if (options.signal === undefined) return { ...options, signal: token.signal };
  return { ...options, signal: AbortSignal.any([options.signal, token.signal]) };
}

/**
 * The seeds' `ConcurrentExecutor`: runs tasks with a sliding window of `concurrency`, retries,
 * timeouts and cancellation.
 *
 * @example
 * ```ts
 * const executor = new ConcurrentExecutor({ taskExecutionFunc: async (task) => callDify(task.input) });
 * const result = await executor.run(tasks, { concurrency: 5, retry: { maxAttempts: 3 } });
 * result.statistics.failedTasks;
 * ```
 */
export class ConcurrentExecutor<I = unknown, O = unknown> {
  private readonly fn: TaskExecutionFunc<I, O>;
  protected readonly clock: Clock;

  constructor(options: ExecutorOptions<I, O> = {}) {
    const fn =
      options.taskExecutionFunc ??
      (async (task: TaskView<I>) => ({ taskId: task.id, input: task.input }) as O);
    if (typeof fn !== 'function')
      throw new InvalidOptionError('taskExecutionFunc', fn, 'a function');
    // The seeds' functions returned a TestResult carrying tokens and cost: keep them as usage.
    const counted = withSeedUsage((task: TaskView<I>, ctx) => fn(task, ctx));
    this.fn = options.taskExecutionFunc === undefined ? fn : counted;
    this.clock = options.clock ?? new RealClock();
  }

  /** The Target the runs use. */
  protected resolveTarget(): Target<I, O> {
    return { execute: this.fn };
  }

  /** Creates a run without starting it, so listeners can be attached first. */
  createRun(tasks: TaskSource<I>, options: RunOptions = {}, token?: CancellationToken): Run<I, O> {
    return new Run(
      tasks,
      this.resolveTarget(),
      withToken({ clock: this.clock, ...options }, token),
    );
  }

  /** Runs the tasks and resolves with every result; cancelling resolves with partial results. */
  run(
    tasks: TaskSource<I>,
    options: RunOptions = {},
    token?: CancellationToken,
  ): Promise<RunExecutionResult<I, O>> {
    return this.createRun(tasks, options, token).start();
  }

  /**
   * The seeds' `run_manifest`: runs every case of a test plan (`loadPlan`, `parsePlan`) with
   * the plan's execution policy (concurrency, timeout, rate, retries, stop rules, batches). Each
   * task's input is the `TestCase`. Assertions are not judged here (that is ExecutorService's
   * work); cancelling the token resolves with the rest cancelled. Rejects with MISSING_ARGUMENT
   * for no manifest and EMPTY_PLAN for a plan without cases, as the seeds raised.
   *
   * @example
   * ```ts
   * const executor = new ConcurrentExecutor<TestCase, string>({ taskExecutionFunc: async (task) => ask(task.input.inputs) });
   * const result = await executor.runManifest(await loadPlan('plan.yaml'), token);
   * result.statistics.failedTasks;
   * ```
   */
  async runManifest(
    manifest: ManifestLike | null | undefined,
    token?: CancellationToken,
  ): Promise<RunExecutionResult<I, O>> {
    if (manifest == null) throw new StrideError('MISSING_ARGUMENT', 'manifest is required');
    if (manifestAdapter === undefined)
      throw new StrideError(
        'INVALID_STATE',
        "runManifest needs the plans layer: import ConcurrentExecutor from 'stride'",
      );
    const tasks = manifestAdapter.tasks(manifest) as TaskSource<I>;
    return this.run(tasks, manifestAdapter.options(manifest), token);
  }
}

/**
 * The seeds' `TaskScheduler`: the same engine, with the seeds' batch mode available
 * (`batch: { size, backoffMs }`) besides rate limits and stop conditions.
 *
 * @example
 * ```ts
 * const scheduler = new TaskScheduler({ taskExecutionFunc: work });
 * TaskScheduler.splitIntoBatches(['t1', 't2', 't3'], 2); // [['t1','t2'], ['t3']]
 * await scheduler.run(tasks, { batch: { size: 5, backoffMs: 1000 }, rate: { perMinute: 60, burst: 5 } });
 * ```
 */
export class TaskScheduler<I = unknown, O = unknown> extends ConcurrentExecutor<I, O> {
  /** Splits a list into consecutive batches of `size` (the last may be shorter). */
  static splitIntoBatches<T>(items: readonly T[], size: number): T[][] {
    if (!Number.isInteger(size) || size < 1)
      throw new InvalidOptionError('batchSize', size, 'an integer >= 1');
    const out: T[][] = [];
    for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
    return out;
  }
}

/** The behaviours a StubExecutor can give a task. */
export type StubBehavior =
  | 'success'
  | 'failure'
  | 'timeout'
  | 'error'
  | 'hang'
  | 'rate_limited'
  | 'flaky';

const BEHAVIORS: readonly StubBehavior[] = [
  'success',
  'failure',
  'timeout',
  'error',
  'hang',
  'rate_limited',
  'flaky',
];

export interface StubExecutorOptions {
  /** Milliseconds each attempt takes (on the injected clock). @default 0 */
  simulatedDelay?: number;
  /** Probability in [0, 1] that a task without a set behaviour fails. @default 0 */
  failureRate?: number;
  /** Behaviour per task id. */
  taskBehaviors?: Readonly<Record<string, StubBehavior>>;
  /** Seed of the stub's own randomness (failures); unseeded uses Math.random. */
  seed?: number;
  /** @default new RealClock() */
  clock?: Clock;
  /** Tokens reported per successful attempt. @default 100 */
  tokensPerCall?: number;
  /** Cost reported per successful attempt. @default 0.0002 */
  costPerCall?: number;
}

/** Deterministic PRNG (mulberry32): seeded stubs and demos give the same run every time. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkRate(rate: unknown): number {
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
    throw new InvalidOptionError('failureRate', rate, 'a number in [0, 1]');
  }
  return rate;
}

function checkDelay(delay: unknown): number {
  if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
    throw new InvalidOptionError('simulatedDelay', delay, 'a number of milliseconds >= 0');
  }
  return delay;
}

function checkBehavior(id: string, behavior: unknown): StubBehavior {
  if (!BEHAVIORS.includes(behavior as StubBehavior)) {
    throw new InvalidOptionError(`taskBehaviors.${id}`, behavior, BEHAVIORS.join(' | '));
  }
  return behavior as StubBehavior;
}

/**
 * The seeds' `StubExecutor`: a Target (and executor) that simulates a Dify workflow without any
 * network, for tests, demos and benchmarks.
 *
 * - `success`: a Dify-shaped result after `simulatedDelay`;
 * - `failure`: a TaskFailedError (ends `failed`, not retried);
 * - `timeout`: a TimeoutError (retried, ends `timeout`), as the seeds raised it;
 * - `error`: a plain Error (retried, ends `error`);
 * - `hang`: waits until its signal aborts (exercises real timeouts and cancel);
 * - `rate_limited`: a 429 with Retry-After 1 s (cools the rate bucket);
 * - `flaky`: fails its first attempt with a 503, then succeeds.
 *
 * @example
 * ```ts
 * const stub = new StubExecutor({ simulatedDelay: 10, failureRate: 0.1, seed: 42 });
 * stub.setTaskBehavior('task-2', 'timeout');
 * const result = await stub.run(tasks, { concurrency: 5 });
 * ```
 */
export class StubExecutor<I = unknown>
  extends ConcurrentExecutor<I, StubOutput<I>>
  implements Target<I, StubOutput<I>>
{
  private delay: number;
  private rate: number;
  private readonly behaviors = new Map<string, StubBehavior>();
  private readonly random: () => number;
  private readonly tokensPerCall: number;
  private readonly costPerCall: number;
  readonly key = 'stub';

  constructor(options: StubExecutorOptions = {}) {
    super({ ...(options.clock === undefined ? {} : { clock: options.clock }) });
    this.delay = checkDelay(options.simulatedDelay ?? 0);
    this.rate = checkRate(options.failureRate ?? 0);
    for (const [id, b] of Object.entries(options.taskBehaviors ?? {}))
      this.behaviors.set(id, checkBehavior(id, b));
    this.random = options.seed === undefined ? Math.random : seededRandom(options.seed);
    this.tokensPerCall = options.tokensPerCall ?? 100;
    this.costPerCall = options.costPerCall ?? 0.0002;
  }

  protected override resolveTarget(): Target<I, StubOutput<I>> {
    return this;
  }

  get simulatedDelay(): number {
    return this.delay;
  }

  get failureRate(): number {
    return this.rate;
  }

  get taskBehaviors(): ReadonlyMap<string, StubBehavior> {
    return this.behaviors;
  }

  setTaskBehavior(taskId: string, behavior: StubBehavior): void {
    this.behaviors.set(taskId, checkBehavior(taskId, behavior));
  }

  setFailureRate(rate: number): void {
    this.rate = checkRate(rate);
  }

  setSimulatedDelay(delay: number): void {
    this.delay = checkDelay(delay);
  }

  clearTaskBehaviors(): void {
    this.behaviors.clear();
  }

  async execute(task: TaskView<I>, ctx: AttemptContext): Promise<StubOutput<I>> {
    const behavior =
      this.behaviors.get(task.id) ??
      (this.rate > 0 && this.random() < this.rate ? 'failure' : 'success');
    if (behavior === 'hang') {
      await new Promise<never>((_, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
    }
    if (this.delay > 0) await this.clock.sleep(this.delay, ctx.signal);
    switch (behavior) {
      case 'failure':
        throw new TaskFailedError(`stub failure for task ${task.id}`);
      case 'timeout':
        throw new TimeoutError(`stub timeout for task ${task.id}`);
      case 'error':
        throw new Error(`stub error for task ${task.id}`);
      case 'rate_limited':
        throw new RateLimitedError(`stub 429 for task ${task.id}`, { retryAfterMs: 1000 });
      case 'flaky':
        if (ctx.attempt === 1)
          throw Object.assign(new Error(`stub 503 for task ${task.id}`), { status: 503 });
        break;
      default:
        break;
    }
    ctx.reportUsage({ tokens: this.tokensPerCall, cost: this.costPerCall });
    return {
      workflow_run_id: `stub-${task.id}-${ctx.attempt}`,
      status: 'succeeded',
      outputs: { result: `stub result for ${task.id}`, input: task.input },
      elapsed_time: this.delay / 1000,
      total_tokens: this.tokensPerCall,
    };
  }
}

/** What a StubExecutor returns: the shape of a Dify workflow run's `data`. */
export interface StubOutput<I> {
  workflow_run_id: string;
  status: 'succeeded';
  outputs: { result: string; input: I };
  elapsed_time: number;
  total_tokens: number;
}
