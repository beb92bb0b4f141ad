/**
 * A stored run read back for a resume, once: its record (the plan hash checked against the plan
 * being resumed), each case's latest result (chosen in SQL, `results({ latest: true })`), and
 * what the journal says of the cases without a verdict. Shared by both plan kinds: test plans
 * (runner/durable.ts) and action plans (actions/executor.ts) read the same state, with the same
 * messages.
 */

import { StrideError, type TaskResult } from '../core/index.js';
import type { ResumeState, Store } from './port.js';

/** Statuses a resume keeps: a verdict. `cancelled` is not one (the case never got an answer). */
const VERDICTS = new Set<string>(['succeeded', 'failed', 'timeout', 'error']);

/** What a resume starts from. */
export interface StoredProgress extends ResumeState {
  /** The cases whose latest result is a verdict: a resume never runs them again. */
  readonly done: ReadonlySet<string>;
  /**
   * Those verdicts, in completion order (empty with `keepResults: false`: a run too large to
   * hold is read from the store instead).
   */
  readonly verdicts: ReadonlyMap<string, TaskResult>;
  /**
   * Attempts already spent by each case without a verdict: its latest (cancelled) result's, or
   * the journal's count for a case it saw unfinished.
   */
  readonly attemptsBefore: ReadonlyMap<string, number>;
}

/** RUN_NOT_FOUND for a resume of `runId`. */
export function runNotFound(runId: string): StrideError {
  return new StrideError('RUN_NOT_FOUND', `no run "${runId}" in the store: nothing to resume`);
}

/** PLAN_CHANGED unless `hash` is the stored run's plan hash (or `force`). */
export function checkPlanHash(
  hash: string,
  storedHash: string,
  runId: string,
  force: boolean | undefined,
): void {
  if (hash !== storedHash && force !== true) {
    throw new StrideError(
      'PLAN_CHANGED',
      `the plan changed since run "${runId}" started (plan hash ${storedHash.slice(0, 12)}, now ${hash.slice(0, 12)}): ` +
        'resuming it would mix results of two plans; run the original plan, or pass force to resume anyway',
    );
  }
}

/**
 * Reads run `runId` for a resume of the plan whose hash is `planHash`: RUN_NOT_FOUND if there is
 * no such run, PLAN_CHANGED if its plan differs (unless `force`).
 */
export async function loadProgress(
  store: Store,
  runId: string,
  planHash: string,
  options: { force?: boolean | undefined; keepResults?: boolean | undefined } = {},
): Promise<StoredProgress> {
  const state = await store.loadRun(runId);
  if (state === undefined) throw runNotFound(runId);
  checkPlanHash(planHash, state.run.planHash, runId, options.force);
  const keep = options.keepResults ?? true;
  const done = new Set<string>();
  const verdicts = new Map<string, TaskResult>();
  const attemptsBefore = new Map<string, number>();
  for await (const r of store.results(runId, { latest: true })) {
    if (VERDICTS.has(r.status)) {
      done.add(r.id);
      if (keep) verdicts.set(r.id, r);
    } else attemptsBefore.set(r.id, r.attempts);
  }
  for (const u of state.unfinished) attemptsBefore.set(u.caseId, u.attempts);
  return { ...state, done, verdicts, attemptsBefore };
}
