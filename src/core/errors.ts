/**
 * The one error catalogue. Every error Stride throws or records carries a stable string `code`
 * (documented in docs/errors.md); users match on `code`, never on message text.
 *
 * Recognition never relies on `instanceof` alone: two copies of the package in one process
 * (a monorepo, a bundled plugin) would break it, as inngest-js #1241 showed. Every Stride error
 * carries a `Symbol.for` brand, and foreign errors are classified by `name`, `code`, `status`.
 */

const BRAND = Symbol.for('stride.error');

/** Stable error codes. Adding one means documenting it in docs/errors.md. */
export type ErrorCode =
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'PAUSED'
  | 'RATE_LIMITED'
  | 'QUOTA_EXCEEDED'
  | 'HTTP_ERROR'
  | 'NETWORK_ERROR'
  | 'AUTH_ERROR'
  | 'TASK_FAILED'
  | 'NON_RETRYABLE'
  | 'RETRYABLE'
  | 'ATTEMPTS_EXHAUSTED'
  | 'REDELIVERED'
  | 'GRADE_UNPARSABLE'
  | 'VALIDATION_ERROR'
  | 'INVALID_OPTION'
  | 'INVALID_STATE'
  | 'MISSING_ARGUMENT'
  | 'EMPTY_PLAN'
  | 'PLAN_INVALID'
  | 'PLAN_NOT_FOUND'
  | 'CASES_INVALID'
  | 'ENV_MISSING'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED'
  | 'STORE_VERSION'
  | 'STORE_IO'
  | 'REPORT_IO'
  | 'RUN_NOT_FOUND'
  | 'RUN_EXISTS'
  | 'RUN_LOCKED'
  | 'PLAN_CHANGED'
  | 'RESOURCE_EXHAUSTED'
  | 'NOTHING_TO_COMPARE'
  | 'TOOL_NOT_FOUND'
  | 'UNKNOWN_ERROR';

export interface StrideErrorOptions {
  cause?: unknown;
  /** Overrides the retry decision the code implies. */
  retryable?: boolean;
  /** Milliseconds the target asked us to wait (HTTP Retry-After, a reported cooldown). */
  retryAfterMs?: number;
  /** HTTP status, when the error came from an HTTP response. */
  status?: number;
}

/**
 * Base class of every Stride error.
 *
 * @example
 * ```ts
 * try { await run.result } catch (e) {
 *   if (isStrideError(e) && e.code === 'INVALID_OPTION') console.error(e.message);
 * }
 * ```
 */
export class StrideError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean | undefined;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, options: StrideErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** True for any Stride error, from this copy of the package or another one. */
export function isStrideError(value: unknown): value is StrideError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  );
}

/** An attempt ran longer than its timeout. Retryable. */
export class TimeoutError extends StrideError {
  constructor(message = 'attempt timed out', options: StrideErrorOptions = {}) {
    super('TIMEOUT', message, options);
  }
}

/** The run (or this task) was cancelled. Never retried; not a failure. */
export class CancelledError extends StrideError {
  constructor(message = 'cancelled', options: StrideErrorOptions = {}) {
    super('CANCELLED', message, { ...options, retryable: false });
  }
}

/** The attempt was aborted because the run was paused with `abortInFlight`; it is re-queued. */
export class PausedError extends StrideError {
  constructor(
    message = 'aborted by pause; the task is re-queued',
    options: StrideErrorOptions = {},
  ) {
    super('PAUSED', message, { ...options, retryable: false });
  }
}

/**
 * The task ran and its result was wrong (a business failure, a failed assertion). The task ends
 * `failed`, not `error`. Not retried unless `retryable: true` is given: retrying a wrong answer
 * costs money and rarely changes it.
 *
 * @example
 * ```ts
 * if (!answer.includes('refund')) throw new TaskFailedError('answer does not mention refund');
 * ```
 */
export class TaskFailedError extends StrideError {
  /** What the target answered, kept in the task's result although the verdict is "failed". */
  readonly output: unknown;

  constructor(message = 'task failed', options: StrideErrorOptions & { output?: unknown } = {}) {
    super('TASK_FAILED', message, options);
    this.output = options.output;
  }
}

