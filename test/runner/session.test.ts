/**
 * The run session's own journal records (runner/session.ts): a distributed attempt delivered
 * again after its worker was lost is journaled as a `maybe_sent` attempt with code REDELIVERED
 * by the session itself, so a library user of a dispatcher gets it without the CLI. The
 * dispatcher here is a stand-in that reports the redelivery from inside the attempt it
 * redelivers: no Redis, no timing.
 */

import { expect, test } from 'vitest';
import type { Target } from '../../src/core/index.js';
import { parsePlan, type RunManifest, type TestCase } from '../../src/plans/index.js';
import type { Dispatcher, Redelivery } from '../../src/runner/dispatcher.js';
import { runDurable } from '../../src/runner/durable.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { MemoryStore } from '../../src/store/index.js';

const manifest = (): RunManifest =>
  parsePlan(
    [
      'workflow_id: redeliver',
      'target: { type: function, name: bot }',
      'execution_policy: { concurrency: 2 }',
      'cases:',
      '  - { id: a, inputs: { q: a } }',
      '  - { id: b, inputs: { q: b } }',
      '',
    ].join('\n'),
  );

/** Runs every attempt here; reports attempt 1 of case `b` as delivered again, once. */
class RedeliveringDispatcher implements Dispatcher {
  private readonly watchers = new Map<string, Set<(e: Redelivery) => void>>();
  released = 0;

  async targetFor(_m: RunManifest, runId: string): Promise<Target<TestCase, unknown>> {
    let reported = false;
    return {
      execute: async (c, ctx) => {
        if (c.id === 'b' && !reported) {
          reported = true;
          for (const w of this.watchers.get(runId) ?? [])
            w({ runId, taskId: c.id, attempt: ctx.attempt });
        }
        return { answer: String(c.id) };
      },
    };
  }

  watchRedeliveries(runId: string, listener: (e: Redelivery) => void): () => void {
    const set = this.watchers.get(runId) ?? new Set();
    this.watchers.set(runId, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      this.released++;
    };
  }

  async close(): Promise<void> {}
}

test('a redelivered attempt is journaled maybe_sent with REDELIVERED by the session, not by a face', async () => {
  const store = new MemoryStore();
  const dispatcher = new RedeliveringDispatcher();
  const service = new ExecutorService({ dispatcher });
  const { runId, results } = await runDurable(service, manifest(), store, { runId: 'R' });
  expect(runId).toBe('R');
  expect(results.map((r) => r.status).sort()).toEqual(['success', 'success']);

  const attempts = [];
  for await (const a of store.attempts('R')) attempts.push(a);
  const redelivered = attempts.filter((a) => a.state === 'maybe_sent');
  expect(redelivered).toHaveLength(1);
  expect(redelivered[0]).toMatchObject({
    caseId: 'b',
    number: 1,
    error: { code: 'REDELIVERED', name: 'Redelivered' },
  });
  // The verdicts are untouched: one succeeded attempt per case besides the redelivery.
  expect(
    attempts
      .filter((a) => a.state === 'succeeded')
      .map((a) => a.caseId)
      .sort(),
  ).toEqual(['a', 'b']);
  // The session stops listening when the run ends.
  expect(dispatcher.released).toBe(1);
  await store.close();
});
