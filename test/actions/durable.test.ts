// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${steps...}` is action-plan syntax, not a template literal.
/**
 * Journaled action plans: a plan interrupted and resumed continues after its completed steps; a
 * rollback is journaled as a child run; a rollback killed with `kill -9` (a real child process)
 * is continued by another process without undoing a step twice (except the one in flight).
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { type ActionPlan, Executor, ToolRegistry } from '../../src/actions/index.js';
import type { Tool } from '../../src/actions/tool.js';
import { CancellationToken, NonRetryableError, VirtualClock } from '../../src/core/index.js';
import { SqliteStore } from '../../src/store/index.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'stride-actions-'));
}

function world(clock: VirtualClock) {
  const calls: string[] = [];
  const undone: string[] = [];
  const step: Tool<{ key: string; fail?: boolean }, { key: string }> = {
    name: 'step',
    async execute(args, ctx) {
      calls.push(args.key);
      await clock.sleep(100, ctx.signal);
      if (args.fail) throw new NonRetryableError(`${args.key} refused`);
      return { key: args.key };
    },
    async compensate(args, output) {
      undone.push(`${args.key}${output === undefined ? '?' : ''}`);
    },
  };
  return { calls, undone, tools: new ToolRegistry([step] as Tool<never, unknown>[]) };
}

const chain = (n: number, failLast = false): ActionPlan => ({
  id: 'plan-1',
  name: 'chain',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    tool: 'step',
    arguments: { key: `s${i}`, ...(failLast && i === n - 1 ? { fail: true } : {}) },
    ...(i === 0 ? {} : { dependencies: [`s${i - 1}`] }),
  })),
});

describe('journaled action plans', () => {
  test('an interrupted plan resumes after its completed steps; outputs of stored steps feed the rest', async () => {
    const store = new SqliteStore({ path: join(tempDir(), 'stride.db') });
    try {
      const clock = new VirtualClock();
      const w = world(clock);
      const executor = new Executor({ toolRegistry: w.tools, store, clock });
      const token = new CancellationToken();
      const plan: ActionPlan = {
        ...chain(4),
        steps: [
          ...chain(4).steps,
          {
            id: 'tail',
            tool: 'step',
            arguments: { key: '${steps.s1.output.key}-tail' },
            dependencies: ['s3'],
          },
        ],
      };
      const first = executor.executePlan(plan, { signal: token.signal });
      await clock.sleep(250); // s0 and s1 done, s2 running
      token.cancel('interrupted');
      const cut = await first;
      expect(cut.status).toBe('cancelled');
      expect(w.calls).toEqual(['s0', 's1', 's2']);

      const again = new Executor({ toolRegistry: w.tools, store, clock });
      const resumed = await again.executePlan(plan, { resume: true });
      expect(resumed.status).toBe('completed');
      expect(w.calls).toEqual(['s0', 's1', 's2', 's2', 's3', 's1-tail']);
      expect(resumed.stepResults.map((s) => [s.stepId, s.status])).toEqual([
        ['s0', 'completed'],
        ['s1', 'completed'],
        ['s2', 'completed'],
        ['s3', 'completed'],
        ['tail', 'completed'],
      ]);
      expect(resumed.stepResults[0]?.metadata.resumedFrom).toBe('journal');
      const [run] = await store.listRuns();
      expect(run).toMatchObject({
        id: 'plan-1',
        kind: 'action',
        plan: 'chain',
        status: 'completed',
        resumes: 1,
      });
      // A changed plan is refused.
      await expect(
        again.executePlan({ ...plan, steps: plan.steps.slice(0, 3) }, { resume: true }),
      ).rejects.toMatchObject({
        code: 'PLAN_CHANGED',
      });
    } finally {
      await store.close();
    }
  });

  test('a rollback is journaled as a child run of the plan', async () => {
    const store = new SqliteStore({ path: join(tempDir(), 'stride.db') });
    try {
      const clock = new VirtualClock();
      const w = world(clock);
      const executor = new Executor({
        toolRegistry: w.tools,
        store,
        clock,
        autoRollback: true,
        retryPolicy: { maxAttempts: 1 },
      });
      const result = await executor.executePlan(chain(4, true));
      expect(result.rollback?.status).toBe('completed');
      expect(w.undone).toEqual(['s2', 's1', 's0']);
      const runs = await store.listRuns();
      expect(runs.map((r) => [r.id, r.parentId, r.status, r.counts.succeeded])).toEqual([
        ['plan-1:rollback', 'plan-1', 'completed', 3],
        ['plan-1', undefined, 'completed', 3],
      ]);
    } finally {
      await store.close();
    }
  });

  test('kill -9 during a rollback: another process continues it; done compensations are not repeated', async () => {
    const dir = tempDir();
    const db = join(dir, 'stride.db');
    const child = fileURLToPath(new URL('./rollback-crash-child.mjs', import.meta.url));
    const run = spawn(process.execPath, [child, db, dir, 'run'], { stdio: 'ignore' });
    const log = () =>
      existsSync(join(dir, 'log.txt')) ? readFileSync(join(dir, 'log.txt'), 'utf8') : '';
    // s3 is undone first (fast), then s2's compensation hangs until the process is killed there.
    await expect.poll(log, { timeout: 15_000, interval: 20 }).toContain('undo-start s2');
    expect(log()).toContain('undo-done s3');
    const killed = new Promise((r) => run.on('exit', r));
    run.kill('SIGKILL');
    await killed;
    expect(existsSync(join(dir, 's1'))).toBe(true);
    expect(existsSync(join(dir, 's2'))).toBe(true);

    const rollback = spawn(process.execPath, [child, db, dir, 'rollback'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    rollback.stdout.on('data', (c) => {
      out += c;
    });
    const code = await new Promise((r) => rollback.on('exit', r));
    expect(code).toBe(0);
    const result = JSON.parse(out) as {
      status: string;
      compensations: { stepId: string; status: string }[];
    };
    expect(result.status).toBe('completed');
    expect(result.compensations.map((c) => [c.stepId, c.status])).toEqual([
      ['s2', 'compensated'],
      ['s1', 'compensated'],
    ]);
    const lines = log().trim().split('\n');
    const count = (l: string) => lines.filter((x) => x === l).length;
    expect(count('undo-start s3')).toBe(1); // journaled as done: never again
    expect(count('undo-start s2')).toBe(2); // in flight at the kill: compensated again (idempotent)
    expect(count('undo-done s1')).toBe(1);
    for (const key of ['s1', 's2', 's3', 's4']) expect(existsSync(join(dir, key)), key).toBe(false);
  }, 40_000);
});
