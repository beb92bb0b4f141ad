/**
 * The built-in tools of action plans: `http`, `sleep`, `transform`, `file.read`, `file.write`.
 * Each is a plain `Tool` made by a factory that takes its limits; all of them stop at once when
 * `ctx.signal` aborts and report what they consume through `ctx.usage`. There is deliberately
 * no shell tool: a plan must not be able to run arbitrary commands.
 *
 * Every tool re-checks its arguments against its own schema, so it is safe to call directly
 * (outside the executor, which validates before the call as well).
 *
 * See docs/actions-tools.md.
 */

import { randomBytes } from 'node:crypto';
import {
  chmod,
  link,
  lstat,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import * as nodePath from 'node:path';
import {
  HttpError,
  InvalidOptionError,
  NonRetryableError,
  StrideError,
  TimeoutError,
  ValidationError,
} from '../core/errors.js';
import { evalJsonPath, parseJsonPath } from '../core/jsonpath.js';
import { parseRetryAfter } from '../targets/internal/ratelimit.js';
import { assertSchema } from './schema.js';
import type { JsonSchema, Tool, ToolContext } from './tool.js';

/** Node's `setTimeout` fires at once for longer delays. */
const MAX_TIMER_MS = 2_147_483_647;
const MIB = 1024 * 1024;

/** JSON text of a value, cut to 80 characters, for messages. */
function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function checkCount(field: string, value: unknown, min: number): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min))
    throw new InvalidOptionError(field, value, `an integer >= ${min}`);
}

// =============================================================================================
// http
// =============================================================================================

/** Options of `httpTool`. */
export interface HttpToolOptions {
  /**
   * Hosts the tool may call. An entry is a host name (`api.example.com`, any port), a host with
   * a port (`127.0.0.1:8080`), or `*.example.com` (any subdomain, not the apex). Checked on
   * every redirect hop too. Absent: any host.
   */
  readonly allowedHosts?: readonly string[];
  /** Time for the whole call (all redirects, the body included). Absent: none (only `ctx.signal`). */
  readonly timeoutMs?: number;
  /** The response body is cut at this many bytes (the output says `truncated: true`). @default 1048576 (1 MiB) */
  readonly maxResponseBytes?: number;
  /** Redirects followed before giving up. @default 5 */
  readonly maxRedirects?: number;
}

/** Arguments of the `http` tool. */
export type HttpArgs = {
  /** An absolute `http:` or `https:` URL, without credentials. */
  url: string;
  /** @default 'GET' */
  method?: string;
  headers?: Record<string, string>;
  /** A text body. Not together with `json`. */
  body?: string;
  /** A value sent as JSON (and `content-type: application/json` unless a header sets one). */
  json?: unknown;
};

/** Output of the `http` tool. */
export type HttpResult = {
  status: number;
  /** Response headers, names in lower case; repeated headers joined by `, `. */
  headers: Record<string, string>;
  /** Parsed JSON when the content type is JSON (and the body was complete and valid), else text. */
  body: unknown;
  /** Present (true) when the body was cut at `maxResponseBytes`. */
  truncated?: true;
};

const HTTP_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    url: { type: 'string', minLength: 1, description: 'absolute http(s) URL' },
    method: { type: 'string', pattern: '^[A-Za-z]+$', description: 'HTTP method; default GET' },
    headers: { type: 'object', description: 'header name -> string value' },
    body: { type: 'string', description: 'text body (not with json)' },
    json: { description: 'a value sent as JSON (not with body)' },
  },
  required: ['url'],
  additionalProperties: false,
};

/** Scheme, host and path: never the query string or credentials, which may hold secrets. */
function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function hostAllowed(url: URL, allowed: readonly string[]): boolean {
  const hostname = url.hostname.toLowerCase();
  const host = url.host.toLowerCase();
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    if (e.startsWith('*.')) return hostname.endsWith(e.slice(1));
    return e === hostname || e === host;
  });
}

async function readLimited(
  response: Response,
  limit: number,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (response.body === null) return { bytes: new Uint8Array(0), truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.byteLength > limit) {
        chunks.push(value.subarray(0, limit - size));
        size = limit;
        truncated = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (truncated) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return { bytes: Buffer.concat(chunks, size), truncated };
}

function responseHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    out[name] = Object.hasOwn(out, name) ? `${out[name]}, ${value}` : value;
  }
  return out;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** What a socket error code means, in the words of the message. */
const CONNECT_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed, temporarily',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'socket closed',
};

