/**
 * Any async function as a Target, and a registry of named functions so a plan file can say
 * `target: { type: function, name: grade-answer }` and a library user supplies the code.
 */

import {
  type AttemptContext,
  InvalidOptionError,
  StrideError,
  type Target,
  type TaskView,
  withSeedUsage,
} from '../core/index.js';

/**
 * The work of one attempt: the case input, the attempt's context (signal, attempt, taskId,
 * reportUsage) and the task. Honour `ctx.signal`: work that ignores it keeps its slot.
 */
export type TargetFunction<I = unknown, O = unknown> = (
  input: I,
  ctx: AttemptContext,
  task: TaskView<I>,
) => O | Promise<O>;

export interface FunctionTargetOptions {
  /** Rate bucket key. @default `function:<name>` or 'function' */
  readonly key?: string;
  /** A label for reports. */
  readonly name?: string;
}

/** A function target: a Target with a no-op `close()`, like the network targets. */
export interface FunctionTarget<I = unknown, O = unknown> extends Target<I, O> {
  readonly key: string;
  readonly name: string | undefined;
  close(): Promise<void>;
}

/**
 * Wraps a function as a Target. Errors it throws are classified by the engine as they are
 * (throw `TaskFailedError` for a wrong answer, `NonRetryableError` for "do not retry"). A
 * returned TestResult-like object (a numeric `tokensUsed`, and `cost`) reports those as the
 * attempt's usage unless the function called `ctx.reportUsage` itself.
 *
 * @example
 * ```ts
 * const target = functionTarget(async (input: { q: string }, ctx) => {
 *   const answer = await myModel(input.q, { signal: ctx.signal });
 *   ctx.reportUsage({ tokens: answer.tokens });
 *   return answer.text;
 * }, { name: 'my-model' });
 * ```
 */
export function functionTarget<I = unknown, O = unknown>(
  fn: TargetFunction<I, O>,
  options: FunctionTargetOptions = {},
): FunctionTarget<I, O> {
  if (typeof fn !== 'function') throw new InvalidOptionError('function', fn, 'a function');
  const name = options.name;
  // A seed-style function may return a TestResult: its tokensUsed and cost are the usage.
  const counted = withSeedUsage(fn);
  return {
    key: options.key ?? (name === undefined ? 'function' : `function:${name}`),
    name,
    execute: (task, ctx) => counted(task.input, ctx, task),
    close: () => Promise.resolve(),
  };
}

/**
 * Named target functions for library users (the seeds' ToolRegistry, for targets).
 *
 * @example
 * ```ts
 * const functions = new FunctionRegistry().register('upper', async (input: string) => input.toUpperCase());
 * const target = createTarget({ type: 'function', name: 'upper' }, { functions });
 * ```
 */
export class FunctionRegistry {
  private readonly fns = new Map<string, TargetFunction>();

  /** Adds a function under `name`; a name can be registered once. Returns the registry. */
  register<I, O>(name: string, fn: TargetFunction<I, O>): this {
    if (typeof name !== 'string' || name === '')
      throw new InvalidOptionError('name', name, 'a non-empty string');
    if (typeof fn !== 'function')
      throw new InvalidOptionError(`functions.${name}`, fn, 'a function');
    if (this.fns.has(name))
      throw new StrideError(
        'INVALID_STATE',
        `a target function named ${JSON.stringify(name)} is already registered`,
      );
    this.fns.set(name, fn as TargetFunction);
    return this;
  }

  has(name: string): boolean {
    return this.fns.has(name);
  }

  /** The function registered as `name`; throws INVALID_OPTION listing the known names. */
  get(name: string): TargetFunction {
    const fn = this.fns.get(name);
    if (fn === undefined) {
      const known = [...this.fns.keys()];
      throw new InvalidOptionError(
        'name',
        name,
        known.length === 0
          ? 'a registered function (none are registered)'
          : `one of ${known.join(', ')}`,
      );
    }
    return fn;
  }

  names(): string[] {
    return [...this.fns.keys()];
  }

  /** A registry from a plain object of functions. */
  static from(functions: Readonly<Record<string, TargetFunction>>): FunctionRegistry {
    const registry = new FunctionRegistry();
    for (const [name, fn] of Object.entries(functions)) registry.register(name, fn);
    return registry;
  }
}
