/**
 * RunHistory: the journal by run id. Resume and rerun reload the plan from its file (with the
 * run's stored policy and selection), results() gives each case once, errors name the run.
 */

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type AttemptContext, CancellationToken, VirtualClock } from '../../src/core/index.js';
import { loadPlan, type TestCase } from '../../src/plans/index.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import { RunHistory } from '../../src/runner/history.js';
import { SqliteStore } from '../../src/store/index.js';

const CASES = 30;

function writePlan(dir: string, concurrency = 3): string {
  const lines = Array.from({ length: CASES }, (_, i) =>
    JSON.stringify({ id: `c${i}`, inputs: { n: i }, expected: { contains: 'ok' } }),
  );
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  const plan = join(dir, 'plan.yaml');
  writeFileSync(
    plan,
    [
      'workflow_id: history',
      'target: { type: function, name: bot }',
      `execution_policy: { concurrency: ${concurrency}, retry_policy: { max_attempts: 1 } }`,
      'cases: cases.jsonl',
      '',
    ].join('\n'),
  );
  return plan;
}

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'stride-history-'));
  const clock = new VirtualClock();
  const calls = new Map<string, number>();
  let token = new CancellationToken();
  let cancelAfter = Number.POSITIVE_INFINITY;
  let sessionCalls = 0;
  const bot = async (c: TestCase, ctx: AttemptContext) => {
    calls.set(c.id, (calls.get(c.id) ?? 0) + 1);
    if (++sessionCalls === cancelAfter) token.cancel('interrupted by the test');
    await clock.sleep(10, ctx.signal);
    const n = (c.inputs as { n: number }).n;
    if (n % 5 === 4) throw Object.assign(new Error(`bad ${n}`), { status: 400 });
    return n % 5 === 3 ? 'nope' : 'ok';
  };
  const history = new RunHistory({
    store: new SqliteStore({ path: join(dir, 'stride.db') }),
    service: new ExecutorService({ functions: { bot }, clock }),
    clock,
  });
  const session = (after = Number.POSITIVE_INFINITY) => {
    token = new CancellationToken();
    cancelAfter = after;
    sessionCalls = 0;
    return token;
  };
  return { dir, history, calls, session };
}

describe('RunHistory', () => {
  test('resume by id reloads the plan from its file, keeps the run selection, re-sends no verdict', async () => {
    const { dir, history, calls, session } = setup();
    try {
      const loaded = await loadPlan(writePlan(dir));
      // As the CLI does with --range 1-20: the override is stored with the run.
      const manifest = { ...loaded, select: { ...loaded.select, range: { from: 1, to: 20 } } };
      const first = await history.run(manifest, { token: session(8), runId: 'r1' });
      expect(first.run.status).toBe('cancelled');
      const decided = new Map<string, number>();
      for await (const r of history.results('r1')) {
        if (r.metadata.taskStatus !== 'cancelled')
          decided.set(r.executionId, calls.get(r.executionId)!);
      }
      expect(decided.size).toBeGreaterThan(0);

      const resumed = await history.resume('r1', { token: session() });
      expect(resumed.runId).toBe('r1');
      for (const [id, n] of decided) expect(calls.get(id), id).toBe(n);
      const all = [];
      for await (const r of history.results('r1')) all.push(r);
      // 20 cases (the stored selection, not the file's 30), each once, each with a verdict.
      expect(all.map((r) => r.executionId).sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `c${i}`).sort(),
      );
      expect(all.filter((r) => r.status === 'success')).toHaveLength(12);
      expect(all.filter((r) => r.status === 'failed')).toHaveLength(4);
      expect(all.filter((r) => r.status === 'error')).toHaveLength(4);
      const failedOnly = [];
      for await (const r of history.results('r1', { status: ['failed'] }))
        failedOnly.push(r.executionId);
      expect(failedOnly.sort()).toEqual(['c13', 'c18', 'c3', 'c8']);
      expect((await history.getRun('r1')).status).toBe('completed');
    } finally {
      await history.store.close();
    }
  });

  test('an edited plan file is refused unless forced; an unknown id names the latest runs', async () => {
    const { dir, history, session } = setup();
    try {
      const plan = writePlan(dir);
      await history.run(await loadPlan(plan), { token: session(5), runId: 'r1' });
      // The run's stored execution policy wins over the file's on resume (it carries the CLI's
      // overrides), so only a change of what is run or judged makes it another plan.
      writeFileSync(
        plan,
        readFileSync(plan, 'utf8').replace('workflow_id: history', 'workflow_id: other'),
      );
      await expect(history.resume('r1', { token: session() })).rejects.toMatchObject({
        code: 'PLAN_CHANGED',
      });
      const forced = await history.resume('r1', { token: session(), force: true });
      expect(forced.run.status).toBe('completed');
      await expect(history.getRun('zz')).rejects.toMatchObject({
        code: 'RUN_NOT_FOUND',
        message: 'no run "zz" in the store (latest: r1)',
      });
    } finally {
      await history.store.close();
    }
  });

  test('rerun errors or failures: a new run linked to its parent with only those cases', async () => {
    const { dir, history, calls, session } = setup();
    try {
      await history.run(await loadPlan(writePlan(dir)), { token: session(), runId: 'r1' });
      const before = new Map(calls);
      const again = await history.rerun('r1', 'errors', { token: session(), runId: 'r2' });
      const resent = [...calls].filter(([id, n]) => before.get(id) !== n).map(([id]) => id);
      expect(resent.sort()).toEqual(['c14', 'c19', 'c24', 'c29', 'c4', 'c9']);
      expect(again.results).toHaveLength(6);
      const runs = await history.listRuns();
      expect(runs.map((r) => [r.id, r.parentId])).toEqual([
        ['r2', 'r1'],
        ['r1', undefined],
      ]);
      const fails = await history.rerun('r1', 'failures', {
        token: session(),
        retainResults: false,
      });
      expect(fails.results).toEqual([]); // not held: read them from the store
      const stored = [];
      for await (const r of history.results(fails.runId)) stored.push(r.status);
      expect(stored).toEqual(Array(6).fill('failed'));
      expect(await history.prune({ maxRuns: 1 })).toBe(2);
    } finally {
      await history.store.close();
    }
  });
});