function isTlsFailure(cause: { code?: unknown; library?: unknown }): boolean {
  const code = typeof cause.code === 'string' ? cause.code : '';
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.includes('CERT') ||
    code === 'EPROTO' ||
    cause.library === 'SSL routines'
  );
}

/**
 * fetch() rejects with a bare `TypeError: fetch failed` whose `cause` says why (an AggregateError
 * when every address of the host refused). This names the request, the host and port, and the
 * cause with its code, as the test-plan targets do: a refused connection or a failed DNS lookup is
 * a retried NETWORK_ERROR, a TLS failure (a certificate, a handshake) is not retried. Anything
 * else is returned as it is.
 */
function fetchFailure(err: unknown, method: string, url: URL): unknown {
  if (!(err instanceof TypeError) || err.cause === undefined || err.cause === null) return err;
  let cause = err.cause as {
    code?: unknown;
    message?: unknown;
    reason?: unknown;
    errors?: unknown;
    library?: unknown;
  };
  if (typeof cause.code !== 'string' && Array.isArray(cause.errors) && cause.errors.length > 0)
    cause = cause.errors[0] as typeof cause;
  const code = typeof cause.code === 'string' ? cause.code : undefined;
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  const where = `${url.hostname}:${port}`;
  const request = `http: ${method} ${safeUrl(url)} failed`;
  // OpenSSL's message is a colon-separated dump with a file path; its `reason` is the words.
  const text = typeof cause.reason === 'string' ? cause.reason : cause.message;
  const said =
    typeof text === 'string' && text.trim() !== ''
      ? text.trim().split('\n')[0]!
      : 'no reason given';
  const suffix = code === undefined ? '' : ` (${code})`;
  if (isTlsFailure(cause))
    return new NonRetryableError(
      `${request}: TLS handshake with ${where} failed: ${said}${suffix}`,
      {
        cause: err,
      },
    );
  const meaning = code === undefined ? undefined : CONNECT_CAUSES[code];
  return new StrideError(
    'NETWORK_ERROR',
    meaning === undefined
      ? `${request}: ${where}: ${said}${suffix}`
      : `${request}: cannot connect to ${where}: ${meaning}${suffix}`,
    { cause: err, retryable: true },
  );
}

/**
 * The `http` tool: one HTTP request with the global `fetch`.
 *
 * - Counts every request (each redirect hop too) with `ctx.usage.networkRequest()` before
 *   sending it; when that throws (the plan's limit is reached) nothing is sent.
 * - A non-2xx answer throws an `HttpError` carrying `status` (and `retryAfterMs` from a
 *   Retry-After header): 408, 429 and 5xx are retried, other 4xx are not. A 304 is returned.
 * - A host outside `allowedHosts` is a `NonRetryableError` naming the host.
 * - Redirects are followed by the tool itself (at most `maxRedirects`), so each hop is counted
 *   and checked; `authorization`, `cookie` and `proxy-authorization` are dropped when a
 *   redirect changes origin.
 *
 * No `compensate`: an HTTP call cannot be undone generically; write a tool for your API.
 *
 * @example
 * ```ts
 * const http = httpTool({ allowedHosts: ['api.example.com'], timeoutMs: 10_000 });
 * const { status, body } = await http.execute({ url: 'https://api.example.com/users/1' }, ctx);
 * ```
 */
