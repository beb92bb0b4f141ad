import type { AttemptContext, TaskTransition, TaskView } from '../../src/core/index.js';
import { Run, type RunOptions, type Target, VirtualClock } from '../../src/core/index.js';

/** n tasks with ids t0..t(n-1) and the index as input. */
export function tasks(n: number): { id: string; input: number }[] {
  return Array.from({ length: n }, (_, i) => ({ id: `t${i}`, input: i }));
}

/** A target whose behaviour is a function of (task, ctx), with a trace of starts. */
export function target<O>(
  fn: (task: TaskView<number>, ctx: AttemptContext) => Promise<O>,
): Target<number, O> & { starts: { id: string; attempt: number; aborted: boolean }[] } {
  const starts: { id: string; attempt: number; aborted: boolean }[] = [];
  return {
    starts,
    execute(task, ctx) {
      starts.push({ id: task.id, attempt: ctx.attempt, aborted: ctx.signal.aborted });
      return fn(task, ctx);
    },
  };
}

/** A run on a fresh virtual clock, with every transition recorded. */
export function virtualRun<O>(
  n: number,
  t: Target<number, O>,
  options: RunOptions = {},
): { run: Run<number, O>; clock: VirtualClock; log: TaskTransition[] } {
  const clock = (options.clock as VirtualClock | undefined) ?? new VirtualClock();
  const run = new Run(tasks(n), t, { clock, ...options });
  const log: TaskTransition[] = [];
  run.on('transition', (e) => log.push(e));
  return { run, clock, log };
}

/** Rejects with the signal's reason once it aborts (a well-behaved long call). */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
