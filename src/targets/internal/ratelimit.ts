/**
 * Rate-limit headers, parsed once for every target: Retry-After (seconds or an HTTP date),
 * `retry-after-ms`, OpenAI's `x-ratelimit-*-requests|tokens` (resets as durations like `6m0s`),
 * the generic `x-ratelimit-*` and the IETF draft `ratelimit-*` (resets in seconds or as epoch
 * seconds, told apart by magnitude).
 */

/** What a response said about the caller's remaining budget. Every field is optional. */
export interface RateLimitInfo {
  /** Requests allowed per window. */
  limitRequests?: number;
  /** Requests left in the current window. */
  remainingRequests?: number;
  /** Milliseconds until the request budget is replenished. */
  resetRequestsMs?: number;
  /** Tokens allowed per window. */
  limitTokens?: number;
  /** Tokens left in the current window. */
  remainingTokens?: number;
  /** Milliseconds until the token budget is replenished. */
  resetTokensMs?: number;
  /** Milliseconds the server asked us to wait (Retry-After / retry-after-ms). */
  retryAfterMs?: number;
}

/** Headers as undici gives them: lower-case names, a string or a list of strings. */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : v;
}

function count(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw.trim());
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const DURATION = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;

/**
 * Parses OpenAI-style durations (`1s`, `6m0s`, `20ms`, `1h2m3.5s`) and bare numbers (seconds).
 * Returns milliseconds, or undefined when the value is not a duration.
 */
export function parseResetDuration(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(DURATION)) {
    const value = Number(m[1]);
    const unit = m[2];
    total +=
      unit === 'ms'
        ? value
        : unit === 's'
          ? value * 1000
          : unit === 'm'
            ? value * 60_000
            : value * 3_600_000;
    consumed += m[0].length;
  }
  return consumed === s.length && consumed > 0 ? total : undefined;
}

/**
 * Parses a Retry-After value: delay seconds, or an HTTP date (relative to `nowMs`). Returns
 * milliseconds (never negative), or undefined.
 */
export function parseRetryAfter(raw: string | undefined, nowMs = Date.now()): number | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const date = Date.parse(s);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** A reset given in seconds: a delta, or epoch seconds when it is too large to be one. */
function resetSeconds(raw: string | undefined, nowMs: number): number | undefined {
  const n = count(raw);
  if (n === undefined) return undefined;
  // Anything beyond a year of seconds is an epoch timestamp (seconds or milliseconds).
  if (n > 365 * 86_400) {
    const epochMs = n > 1e12 ? n : n * 1000;
    return Math.max(0, epochMs - nowMs);
  }
  return n * 1000;
}

/** The response has a header `parseRateLimitHeaders` reads. */
function mayLimit(headers: HeaderBag): boolean {
  for (const name in headers) {
    if (name.startsWith('retry-after') || name.includes('ratelimit')) return true;
  }
  return false;
}

/**
 * Reads every rate-limit header a response carries. Returns undefined if there is none, so a
 * target that talks to a server without such headers pays nothing.
 */
export function parseRateLimitHeaders(
  headers: HeaderBag,
  nowMs = Date.now(),
): RateLimitInfo | undefined {
  // Every name read below contains `ratelimit` or starts with `retry-after`: one pass over the
  // response's few names skips the ~20 lookups when there is none (most responses; they were
  // ~2% of a CLI run's CPU against the mock, bench/cpu-per-case.mjs).
  if (!mayLimit(headers)) return undefined;
  const info: RateLimitInfo = {};
  const set = <K extends keyof RateLimitInfo>(key: K, value: number | undefined): void => {
    if (value !== undefined && info[key] === undefined) info[key] = value;
  };
  const retryMs = count(header(headers, 'retry-after-ms'));
  set('retryAfterMs', retryMs ?? parseRetryAfter(header(headers, 'retry-after'), nowMs));

  // OpenAI (and the many servers that copy it).
  set('limitRequests', count(header(headers, 'x-ratelimit-limit-requests')));
  set('remainingRequests', count(header(headers, 'x-ratelimit-remaining-requests')));
  set('resetRequestsMs', parseResetDuration(header(headers, 'x-ratelimit-reset-requests')));
  set('limitTokens', count(header(headers, 'x-ratelimit-limit-tokens')));
  set('remainingTokens', count(header(headers, 'x-ratelimit-remaining-tokens')));
  set('resetTokensMs', parseResetDuration(header(headers, 'x-ratelimit-reset-tokens')));

  // Generic and IETF draft headers count requests.
  for (const prefix of ['x-ratelimit-', 'ratelimit-']) {
    set('limitRequests', count(header(headers, `${prefix}limit`)));
    set('remainingRequests', count(header(headers, `${prefix}remaining`)));
    set('resetRequestsMs', resetSeconds(header(headers, `${prefix}reset`), nowMs));
  }
  return Object.keys(info).length === 0 ? undefined : info;
}

/**
 * The wait a 429 asks for: Retry-After first, else the reset of whichever budget is exhausted.
 */
export function retryAfterFor429(info: RateLimitInfo | undefined): number | undefined {
  if (info === undefined) return undefined;
  if (info.retryAfterMs !== undefined) return info.retryAfterMs;
  const waits: number[] = [];
  if (info.remainingRequests === 0 && info.resetRequestsMs !== undefined)
    waits.push(info.resetRequestsMs);
  if (info.remainingTokens === 0 && info.resetTokensMs !== undefined)
    waits.push(info.resetTokensMs);
  return waits.length === 0 ? undefined : Math.max(...waits);
}
