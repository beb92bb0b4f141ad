/**
 * The HTTP layer every network target shares: one undici Agent per target (a connection pool per
 * origin, sized to the run's concurrency), error mapping from statuses to the engine's catalogue,
 * and secret redaction. No retries here: the engine owns the only retry layer.
 */

import type { Agent, Dispatcher } from 'undici';
import {
  type AttemptContext,
  HttpError,
  InvalidOptionError,
  NonRetryableError,
  QuotaExceededError,
  RateLimitedError,
  StrideError,
  type StrideErrorOptions,
} from '../../core/index.js';
import {
  type HeaderBag,
  parseRateLimitHeaders,
  type RateLimitInfo,
  retryAfterFor429,
} from './ratelimit.js';
import { agentConstructor } from './undici-agent.js';

/** Options of the connection pool a network target creates for itself. */
export interface TransportOptions {
  /**
   * Connections per origin. `createTarget` sets it to the run's concurrency, so the pool never
   * queues a request the engine already let through. @default unlimited
   */
  readonly connections?: number;
  /** Use this undici dispatcher instead of creating one (the target then never closes it). */
  readonly dispatcher?: Dispatcher;
  /** Milliseconds to wait for response headers (0 disables). @default 300_000 */
  readonly headersTimeoutMs?: number;
  /** Milliseconds of silence allowed between body chunks (0 disables). @default 300_000 */
  readonly bodyTimeoutMs?: number;
}

/** The request shape the targets use: an origin, a path, and a body already serialised. */
export interface OutgoingRequest {
  readonly origin: string;
  readonly path: string;
  readonly method: Dispatcher.HttpMethod;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly signal: AbortSignal;
}

/** Owns (or borrows) the undici dispatcher of one target. */
export class Transport {
  readonly dispatcher: Dispatcher;
  private readonly owned: boolean;
  private closed = false;

  constructor(options: TransportOptions = {}) {
    if (options.connections !== undefined) {
      const c = options.connections;
      if (!Number.isInteger(c) || c < 1)
        throw new InvalidOptionError('connections', c, 'an integer >= 1');
    }
    if (options.dispatcher !== undefined) {
      this.dispatcher = options.dispatcher;
      this.owned = false;
      return;
    }
    const agentOptions: Agent.Options = {
      pipelining: 1,
      keepAliveTimeout: 10_000,
      headersTimeout: options.headersTimeoutMs ?? 300_000,
      bodyTimeout: options.bodyTimeoutMs ?? 300_000,
    };
    if (options.connections !== undefined) agentOptions.connections = options.connections;
    this.dispatcher = new (agentConstructor())(agentOptions);
    this.owned = true;
  }

  request(req: OutgoingRequest): Promise<Dispatcher.ResponseData> {
    const opts: Dispatcher.RequestOptions = {
      origin: req.origin,
      path: req.path,
      method: req.method,
      headers: req.headers,
      signal: req.signal,
    };
    if (req.body !== undefined) opts.body = req.body;
    return this.dispatcher.request(opts);
  }

  /** Closes the pool once in-flight requests finish. Idempotent; a borrowed dispatcher is left open. */
  async close(): Promise<void> {
    if (!this.owned || this.closed) return;
    this.closed = true;
    await this.dispatcher.close();
  }

  /** Closes every socket now, failing in-flight requests. */
  async destroy(): Promise<void> {
    if (!this.owned) return;
    this.closed = true;
    await this.dispatcher.destroy();
  }
}

/**
 * Replaces every occurrence of a secret with `[redacted]`. Applied to every response text before
 * it is parsed, and to every error message, so an upstream that echoes a key cannot leak it into
 * results, journals or logs.
 */
export class Redactor {
  // A private field: JSON.stringify and util.inspect never show it.
  readonly #secrets: string[];

  constructor(secrets: Iterable<string | undefined>) {
    const list: string[] = [];
    for (const s of secrets) {
      // Very short values would redact ordinary text; keys are never that short.
      if (typeof s === 'string' && s.length >= 6 && !list.includes(s)) list.push(s);
    }
    // Longer first, so a secret that contains another is replaced whole.
    this.#secrets = list.sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.#secrets.length > 0;
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
    return out;
  }
}

/** A base URL without credentials, query or fragment, and without a trailing slash. */
export interface BaseUrl {
  readonly origin: string;
  /** Path prefix without a trailing slash ('' for the root). */
  readonly path: string;
  /** `origin + path`: safe to show and to use in a rate key. */
  readonly display: string;
}

