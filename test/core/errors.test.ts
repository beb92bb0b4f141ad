import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  classifyError,
  type ErrorClassification,
  HttpError,
  InvalidOptionError,
  isStrideError,
  NonRetryableError,
  PausedError,
  RateLimitedError,
  RetryableError,
  StrideError,
  TaskFailedError,
  TimeoutError,
  toErrorInfo,
  ValidationError,
} from '../../src/core/index.js';

function httpLike(status: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`upstream ${status}`), { status, ...extra });
}

function fetchFailed(code: string): TypeError {
  // What undici's fetch throws when the socket dies: the code sits on the cause.
  return new TypeError('fetch failed', {
    cause: Object.assign(new Error(`read ${code}`), { code }),
  });
}

type Expect = Pick<ErrorClassification, 'retryable' | 'status' | 'code'> &
  Partial<Pick<ErrorClassification, 'rateLimited' | 'auth' | 'retryAfterMs'>>;

const table: [string, unknown, Expect][] = [
  ['TimeoutError', new TimeoutError(), { retryable: true, status: 'timeout', code: 'TIMEOUT' }],
  [
    'TaskFailedError',
    new TaskFailedError('wrong answer'),
    { retryable: false, status: 'failed', code: 'TASK_FAILED' },
  ],
  [
    'NonRetryableError',
    new NonRetryableError(),
    { retryable: false, status: 'error', code: 'NON_RETRYABLE' },
  ],
  ['RetryableError', new RetryableError(), { retryable: true, status: 'error', code: 'RETRYABLE' }],
  [
    'ValidationError',
    new ValidationError('bad body'),
    { retryable: false, status: 'error', code: 'VALIDATION_ERROR' },
  ],
  [
    'CancelledError',
    new CancelledError(),
    { retryable: false, status: 'error', code: 'CANCELLED' },
  ],
  ['PausedError', new PausedError(), { retryable: false, status: 'error', code: 'PAUSED' }],
  [
    'HTTP 400',
    new HttpError(400, 'bad request'),
    { retryable: false, status: 'error', code: 'HTTP_ERROR' },
  ],
  [
    'HTTP 401',
    new HttpError(401, 'unauthorized'),
    { retryable: false, status: 'error', code: 'AUTH_ERROR', auth: true },
  ],
  [
    'HTTP 403',
    httpLike(403),
    { retryable: false, status: 'error', code: 'AUTH_ERROR', auth: true },
  ],
  ['HTTP 404', httpLike(404), { retryable: false, status: 'error', code: 'HTTP_ERROR' }],
  ['HTTP 408', httpLike(408), { retryable: true, status: 'error', code: 'HTTP_ERROR' }],
  [
    'HTTP 429',
    httpLike(429),
    { retryable: true, status: 'error', code: 'RATE_LIMITED', rateLimited: true, auth: false },
  ],
  [
    'RateLimitedError',
    new RateLimitedError(),
    { retryable: true, status: 'error', code: 'RATE_LIMITED', rateLimited: true },
  ],
  ['HTTP 500', httpLike(500), { retryable: true, status: 'error', code: 'HTTP_ERROR' }],
  [
    'HTTP 503 (HttpError)',
    new HttpError(503, 'unavailable'),
    { retryable: true, status: 'error', code: 'HTTP_ERROR' },
  ],
  [
    'statusCode 502 (axios-like)',
    { statusCode: 502, message: 'bad gateway' },
    { retryable: true, status: 'error', code: 'HTTP_ERROR' },
  ],
  [
    'fetch TypeError with cause ECONNRESET',
    fetchFailed('ECONNRESET'),
    { retryable: true, status: 'error', code: 'NETWORK_ERROR' },
  ],
  [
    'undici socket error code on the error itself',
    Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
    { retryable: true, status: 'error', code: 'NETWORK_ERROR' },
  ],
  [
    'plain TypeError (a bug)',
    new TypeError("Cannot read properties of undefined (reading 'x')"),
    { retryable: false, status: 'error', code: 'TypeError' },
  ],
  [
    'RangeError (a bug)',
    new RangeError('bad'),
    { retryable: false, status: 'error', code: 'RangeError' },
  ],
  [
    'unknown Error',
    new Error('who knows'),
    { retryable: true, status: 'error', code: 'UNKNOWN_ERROR' },
  ],
  ['a thrown string', 'boom', { retryable: true, status: 'error', code: 'UNKNOWN_ERROR' }],
  ['undefined', undefined, { retryable: true, status: 'error', code: 'UNKNOWN_ERROR' }],
  [
    'BullMQ UnrecoverableError by name',
    Object.assign(new Error('stop'), { name: 'UnrecoverableError' }),
    { retryable: false, status: 'error', code: 'NON_RETRYABLE' },
  ],
  [
    'ZodError by name',
    Object.assign(new Error('invalid'), { name: 'ZodError' }),
    { retryable: false, status: 'error', code: 'VALIDATION_ERROR' },
  ],
  [
    'flag retryable: true overrides a 400',
    httpLike(400, { retryable: true }),
    { retryable: true, status: 'error', code: 'HTTP_ERROR' },
  ],
  [
    'flag retryable: false overrides a 503',
    httpLike(503, { retryable: false }),
    { retryable: false, status: 'error', code: 'HTTP_ERROR' },
  ],
  [
    'flag retryable: false overrides a network error',
    Object.assign(fetchFailed('ECONNREFUSED'), { retryable: false }),
    { retryable: false, status: 'error', code: 'NETWORK_ERROR' },
  ],
  [
    'TaskFailedError made retryable',
    new TaskFailedError('flaky judge', { retryable: true }),
    { retryable: true, status: 'failed', code: 'TASK_FAILED' },
  ],
  [
    'retryAfterMs on a 429',
    new RateLimitedError('slow down', { retryAfterMs: 1500 }),
    { retryable: true, status: 'error', code: 'RATE_LIMITED', retryAfterMs: 1500 },
  ],
  [
    'retryAfter in seconds on a 429',
    httpLike(429, { retryAfter: 2 }),
    { retryable: true, status: 'error', code: 'RATE_LIMITED', retryAfterMs: 2000 },
  ],
  [
    'retryAfterMs wins over retryAfter',
    httpLike(503, { retryAfterMs: 250, retryAfter: 9 }),
    { retryable: true, status: 'error', code: 'HTTP_ERROR', retryAfterMs: 250 },
  ],
  [
    'a negative retryAfter is ignored',
    httpLike(429, { retryAfter: -1 }),
    { retryable: true, status: 'error', code: 'RATE_LIMITED', retryAfterMs: undefined },
  ],
];