export function httpTool(options: HttpToolOptions = {}): Tool<HttpArgs, HttpResult> {
  const { allowedHosts, timeoutMs } = options;
  if (
    allowedHosts !== undefined &&
    (!Array.isArray(allowedHosts) ||
      !allowedHosts.every((h) => typeof h === 'string' && h.trim() !== ''))
  )
    throw new InvalidOptionError('http.allowedHosts', allowedHosts, 'a list of host names');
  if (
    timeoutMs !== undefined &&
    (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > MAX_TIMER_MS)
  )
    throw new InvalidOptionError('http.timeoutMs', timeoutMs, 'a number of milliseconds > 0');
  checkCount('http.maxResponseBytes', options.maxResponseBytes, 0);
  checkCount('http.maxRedirects', options.maxRedirects, 0);
  const maxResponseBytes = options.maxResponseBytes ?? MIB;
  const maxRedirects = options.maxRedirects ?? 5;

  return {
    name: 'http',
    description: 'Sends one HTTP request and returns its status, headers and body.',
    schema: HTTP_SCHEMA,
    async execute(args, ctx) {
      assertSchema(HTTP_SCHEMA, args, 'http: invalid arguments');
      if (args.body !== undefined && args.json !== undefined)
        throw new ValidationError('http: invalid arguments: give body or json, not both');
      let url: URL;
      try {
        url = new URL(args.url);
      } catch {
        throw new ValidationError(`http: invalid URL ${show(args.url)} (expected an absolute URL)`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new ValidationError(`http: unsupported URL scheme ${show(url.protocol)}`);
      if (url.username !== '' || url.password !== '')
        throw new ValidationError(
          'http: a URL with credentials is refused; send them in an authorization header',
        );
      let method = (args.method ?? 'GET').toUpperCase();
      const headers = new Headers();
      for (const [name, value] of Object.entries(args.headers ?? {})) {
        if (typeof value !== 'string')
          throw new ValidationError(
            `http: header ${show(name)} must be a string, got ${show(value)}`,
          );
        try {
          headers.append(name, value);
        } catch {
          throw new ValidationError(`http: invalid header ${show(name)}`);
        }
      }
      let body: string | undefined = args.body;
      if (args.json !== undefined) {
        body = JSON.stringify(args.json);
        if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      }
      if (body !== undefined && (method === 'GET' || method === 'HEAD'))
        throw new ValidationError(`http: a ${method} request cannot have a body`);

      ctx.signal.throwIfAborted();
      const timeout = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
      const signal = timeout === undefined ? ctx.signal : AbortSignal.any([ctx.signal, timeout]);
      const fail = (err: unknown): unknown => {
        if (ctx.signal.aborted) return ctx.signal.reason;
        if (timeout?.aborted)
          return new TimeoutError(
            `http: ${method} ${safeUrl(url)} did not complete within ${timeoutMs} ms`,
          );
        return fetchFailure(err, method, url);
      };

      for (let hop = 0; ; hop++) {
        if (allowedHosts !== undefined && !hostAllowed(url, allowedHosts))
          throw new NonRetryableError(
            `http: host ${url.host} is not in allowedHosts (${allowedHosts.join(', ')})`,
          );
        ctx.usage.networkRequest();
        let response: Response;
        try {
          response = await fetch(url, {
            method,
            headers,
            ...(body === undefined ? {} : { body }),
            redirect: 'manual',
            signal,
          });
        } catch (err) {
          throw fail(err);
        }

        const location = response.headers.get('location');
        if (REDIRECTS.has(response.status) && location !== null) {
          await response.body?.cancel().catch(() => {});
          if (hop >= maxRedirects)
            throw new NonRetryableError(
              `http: more than ${maxRedirects} redirects from ${safeUrl(url)}`,
              { status: response.status },
            );
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new NonRetryableError(
              `http: ${safeUrl(url)} redirected to an invalid URL ${show(location)}`,
            );
          }
          if (next.protocol !== 'http:' && next.protocol !== 'https:')
            throw new NonRetryableError(`http: redirect to unsupported scheme ${next.protocol}`);
          // As fetch does: 303 (and 301/302 after a POST) turn into a GET without a body.
          if (
            (response.status === 303 && method !== 'HEAD') ||
            ((response.status === 301 || response.status === 302) && method === 'POST')
          ) {
            method = 'GET';
            body = undefined;
            headers.delete('content-type');
            headers.delete('content-length');
          }
          if (next.origin !== url.origin) {
            headers.delete('authorization');
            headers.delete('cookie');
            headers.delete('proxy-authorization');
          }
          url = next;
          continue;
        }

        let read: { bytes: Uint8Array; truncated: boolean };
        try {
          read = await readLimited(response, response.ok ? maxResponseBytes : 4096);
        } catch (err) {
          throw fail(err);
        }
        const text = new TextDecoder().decode(read.bytes);
        if (!response.ok && response.status !== 304) {
          const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, 200);
          const retryAfterMs = parseRetryAfter(response.headers.get('retry-after') ?? undefined);
          throw new HttpError(
            response.status,
            `http: ${method} ${safeUrl(url)} answered ${response.status}${excerpt === '' ? '' : `: ${excerpt}`}`,
            {
              ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
              // A redirect without a usable Location: no retry will fix the URL.
              ...(response.status < 400 ? { retryable: false } : {}),
            },
          );
        }
        let parsed: unknown = text;
        const type = response.headers.get('content-type') ?? '';
        if (!read.truncated && text !== '' && /[/+]json\b/i.test(type)) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text; // a server that says JSON and sends something else: keep the text
          }
        }
        const result: HttpResult = {
          status: response.status,
          headers: responseHeaders(response.headers),
          body: parsed,
        };
        if (read.truncated) result.truncated = true;
        return result;
      }
    },
  };
}

