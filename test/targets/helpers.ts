import {
  type AttemptContext,
  classifyError,
  type TaskView,
  type Usage,
} from '../../src/core/index.js';

/** An attempt context that records reported usage; abort it through `controller`. */
export function context(
  taskId = 't1',
  attempt = 1,
): {
  ctx: AttemptContext;
  usage: Partial<Usage>[];
  controller: AbortController;
  limits: unknown[];
} {
  const controller = new AbortController();
  const usage: Partial<Usage>[] = [];
  const limits: unknown[] = [];
  const ctx = {
    signal: controller.signal,
    attempt,
    taskId,
    reportUsage: (u: Partial<Usage>) => {
      usage.push(u);
    },
    reportLimits: (l: unknown) => {
      limits.push(l);
    },
  };
  return { ctx, usage, controller, limits };
}

export function view<I>(input: I, id = 't1'): TaskView<I> {
  return { id, input, priority: 0, rateKey: 'test' };
}

/** Runs one attempt and returns what it resolved or threw, with the engine's verdict. */
export async function attempt<O>(
  target: { execute(task: TaskView<unknown>, ctx: AttemptContext): Promise<O> },
  input: unknown,
  id = 't1',
): Promise<{
  value: O | undefined;
  error: unknown;
  verdict: ReturnType<typeof classifyError> | undefined;
  usage: Partial<Usage>[];
  limits: unknown[];
}> {
  const { ctx, usage, limits } = context(id);
  try {
    const value = await target.execute(view(input, id), ctx);
    return { value, error: undefined, verdict: undefined, usage, limits };
  } catch (error) {
    return { value: undefined, error, verdict: classifyError(error), usage, limits };
  }
}
