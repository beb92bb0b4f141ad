/**
 * `stride serve` over real HTTP, with real processes: `stride run` drives a run against the mock
 * in one child, `stride serve` serves the same journal in another, and this process plays the
 * browser or a script. Pause stops new starts at the mock, resume continues, cancel ends the run
 * cancelled (exit 130); the event stream pushes rising counts without a new request; the token,
 * Origin, Host and --read-only rules hold.
 *
 * No assertion races a timer: "no new start while paused" holds however loaded the machine is
 * (the mock's request count equals the attempts the paused run recorded, and stays so); every
 * wait is for an answer of the API or an event at the mock, with a deadline only as a guard.
 */

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type Child, spawnStride } from '../cli/helpers.js';
import { until } from '../runner/child-run.js';
import { call, events, planOnMock, rawGet, type Served, serve, stop, tokenOf } from './helpers.js';

const KEY = 'app-dashboard-test';
const CASES = 2_000; // cancelled long before the end: room for a slow pause under load
let mock: MockServer;
/** Mocks started by a test for itself (closed after the file). */
const mocks: MockServer[] = [];
const children: Child[] = [];
const served: Served[] = [];

beforeAll(async () => {
  mock = await startMock({ apiKeys: [KEY], latencyMs: 10 });
});

afterAll(async () => {
  for (const s of served) s.child.kill('SIGINT');
  for (const c of children) c.kill('SIGKILL');
  await Promise.all([...children, ...served.map((s) => s.child)].map((c) => c.exited));
  await Promise.all([mock, ...mocks].map((m) => m.close()));
});

async function runChild(p: { dir: string; plan: string; db: string }, id: string): Promise<Child> {
  const child = spawnStride(
    ['run', p.plan, '--db', p.db, '--run-id', id, '--out', `${p.dir}/out-${id}`, '--no-progress'],
    { cwd: p.dir, env: {} },
  );
  children.push(child);
  return child;
}

