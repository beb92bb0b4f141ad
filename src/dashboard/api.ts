/**
 * The dashboard's JSON API (docs/dashboard.md): what the pages use, stable for scripts. Every
 * read goes through the Store port and `compareRuns`; every control request through
 * `Store.requestControl`, which the session driving the run takes within its poll (250 ms).
 */

import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { compareRuns } from '../compare/compare.js';
import { isStrideError } from '../core/errors.js';
import { TERMINAL_STATUSES, type TerminalStatus } from '../core/model.js';
import type { QueueStatus } from '../distributed/status.js';
import { RunHistory } from '../runner/history.js';
import type { ControlAction } from '../store/live.js';
import type { Store } from '../store/port.js';
import { stepsView } from './steps.js';
import { listRunRows, type RunView, runView } from './view.js';

/** What the workers view reads: `QueueWatch` (stride/distributed) or a stand-in. */
export interface QueueReader {
  status(): Promise<QueueStatus>;
}

/** Options of `apiRoutes`. */
export interface ApiOptions {
  readonly store: Store;
  /** The distributed queue (`stride serve --redis`). */
  readonly queue?: QueueReader;
  /** How often an event stream looks at the journal, ms. @default 250 */
  readonly pollMs?: number;
}

/** The largest case page. */
export const MAX_PAGE = 1000;

class BadRequest extends Error {}

function fail(c: Context, status: 400 | 404 | 409 | 500, code: string, message: string) {
  return c.json({ error: { code, message } }, status);
}

function intParam(c: Context, name: string, fallback: number, max: number): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new BadRequest(`${name}=${JSON.stringify(raw)}: expected an integer from 0 to ${max}`);
  }
  return n;
}

/** A free-text filter (`dataset`, `tag`): absent or empty is no filter. */
function textParam(c: Context, name: string): string | undefined {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > 200) {
    throw new BadRequest(`${name}: ${raw.length} characters, expected at most 200`);
  }
  return raw;
}

function statusParam(c: Context): TerminalStatus[] | undefined {
  const raw = c.req.query('status');
  if (raw === undefined || raw === '') return undefined;
  const list = raw.split(',');
  for (const s of list) {
    if (!(TERMINAL_STATUSES as readonly string[]).includes(s)) {
      throw new BadRequest(
        `status=${JSON.stringify(s)}: expected one or more of ${TERMINAL_STATUSES.join(', ')}`,
      );
    }
  }
  return list as TerminalStatus[];
}

/** A run view without what changes by itself every tick: sent again only when this changed. */
function fingerprint(v: RunView): string {
  return JSON.stringify({ ...v, durationMs: 0 });
}

/** Who asked, for the control record: `dashboard 127.0.0.1`. */
function asker(c: Context): string {
  let address: string | undefined;
  try {
    address = getConnInfo(c).remote.address;
  } catch {
    address = undefined;
  }
  return `dashboard ${address ?? 'unknown address'}`;
}

