import { describe, expectTypeOf, it } from 'vitest';
import {
  type AttemptContext,
  Run,
  type RunExecutionResult,
  type StubExecutor,
  type StubOutput,
  type Target,
  type TaskResult,
  type TaskTransition,
} from '../../src/index.js';

// Type-level tests: `npm test` type-checks this file, so a change that loosens the public
// generics (input/output types lost to unknown, a transition union that stops narrowing) fails.
describe('public generics', () => {
  it('carries the input and output types from the target to the results', () => {
    const target: Target<{ q: string }, number> = { execute: async (task) => task.input.q.length };
    const run = new Run([{ input: { q: 'a' } }], target);
    expectTypeOf(run.start()).resolves.toEqualTypeOf<RunExecutionResult<{ q: string }, number>>();
    expectTypeOf<RunExecutionResult<{ q: string }, number>['tasks'][number]>().toEqualTypeOf<
      TaskResult<{ q: string }, number>
    >();
    expectTypeOf<TaskResult<{ q: string }, number>['output']>().toEqualTypeOf<number | undefined>();
  });

  it('rejects tasks whose input does not match the target', () => {
    const target: Target<{ q: string }, number> = { execute: async () => 1 };
    // @ts-expect-error: input must be { q: string }
    new Run([{ input: 42 }], target);
  });

  it("keeps the engine's bookkeeping off the Run's public type", () => {
    // Issue #15 item 8: usage and rate-limit reports reach the run through the attempt's
    // context only; `addUsage` and `syncLimits` are not part of the Run's surface.
    expectTypeOf<keyof Run>().not.toEqualTypeOf<'addUsage' | keyof Run>();
    expectTypeOf<keyof Run>().not.toEqualTypeOf<'syncLimits' | keyof Run>();
    expectTypeOf<Extract<keyof Run, 'addUsage' | 'syncLimits' | 'pump' | 'finish'>>().toBeNever();
  });

  it('narrows transitions by their target state', () => {
    const onTransition = (e: TaskTransition) => {
      if (e.to === 'pending') expectTypeOf(e.retryInMs).toEqualTypeOf<number>();
      if (e.to === 'cancelled')
        expectTypeOf(e.reason.kind).toEqualTypeOf<
          'user' | 'stop_rule' | 'dependency_failed' | 'deadline'
        >();
      if (e.to === 'failed') expectTypeOf(e.error.code).toEqualTypeOf<string>();
    };
    expectTypeOf(onTransition).parameter(0).toEqualTypeOf<TaskTransition>();
  });

  it('gives targets a typed attempt context and the stub a Dify-shaped output', () => {
    expectTypeOf<AttemptContext['signal']>().toEqualTypeOf<AbortSignal>();
    expectTypeOf<StubExecutor<{ query: string }>['execute']>().returns.resolves.toEqualTypeOf<
      StubOutput<{ query: string }>
    >();
  });
});