/**
 * Throw this from a target to say "do not retry", like BullMQ's `UnrecoverableError`.
 * Recognised by its `code` and `name`, so a copy from another package version works too.
 */
export class NonRetryableError extends StrideError {
  constructor(message = 'non-retryable error', options: StrideErrorOptions = {}) {
    super('NON_RETRYABLE', message, { ...options, retryable: false });
  }
}

/** Throw this from a target to force a retry of an error that would otherwise be permanent. */
export class RetryableError extends StrideError {
  constructor(message = 'retryable error', options: StrideErrorOptions = {}) {
    super('RETRYABLE', message, { ...options, retryable: true });
  }
}

/** The target said "too many requests" (HTTP 429). Retried; cools the shared rate bucket. */
export class RateLimitedError extends StrideError {
  constructor(message = 'rate limited by the target', options: StrideErrorOptions = {}) {
    super('RATE_LIMITED', message, { status: 429, ...options });
  }
}

/**
 * The target's quota or billing limit is spent (OpenAI's `insufficient_quota`, Dify's
 * `rate_limit_error`). Not retried and does not cool the rate bucket: unlike a burst limit it
 * does not lift in seconds, so another request only costs time until the quota resets.
 */
export class QuotaExceededError extends StrideError {
  constructor(message = 'the quota of the target is spent', options: StrideErrorOptions = {}) {
    super('QUOTA_EXCEEDED', message, { status: 429, ...options, retryable: false });
  }
}

/** A non-2xx HTTP response. Retryable for 408, 429 and 5xx; permanent for other 4xx. */
export class HttpError extends StrideError {
  constructor(status: number, message: string, options: StrideErrorOptions = {}) {
    super(status === 401 || status === 403 ? 'AUTH_ERROR' : 'HTTP_ERROR', message, {
      ...options,
      status,
    });
  }
}

/** Input that can never succeed (bad request body, schema mismatch). Permanent. */
export class ValidationError extends StrideError {
  constructor(message: string, options: StrideErrorOptions = {}) {
    super('VALIDATION_ERROR', message, { ...options, retryable: false });
  }
}

/** An option given to a Stride constructor or method is invalid. Thrown synchronously. */
export class InvalidOptionError extends StrideError {
  constructor(field: string, value: unknown, expected: string) {
    super(
      'INVALID_OPTION',
      `invalid option ${field}: ${describeValue(value)} (expected ${expected})`,
      {
        retryable: false,
      },
    );
  }
}

/** Renders a bad value for an error message without dumping huge objects. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The engine's verdict on a thrown value. */
export interface ErrorClassification {
  /** Worth another attempt. */
  retryable: boolean;
  /** The terminal state if no retry follows. */
  status: 'failed' | 'error' | 'timeout';
  /** Stable code: Stride's own, or derived for a foreign error. */
  code: string;
  /** The target asked us to slow down (429): cool the shared bucket. */
  rateLimited: boolean;
  /** An authentication/authorisation failure (401/403): counted by the auth stop rule. */
  auth: boolean;
  /** Milliseconds the target asked us to wait, if it said. */
  retryAfterMs: number | undefined;
}

/** Codes Node and undici give to transient network failures. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'NETWORK_ERROR',
]);

/** Programming errors: retrying the same code with the same input cannot help. */
const BUG_NAMES = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function retryAfterOf(err: unknown): number | undefined {
  const ms = field(err, 'retryAfterMs');
  if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return ms;
  const s = field(err, 'retryAfter');
  if (typeof s === 'number' && Number.isFinite(s) && s >= 0) return s * 1000;
  return undefined;
}