describe('classifyError', () => {
  it.each(table)('%s', (_label, err, expected) => {
    expect(classifyError(err)).toMatchObject(expected);
  });

  it('sets rateLimited only for 429 and auth only for 401/403', () => {
    for (const status of [400, 404, 408, 500, 503]) {
      expect(classifyError(httpLike(status))).toMatchObject({ rateLimited: false, auth: false });
    }
    expect(classifyError(httpLike(429)).rateLimited).toBe(true);
    expect(classifyError(httpLike(401)).auth).toBe(true);
    expect(classifyError(new HttpError(403, 'forbidden')).auth).toBe(true);
  });

  it('recognises a foreign copy of NonRetryableError by name or by code (not instanceof)', () => {
    class NonRetryableError extends Error {
      override name = 'NonRetryableError';
    }
    expect(classifyError(new NonRetryableError('x'))).toMatchObject({
      retryable: false,
      code: 'NON_RETRYABLE',
    });
    expect(classifyError({ code: 'NON_RETRYABLE', message: 'x' })).toMatchObject({
      retryable: false,
      code: 'NON_RETRYABLE',
    });
  });
});

describe('isStrideError', () => {
  it('is true for every Stride error class', () => {
    for (const e of [
      new TimeoutError(),
      new CancelledError(),
      new TaskFailedError(),
      new NonRetryableError(),
      new RetryableError(),
      new RateLimitedError(),
      new HttpError(500, 'x'),
      new ValidationError('x'),
      new InvalidOptionError('f', 1, 'x'),
      new StrideError('UNKNOWN_ERROR', 'x'),
    ]) {
      expect(isStrideError(e)).toBe(true);
    }
  });

  it('recognises a foreign copy by its Symbol.for brand', () => {
    const foreign = Object.assign(new Error('from another copy'), { code: 'TIMEOUT' });
    Object.defineProperty(foreign, Symbol.for('stride.error'), { value: true });
    expect(foreign instanceof StrideError).toBe(false);
    expect(isStrideError(foreign)).toBe(true);
    expect(isStrideError({ [Symbol.for('stride.error')]: true })).toBe(true);
  });

  it('is false for look-alikes without the brand and for non-objects', () => {
    expect(
      isStrideError(Object.assign(new Error('x'), { code: 'TIMEOUT', name: 'TimeoutError' })),
    ).toBe(false);
    expect(isStrideError({ [Symbol.for('stride.error')]: 'yes' })).toBe(false);
    expect(isStrideError({ [Symbol('stride.error')]: true })).toBe(false);
    expect(isStrideError(null)).toBe(false);
    expect(isStrideError(undefined)).toBe(false);
    expect(isStrideError('TIMEOUT')).toBe(false);
  });

  it('keeps the brand out of enumeration and serialisation', () => {
    const e = new TimeoutError();
    expect(Object.getOwnPropertySymbols({ ...e })).toEqual([]);
    expect(JSON.stringify(e)).not.toContain('stride');
  });
});

