/**
 * The run session object (runner/session.ts): one `RunSession` drives test plans and action
 * plans alike, owns pause as counted holds from several owners (user, dashboard, backpressure
 * of the report output, a graceful stop), and knows who holds the run.
 *
 * No test races a timer: the targets answer at once, the invariant checked is "no attempt
 * starts while any hold is held" (recorded by the target itself at every start, so load cannot
 * change it), and the waits are on events (the run's start, a hold appearing), with `until`
 * only as a guard against a hang.
 */

import { EventEmitter } from 'node:events';
import { describe, expect, test } from 'vitest';
import { type ActionPlan, actionPlan, Executor, ToolRegistry } from '../../src/actions/index.js';
import type { Tool } from '../../src/actions/tool.js';
import type { TestCase } from '../../src/plans/index.js';
import { parsePlan, type RunManifest } from '../../src/plans/index.js';
import { resume, runDurable } from '../../src/runner/durable.js';
import { ExecutorService } from '../../src/runner/executor-service.js';
import {
  type ResultSink,
  RunSession,
  type StartedRun,
  testPlan,
} from '../../src/runner/session.js';
import { MemoryStore } from '../../src/store/index.js';
import { until } from '../core/harness.js';

const CASES = 8;

function manifest(): RunManifest {
  const cases = Array.from({ length: CASES }, (_, i) => `  - { id: c${i}, inputs: { q: q${i} } }`);
  return parsePlan(
    [
      'workflow_id: session',
      'target: { type: function, name: bot }',
      'execution_policy: { concurrency: 1 }',
      'cases:',
      ...cases,
      '',
    ].join('\n'),
  );
}

/** Resolves with the started run once the session hands it to its face. */
function startedOf(): { promise: Promise<StartedRun>; onStart: (s: StartedRun) => void } {
  let onStart!: (s: StartedRun) => void;
  const promise = new Promise<StartedRun>((resolve) => {
    onStart = resolve;
  });
  return { promise, onStart };
}

