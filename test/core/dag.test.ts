/** Task dependencies in the engine, on the virtual clock: readiness, cascades, cycles, fail-fast. */

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  checkDependencies,
  DependencyError,
  NonRetryableError,
  Run,
  type TaskSpec,
  type TaskTransition,
  VirtualClock,
} from '../../src/core/index.js';

type Spec = TaskSpec<string> & { id: string };

function graphRun(specs: Spec[], fail: ReadonlySet<string> = new Set(), options = {}) {
  const clock = new VirtualClock();
  const order: string[] = [];
  const ends: string[] = [];
  const run = new Run<string, string>(
    specs,
    {
      async execute(task, ctx) {
        order.push(task.id);
        await clock.sleep(task.id.length * 10, ctx.signal);
        ends.push(task.id);
        if (fail.has(task.id)) throw new NonRetryableError(`${task.id} broke`);
        return task.id;
      },
    },
    { clock, concurrency: 4, ...options },
  );
  const log: TaskTransition[] = [];
  run.on('transition', (t) => log.push(t));
  return { run, order, ends, log, clock };
}

const step = (id: string, ...dependsOn: string[]): Spec => ({ id, input: id, dependsOn });

describe('dependencies', () => {
  test('a diamond: b and c start after a, in parallel; d after both', async () => {
    const { run, order, log } = graphRun([
      step('d', 'b', 'cc'),
      step('b', 'a'),
      step('cc', 'a'),
      step('a'),
    ]);
    const result = await run.start();
    expect(result.status).toBe('completed');
    expect(order).toEqual(['a', 'b', 'cc', 'd']);
    const startOf = (id: string) => log.findIndex((t) => t.taskId === id && t.to === 'running');
    const endOf = (id: string) => log.findIndex((t) => t.taskId === id && t.to === 'succeeded');
    expect(startOf('b')).toBeGreaterThan(endOf('a'));
    expect(startOf('cc')).toBeLessThan(endOf('b')); // b and cc overlap
    expect(startOf('d')).toBeGreaterThan(Math.max(endOf('b'), endOf('cc')));
    // A waiting task is not queued before its dependencies succeeded.
    const queuedD = log.findIndex((t) => t.taskId === 'd' && t.to === 'queued');
    expect(queuedD).toBeGreaterThan(Math.max(endOf('b'), endOf('cc')));
  });

  test('a failure cancels its dependents transitively with the reason; independent branches go on', async () => {
    const { run, order } = graphRun(
      [step('a'), step('b', 'a'), step('c', 'b'), step('x'), step('y', 'x')],
      new Set(['a']),
    );
    const result = await run.start();
    const by = new Map(result.tasks.map((t) => [t.id, t]));
    expect(by.get('a')?.status).toBe('error');
    expect(by.get('b')).toMatchObject({
      status: 'cancelled',
      reason: { kind: 'dependency_failed', dependency: 'a' },
      attempts: 0,
    });
    expect(by.get('c')).toMatchObject({
      status: 'cancelled',
      reason: { kind: 'dependency_failed', dependency: 'b' },
    });
    expect(by.get('y')?.status).toBe('succeeded');
    expect(order).not.toContain('b');
    expect(result.status).toBe('completed');
  });

  test('failFast stops everything at the first failure, with the rule named', async () => {
    const { run, order } = graphRun(
      [step('a'), step('bbbbbbbbbb'), step('c', 'bbbbbbbbbb')],
      new Set(['a']),
      {
        stop: { failFast: true },
      },
    );
    const result = await run.start();
    expect(result.status).toBe('stopped');
    expect(result.stoppedBy?.rule).toBe('fail_fast');
    const by = new Map(result.tasks.map((t) => [t.id, t]));
    expect(by.get('bbbbbbbbbb')).toMatchObject({
      status: 'cancelled',
      reason: { kind: 'stop_rule', rule: 'fail_fast' },
    });
    expect(by.get('c')).toMatchObject({
      status: 'cancelled',
      reason: { kind: 'stop_rule', rule: 'fail_fast' },
    });
    expect(order).toEqual(['a', 'bbbbbbbbbb']);
  });

  test('a stop cancels waiting tasks for its own reason, not as "dependency failed"', async () => {
    // concurrency 1: q waits in the ready queue behind p when the cancel comes; r waits on q.
    const { run, clock } = graphRun([step('p'), step('q'), step('r', 'q')], new Set(), {
      concurrency: 1,
    });
    const done = run.start();
    await clock.sleep(2);
    run.cancel({ message: 'stop now' });
    const result = await done;
    const by = new Map(result.tasks.map((t) => [t.id, t]));
    expect(by.get('q')).toMatchObject({ status: 'cancelled', reason: { kind: 'user' } });
    expect(by.get('r')).toMatchObject({ status: 'cancelled', reason: { kind: 'user' } });
  });

  test('cancel and pause with tasks still waiting on dependencies', async () => {
    const { run, clock } = graphRun([step('a'), step('b', 'a'), step('c', 'b')]);
    const done = run.start();
    await clock.sleep(5);
    run.pause();
    await run.onPaused();
    await clock.sleep(100); // a finishes while paused; b is queued but does not start
    expect(run.progress.byStatus.queued).toBe(1);
    expect(run.progress.running).toBe(0);
    run.resume();
    await clock.sleep(5);
    run.cancel({ message: 'enough' });
    const result = await done;
    const by = new Map(result.tasks.map((t) => [t.id, t]));
    expect(by.get('a')?.status).toBe('succeeded');
    expect(by.get('b')?.status).toBe('cancelled');
    expect(by.get('c')).toMatchObject({ status: 'cancelled', reason: { kind: 'user' } });
  });

  test('graphs are checked before anything runs: duplicates, unknown ids, self-loops, cycles as paths', () => {
    expect(() => checkDependencies([step('a', 'b'), step('b', 'c'), step('c', 'a')])).toThrow(
      'dependency cycle: a -> b -> c -> a',
    );
    let error: unknown;
    try {
      new Run([step('a', 'a'), step('b', 'nope'), step('b')], { execute: async () => 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as DependencyError).code).toBe('INVALID_OPTION');
    expect((error as DependencyError).problems).toEqual([
      'duplicate id "b"',
      'task "a" depends on itself',
      'task "b" depends on unknown task "nope"',
    ]);
  });

  test('an iterable source cannot carry dependencies: that task is an error, the rest runs', async () => {
    const clock = new VirtualClock();
    function* source(): Generator<Spec> {
      yield step('a');
      yield step('b', 'a');
    }
    const result = await new Run(source(), { execute: async () => 1 }, { clock }).start();
    expect(result.tasks.find((t) => t.id === 'b')?.error?.message).toContain(
      'dependsOn needs the tasks as an array',
    );
    expect(result.tasks.find((t) => t.id === 'a')?.status).toBe('succeeded');
  });

  test('property: in any random DAG, a task starts only after all its dependencies succeeded, and ends exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 25 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (n, edgePairs, failing) => {
          // Edges only from a higher to a lower index: acyclic by construction.
          const deps = new Map<string, Set<string>>();
          for (const [x, y] of edgePairs) {
            const hi = Math.max(x % n, y % n);
            const lo = Math.min(x % n, y % n);
            if (hi === lo) continue;
            const set = deps.get(`t${hi}`) ?? new Set();
            set.add(`t${lo}`);
            deps.set(`t${hi}`, set);
          }
          const specs = Array.from({ length: n }, (_, i) =>
            step(`t${i}`, ...(deps.get(`t${i}`) ?? [])),
          );
          const fail = new Set(failing.map((f) => `t${f % n}`));
          const { run, log } = graphRun(specs.reverse(), fail);
          const result = await run.start();
          expect(result.tasks).toHaveLength(n);
          const status = new Map(result.tasks.map((t) => [t.id, t.status]));
          for (const [id, ds] of deps) {
            const start = log.findIndex((t) => t.taskId === id && t.to === 'running');
            if (start < 0) {
              // Not started: some dependency did not succeed.
              expect([...ds].some((d) => status.get(d) !== 'succeeded')).toBe(true);
              continue;
            }
            for (const d of ds) {
              const end = log.findIndex((t) => t.taskId === d && t.to === 'succeeded');
              expect(end).toBeGreaterThanOrEqual(0);
              expect(end).toBeLessThan(start);
            }
          }
          const terminal = log.filter((t) => ['succeeded', 'error', 'cancelled'].includes(t.to));
          expect(new Set(terminal.map((t) => t.taskId)).size).toBe(terminal.length);
        },
      ),
      { numRuns: 150 },
    );
  });
});
