/**
 * The run session's journal records that are not the engine's transitions: the attempts that
 * may have reached the target without the journal knowing their outcome (`maybe_sent`). One
 * builder for both causes (a process that died with the attempt in flight, found on resume; a
 * distributed attempt delivered again after its worker was lost), written by the session, never
 * by a face: a library user of the BullMQ dispatcher gets the same journal as the CLI.
 */

import type { ErrorInfo } from '../core/index.js';
import type { AttemptRecord, Store, UnfinishedCase } from '../store/port.js';
import type { Dispatcher, Redelivery } from './dispatcher.js';

/** The error of a redelivered attempt's `maybe_sent` record (docs/errors.md). */
const REDELIVERED: ErrorInfo = {
  code: 'REDELIVERED',
  name: 'Redelivered',
  message: 'its worker was lost: delivered again to another worker',
};

/** A `maybe_sent` attempt record: attempt `number` of `caseId`, started (and ended) `at`. */
export function maybeSentAttempt(
  caseId: string,
  number: number,
  at: number,
  error?: ErrorInfo,
): AttemptRecord {
  return {
    caseId,
    number,
    startedAt: at,
    endedAt: at,
    state: 'maybe_sent',
    error: error === undefined ? undefined : { ...error },
    usage: { tokens: 0, cost: 0 },
    upstream: undefined,
  };
}

/**
 * Records, for each case that was running when the journal ends, a `maybe_sent` attempt: the
 * target may have received it. It started when the case last became `running` (`since`).
 */
export async function recordMaybeSent(
  store: Store,
  runId: string,
  cases: readonly UnfinishedCase[],
): Promise<void> {
  const attempts = cases.map((c) => maybeSentAttempt(c.caseId, c.attempts, c.since));
  store.append(runId, { transitions: [], attempts });
  await store.flush();
}

/**
 * Journals every attempt of run `runId` that `dispatcher` delivers again after its worker was
 * lost, as a `maybe_sent` attempt with code REDELIVERED. `now` dates it (epoch ms). Returns the
 * unsubscribe function (a no-op for a dispatcher without redeliveries).
 */
export function journalRedeliveries(
  dispatcher: Dispatcher | undefined,
  store: Store,
  runId: string,
  now: () => number,
): () => void {
  const watch = dispatcher?.watchRedeliveries;
  if (watch === undefined) return () => {};
  return watch.call(dispatcher, runId, (e: Redelivery) => {
    store.append(e.runId, {
      transitions: [],
      attempts: [maybeSentAttempt(e.taskId, e.attempt, now(), REDELIVERED)],
    });
  });
}
