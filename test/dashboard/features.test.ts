/**
 * The dashboard's API beyond runs and control, over real HTTP against `stride serve` in a child
 * process, on journals written by real `stride run` children: the case table's dataset and tag
 * filters; an action run's step graph with each step's state and its journaled rollback (the
 * examples/actions/rollback plan, which fails on purpose); the distributed queue's workers and
 * jobs with `--redis` (a real redis-server and a real `stride worker`), 404 without it, and an
 * answer naming Redis unreachable (never its password) when it is down.
 */

import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type Child, spawnStride } from '../cli/helpers.js';
import { startRedis } from '../distributed/redis.js';
import { until } from '../runner/child-run.js';
import { call, planOnMock, type Served, serve, stop } from './helpers.js';

const KEY = 'app-dashboard-features';
const EXAMPLES = fileURLToPath(new URL('../../examples/actions/', import.meta.url));
let mock: MockServer;
const children: Child[] = [];
const served: Served[] = [];

beforeAll(async () => {
  mock = await startMock({ apiKeys: [KEY], latencyMs: 1 });
});

afterAll(async () => {
  for (const s of served) s.child.kill('SIGINT');
  for (const c of children) c.kill('SIGKILL');
  await Promise.all([...children, ...served.map((s) => s.child)].map((c) => c.exited));
  await mock.close();
});

function stride(args: string[], cwd: string): Child {
  const child = spawnStride(args, { cwd, env: {} });
  children.push(child);
  return child;
}