// =============================================================================================
// sleep
// =============================================================================================

/** Arguments of the `sleep` tool: exactly one of `ms` and `seconds`. */
export type SleepArgs = { ms?: number; seconds?: number };

const SLEEP_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    ms: { type: 'number', minimum: 0, maximum: MAX_TIMER_MS },
    seconds: { type: 'number', minimum: 0, maximum: Math.floor(MAX_TIMER_MS / 1000) },
  },
  additionalProperties: false,
};

/**
 * The `sleep` tool: waits `ms` milliseconds (or `seconds`), then returns `{ sleptMs }`. When
 * `ctx.signal` aborts it rejects at once with the signal's reason (so a cancel or a timeout is
 * reported as such), and the timer is cleared.
 *
 * @example
 * ```ts
 * await sleepTool().execute({ seconds: 2 }, ctx); // { sleptMs: 2000 }
 * ```
 */
export function sleepTool(): Tool<SleepArgs, { sleptMs: number }> {
  return {
    name: 'sleep',
    description: 'Waits the given time; stops at once when the step is cancelled.',
    schema: SLEEP_SCHEMA,
    async execute(args, ctx) {
      assertSchema(SLEEP_SCHEMA, args, 'sleep: invalid arguments');
      if ((args.ms === undefined) === (args.seconds === undefined))
        throw new ValidationError('sleep: invalid arguments: give exactly one of ms and seconds');
      const ms = args.ms ?? (args.seconds ?? 0) * 1000;
      const { signal } = ctx;
      signal.throwIfAborted();
      return new Promise<{ sleptMs: number }>((resolve, reject) => {
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve({ sleptMs: ms });
        }, ms);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

// =============================================================================================
// transform
// =============================================================================================

/** Arguments of the `transform` tool. */
export type TransformArgs = {
  /** The value to shape (usually a previous step's output). */
  input: unknown;
  /** A JSON path (`$.a.b[0]`, `$.items[-1]`); the result is the value it names. */
  pick?: string;
  /** Keys shallow-merged over the (picked) value, which must then be an object. */
  merge?: Record<string, unknown>;
  /** A string whose `{{path}}` placeholders are replaced with values from the (picked, merged) value. */
  template?: string;
};

const TRANSFORM_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    input: { description: 'the value to shape' },
    pick: { type: 'string', minLength: 1, description: 'JSON path of the value to keep' },
    merge: { type: 'object', description: 'keys merged (shallow) over the value' },
    template: { type: 'string', description: 'text with {{path}} placeholders' },
  },
  required: ['input'],
  additionalProperties: false,
};

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

function lookUp(value: unknown, path: string, what: string): unknown {
  let result: ReturnType<typeof evalJsonPath>;
  try {
    result = evalJsonPath(value, parseJsonPath(path));
  } catch (err) {
    throw new ValidationError(`transform: ${what}: ${(err as Error).message}`);
  }
  if (!result.found) throw new ValidationError(`transform: ${what}: ${show(path)} not found`);
  return result.value;
}

function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/**
 * Pure data shaping, applied in this order, each step to the result of the one before:
 *
 * 1. `pick`: the value at a JSON path of `input` (`$.a.b[0]`; the `$` may be left out). A path
 *    that names nothing is a `ValidationError`.
 * 2. `merge`: `{ ...value, ...merge }` (shallow); the value must be a plain object.
 * 3. `template`: a string in which each `{{path}}` is replaced by the value at that path
 *    (`{{$}}` is the whole value): strings as they are, objects and arrays as JSON, numbers,
 *    booleans and null as `String(v)`. A placeholder that names nothing is a `ValidationError`.
 *    The result is always a string.
 *
 * With none of them the output is `input` unchanged. Nothing is retried (same input, same error).
 *
 * @example
 * ```ts
 * await transformTool().execute({ input: { user: { name: 'Ada' } }, pick: '$.user', template: 'Hello {{name}}' }, ctx);
 * // 'Hello Ada'
 * ```
 */
export function transformTool(): Tool<TransformArgs, unknown> {
  return {
    name: 'transform',
    description: 'Picks, merges and renders data; no side effects.',
    schema: TRANSFORM_SCHEMA,
    async execute(args, ctx) {
      assertSchema(TRANSFORM_SCHEMA, args, 'transform: invalid arguments');
      ctx.signal.throwIfAborted();
      let value: unknown = args.input;
      if (args.pick !== undefined) value = lookUp(value, args.pick, 'pick');
      if (args.merge !== undefined) {
        if (typeof value !== 'object' || value === null || Array.isArray(value))
          throw new ValidationError(
            `transform: merge needs an object to merge into, got ${show(value)}`,
          );
        value = { ...(value as Record<string, unknown>), ...args.merge };
      }
      if (args.template !== undefined) {
        const scope = value;
        value = args.template.replace(PLACEHOLDER, (_whole, path: string) =>
          render(lookUp(scope, path === '' ? '$' : path, `placeholder {{${path}}}`)),
        );
      }
      return value;
    },
  };
}

// =============================================================================================
// file.read / file.write
// =============================================================================================

/** Options of `fileTools`. */
export interface FileToolsOptions {
  /** The directory every path is resolved in; nothing outside it can be read or written. */
  readonly root: string;
  /** `file.read` refuses bigger files. @default 16777216 (16 MiB) */
  readonly maxReadBytes?: number;
  /**
   * `file.write` in `overwrite` mode keeps the old content in its output so `compensate` can
   * restore it, and refuses to overwrite a file bigger than this. @default 1048576 (1 MiB)
   */
  readonly maxPreviousBytes?: number;
}

export type FileEncoding = 'utf8' | 'base64';

/** Arguments of `file.read`. */
export type FileReadArgs = { path: string; encoding?: FileEncoding };
/** Output of `file.read`. */
export type FileReadResult = { path: string; content: string; bytes: number };

/** Arguments of `file.write`. */
export type FileWriteArgs = {
  path: string;
  content: string;
  /** How `content` is encoded. @default 'utf8' */
  encoding?: FileEncoding;
  /** @default 'overwrite' */
  mode?: 'create' | 'overwrite' | 'append';
};

/** Output of `file.write`: what `compensate` needs to undo it. */
export type FileWriteResult = {
  /** The path relative to the root, `/`-separated. */
  path: string;
  /** Bytes written. */
  bytes: number;
  /** The file did not exist before. */
  created: boolean;
  /** `overwrite` of an existing file: its old content. */
  previous?: string;
  /** How `previous` is encoded: utf8 when the old bytes were valid UTF-8 text, else base64. */
  previousEncoding?: FileEncoding;
  /** `append` to an existing file: its size before. */
  previousBytes?: number;
};

const PATH_SCHEMA: JsonSchema = {
  type: 'string',
  minLength: 1,
  description: 'relative to the root',
};
const ENCODING_SCHEMA: JsonSchema = { type: 'string', enum: ['utf8', 'base64'] };

const FILE_READ_SCHEMA: JsonSchema = {
  type: 'object',
  properties: { path: PATH_SCHEMA, encoding: ENCODING_SCHEMA },
  required: ['path'],
  additionalProperties: false,
};

const FILE_WRITE_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    path: PATH_SCHEMA,
    content: { type: 'string' },
    encoding: ENCODING_SCHEMA,
    mode: { type: 'string', enum: ['create', 'overwrite', 'append'] },
  },
  required: ['path', 'content'],
  additionalProperties: false,
};

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Errors that the same call will meet again: not worth a retry. */
const PERMANENT_FS = new Set([
  'ENOENT',
  'EISDIR',
  'ENOTDIR',
  'EACCES',
  'EPERM',
  'EEXIST',
  'ELOOP',
  'ENAMETOOLONG',
  'EROFS',
  'EINVAL',
]);