describe('error classes', () => {
  it('name equals the class name and code is stable', () => {
    expect(new TimeoutError()).toMatchObject({ name: 'TimeoutError', code: 'TIMEOUT' });
    expect(new NonRetryableError()).toMatchObject({
      name: 'NonRetryableError',
      code: 'NON_RETRYABLE',
      retryable: false,
    });
    expect(new RetryableError()).toMatchObject({
      name: 'RetryableError',
      code: 'RETRYABLE',
      retryable: true,
    });
    expect(new HttpError(401, 'x')).toMatchObject({
      name: 'HttpError',
      code: 'AUTH_ERROR',
      status: 401,
    });
    expect(new HttpError(418, 'x')).toMatchObject({ code: 'HTTP_ERROR', status: 418 });
    expect(new RateLimitedError()).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    expect(new CancelledError('x', { retryable: true }).retryable).toBe(false);
  });

  it('InvalidOptionError names the field and shows the value', () => {
    const e = new InvalidOptionError('rate.perMinute', -1, 'a number > 0');
    expect(e.message).toBe('invalid option rate.perMinute: -1 (expected a number > 0)');
    const long = new InvalidOptionError('x', 'y'.repeat(500), 'short');
    expect(long.message.length).toBeLessThan(200);
  });

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new TimeoutError('t', { cause }).cause).toBe(cause);
  });
});

describe('toErrorInfo', () => {
  const ALLOWED = new Set(['code', 'name', 'message', 'status']);

  it('reduces an error to code, name, message and status', () => {
    expect(toErrorInfo(new HttpError(503, 'unavailable'))).toEqual({
      code: 'HTTP_ERROR',
      name: 'HttpError',
      message: 'unavailable',
      status: 503,
    });
    expect(toErrorInfo(new Error('x'), 'NETWORK_ERROR')).toEqual({
      code: 'NETWORK_ERROR',
      name: 'Error',
      message: 'x',
    });
    expect(toErrorInfo('boom')).toEqual({
      code: 'UNKNOWN_ERROR',
      name: 'string',
      message: '"boom"',
    });
    expect(toErrorInfo(undefined)).toEqual({
      code: 'UNKNOWN_ERROR',
      name: 'undefined',
      message: 'undefined',
    });
  });

  it('never includes a stack, for errors, causes and error-shaped objects', () => {
    const marker = 'at secretFrame (/srv/app/handler.js:12:34)';
    const withStack = (e: Error) => {
      e.stack = `${e.name}: ${e.message}\n    ${marker}`;
      return e;
    };
    const values: unknown[] = [
      withStack(new Error('plain')),
      withStack(new TimeoutError()),
      withStack(new TypeError('fetch failed', { cause: withStack(new Error('inner')) })),
      { name: 'RemoteError', message: 'deserialised', stack: `RemoteError\n    ${marker}` },
      Object.assign(withStack(new Error('')), { status: 500 }),
    ];
    for (const v of values) {
      const info = toErrorInfo(v);
      expect(Object.keys(info).every((k) => ALLOWED.has(k))).toBe(true);
      expect(JSON.stringify(info)).not.toContain('secretFrame');
    }
  });

  it('never includes a stack for an error-shaped object that has no message', () => {
    // A journal entry or worker reply decoded from JSON can carry a stack but no message; the
    // fallback rendering of the whole value must not copy that stack into `message`.
    const info = toErrorInfo({
      code: 'E_REMOTE',
      stack: 'Error\n    at secretFrame (/srv/app/handler.js:12:34)',
    });
    expect(info.code).toBe('E_REMOTE');
    expect(JSON.stringify(info)).not.toContain('secretFrame');
  });
});