// The tests share only the mock, which they use as a target and never count at: each has its own
// folder, journal, served child (and Redis): side by side, the file waits for its slowest test.
describe.concurrent('stride serve: step graph, dataset and tag filters, workers', () => {
  test('the case table filters by dataset and by tag, with status and pages; total is unknown (null) then', async () => {
    const p = planOnMock('features-filters', mock.baseUrl, KEY, 12, {
      fields: (i) => ({
        dataset: i % 2 === 0 ? 'refunds' : 'billing',
        tags: i % 3 === 0 ? ['smoke', 'slow'] : ['smoke'],
      }),
    });
    const run = stride(['run', p.plan, '--db', p.db, '--run-id', 'F', '--no-progress'], p.dir);
    expect(await run.exited).toBe(0);
    const s = await serve(p.db);
    served.push(s);
    const api = `${s.url}api/runs/F/cases`;
    const ids = (body: { cases: { id: string }[] }) => body.cases.map((c) => c.id).sort();
    const refunds = await call(`${api}?dataset=refunds`);
    expect(refunds.status).toBe(200);
    expect(refunds.body.total).toBeNull();
    expect(ids(refunds.body)).toEqual(['k0', 'k10', 'k2', 'k4', 'k6', 'k8']);
    expect(ids((await call(`${api}?tag=slow`)).body)).toEqual(['k0', 'k3', 'k6', 'k9']);
    expect(ids((await call(`${api}?dataset=billing&tag=slow`)).body)).toEqual(['k3', 'k9']);
    expect(ids((await call(`${api}?tag=slow&status=failed`)).body)).toEqual([]);
    expect((await call(`${api}?tag=smoke&offset=10&limit=5`)).body.cases).toHaveLength(2);
    expect((await call(`${api}?tag=smo`)).body.cases).toEqual([]);
    // Without a filter the total is the run's own count.
    expect((await call(api)).body.total).toBe(12);
    const long = await call(`${api}?tag=${'x'.repeat(201)}`);
    expect(long).toMatchObject({ status: 400, body: { error: { code: 'INVALID_OPTION' } } });
    expect(long.body.error.message).toContain('tag: 201 characters');
    expect(await stop(s)).toBe(0);
  }, 120_000);

  test("an action run's step graph: each step's state, level and error, and its rollback", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stride-dash-steps-'));
    cpSync(join(EXAMPLES, 'rollback'), join(dir, 'rollback'), { recursive: true });
    const db = join(dir, 'stride.db');
    const run = stride(['run', 'rollback/plan.yaml', '--db', db, '--no-progress'], dir);
    expect(await run.exited).toBe(1); // the last step fails on purpose; the rollback undoes
    const s = await serve(db);
    served.push(s);
    const runs = (await call(`${s.url}api/runs`)).body.runs as { id: string; parentId?: string }[];
    const plan = runs.find((r) => r.parentId === undefined)!;
    expect(runs.map((r) => r.id).sort()).toEqual([plan.id, `${plan.id}:rollback`].sort());
    const view = await call(`${s.url}api/runs/${plan.id}/steps`);
    expect(view.status).toBe(200);
    expect(
      view.body.steps.map((x: { id: string; level: number; state: string }) => [
        x.id,
        x.level,
        x.state,
      ]),
    ).toEqual([
      ['config', 0, 'succeeded'],
      ['quota', 0, 'succeeded'],
      ['welcome', 1, 'succeeded'],
      ['register', 2, 'error'],
    ]);
    const register = view.body.steps[3];
    expect(register.dependencies).toEqual(['config', 'quota', 'welcome']);
    expect(register.attempts).toBe(2);
    expect(register.error).toMatch(/^NETWORK_ERROR: .*connection refused/);
    // The saga: the two file writes undone (the transform has nothing to undo).
    expect(view.body.rollback).toMatchObject({ runId: `${plan.id}:rollback`, status: 'completed' });
    expect(
      view.body.rollback.compensations
        .map(
          (c: { stepId: string; state: string; tool: string }) =>
            `${c.stepId}:${c.tool}:${c.state}`,
        )
        .sort(),
    ).toEqual(['config:file.write:succeeded', 'quota:file.write:succeeded']);
    // A run without a rollback says so; an unknown run is a 404.
    expect((await call(`${s.url}api/runs/${plan.id}:rollback/steps`)).body.rollback).toBeNull();
    expect((await call(`${s.url}api/runs/ghost/steps`)).status).toBe(404);
    expect(await stop(s)).toBe(0);
  }, 120_000);

  test('--redis: workers alive and jobs of the queue, 404 without it, unreachable named without the password', async () => {
    const p = planOnMock('features-workers', mock.baseUrl, KEY, 2);
    const seed = stride(['run', p.plan, '--db', p.db, '--run-id', 'W', '--no-progress'], p.dir);
    const redis = await startRedis(); // while the seed run runs
    expect(await seed.exited).toBe(0);
    try {
      const plain = await serve(p.db);
      served.push(plain);
      expect(await call(`${plain.url}api/workers`)).toMatchObject({
        status: 404,
        body: { error: { code: 'NO_QUEUE' } },
      });
      expect(await stop(plain)).toBe(0);

      const s = await serve(p.db, ['--redis', redis.url, '--queue', 'dash']);
      served.push(s);
      const api = `${s.url}api/workers`;
      const empty = await call(api);
      expect(empty.body).toMatchObject({
        queue: 'dash',
        reachable: true,
        workers: [],
        jobs: { waiting: 0, active: 0 },
      });
      const worker = stride(['worker', '--redis', redis.url, '--queue', 'dash'], p.dir);
      let seen = empty.body;
      await until(
        'the worker to be listed',
        async () => {
          seen = (await call(api)).body;
          return seen.workers?.length > 0;
        },
        worker,
      );
      expect(seen.workers[0].addr).toMatch(/^127\.0\.0\.1:\d+$/);
      // A worker of another queue is not this queue's.
      expect((await call(api)).body.queue).toBe('dash');
      worker.kill('SIGINT');
      await worker.exited;
      await until(
        'the worker to be gone',
        async () => (await call(api)).body.workers?.length === 0,
      );

      await redis.stop();
      const down = await call(api);
      expect(down.status).toBe(200);
      expect(down.body).toMatchObject({ queue: 'dash', reachable: false });
      expect(down.body.message).toMatch(/^Redis unreachable/);
      expect(await stop(s)).toBe(0);
      // A password in the URL is never in an answer.
      const withPassword = `redis://stride:sekret-pass-1234@127.0.0.1:${redis.port}`;
      const s2 = await serve(p.db, ['--redis', withPassword]);
      served.push(s2);
      const down2 = await call(`${s2.url}api/workers`);
      expect(down2.body).toMatchObject({ queue: 'stride', reachable: false });
      expect(JSON.stringify(down2.body)).not.toContain('sekret-pass-1234');
      expect(s2.child.stdout() + s2.child.stderr()).not.toContain('sekret-pass-1234');
      expect(await stop(s2)).toBe(0);

      // --queue alone is bad input: exit 2, naming the flag.
      const bad = stride(['serve', '--db', p.db, '--port', '0', '--queue', 'dash'], p.dir);
      expect(await bad.exited).toBe(2);
      expect(bad.stderr()).toContain('--queue');
    } finally {
      await redis.stop();
    }
  }, 180_000);
});
