// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/**
 * Attempts started together share a BullMQ job; a worker still runs at most its concurrency of
 * attempts (what does not fit is given back unstarted, never sent twice), and a cancel removes
 * queued jobs when no worker is there to take them. Real redis-server, the mock on port 0, a
 * worker in this process (its counters are read).
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, test } from 'vitest';
import {
  type AttemptContext,
  CancellationToken,
  type Target,
  type TaskView,
} from '../../src/core/index.js';
import { BullmqDispatcher, startWorker } from '../../src/distributed/index.js';
import { connectionOptions } from '../../src/distributed/redis.js';
import { parsePlan, type TestCase } from '../../src/plans/index.js';
import { resume, runDurable } from '../../src/runner/durable.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { builtInTarget } from '../../src/runner/targets.js';
import { SqliteStore } from '../../src/store/index.js';
import { until } from '../core/harness.js';
import { distributedFixture } from './redis.js';

const f = distributedFixture({ min: 5, max: 25 });

/**
 * A plan of `n` cases against the mock; case `c<i>` is counted by the mock under `<tag>-<i>` and
 * gets the extra inputs `extra(i)` when given (`__fault`, `__latency_ms`...).
 */
function plan(
  tag: string,
  n: number,
  policy: string,
  extra?: (i: number) => Record<string, unknown> | undefined,
) {
  const cases = Array.from({ length: n }, (_, i) => {
    const more = Object.entries(extra?.(i) ?? {})
      .map(([k, v]) => `, ${k}: ${JSON.stringify(v)}`)
      .join('');
    return `  - { id: c${i}, inputs: { query: "q ${i}", __case: ${tag}-${i}${more} } }`;
  }).join('\n');
  return parsePlan(
    `workflow_id: ${tag}\ntarget: { type: dify, base_url: "\${MOCK_URL}", api_key: "\${KEY:-app-shared}", app: workflow, response_mode: blocking }\nexecution_policy: ${policy}\ncases:\n${cases}\n`,
    { env: { MOCK_URL: f.mock.baseUrl } },
  );
}

function sentPerCase(tag: string, n: number): number[] {
  const byCase = f.mock.stats().byCase;
  return Array.from({ length: n }, (_, i) => byCase[`${tag}-${i}`] ?? 0);
}