function fsFailure(tool: string, rel: string, err: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason;
  const code = errnoCode(err);
  if (code !== undefined && PERMANENT_FS.has(code))
    return new NonRetryableError(`${tool}: ${rel}: ${code} (${(err as Error).message})`, {
      cause: err,
    });
  return err; // EIO, EMFILE, ENOSPC, EBUSY...: may pass, retried
}

function isInside(root: string, candidate: string): boolean {
  const prefix = root.endsWith(nodePath.sep) ? root : root + nodePath.sep;
  return candidate === root || candidate.startsWith(prefix);
}

interface ResolvedPath {
  /** The real path to use (symlinks resolved), inside the root. */
  readonly real: string;
  /** The path as given, normalised, relative to the root, `/`-separated. */
  readonly rel: string;
  readonly exists: boolean;
  /** False when the parent directory does not exist (so neither does the file). */
  readonly parentExists: boolean;
}

/**
 * Resolves a user path inside the root, refusing absolute paths, `..` escapes and symlinks that
 * lead outside (existing ones are resolved with realpath; a dangling symlink is refused, since
 * writing through it would create its target wherever it points). A race with someone swapping
 * a directory for a symlink between this check and the write is not defended against.
 */
async function resolveInside(root: string, userPath: string, tool: string): Promise<ResolvedPath> {
  if (userPath.includes('\0')) throw new ValidationError(`${tool}: path contains a NUL byte`);
  if (nodePath.isAbsolute(userPath) || nodePath.win32.isAbsolute(userPath))
    throw new NonRetryableError(
      `${tool}: absolute path ${show(userPath)} refused (paths are relative to the root)`,
    );
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (err) {
    throw new NonRetryableError(
      `${tool}: the root ${show(root)} is not usable: ${errnoCode(err)}`,
      {
        cause: err,
      },
    );
  }
  const lexical = nodePath.resolve(realRoot, userPath);
  if (!isInside(realRoot, lexical))
    throw new NonRetryableError(`${tool}: path ${show(userPath)} escapes the root`);
  const rel = nodePath.relative(realRoot, lexical).split(nodePath.sep).join('/') || '.';
  const outside = (): NonRetryableError =>
    new NonRetryableError(
      `${tool}: path ${show(userPath)} leads outside the root through a symbolic link`,
    );

  try {
    const real = await realpath(lexical);
    if (!isInside(realRoot, real)) throw outside();
    return { real, rel, exists: true, parentExists: true };
  } catch (err) {
    if (err instanceof NonRetryableError) throw err;
    const code = errnoCode(err);
    if (code !== 'ENOENT')
      throw new NonRetryableError(`${tool}: path ${show(userPath)}: ${code ?? String(err)}`, {
        cause: err,
      });
  }
  // Missing: either no such file, or a dangling symlink.
  const dangling = await lstat(lexical).then(
    (s) => s.isSymbolicLink(),
    () => false,
  );
  if (dangling)
    throw new NonRetryableError(
      `${tool}: path ${show(userPath)} is a symbolic link to a missing target; refused`,
    );
  let realParent: string;
  try {
    realParent = await realpath(nodePath.dirname(lexical));
  } catch {
    return { real: lexical, rel, exists: false, parentExists: false };
  }
  if (!isInside(realRoot, realParent)) throw outside();
  return {
    real: nodePath.join(realParent, nodePath.basename(lexical)),
    rel,
    exists: false,
    parentExists: true,
  };
}

