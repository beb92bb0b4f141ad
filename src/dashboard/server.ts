/**
 * `stride serve`: a local web app over the journal (docs/dashboard.md). hono routes, served by
 * its Node adapter; pages rendered in the browser from the JSON API; a push per run by
 * server-sent events. See docs/architecture.md "The dashboard" for why this stack.
 */

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import type { Store } from '../store/port.js';
import { apiRoutes, type QueueReader } from './api.js';
import { asset, PAGE_HEADERS, SHELL } from './assets.js';
import { guard, isLoopback } from './security.js';

/** Options of `createDashboard`. */
export interface DashboardOptions {
  /** The journal to show (the dashboard reads it and writes only control requests). */
  readonly store: Store;
  /** Requests must carry it (`Authorization: Bearer`, or the cookie set by `?token=`). */
  readonly token?: string;
  /** The server listens on loopback only: requests naming another host are refused. @default true */
  readonly loopback?: boolean;
  /** Refuse pause, resume and cancel (403). @default false */
  readonly readOnly?: boolean;
  /** How often an event stream looks at the journal, ms. @default 250 */
  readonly pollMs?: number;
  /**
   * The distributed queue's workers and jobs (`QueueWatch` of stride/distributed, given with
   * `stride serve --redis`): `GET /api/workers` and the run page's workers view. Absent: 404.
   */
  readonly queue?: QueueReader;
}

/**
 * The dashboard as a hono app (no socket): test it with `app.request(...)`, or serve it with
 * `startDashboard`.
 *
 * @example
 * ```ts
 * const app = createDashboard({ store: new SqliteStore({ path: '.stride/stride.db' }) });
 * const res = await app.request('/api/runs', { headers: { host: '127.0.0.1' } });
 * console.log((await res.json()).runs.length);
 * ```
 */
export function createDashboard(options: DashboardOptions): Hono {
  const app = new Hono();
  app.use(
    '*',
    guard({
      token: options.token,
      loopback: options.loopback ?? true,
      readOnly: options.readOnly ?? false,
    }),
  );
  app.route(
    '/api',
    apiRoutes({
      store: options.store,
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      ...(options.queue === undefined ? {} : { queue: options.queue }),
    }),
  );
  app.get('/assets/:name', async (c) => {
    const a = await asset(c.req.param('name'));
    if (a === undefined) return c.text('not found', 404);
    return c.body(a.body, 200, { 'content-type': a.type, 'cache-control': 'no-cache' });
  });
  const page = (c: Context) => c.html(SHELL, 200, PAGE_HEADERS);
  app.get('/', page);
  app.get('/runs/:id', page);
  app.get('/compare', page);
  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.notFound((c) => c.text('not found', 404));
  return app;
}

/** Options of `startDashboard`. */
export interface ServeOptions extends Omit<DashboardOptions, 'loopback'> {
  /** The address to listen on. Anything but loopback needs a token. @default '127.0.0.1' */
  readonly host?: string;
  /** The port; 0 picks a free one. @default 0 */
  readonly port?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://HOST:PORT/` (the host as given; `0.0.0.0` is shown as it is). */
  readonly url: string;
  readonly port: number;
  /** The token requests need, or undefined on loopback without one. */
  readonly token: string | undefined;
  /** Whether the token was generated here (the caller should print it once). */
  readonly generatedToken: boolean;
  /** Stops listening and ends open event streams. */
  close(): Promise<void>;
}

/** A token of 128 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Serves the dashboard. On a host other than loopback a token is required: the one given, or a
 * new one (`generatedToken`).
 *
 * @example
 * ```ts
 * const d = await startDashboard({ store, port: 0 });
 * console.log(d.url); // http://127.0.0.1:41237/
 * await d.close();
 * ```
 */
export async function startDashboard(options: ServeOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  const generatedToken = !loopback && options.token === undefined;
  const token = generatedToken ? newToken() : options.token;
  const app = createDashboard({
    ...options,
    loopback,
    ...(token === undefined ? {} : { token }),
  });
  const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
    (resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port: options.port ?? 0 }, (info) =>
        resolve({ server: s, port: (info as AddressInfo).port }),
      );
      s.once('error', reject);
    },
  );
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    token,
    generatedToken,
    close: () =>
      new Promise<void>((resolve) => {
        // Event streams never end by themselves: drop every connection, then the socket.
        const http = server as unknown as { closeAllConnections?: () => void };
        server.close(() => resolve());
        http.closeAllConnections?.();
      }),
  };
}