// The tests run side by side (own folder, journal and served child each). The control test
// counts requests at its mock, so it has a mock of its own; the others only use theirs as a target.
describe.concurrent('stride serve: the API over HTTP against a run driven by another process', () => {
  test('events push rising counts; pause stops new starts at the mock, resume continues, cancel exits 130', async () => {
    const mock = await startMock({ apiKeys: [KEY], latencyMs: 10 });
    mocks.push(mock);
    const p = planOnMock('serve-control', mock.baseUrl, KEY, CASES, { concurrency: 2 });
    const run = await runChild(p, 'C');
    await until(
      'the run to be journaled',
      async () => {
        try {
          readFileSync(p.db);
          return true;
        } catch {
          return false;
        }
      },
      run,
    );
    const s = await serve(p.db);
    served.push(s);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const api = `${s.url}api/runs/C`;

    await until(
      'the run to be listed and driven',
      async () => {
        const r = await call(api);
        return r.status === 200 && r.body.driven === true && r.body.progress.done >= 20;
      },
      run,
    );
    const listed = await call(`${s.url}api/runs`);
    expect(listed.body.runs).toMatchObject([{ id: 'C', shownStatus: 'running', driven: true }]);

    // One stream, no new request: its done count rises while the run runs.
    const stream = events(`${api}/events`);
    const first = await stream.next();
    let later = first;
    while (later.progress.done <= first.progress.done) later = await stream.next();
    expect(later.id).toBe('C');
    expect(later.progress.done).toBeGreaterThan(first.progress.done);

    // A browser on another site cannot steer the run.
    const foreign = await call(`${api}/pause`, {
      method: 'POST',
      headers: { origin: 'http://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('FORBIDDEN_ORIGIN');

    const paused = await call(`${api}/pause`, {
      method: 'POST',
      headers: { origin: s.url.slice(0, -1) },
    });
    expect(paused.status).toBe(202);
    expect(paused.body.request).toMatchObject({ action: 'pause', by: 'dashboard 127.0.0.1' });
    let view = (await call(api)).body;
    await until(
      'the run to be paused (in-flight attempts settled)',
      async () => {
        view = (await call(api)).body;
        return view.shownStatus === 'paused';
      },
      run,
    );
    expect(view.live.state.holds).toMatchObject([{ reason: 'control', by: 'dashboard 127.0.0.1' }]);
    expect(view.control.at(-1)).toMatchObject({ action: 'pause', outcome: 'paused' });
    expect(view.live.state.inFlight).toBe(0);
    const requests = mock.stats().requests;
    // Every request the mock received is an attempt the paused run recorded: nothing started
    // after the pause settled, whatever the load.
    expect(view.live.state.counts.attempts).toBe(requests);
    // The stream says paused too, and who holds it.
    let pushed = await stream.next();
    while (pushed.shownStatus !== 'paused') pushed = await stream.next();
    expect(pushed.live.state.holds[0].by).toBe('dashboard 127.0.0.1');
    // Two more live writes of the paused child (it writes once a second from the loop that also
    // takes control requests): still nothing new at the mock.
    let writes = 0;
    let last = view.live.updatedAt;
    await until(
      'two more live writes of the paused run',
      async () => {
        const at = (await call(api)).body.live.updatedAt;
        if (at > last) {
          writes++;
          last = at;
        }
        return writes >= 2;
      },
      run,
    );
    expect(mock.stats().requests).toBe(requests);
    expect((await call(api)).body.progress.done).toBe(view.progress.done);

    const resumed = await call(`${api}/resume`, { method: 'POST' });
    expect(resumed.status).toBe(202);
    await until('new starts after resume', () => mock.stats().requests > requests + 10, run);

    const cancelled = await call(`${api}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(202);
    expect(await run.exited).toBe(130);
    await stream.close();
    const end = (await call(api)).body;
    expect(end).toMatchObject({ status: 'cancelled', shownStatus: 'cancelled', driven: false });
    expect(end.control.map((r: { outcome: string }) => r.outcome)).toEqual([
      'paused',
      'resumed',
      'cancelled',
    ]);

    // Not running any more: 409; unknown: 404.
    expect((await call(`${api}/resume`, { method: 'POST' })).status).toBe(409);
    const unknown = await call(`${s.url}api/runs/nope/pause`, { method: 'POST' });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'RUN_NOT_FOUND' } } });
    expect(await stop(s)).toBe(0);
  }, 180_000);

  test('cases come in pages by status; a page past the end is empty; bad parameters are 400', async () => {
    const p = planOnMock('serve-cases', mock.baseUrl, KEY, 30, {
      expect: 'question',
      output: (i) => (i % 3 === 0 ? '<script>alert(1)</script>' : undefined),
    });
    const run = await runChild(p, 'P');
    expect(await run.exited).toBe(1); // a third of the cases fail their assertion
    const s = await serve(p.db, ['--read-only']);
    served.push(s);
    expect(s.lines()).toContain('read-only: pause, resume and cancel are refused');
    const api = `${s.url}api/runs/P`;
    const failed = await call(`${api}/cases?status=failed&limit=4`);
    expect(failed.status).toBe(200);
    expect(failed.body.total).toBe(10);
    expect(failed.body.cases.map((c: { status: string }) => c.status)).toEqual(
      Array(4).fill('failed'),
    );
    const next = await call(`${api}/cases?status=failed&offset=8&limit=4`);
    expect(next.body.cases).toHaveLength(2);
    const all = await call(`${api}/cases?limit=1000`);
    expect(all.body.cases).toHaveLength(30);
    expect(new Set(all.body.cases.map((c: { id: string }) => c.id)).size).toBe(30);
    expect((await call(`${api}/cases?offset=99`)).body.cases).toEqual([]);
    expect((await call(`${api}/cases?q=k2`)).body).toMatchObject({ total: null });
    expect((await call(`${api}/cases?limit=5000`)).status).toBe(400);
    expect((await call(`${api}/cases?status=bogus`)).body.error.message).toContain(
      'status="bogus"',
    );
    // The API gives the output as data, as it is: the page renders it as text (browser test).
    const one = await call(`${api}/cases/k0`);
    expect(JSON.stringify(one.body.results[0].output)).toContain('<script>alert(1)</script>');
    expect(one.body.attempts).toHaveLength(1);
    expect((await call(`${api}/cases/ghost`)).status).toBe(404);
    expect((await call(`${api}/errors`)).body.byCode).toEqual({ TASK_FAILED: 10 });
    // --read-only: a finished run or not, control is refused before anything is asked.
    const refused = await call(`${api}/cancel`, { method: 'POST' });
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'READ_ONLY' } } });
    // DNS rebinding: a request naming another host is refused on loopback.
    expect(await rawGet(`${s.url}api/runs`, { host: 'evil.example' })).toBe(403);
    expect(await rawGet(`${s.url}api/runs`, { host: 'localhost:1' })).toBe(200);
    expect(await stop(s)).toBe(0);
  }, 180_000);

  test('off loopback a token is required (generated and printed once), 401 without it, never journaled', async () => {
    const p = planOnMock('serve-token', mock.baseUrl, KEY, 4);
    const run = await runChild(p, 'T');
    expect(await run.exited).toBe(0);
    const s = await serve(p.db, ['--host', '0.0.0.0']);
    served.push(s);
    expect(s.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    const token = await tokenOf(s);
    expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const local = s.url.replace('0.0.0.0', '127.0.0.1');
    for (const path of ['api/runs', 'api/runs/T', 'api/runs/T/events', '', 'runs/T']) {
      expect((await call(`${local}${path}`)).status, path).toBe(401);
    }
    expect(
      (await call(`${local}api/runs`, { headers: { authorization: 'Bearer wrong' } })).status,
    ).toBe(401);
    const ok = await call(`${local}api/runs`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(ok.body.runs).toHaveLength(1);
    // A page opened with ?token= keeps it in a cookie and leaves the address bar without it.
    const page = await fetch(`${local}runs/T?token=${token}`, { redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/runs/T');
    const cookie = page.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/stride_token=.*HttpOnly/i);
    const withCookie = await call(`${local}api/runs/T`, {
      headers: { cookie: cookie.split(';')[0]! },
    });
    expect(withCookie.status).toBe(200);
    // A control request with the token: asked (409: the run is over), and the token is in
    // neither the journal nor anything the server printed after its start.
    const asked = await call(`${local}api/runs/T/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(asked.status).toBe(409);
    expect(await stop(s)).toBe(0);
    expect(s.child.stderr()).not.toContain(token!);
    expect(s.child.stdout().split(token!).length - 1).toBe(2); // the one 'token:' line
    for (const f of [p.db, `${p.db}-wal`]) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(f);
      } catch {
        continue;
      }
      expect(bytes.includes(token!)).toBe(false);
    }
  }, 180_000);

  test('bad flags exit 2 naming the flag; a given short token is refused', async () => {
    const missing = spawnStride(['serve', '--db', '/nonexistent/stride.db'], {
      cwd: '/tmp',
      env: {},
    });
    children.push(missing);
    const p = planOnMock('serve-flags', mock.baseUrl, KEY, 1);
    const run = await runChild(p, 'F'); // beside the refused serve: it needs no journal
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toContain('invalid option --db: "/nonexistent/stride.db"');
    expect(await run.exited).toBe(0);
    const short = spawnStride(['serve', '--db', p.db, '--token', 'abc'], { cwd: p.dir, env: {} });
    children.push(short);
    expect(await short.exited).toBe(2);
    expect(short.stderr()).toContain('invalid option --token');
    expect(short.stderr()).not.toContain('abc');
  }, 120_000);
});
