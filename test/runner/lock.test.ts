/**
 * The run lock with real processes (issue #16, item 2): a `stride resume` while `stride run` is
 * alive, two resumes started together, and a `rerun` of a run being resumed. The second process
 * refuses at once (exit 2, naming the holder), sends nothing and writes nothing; a holder killed
 * with SIGKILL is taken over by the next resume.
 *
 * Case `h` hangs on its first two requests (the mock's `hang` fault, `__fault_times: 2`), so each
 * of the first two driving sessions stays alive on it until killed, and the third completes the
 * run. Nothing here races a timer: every wait is for an event (a row in the file, a request at
 * the mock, a process exit) with a deadline only as a guard.
 */

import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type Child, spawnStride } from '../cli/helpers.js';
import { storedTotal, until, writeDifyPlan } from './child-run.js';

const KEY = 'app-lock-test';
let mock: MockServer;
let dir: string;
let plan: string;
const children: Child[] = [];

beforeAll(async () => {
  mock = await startMock({ apiKeys: [KEY], latencyMs: 1 });
  dir = mkdtempSync(join(tmpdir(), 'stride-lock-'));
  const line = (id: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      id,
      inputs: { query: `question ${id}`, __case: id, ...extra },
      expected: { field: 'text', contains: 'question' },
    });
  writeFileSync(
    join(dir, 'cases.jsonl'),
    `${[line('h', { __fault: 'hang', __fault_times: 2 }), line('a'), line('b'), line('c')].join('\n')}\n`,
  );
  // No timeout: case h hangs until its session is killed.
  plan = writeDifyPlan(dir, {
    workflowId: 'lock-test',
    baseUrl: mock.baseUrl,
    apiKey: KEY,
    concurrency: 4,
  });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await mock.close();
});

const db = () => join(dir, 'stride.db');

function stride(...args: string[]): Child {
  const child = spawnStride([...args, '--db', db(), '--no-progress'], { cwd: dir, env: {} });
  children.push(child);
  return child;
}

/** Reads the file as another process would. */
function query<T>(sql: string, ...params: unknown[]): T | undefined {
  const conn = new Database(db(), { readonly: true, fileMustExist: true });
  try {
    return conn.prepare(sql).get(...params) as T | undefined;
  } finally {
    conn.close();
  }
}

const holderPid = () =>
  query<{ pid: number }>("SELECT pid FROM run_locks WHERE run_id = 'L'")?.pid ?? undefined;
const hangs = () => mock.stats().byCase.h ?? 0;

/** What must not change when a session is refused. */
function footprint() {
  return {
    requests: mock.stats().requests,
    run: query<Record<string, unknown>>(
      'SELECT status, resumes, succeeded, attempts FROM runs WHERE id = ?',
      'L',
    ),
    journal: query<{ n: number }>('SELECT count(*) AS n FROM journal')?.n,
    attempts: query<{ n: number }>('SELECT count(*) AS n FROM attempts')?.n,
    results: query<{ n: number }>('SELECT count(*) AS n FROM results')?.n,
    // Everything of the lock but the heartbeat: the live holder beats on its own timer, so under
    // load a refusal that takes longer than one beat would see it move through no fault of its
    // own (seen at load 20). Who holds it, with which token, since when, must not change.
    lock: query<Record<string, unknown>>(
      'SELECT run_id, token, pid, host, start_ticks, since FROM run_locks',
    ),
  };
}

describe('one process drives a run', () => {
  test('resume while run is alive, two resumes at once, rerun of a resumed run: the second refuses', async () => {
    // 1. `stride run` holds the run while case h hangs.
    const run = stride('run', plan, '--run-id', 'L', '--out', join(dir, 'out-run'));
    await until(
      'the run to store a, b, c and hang on h',
      () => {
        return storedTotal(db(), 'L') === 3 && hangs() === 1 && holderPid() === run.pid;
      },
      run,
    );

    // 2. A resume while it is alive: refused, nothing sent, nothing written.
    const before = footprint();
    const early = stride('resume', 'L', '--out', join(dir, 'out-early'));
    expect(await early.exited).toBe(2);
    expect(early.stderr()).toMatch(
      new RegExp(`run "L" is being driven by process ${run.pid} on \\S+ since \\d{4}-`),
    );
    expect(footprint()).toEqual(before);
    expect(existsSync(join(dir, 'out-early', 'L'))).toBe(false); // not even the run's folder

    // 3. The holder dies without a word; two resumes start together: exactly one drives.
    run.kill('SIGKILL');
    await run.exited;
    const first = stride('resume', 'L', '--out', join(dir, 'out-1'));
    const second = stride('resume', 'L', '--out', join(dir, 'out-2'));
    const loser = await Promise.race([
      first.exited.then(() => first),
      second.exited.then(() => second),
    ]);
    const winner = loser === first ? second : first;
    expect(await loser.exited).toBe(2);
    expect(loser.stderr()).toContain(`run "L" is being driven by process ${winner.pid}`);
    await until(
      'the winner to resend h',
      () => hangs() === 2 && holderPid() === winner.pid,
      winner,
    );
    expect(winner.pid).toBe(holderPid());

    // 4. A rerun of the run being resumed: refused too.
    const during = footprint();
    const rerun = stride('rerun', 'L', '--errors', '--out', join(dir, 'out-rerun'));
    expect(await rerun.exited).toBe(2);
    expect(rerun.stderr()).toContain(`run "L" is being driven by process ${winner.pid}`);
    expect(footprint()).toEqual(during);

    // Every case reached the mock once per driving session at most: h once per session,
    // the stored verdicts never again.
    expect(mock.stats().byCase).toMatchObject({ h: 2, a: 1, b: 1, c: 1 });

    // 5. The winner is killed too; the next resume takes the dead lock over and finishes.
    winner.kill('SIGKILL');
    await winner.exited;
    const last = stride('resume', 'L', '--out', join(dir, 'out-last'));
    expect(await last.exited).toBe(0);
    expect(mock.stats().byCase).toMatchObject({ h: 3, a: 1, b: 1, c: 1 });
    expect(query('SELECT status, resumes, succeeded FROM runs WHERE id = ?', 'L')).toEqual({
      status: 'completed',
      resumes: 2,
      succeeded: 4,
    });
    // One verdict per case, the two killed sessions' h attempts recorded as maybe sent.
    expect(query<{ n: number }>('SELECT count(*) AS n FROM results')?.n).toBe(4);
    expect(
      query<{ n: number }>("SELECT count(*) AS n FROM attempts WHERE state = 'maybe_sent'")?.n,
    ).toBe(2);
    expect(holderPid()).toBeUndefined();
  }, 180_000);
});
