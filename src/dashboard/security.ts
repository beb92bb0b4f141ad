/**
 * Who may talk to the dashboard.
 *
 * - **Host.** On loopback, a request's `Host` must name loopback (`127.0.0.1`, `localhost`,
 *   `[::1]`): a page of another site whose name was made to resolve to 127.0.0.1 (DNS
 *   rebinding) sends its own name and is refused, so it can neither read runs nor steer them.
 * - **Token.** With a token (required for any other host), every request must carry it: an
 *   `Authorization: Bearer` header (scripts), or the `stride_token` cookie the dashboard sets
 *   when a page is opened with `?token=` (browsers: EventSource cannot send headers). Compared in
 *   constant time. The token is never logged (the dashboard logs no request) and never journaled.
 * - **Origin.** A POST from a browser carries `Origin`; it must be the served origin, so another
 *   site cannot make a visitor's browser pause or cancel a run. A POST without `Origin` (curl, a
 *   script) is not a browser's cross-site request and passes on to the token check.
 */

import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/** The cookie a browser keeps the token in after opening a `?token=` link. */
export const TOKEN_COOKIE = 'stride_token';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Whether a listen address is loopback only (the default; no token needed). */
export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function hostName(hostHeader: string): string {
  // `[::1]:8080` keeps its brackets; `127.0.0.1:8080` loses the port.
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(hostHeader);
  return (m?.[1] ?? hostHeader).toLowerCase();
}

function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function deny(c: Context, status: 401 | 403, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status);
}

/** Options of `guard`. */
export interface GuardOptions {
  /** Requests must carry it; undefined: none needed (loopback only). */
  readonly token: string | undefined;
  /** The server listens on loopback only: `Host` must name loopback. */
  readonly loopback: boolean;
  /** Refuse every POST (403). */
  readonly readOnly: boolean;
}

/** The middleware that enforces the rules above, before any route. */
export function guard(options: GuardOptions): MiddlewareHandler {
  const { token, loopback, readOnly } = options;
  return async (c, next) => {
    const host = c.req.header('host') ?? '';
    if (loopback && !LOOPBACK_HOSTS.has(hostName(host)) && !isLoopback(hostName(host))) {
      return deny(c, 403, 'FORBIDDEN_HOST', `this dashboard answers on loopback only, not ${host}`);
    }
    if (token !== undefined) {
      const query = c.req.query('token');
      const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
      const cookie = getCookie(c, TOKEN_COOKIE);
      if (!(sameToken(bearer, token) || sameToken(cookie, token) || sameToken(query, token))) {
        return deny(
          c,
          401,
          'UNAUTHORIZED',
          'a token is required: open the URL with ?token=, or send Authorization: Bearer TOKEN',
        );
      }
      if (sameToken(query, token) && c.req.method === 'GET' && !c.req.path.startsWith('/api/')) {
        // A page opened with ?token=: keep it in a cookie and drop it from the address bar, so it
        // is neither in the history nor in a screenshot.
        setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/' });
        const url = new URL(c.req.url);
        url.searchParams.delete('token');
        return c.redirect(`${url.pathname}${url.search}`, 303);
      }
    }
    if (c.req.method === 'POST') {
      if (readOnly) {
        return deny(c, 403, 'READ_ONLY', 'this dashboard is read-only (stride serve --read-only)');
      }
      const origin = c.req.header('origin');
      if (origin !== undefined && origin !== `${new URL(c.req.url).protocol}//${host}`) {
        return deny(
          c,
          403,
          'FORBIDDEN_ORIGIN',
          `a control request from origin ${origin} is refused`,
        );
      }
    }
    await next();
  };
}
