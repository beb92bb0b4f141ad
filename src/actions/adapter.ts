/**
 * The action-plan adapter of a run session (`runner/session.ts`): an `Executor` run of one plan
 * as a `PlanAdapter`, so `RunSession` drives it as it drives a test plan (signals, holds, who
 * holds it). The session opens the run (`open`: creates or reopens it, loads the one resume
 * state, attaches the journal); the executor builds the steps from that state. Typed
 * structurally toward the session: `actions/` imports only the session's run opener
 * (`runner/run-life.ts`), never the session.
 */

import { StrideError } from '../core/index.js';
import type { Run } from '../core/run.js';
import type { RunOpener } from '../runner/run-life.js';
import type { Journal } from '../store/journal.js';
import type { Executor } from './executor.js';
import type { ActionPlan, ActionStep, ExecutionResult } from './types.js';

/** What the adapter hands the session once the plan's run is journaled. */
export interface StartedActionRun {
  readonly runId: string;
  readonly run: Run<ActionStep, unknown>;
  readonly journal: Journal;
}

/**
 * Runs (or, with `resume`, continues) `plan` on `executor` under a run session. The executor
 * needs a store: a session drives journaled runs only.
 *
 * @example
 * ```ts
 * const executor = new Executor({ toolRegistry: tools, store });
 * const session = new RunSession(actionPlan(executor, plan), { store });
 * const { result, interrupted } = await session.drive();
 * ```
 */
export function actionPlan(
  executor: Executor,
  plan: ActionPlan,
  options: { readonly resume?: boolean } = {},
): {
  readonly kind: 'action';
  start(onStart: (started: StartedActionRun) => void, open: RunOpener): Promise<ExecutionResult>;
} {
  return {
    kind: 'action',
    start: (onStart, open) =>
      executor.executePlan(plan, {
        ...(options.resume === true ? { resume: true } : {}),
        open,
        onStart: ({ run, journal }) => {
          if (journal === undefined) {
            throw new StrideError('INVALID_STATE', 'a run session needs an Executor with a store');
          }
          onStart({ runId: journal.runId, run, journal });
        },
      }),
  };
}