function decodeContent(content: string, encoding: FileEncoding, tool: string): Buffer {
  if (encoding === 'base64') {
    const compact = content.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact))
      throw new ValidationError(`${tool}: content is not valid base64`);
    return Buffer.from(compact, 'base64');
  }
  return Buffer.from(content, 'utf8');
}

function encodePrevious(bytes: Buffer): { previous: string; previousEncoding: FileEncoding } {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes)
    ? { previous: text, previousEncoding: 'utf8' }
    : { previous: bytes.toString('base64'), previousEncoding: 'base64' };
}

function tempPathFor(file: string): string {
  return nodePath.join(
    nodePath.dirname(file),
    `.${nodePath.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
}

/**
 * Writes `data` to `file` atomically: a temp file in the same directory, then a rename (or, for
 * `exclusive`, a hard link, which fails if the file appeared meanwhile). `fileMode` keeps the
 * permissions of the file being replaced.
 */
async function atomicWrite(
  file: string,
  data: Buffer,
  signal: AbortSignal,
  exclusive: boolean,
  fileMode: number | undefined,
): Promise<void> {
  const temp = tempPathFor(file);
  try {
    await writeFile(temp, data, { flag: 'wx', signal });
    if (fileMode !== undefined) await chmod(temp, fileMode);
    if (!exclusive) {
      await rename(temp, file);
      return;
    }
    try {
      await link(temp, file);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST') throw err;
      // A file system without hard links: check, then rename (a small race, documented).
      if (
        await lstat(file).then(
          () => true,
          () => false,
        )
      )
        throw Object.assign(new Error(`EEXIST: file already exists, ${file}`), { code: 'EEXIST' });
      await rename(temp, file);
    }
  } finally {
    await rm(temp, { force: true }).catch(() => {});
  }
}

async function contentEquals(file: string, data: Buffer): Promise<boolean> {
  try {
    return (await readFile(file)).equals(data);
  } catch {
    return false;
  }
}

async function endsWith(file: string, data: Buffer): Promise<boolean> {
  try {
    const bytes = await readFile(file);
    return bytes.length >= data.length && bytes.subarray(bytes.length - data.length).equals(data);
  } catch {
    return false;
  }
}

/**
 * `file.read` and `file.write`, confined to `options.root`.
 *
 * Every path is relative to the root: absolute paths, `..` that leaves the root and symlinks
 * that lead outside it are refused with a `NonRetryableError` naming the path. Reads count
 * `ctx.usage.diskRead(bytes)`, writes `ctx.usage.diskWrite(bytes)`.
 *
 * `file.write` modes: `create` (fails if the file exists), `overwrite` (default) and `append`.
 * `create` and `overwrite` are atomic (temp file + rename); `append` is a plain append. The
 * parent directory must exist (nothing else is created, so an undo leaves nothing behind).
 *
 * Its `compensate` undoes the write and is idempotent:
 * - a created file is deleted (already gone: fine);
 * - an overwritten file gets its `previous` content back. To keep that promise, overwriting a
 *   file larger than `maxPreviousBytes` (1 MiB) is refused rather than left un-undoable;
 * - an append is truncated back to `previousBytes`;
 * - with no output (the outcome is unknown: timeout, crash), a `create` whose content is on disk
 *   is deleted; an `overwrite`/`append` whose content is on disk cannot be undone safely and
 *   throws a `NonRetryableError`; if the content is not there, the write never landed: nothing
 *   to do.
 *
 * @example
 * ```ts
 * const [read, write] = fileTools({ root: '/srv/work' });
 * await write.execute({ path: 'out/report.txt', content: 'done', mode: 'create' }, ctx);
 * ```
 */
export function fileTools(
  options: FileToolsOptions,
): [Tool<FileReadArgs, FileReadResult>, Tool<FileWriteArgs, FileWriteResult>] {
  if (typeof options?.root !== 'string' || options.root === '')
    throw new InvalidOptionError('file.root', options?.root, 'a directory path');
  checkCount('file.maxReadBytes', options.maxReadBytes, 0);
  checkCount('file.maxPreviousBytes', options.maxPreviousBytes, 0);
  const root = nodePath.resolve(options.root);
  const maxReadBytes = options.maxReadBytes ?? 16 * MIB;
  const maxPreviousBytes = options.maxPreviousBytes ?? MIB;

  const fileRead: Tool<FileReadArgs, FileReadResult> = {
    name: 'file.read',
    description: 'Reads a file under the root.',
    schema: FILE_READ_SCHEMA,
    async execute(args, ctx) {
      assertSchema(FILE_READ_SCHEMA, args, 'file.read: invalid arguments');
      ctx.signal.throwIfAborted();
      const target = await resolveInside(root, args.path, 'file.read');
      let data: Buffer;
      try {
        const info = await stat(target.real);
        if (info.isFile() && info.size > maxReadBytes)
          throw new NonRetryableError(
            `file.read: ${target.rel} has ${info.size} bytes, more than maxReadBytes ${maxReadBytes}`,
          );
        data = await readFile(target.real, { signal: ctx.signal });
      } catch (err) {
        if (err instanceof NonRetryableError) throw err;
        throw fsFailure('file.read', target.rel, err, ctx.signal);
      }
      ctx.usage.diskRead(data.byteLength);
      return {
        path: target.rel,
        content: data.toString(args.encoding ?? 'utf8'),
        bytes: data.byteLength,
      };
    },
  };

  const fileWrite: Tool<FileWriteArgs, FileWriteResult> = {
    name: 'file.write',
    description: 'Writes a file under the root (atomically for create/overwrite); undoable.',
    schema: FILE_WRITE_SCHEMA,
    async execute(args, ctx) {
      assertSchema(FILE_WRITE_SCHEMA, args, 'file.write: invalid arguments');
      const data = decodeContent(args.content, args.encoding ?? 'utf8', 'file.write');
      const mode = args.mode ?? 'overwrite';
      ctx.signal.throwIfAborted();
      const target = await resolveInside(root, args.path, 'file.write');
      if (!target.parentExists)
        throw new NonRetryableError(
          `file.write: the directory of ${target.rel} does not exist (directories are not created)`,
        );
      const { signal } = ctx;
      try {
        if (mode === 'append') {
          let previousBytes: number | undefined;
          if (target.exists) {
            const info = await stat(target.real);
            if (!info.isFile())
              throw new NonRetryableError(`file.write: ${target.rel} is not a regular file`);
            previousBytes = info.size;
          }
          signal.throwIfAborted();
          await writeFile(target.real, data, { flag: 'a' });
          ctx.usage.diskWrite(data.byteLength);
          const out: FileWriteResult = {
            path: target.rel,
            bytes: data.byteLength,
            created: previousBytes === undefined,
          };
          if (previousBytes !== undefined) out.previousBytes = previousBytes;
          return out;
        }

        let previous: Buffer | undefined;
        let fileMode: number | undefined;
        if (target.exists) {
          if (mode === 'create')
            throw new NonRetryableError(`file.write: ${target.rel} already exists (mode "create")`);
          const info = await stat(target.real);
          if (!info.isFile())
            throw new NonRetryableError(`file.write: ${target.rel} is not a regular file`);
          if (info.size > maxPreviousBytes)
            throw new NonRetryableError(
              `file.write: refusing to overwrite ${target.rel} (${info.size} bytes): its old content could not be kept for compensation (limit maxPreviousBytes ${maxPreviousBytes})`,
            );
          previous = await readFile(target.real, { signal });
          ctx.usage.diskRead(previous.byteLength);
          fileMode = info.mode & 0o7777;
        }
        await atomicWrite(target.real, data, signal, mode === 'create', fileMode);
        ctx.usage.diskWrite(data.byteLength);
        const out: FileWriteResult = {
          path: target.rel,
          bytes: data.byteLength,
          created: previous === undefined,
        };
        if (previous !== undefined) Object.assign(out, encodePrevious(previous));
        return out;
      } catch (err) {
        if (err instanceof NonRetryableError) throw err;
        if (errnoCode(err) === 'EEXIST' && mode === 'create')
          throw new NonRetryableError(`file.write: ${target.rel} already exists (mode "create")`, {
            cause: err,
          });
        throw fsFailure('file.write', target.rel, err, signal);
      }
    },

    async compensate(args, output, ctx: ToolContext) {
      ctx.signal.throwIfAborted();
      const target = await resolveInside(root, args.path, 'file.write compensate');
      const mode = args.mode ?? 'overwrite';
      try {
        if (output === undefined) {
          if (!target.exists) return; // the write never landed
          const data = decodeContent(args.content, args.encoding ?? 'utf8', 'file.write');
          if (mode === 'create') {
            if (await contentEquals(target.real, data)) await rm(target.real, { force: true });
            return;
          }
          const landed =
            mode === 'append'
              ? await endsWith(target.real, data)
              : await contentEquals(target.real, data);
          if (landed)
            throw new NonRetryableError(
              `file.write compensate: cannot undo the ${mode} of ${target.rel}: its outcome is unknown and the old content was not recorded`,
            );
          return;
        }
        if (output.created) {
          if (target.exists) await rm(target.real, { force: true });
          return;
        }
        if (output.previousBytes !== undefined) {
          if (!target.exists) return;
          const info = await stat(target.real);
          if (info.size > output.previousBytes) await truncate(target.real, output.previousBytes);
          return;
        }
        if (output.previous !== undefined) {
          if (!target.parentExists)
            throw new NonRetryableError(
              `file.write compensate: the directory of ${target.rel} is gone; cannot restore it`,
            );
          const previous = Buffer.from(output.previous, output.previousEncoding ?? 'utf8');
          if (target.exists && (await contentEquals(target.real, previous))) return;
          const fileMode = target.exists ? (await stat(target.real)).mode & 0o7777 : undefined;
          await atomicWrite(target.real, previous, ctx.signal, false, fileMode);
          ctx.usage.diskWrite(previous.byteLength);
        }
      } catch (err) {
        if (err instanceof NonRetryableError) throw err;
        throw fsFailure('file.write compensate', target.rel, err, ctx.signal);
      }
    },
  };

  return [fileRead, fileWrite];
}

// =============================================================================================
// all of them
// =============================================================================================

/** Options of `builtinTools`. */
export interface BuiltinToolsOptions {
  /** Enables `file.read` / `file.write`, confined to this directory. Absent: no file tools. */
  readonly root?: string;
  readonly http?: HttpToolOptions;
  /** Limits of the file tools (their `root` is the `root` above). */
  readonly files?: Omit<FileToolsOptions, 'root'>;
}

/**
 * Every built-in tool: `http`, `sleep`, `transform`, and `file.read` / `file.write` when `root`
 * is given. There is no shell tool.
 *
 * @example
 * ```ts
 * const tools = builtinTools({ root: './work', http: { allowedHosts: ['api.example.com'] } });
 * ```
 */
export function builtinTools(options: BuiltinToolsOptions = {}): Tool[] {
  const tools: Tool[] = [httpTool(options.http), sleepTool(), transformTool()];
  if (options.root !== undefined)
    tools.push(...fileTools({ ...options.files, root: options.root }));
  return tools;
}