/** A few macrotask turns: enough for a run that is not held to start its next attempt. */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('RunSession', () => {
  test('holds from several owners: the run goes on only once every owner released its own', async () => {
    const store = new MemoryStore();
    const starts: { id: string; holders: string[] }[] = [];
    let session!: RunSession<unknown>;
    const service = new ExecutorService({
      functions: {
        bot: async (c: TestCase) => {
          // The invariant, recorded where it happens: who held the run when this attempt began.
          starts.push({ id: c.id, holders: session.holders().map((h) => h.reason) });
          return 'ok';
        },
      },
    });
    // The report output lags: each add waits until the test opens the gate.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const added: string[] = [];
    const sink: ResultSink = {
      add: async (r) => {
        await gate;
        added.push(r.executionId);
      },
    };
    const signals = new EventEmitter();
    const started = startedOf();
    session = new RunSession(
      testPlan((hooks) => runDurable(service, manifest(), store, { ...hooks, runId: 's1' })),
      {
        store,
        signals,
        highWaterMark: 2,
        output: async () => sink,
        onStart: started.onStart,
      },
    );
    expect(session.kind).toBe('test');

    // Held by the user before it starts: taken as the run starts.
    const user = session.hold('user', 'me');
    expect(session.holders()).toEqual([{ reason: 'user', by: 'me', since: 0 }]);
    const driving = session.drive();
    const { run } = await started.promise;
    await turns();
    expect(starts).toEqual([]);
    expect(session.holders().map((h) => h.reason)).toEqual(['user']);

    // The dashboard holds it too; the user's release does not resume the dashboard's pause.
    const dashboard = session.hold('dashboard', 'dashboard 127.0.0.1');
    expect(session.holders().map((h) => [h.reason, h.by])).toEqual([
      ['user', 'me'],
      ['dashboard', 'dashboard 127.0.0.1'],
    ]);
    user.release();
    user.release(); // idempotent: never releases someone else's hold
    await turns();
    expect(starts).toEqual([]);
    expect(session.holders().map((h) => h.reason)).toEqual(['dashboard']);
    dashboard.release();

    // The output lags 2 results behind: the session holds the run for backpressure.
    await until(
      () => session.holders().some((h) => h.reason === 'backpressure'),
      'the backpressure hold',
    );
    expect(session.holders()).toEqual([
      expect.objectContaining({ reason: 'backpressure', by: 'the report files' }),
    ]);
    const before = starts.length;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(CASES);

    // A signal while the output lags: the graceful stop holds the run on its own, so the output
    // draining (its hold released) does not let anything start again.
    signals.emit('SIGINT', 'SIGINT');
    await until(() => session.holders().some((h) => h.reason === 'signal'), 'the signal hold');
    openGate();
    const outcome = await driving;

    expect(outcome.interrupted).toMatchObject({ signal: 'SIGINT', resumable: true });
    expect(starts.length).toBe(before);
    for (const s of starts) expect(s.holders).toEqual([]);
    // Every case that ended reached the output before drive() resolved: the ones that ran, in
    // order, then the ones the stop cancelled unstarted.
    expect(added.slice(0, before)).toEqual(starts.map((s) => s.id));
    expect(new Set(added).size).toBe(CASES);
    expect((await store.getRun('s1'))?.status).toBe('interrupted');
    expect(run.status).toBe('cancelled');
    expect(signals.listenerCount('SIGINT')).toBe(0);

    // A second session resumes the same run to its end; nothing finished is sent again.
    const again = new RunSession(
      testPlan((hooks) => resume(service, manifest(), store, 's1', hooks)),
      { store, signals },
    );
    const resumed = await again.drive();
    expect(resumed.interrupted).toBeUndefined();
    expect(starts.map((s) => s.id).sort()).toEqual(
      Array.from({ length: CASES }, (_, i) => `c${i}`).sort(),
    );
    expect((await store.getRun('s1'))?.status).toBe('completed');
  });

  test('a hold released before the run starts is never taken', async () => {
    const store = new MemoryStore();
    const service = new ExecutorService({ functions: { bot: async () => 'ok' } });
    const session = new RunSession(
      testPlan((hooks) => runDurable(service, manifest(), store, { ...hooks, runId: 's2' })),
      { store, signals: false },
    );
    session.hold('user').release();
    expect(session.holders()).toEqual([]);
    const { result } = await session.drive();
    expect(result.run.statistics.succeededTasks).toBe(CASES);
    await expect(session.drive()).rejects.toThrow(/once/);
  });

  /** An action plan of `n` steps in a chain, each step a call of the `step` tool. */
  function actionWorld(n: number) {
    const calls: { id: string; holders: string[] }[] = [];
    let session: RunSession<unknown> | undefined;
    const step: Tool<{ key: string }, { key: string }> = {
      name: 'step',
      async execute(args) {
        calls.push({ id: args.key, holders: session?.holders().map((h) => h.reason) ?? [] });
        return { key: args.key };
      },
    };
    const plan: ActionPlan = {
      id: 'a1',
      steps: Array.from({ length: n }, (_, i) => ({
        id: `s${i}`,
        tool: 'step',
        arguments: { key: `s${i}` },
        ...(i === 0 ? {} : { dependencies: [`s${i - 1}`] }),
      })),
    };
    return {
      calls,
      plan,
      tools: new ToolRegistry([step] as Tool<never, unknown>[]),
      watch: (s: RunSession<unknown>) => {
        session = s;
      },
    };
  }

  test('both plan kinds through one session: an action plan is held, stopped and resumed the same way', async () => {
    const store = new MemoryStore();
    const world = actionWorld(6);
    const executor = new Executor({ toolRegistry: world.tools, store });
    const signals = new EventEmitter();
    const started = startedOf();
    const session = new RunSession(actionPlan(executor, world.plan), {
      store,
      signals,
      onStart: started.onStart,
    });
    world.watch(session as RunSession<unknown>);
    expect(session.kind).toBe('action');
    const user = session.hold('user', 'me');
    const driving = session.drive();
    const { run } = await started.promise;
    await turns();
    expect(world.calls).toEqual([]);
    expect(await executor.getExecutionStatus('a1')).toBe('paused');

    // Released: steps run; a signal after the second step stops the plan, resumable.
    run.on('transition', (t) => {
      if (t.to === 'succeeded' && t.taskId === 's1') signals.emit('SIGTERM', 'SIGTERM');
    });
    user.release();
    const outcome = await driving;
    expect(outcome.interrupted).toMatchObject({ signal: 'SIGTERM', resumable: true });
    expect(world.calls.map((c) => c.id)).toEqual(['s0', 's1']);
    for (const c of world.calls) expect(c.holders).toEqual([]);
    expect((await store.getRun('a1'))?.status).toBe('interrupted');

    // Resumed through a new session: the rest runs, the finished steps are not called again.
    const next = new RunSession(
      actionPlan(new Executor({ toolRegistry: world.tools, store }), world.plan, { resume: true }),
      {
        store,
        signals,
      },
    );
    const { result, interrupted } = await next.drive();
    expect(interrupted).toBeUndefined();
    expect(result.status).toBe('completed');
    expect(world.calls.map((c) => c.id)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
  });
});