/** Parses a base URL; the message on failure never shows the value (it may hold a secret). */
export function parseBaseUrl(raw: unknown, field: string): BaseUrl {
  let url: URL;
  try {
    if (typeof raw !== 'string') throw new TypeError('not a string');
    url = new URL(raw);
  } catch {
    throw new InvalidOptionError(
      field,
      typeof raw === 'string' ? '(unparsable URL)' : raw,
      'an absolute http(s) URL',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidOptionError(field, url.protocol, 'an http: or https: URL');
  const path = url.pathname.replace(/\/+$/, '');
  return { origin: url.origin, path, display: `${url.origin}${path}` };
}

/** Reads a response body as text and redacts it. */
export async function readText(
  body: Dispatcher.ResponseData['body'],
  redactor: Redactor,
): Promise<string> {
  const text = await body.text();
  return redactor.active ? redactor.redact(text) : text;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The upstream error code and message from a JSON error body: Dify's `{code, message, status}`,
 * OpenAI's `{error: {message, type, code}}`, or a plain `{message}` / `{error: "..."}`.
 */
export function upstreamError(text: string): { code?: string; message?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const snippet = text.trim().slice(0, 200);
    return snippet === '' ? {} : { message: snippet };
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const o = parsed as Record<string, unknown>;
  const err = o.error;
  if (typeof err === 'object' && err !== null) {
    const e = err as Record<string, unknown>;
    const out: { code?: string; message?: string } = {};
    const code = str(e.code) ?? str(e.type);
    const message = str(e.message);
    if (code !== undefined) out.code = code;
    if (message !== undefined) out.message = message;
    return out;
  }
  const out: { code?: string; message?: string } = {};
  const code = str(o.code);
  const message = str(o.message) ?? str(err);
  if (code !== undefined) out.code = code;
  if (message !== undefined) out.message = message;
  return out;
}

/** Upstream codes of a 429 that means a spent quota, not a burst: OpenAI's. */
export const OPENAI_QUOTA_CODES: ReadonlySet<string> = new Set(['insufficient_quota']);

/**
 * The engine error for a non-2xx response: 429 is a RateLimitedError (retried, cools the bucket,
 * with the Retry-After or reset the headers give), or a QuotaExceededError (not retried) when
 * its upstream code is one of `quotaCodes`; 401/403 an HttpError with code AUTH_ERROR; other
 * statuses an HttpError (5xx and 408 retried, other 4xx permanent).
 */
export function errorFromResponse(
  service: string,
  status: number,
  headers: HeaderBag,
  bodyText: string,
  redactor: Redactor,
  limits: RateLimitInfo | undefined = parseRateLimitHeaders(headers),
  quotaCodes: ReadonlySet<string> = OPENAI_QUOTA_CODES,
): StrideError {
  const { code, message } = upstreamError(bodyText);
  const text = redactor.redact(
    `${service} answered HTTP ${status}${code === undefined ? '' : ` ${code}`}${message === undefined ? '' : `: ${message}`}`,
  );
  const options: StrideErrorOptions = {};
  if (status === 429) {
    // A spent quota is not a burst: retrying cannot succeed until the quota resets or the plan
    // is upgraded, so one request is all it costs.
    if (code !== undefined && quotaCodes.has(code)) return new QuotaExceededError(text);
    const wait = retryAfterFor429(limits);
    if (wait !== undefined) options.retryAfterMs = wait;
    return new RateLimitedError(text, options);
  }
  if (limits?.retryAfterMs !== undefined) options.retryAfterMs = limits.retryAfterMs;
  // Redirects are not followed: a 3xx means the configured URL is wrong, which no retry fixes.
  if (status < 400) options.retryable = false;
  return new HttpError(status, text, options);
}

/** An error raised inside an open stream (HTTP was already 200): same mapping by its status. */
export function streamError(
  service: string,
  status: number | undefined,
  code: string | undefined,
  message: string | undefined,
  redactor: Redactor,
): StrideError {
  const s = status !== undefined && status >= 400 && status < 600 ? status : 500;
  const text = redactor.redact(
    `${service} stream error${code === undefined ? '' : ` ${code}`} (${s})${message === undefined ? '' : `: ${message}`}`,
  );
  return s === 429 ? new RateLimitedError(text) : new HttpError(s, text);
}

/** A stream that ended (or broke) before its final event: transient, retried. */
export function incompleteStream(service: string, detail: string): StrideError {
  return new StrideError('NETWORK_ERROR', `${service} stream ended early: ${detail}`, {
    retryable: true,
  });
}

const CONFIG_ERROR_CODES = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'ERR_INVALID_URL',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
]);

/**
 * Maps what the transport threw: an abort rethrows the attempt's own reason (the engine's
 * TimeoutError, CancelledError or PausedError), a bad request option is permanent, anything
 * else is a retryable network error. Messages never include headers, so never a key.
 */
export function transportError(
  service: string,
  err: unknown,
  signal: AbortSignal,
  redactor: Redactor,
): unknown {
  if (signal.aborted) return signal.reason;
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = redactor.redact(typeof e?.message === 'string' ? e.message : String(err));
  if (code !== undefined && CONFIG_ERROR_CODES.has(code)) {
    return new NonRetryableError(`${service} request is invalid: ${message} (${code})`, {
      cause: err,
    });
  }
  return new StrideError(
    'NETWORK_ERROR',
    `${service} request failed: ${message}${code === undefined ? '' : ` (${code})`}`,
    { cause: err, retryable: true },
  );
}

/** A hook that receives the rate-limit headers of every response. */
export type RateLimitListener = (info: RateLimitInfo, ctx: AttemptContext) => void;

/**
 * Passes parsed rate-limit headers on: to `ctx.reportLimits` when the engine offers it (the
 * proposed core hook), and to the target's own `onRateLimits` option.
 */
export function publishLimits(
  ctx: AttemptContext,
  info: RateLimitInfo | undefined,
  listener: RateLimitListener | undefined,
): void {
  if (info === undefined) return;
  const report = (ctx as { reportLimits?: unknown }).reportLimits;
  if (typeof report === 'function') report.call(ctx, info);
  listener?.(info, ctx);
}

/** Parses a number that may arrive as a JSON number or a decimal string (Dify's prices). */
export function num(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** True for a plain JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Copies `source` without its undefined fields (exactOptionalPropertyTypes-friendly). */
export function compact<T extends object>(source: { [K in keyof T]: T[K] | undefined }): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined) out[k] = v;
  return out as T;
}