/** The API's routes, mounted at `/api`. */
export function apiRoutes(options: ApiOptions): Hono {
  const { store } = options;
  const pollMs = options.pollMs ?? 250;
  const history = new RunHistory({ store });
  const api = new Hono();

  api.onError((err, c) => {
    if (err instanceof BadRequest) return fail(c, 400, 'INVALID_OPTION', err.message);
    if (isStrideError(err)) {
      const status =
        err.code === 'RUN_NOT_FOUND'
          ? 404
          : err.code === 'INVALID_OPTION' || err.code === 'NOTHING_TO_COMPARE'
            ? 400
            : 500;
      return fail(c, status, err.code, err.message);
    }
    return fail(c, 500, 'INTERNAL', err instanceof Error ? err.message : String(err));
  });

  api.get('/runs', async (c) => {
    const limit = c.req.query('limit');
    const runs = await listRunRows(store, {
      ...(c.req.query('plan') ? { plan: c.req.query('plan')! } : {}),
      ...(c.req.query('status') ? { status: c.req.query('status')! } : {}),
      ...(limit === undefined ? {} : { limit: intParam(c, 'limit', 0, 1_000_000) }),
    });
    return c.json({ runs });
  });

  api.get('/runs/:id', async (c) => {
    const view = await runView(store, c.req.param('id'));
    if (view === undefined) return notFound(c, c.req.param('id'));
    return c.json(view);
  });

  api.get('/runs/:id/cases', async (c) => {
    const id = c.req.param('id');
    const status = statusParam(c);
    const offset = intParam(c, 'offset', 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(c, 'limit', 100, MAX_PAGE);
    const q = c.req.query('q') ?? '';
    const dataset = textParam(c, 'dataset');
    const tag = textParam(c, 'tag');
    const run = await store.getRun(id);
    if (run === undefined) return notFound(c, id);
    const cases = [];
    for await (const r of store.results(id, {
      offset,
      limit,
      ...(status === undefined ? {} : { status }),
      ...(q === '' ? {} : { idContains: q }),
      ...(dataset === undefined ? {} : { dataset }),
      ...(tag === undefined ? {} : { tag }),
    })) {
      cases.push(r);
    }
    // Matching results in all, when the run's counts tell it; unknown (null) with a search or a
    // dataset or tag filter (counting those would read every result).
    const total =
      q !== '' || dataset !== undefined || tag !== undefined
        ? null
        : (status ?? TERMINAL_STATUSES).reduce((n, s) => n + run.counts[s], 0);
    return c.json({ total, offset, limit, cases });
  });

  api.get('/runs/:id/cases/:case', async (c) => {
    const id = c.req.param('id');
    const caseId = c.req.param('case');
    if ((await store.getRun(id)) === undefined) return notFound(c, id);
    const results = [];
    for await (const r of store.results(id, { idContains: caseId })) {
      if (r.id === caseId) results.push(r);
    }
    const attempts = [];
    for await (const a of store.attempts(id, caseId)) attempts.push(a);
    if (results.length === 0 && attempts.length === 0) {
      return fail(
        c,
        404,
        'CASE_NOT_FOUND',
        `run ${JSON.stringify(id)} has no case ${JSON.stringify(caseId)}`,
      );
    }
    return c.json({ id: caseId, results, attempts });
  });

  api.get('/runs/:id/errors', async (c) => {
    const id = c.req.param('id');
    if ((await store.getRun(id)) === undefined) return notFound(c, id);
    const byCode = await store.errorCodes(id);
    return c.json({ byCode });
  });

  api.get('/runs/:id/steps', async (c) => {
    const view = await stepsView(store, c.req.param('id'));
    if (view === undefined) return notFound(c, c.req.param('id'));
    return c.json(view);
  });

  api.get('/runs/:id/events', async (c) => {
    const id = c.req.param('id');
    if ((await store.getRun(id)) === undefined) return notFound(c, id);
    return streamSSE(c, async (stream) => {
      let last = '';
      let quietSince = Date.now();
      while (!stream.aborted && !stream.closed) {
        const view = await runView(store, id);
        if (view === undefined) break; // pruned while watched
        const print = fingerprint(view);
        if (print !== last) {
          last = print;
          quietSince = Date.now();
          await stream.writeSSE({ event: 'run', data: JSON.stringify(view) });
        } else if (Date.now() - quietSince > 15_000) {
          // A comment now and then: proxies and browsers keep a quiet stream open.
          quietSince = Date.now();
          await stream.write(': keep-alive\n\n');
        }
        await stream.sleep(view.status === 'running' ? pollMs : pollMs * 4);
      }
    });
  });

  for (const action of ['pause', 'resume', 'cancel'] as const satisfies ControlAction[]) {
    api.post(`/runs/:id/${action}`, async (c) => {
      const id = c.req.param('id');
      const run = await store.getRun(id);
      if (run === undefined) return notFound(c, id);
      const driver = run.status === 'running' ? await store.runLock(id) : undefined;
      if (driver === undefined) {
        return fail(
          c,
          409,
          'RUN_NOT_RUNNING',
          run.status === 'running'
            ? `run ${JSON.stringify(id)} is not driven by any live process (resume it with: stride resume ${id})`
            : `run ${JSON.stringify(id)} is ${run.status}, not running`,
        );
      }
      const request = await store.requestControl(id, action, asker(c));
      return c.json({ request }, 202);
    });
  }

  api.get('/workers', async (c) => {
    if (options.queue === undefined) {
      return fail(
        c,
        404,
        'NO_QUEUE',
        'this dashboard was started without --redis: it knows no distributed queue',
      );
    }
    return c.json(await options.queue.status());
  });

  api.get('/compare', async (c) => {
    const base = c.req.query('base');
    const head = c.req.query('head');
    if (!base || !head) throw new BadRequest('compare needs base= and head= (run ids)');
    const plan = c.req.query('plan');
    return c.json(await compareRuns(history, base, head, plan ? { plan } : {}));
  });

  api.all('*', (c) => fail(c, 404, 'NOT_FOUND', `no API route ${c.req.method} ${c.req.path}`));
  return api;
}

function notFound(c: Context, id: string) {
  return fail(c, 404, 'RUN_NOT_FOUND', `no run ${JSON.stringify(id)} in the journal`);
}
