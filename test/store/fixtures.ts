/** Journal batches written by hand, as the journal would write them, for the contract suite. */

import type { ErrorInfo, TaskResult, TaskTransition } from '../../src/core/index.js';
import type { AttemptRecord, JournalBatch, StoredTransition } from '../../src/store/index.js';

export const RATE_LIMITED: ErrorInfo = {
  code: 'RATE_LIMITED',
  name: 'RateLimitedError',
  message: 'too many requests',
  status: 429,
};

export function result(id: string, over: Partial<TaskResult> = {}): TaskResult {
  return {
    id,
    status: 'succeeded',
    input: { query: `q-${id}` },
    priority: 0,
    attempts: 1,
    output: { text: `answer ${id}` },
    error: undefined,
    reason: undefined,
    usage: { tokens: 0, cost: 0 },
    startedAt: 10,
    finishedAt: 20,
    executionTimeMs: 10,
    ...over,
  };
}

export function batch(
  transitions: TaskTransition[] = [],
  attempts: AttemptRecord[] = [],
): JournalBatch {
  return { transitions, attempts };
}

export function join(...batches: JournalBatch[]): JournalBatch {
  return {
    transitions: batches.flatMap((b) => b.transitions),
    attempts: batches.flatMap((b) => b.attempts),
  };
}

/** queued, running, succeeded at t0, t0+1, t0+11; one attempt. */
export function succeeds(
  id: string,
  t0: number,
  over: Partial<TaskResult> = {},
  attempt: Partial<AttemptRecord> = {},
): JournalBatch {
  const r = result(id, { startedAt: t0 + 1, finishedAt: t0 + 11, executionTimeMs: 10, ...over });
  return batch(
    [
      { taskId: id, from: 'pending', to: 'queued', at: t0, attempt: 0, retry: false },
      { taskId: id, from: 'queued', to: 'running', at: t0 + 1, attempt: 1 },
      { taskId: id, from: 'running', to: 'succeeded', at: t0 + 11, attempt: 1, result: r },
    ],
    [
      {
        caseId: id,
        number: 1,
        startedAt: t0 + 1,
        endedAt: t0 + 11,
        state: 'succeeded',
        error: undefined,
        usage: r.usage,
        upstream: undefined,
        ...attempt,
      },
    ],
  );
}

/** Attempt 1 is rate limited (5 tokens), attempt 2 succeeds (7 tokens) with Dify ids. */
export function retriesThenSucceeds(id: string, t0: number): JournalBatch {
  const output = { text: 'ok', workflowRunId: `wr-${id}`, taskId: `tk-${id}` };
  const r = result(id, {
    attempts: 2,
    output,
    usage: { tokens: 12, cost: 0.5 },
    startedAt: t0 + 1,
    finishedAt: t0 + 30,
    executionTimeMs: 29,
  });
  return batch(
    [
      { taskId: id, from: 'pending', to: 'queued', at: t0, attempt: 0, retry: false },
      { taskId: id, from: 'queued', to: 'running', at: t0 + 1, attempt: 1 },
      {
        taskId: id,
        from: 'running',
        to: 'pending',
        at: t0 + 5,
        attempt: 1,
        retryInMs: 10,
        error: RATE_LIMITED,
      },
      { taskId: id, from: 'pending', to: 'queued', at: t0 + 15, attempt: 1, retry: true },
      { taskId: id, from: 'queued', to: 'running', at: t0 + 16, attempt: 2 },
      { taskId: id, from: 'running', to: 'succeeded', at: t0 + 30, attempt: 2, result: r },
    ],
    [
      {
        caseId: id,
        number: 1,
        startedAt: t0 + 1,
        endedAt: t0 + 5,
        state: 'error',
        error: RATE_LIMITED,
        usage: { tokens: 5, cost: 0.2 },
        upstream: undefined,
      },
      {
        caseId: id,
        number: 2,
        startedAt: t0 + 16,
        endedAt: t0 + 30,
        state: 'succeeded',
        error: undefined,
        usage: { tokens: 7, cost: 0.3 },
        upstream: { workflow_run_id: `wr-${id}`, task_id: `tk-${id}` },
      },
    ],
  );
}

/** Fails for good on its only attempt (a failed assertion), keeping the answer. */
export function fails(id: string, t0: number, over: Partial<TaskResult> = {}): JournalBatch {
  const error: ErrorInfo = { code: 'TASK_FAILED', name: 'TaskFailedError', message: 'no refund' };
  const r = result(id, {
    status: 'failed',
    error,
    output: { output: { text: 'nope', workflow_run_id: `wr-${id}` }, assertions: [] },
    startedAt: t0 + 1,
    finishedAt: t0 + 4,
    executionTimeMs: 3,
    ...over,
  });
  return batch(
    [
      { taskId: id, from: 'pending', to: 'queued', at: t0, attempt: 0, retry: false },
      { taskId: id, from: 'queued', to: 'running', at: t0 + 1, attempt: 1 },
      { taskId: id, from: 'running', to: 'failed', at: t0 + 4, attempt: 1, error, result: r },
    ],
    [
      {
        caseId: id,
        number: 1,
        startedAt: t0 + 1,
        endedAt: t0 + 4,
        state: 'failed',
        error,
        usage: { tokens: 0, cost: 0 },
        upstream: { workflow_run_id: `wr-${id}` },
      },
    ],
  );
}

/** Cancelled while still queued: no attempt. */
export function cancelledQueued(id: string, t0: number): JournalBatch {
  const reason = { kind: 'stop_rule', rule: 'max_failures' } as const;
  const r = result(id, {
    status: 'cancelled',
    reason,
    output: undefined,
    attempts: 0,
    startedAt: undefined,
    finishedAt: t0 + 2,
    executionTimeMs: 0,
  });
  return batch([
    { taskId: id, from: 'pending', to: 'queued', at: t0, attempt: 0, retry: false },
    { taskId: id, from: 'queued', to: 'cancelled', at: t0 + 2, attempt: 0, reason, result: r },
  ]);
}

export function queued(id: string, t0: number): JournalBatch {
  return batch([{ taskId: id, from: 'pending', to: 'queued', at: t0, attempt: 0, retry: false }]);
}

export function startsRunning(id: string, t0: number, attempt = 1): JournalBatch {
  return batch([{ taskId: id, from: 'queued', to: 'running', at: t0, attempt }]);
}

/** The transitions as a store gives them back: without the TaskResult. */
export function stored(transitions: readonly TaskTransition[]): StoredTransition[] {
  return transitions.map((t) => {
    if (!('result' in t)) return { ...t };
    const { result: _result, ...rest } = t;
    return rest as StoredTransition;
  });
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