function networkCodeOf(err: unknown): string | undefined {
  // fetch() wraps the socket error: TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }).
  for (let e: unknown = err, depth = 0; e && depth < 4; e = field(e, 'cause'), depth++) {
    const code = field(e, 'code');
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/**
 * Decides what a thrown value means: retry or not, and which terminal state. The order matters:
 * an explicit `retryable` flag wins over everything the code or status would imply.
 */
export function classifyError(err: unknown): ErrorClassification {
  const name = field(err, 'name');
  const rawCode = field(err, 'code');
  const code = typeof rawCode === 'string' ? rawCode : undefined;
  const statusRaw = field(err, 'status') ?? field(err, 'statusCode');
  const status = typeof statusRaw === 'number' ? statusRaw : undefined;
  const flag = field(err, 'retryable');
  const retryAfterMs = retryAfterOf(err);
  const base = { rateLimited: false, auth: false, retryAfterMs };

  let verdict: ErrorClassification;
  if (code === 'TIMEOUT' || name === 'TimeoutError') {
    verdict = { ...base, retryable: true, status: 'timeout', code: 'TIMEOUT' };
  } else if (code === 'TASK_FAILED' || name === 'TaskFailedError') {
    verdict = { ...base, retryable: false, status: 'failed', code: 'TASK_FAILED' };
  } else if (
    code === 'NON_RETRYABLE' ||
    name === 'NonRetryableError' ||
    name === 'UnrecoverableError'
  ) {
    verdict = { ...base, retryable: false, status: 'error', code: 'NON_RETRYABLE' };
  } else if (code === 'VALIDATION_ERROR' || name === 'ValidationError' || name === 'ZodError') {
    verdict = { ...base, retryable: false, status: 'error', code: 'VALIDATION_ERROR' };
  } else if (code === 'QUOTA_EXCEEDED' || name === 'QuotaExceededError') {
    // Checked before the 429 rule: a spent quota comes as a 429 but is no burst to wait out.
    verdict = { ...base, retryable: false, status: 'error', code: 'QUOTA_EXCEEDED' };
  } else if (status === 429 || code === 'RATE_LIMITED') {
    verdict = {
      ...base,
      retryable: true,
      status: 'error',
      code: 'RATE_LIMITED',
      rateLimited: true,
    };
  } else if (status === 401 || status === 403 || code === 'AUTH_ERROR') {
    verdict = { ...base, retryable: false, status: 'error', code: 'AUTH_ERROR', auth: true };
  } else if (status !== undefined && status >= 400 && status < 600) {
    const transient = status >= 500 || status === 408;
    verdict = { ...base, retryable: transient, status: 'error', code: code ?? 'HTTP_ERROR' };
  } else if (networkCodeOf(err) !== undefined) {
    verdict = { ...base, retryable: true, status: 'error', code: 'NETWORK_ERROR' };
  } else if (typeof name === 'string' && BUG_NAMES.has(name)) {
    verdict = { ...base, retryable: false, status: 'error', code: code ?? name };
  } else {
    // An unknown error: assume transient, as the seeds did (generic exception -> retried).
    verdict = { ...base, retryable: true, status: 'error', code: code ?? 'UNKNOWN_ERROR' };
  }
  if (typeof flag === 'boolean') verdict.retryable = flag;
  return verdict;
}

/** The serialisable summary of an error kept in results and journals (never a stack or a secret). */
export interface ErrorInfo {
  code: string;
  name: string;
  message: string;
  status?: number;
}

/**
 * A message for a thrown value that has none. Objects are described by their key names only:
 * their values may hold a stack, a request with an Authorization header, an API key.
 */
function describeThrown(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const keys = Object.keys(err).filter((k) => k !== 'stack');
    return `a thrown ${Object.prototype.toString.call(err).slice(8, -1)} without a message${keys.length > 0 ? ` (keys: ${keys.slice(0, 8).join(', ')})` : ''}`;
  }
  return describeValue(err);
}

/** Reduces any thrown value to an ErrorInfo. */
export function toErrorInfo(err: unknown, code?: string): ErrorInfo {
  const name = field(err, 'name');
  const message = field(err, 'message');
  const status = field(err, 'status');
  const info: ErrorInfo = {
    code:
      code ??
      (typeof field(err, 'code') === 'string' ? (field(err, 'code') as string) : 'UNKNOWN_ERROR'),
    name: typeof name === 'string' ? name : typeof err,
    message: typeof message === 'string' ? message : describeThrown(err),
  };
  if (typeof status === 'number') info.status = status;
  return info;
}