describe('attempts in shared jobs', () => {
  test.each([
    { batch: 8, shared: true },
    { batch: 1, shared: false },
  ])(
    'batch $batch: a worker of concurrency 5 under a run of 32 runs at most 5 at once, each case once',
    async ({ batch, shared }) => {
      const queue = `q-batch-${batch}`;
      const tag = `b${batch}`;
      const worker = await startWorker({ redis: f.redis.url, queue, concurrency: 5 });
      const dispatcher = new BullmqDispatcher({ redis: f.redis.url, queue, batch });
      f.mock.reset();
      try {
        const results = await new ExecutorService({ dispatcher }).executeTestPlan(
          plan(tag, 120, '{ concurrency: 32, timeout: 30s }'),
        );
        expect(results.filter((r) => r.status === 'success')).toHaveLength(120);
        expect(sentPerCase(tag, 120).every((c) => c === 1)).toBe(true); // none twice, none lost
        expect(f.mock.stats().peakInFlight).toBeLessThanOrEqual(5); // the worker's concurrency
        expect(worker.stats.executed).toBe(120);
        if (shared) {
          // 32 attempts start in the first tick: jobs of 8, of which 5 fit the worker's room and
          // 3 go back to the coordinator, which sends them again in a job of their own.
          expect(worker.stats.jobs).toBeLessThan(120);
          expect(worker.stats.returned).toBeGreaterThan(0);
          expect(worker.stats.jobs).toBeLessThanOrEqual(120 + worker.stats.returned);
        } else {
          // One job per attempt, each fetched only with room for it: nothing given back.
          expect(worker.stats.jobs).toBe(120);
          expect(worker.stats.returned).toBe(0);
        }
      } finally {
        await dispatcher.close();
        await worker.close();
      }
    },
    30_000,
  );

  test('a worker fills its concurrency from several jobs: a full job of 8 leaves room that a job of 2 takes', async () => {
    const queue = 'q-fill';
    const tag = 'fill';
    const worker = await startWorker({ redis: f.redis.url, queue, concurrency: 10 });
    const dispatcher = new BullmqDispatcher({ redis: f.redis.url, queue });
    f.mock.reset();
    try {
      // 10 attempts start in one tick: a job of 8 and a job of 2, both for the one worker. They
      // hang, so all of them are in flight together whenever the second job arrives.
      const token = new CancellationToken();
      const done = new ExecutorService({ dispatcher }).runTestPlan(
        plan(tag, 10, '{ concurrency: 10, timeout: 1h }', () => ({ __fault: 'hang' })),
        token,
      );
      await until(() => f.mock.stats().inFlight === 10, 'ten requests at the mock'); // not 8
      token.cancel('seen');
      const { run } = await done;
      expect(run.tasks.map((t) => t.status)).toEqual(Array(10).fill('cancelled'));
      expect(f.mock.stats().peakInFlight).toBe(10);
      expect(f.mock.stats().runs).toBe(10);
      expect(worker.stats).toMatchObject({ jobs: 2, returned: 0 });
    } finally {
      await dispatcher.close();
      await worker.close();
    }
  }, 30_000);

  test('cancel with no worker running: queued jobs are removed and every attempt settles cancelled', async () => {
    const queue = 'q-no-worker';
    const tag = 'nw';
    const dispatcher = new BullmqDispatcher({ redis: f.redis.url, queue });
    const inspect = new Queue(queue, { connection: connectionOptions(f.redis.url) });
    f.mock.reset();
    try {
      const token = new CancellationToken();
      const done = new ExecutorService({ dispatcher }).runTestPlan(
        plan(tag, 40, '{ concurrency: 16, timeout: 1h }'),
        token,
      );
      // 16 attempts in jobs of up to 8: at least two jobs waiting for a worker.
      await expect
        .poll(() => inspect.getWaitingCount(), { timeout: 10_000, interval: 10 })
        .toBeGreaterThanOrEqual(2);
      token.cancel('no workers today');
      const { run } = await done;
      expect(run.status).toBe('cancelled');
      expect(run.tasks).toHaveLength(40);
      expect(run.tasks.every((t) => t.status === 'cancelled')).toBe(true);
      expect(await inspect.getWaitingCount()).toBe(0); // removed, not left for a later worker
      expect(sentPerCase(tag, 40).every((c) => c === 0)).toBe(true);
    } finally {
      await inspect.close();
      await dispatcher.close();
    }
  }, 30_000);

  test('a second coordinator on the same run takes what the first one sent: answered outcomes are used, running jobs waited for, nothing sent twice', async () => {
    const queue = 'q-handover';
    const tag = 'ho';
    // c0-c2 answer at once; c3-c5 are answered by the mock too, but their attempts go on running
    // on the worker until the test opens `gate`: still running when the first coordinator is
    // gone, however long that takes on a loaded machine.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let held = 0;
    const worker = await startWorker({
      redis: f.redis.url,
      queue,
      concurrency: 8,
      targetFactory: async (config, concurrency) => {
        if (config.type === 'function') throw new Error('a built-in target expected');
        const inner = await builtInTarget(config, concurrency);
        return {
          execute: async (task: TaskView<TestCase>, ctx: AttemptContext) => {
            const output = await inner.execute(task, ctx);
            if (['c3', 'c4', 'c5'].includes(task.id)) {
              held++;
              await gate;
            }
            return output;
          },
          close: () => inner.close(),
        };
      },
    });
    const manifest = plan(tag, 6, '{ concurrency: 6 }');
    const testCases = manifest.datasets[0]!.cases;
    if (testCases.kind !== 'inline') throw new Error('inline cases expected');
    const attempt = (target: Target<TestCase, unknown>, i: number, number: number) =>
      target.execute(
        { id: `c${i}`, input: testCases.cases[i]!, priority: 0, rateKey: 'default' },
        {
          signal: new AbortController().signal,
          attempt: number,
          taskId: `c${i}`,
          reportUsage: () => {},
          reportLimits: () => {},
        },
      );
    f.mock.reset();
    const first = new BullmqDispatcher({ redis: f.redis.url, queue });
    const second = new BullmqDispatcher({ redis: f.redis.url, queue });
    try {
      const a = await first.targetFor(manifest, 'handover');
      const sent = [0, 1, 2, 3, 4, 5].map((i) => attempt(a, i, 1));
      const settled = Promise.allSettled(sent);
      await Promise.all(sent.slice(0, 3)); // read by the first coordinator, never journaled
      await until(() => held === 3, 'c3-c5 to run on the worker');
      await first.close(); // the first coordinator is gone; c3-c5 still run on the worker
      const lost = await settled;
      expect(lost.map((r) => r.status)).toEqual(
        [...'fffrrr'].map((c) => (c === 'f' ? 'fulfilled' : 'rejected')),
      );

      // What the journal of the first coordinator would say: c0 and c3 never recorded as
      // started (attempt 1 is next), the others recorded as running attempt 1 (maybe sent).
      const inFlight = new Set(['c1', 'c2', 'c4', 'c5']);
      const b = await second.targetFor(manifest, 'handover', {
        takesOver: (caseId, n) => (inFlight.has(caseId) ? n === 1 || n === 2 : n === 1),
      });
      // Attempt 1 again where the journal had not recorded its start (c0, c3), attempt 2 where
      // it had (c1, c2, c4, c5: the previous attempt is reconciled first).
      const outputs = Promise.all([
        attempt(b, 0, 1),
        attempt(b, 1, 2),
        attempt(b, 2, 2),
        attempt(b, 3, 1),
        attempt(b, 4, 2),
        attempt(b, 5, 2),
      ]);
      open(); // c3-c5 finish on the worker now, for the second coordinator
      expect((await outputs).map((o) => (o as { text?: string }).text)).toEqual(
        [0, 1, 2, 3, 4, 5].map((i) => expect.stringContaining(`q ${i}`)),
      );
      expect(sentPerCase(tag, 6)).toEqual([1, 1, 1, 1, 1, 1]); // nothing paid twice
    } finally {
      open();
      await second.close();
      await worker.close();
    }
  }, 30_000);

  test('a resume never reuses an outcome the journal already holds: cancelled cases are sent again', async () => {
    const queue = 'q-resume-cancelled';
    const tag = 'rc';
    const worker = await startWorker({ redis: f.redis.url, queue, concurrency: 8 });
    // Each case hangs the first time it is sent (until cancelled) and answers the second time.
    const manifest = plan(tag, 4, '{ concurrency: 4, timeout: 30s }', () => ({
      __fault: 'hang',
      __fault_times: 1,
    }));
    const dir = mkdtempSync(join(tmpdir(), 'stride-dist-'));
    const store = new SqliteStore({ path: join(dir, 'j.db') });
    const first = new BullmqDispatcher({ redis: f.redis.url, queue });
    const second = new BullmqDispatcher({ redis: f.redis.url, queue });
    f.mock.reset();
    try {
      const token = new CancellationToken();
      const interrupted = runDurable(new ExecutorService({ dispatcher: first }), manifest, store, {
        runId: 'cancelled-then-resumed',
        token,
      });
      await until(() => f.mock.stats().inFlight === 4, 'four hanging requests');
      token.cancel('stop for now');
      const stopped = await interrupted;
      expect(stopped.run.tasks.map((t) => t.status)).toEqual(Array(4).fill('cancelled'));
      // The workers' cancelled outcomes are in the run's stream, sent by the first coordinator.
      const resumed = await resume(
        new ExecutorService({ dispatcher: second }),
        manifest,
        store,
        'cancelled-then-resumed',
      );
      expect(resumed.results.map((r) => r.status).sort()).toEqual([
        'success',
        'success',
        'success',
        'success',
      ]);
      expect(sentPerCase(tag, 4)).toEqual([2, 2, 2, 2]); // cancelled once, then run
    } finally {
      await first.close();
      await second.close();
      await store.close();
      await worker.close();
    }
  }, 30_000);

  test('a batch size below 1 is refused, naming the option and the value', () => {
    expect(() => new BullmqDispatcher({ redis: f.redis.url, batch: 0 })).toThrow(/batch.*0/);
  });
});
