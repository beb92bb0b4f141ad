/**
 * The generic HTTP target: method, URL, headers and body templated from a case's input, the
 * output picked from the JSON response by a path, statuses classified like every other target
 * (401/403 auth, 429 rate-limited with Retry-After, 408/5xx retried, other 4xx permanent).
 */

import type { Dispatcher } from 'undici';
import {
  type AttemptContext,
  evalJsonPath,
  InvalidOptionError,
  type JsonPathSegment,
  parseJsonPath,
  type Target,
  TaskFailedError,
  type TaskView,
  ValidationError,
} from '../../core/index.js';
import {
  compact,
  errorFromResponse,
  isRecord,
  num,
  publishLimits,
  type RateLimitListener,
  Redactor,
  readText,
  Transport,
  type TransportOptions,
  transportError,
} from '../internal/http.js';
import { parseRateLimitHeaders, type RateLimitInfo } from '../internal/ratelimit.js';

type PathSegment = JsonPathSegment;

/** Parses an option's JSON path; a bad one is an InvalidOptionError naming the option. */
function parsePath(path: string, field: string): PathSegment[] {
  try {
    return parseJsonPath(path);
  } catch (e) {
    throw new InvalidOptionError(
      field,
      path,
      `a JSON path such as $.data.outputs.text (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/** The value at `segments`, or undefined if any step is missing. */
function getPath(value: unknown, segments: readonly PathSegment[]): unknown {
  const r = evalJsonPath(value, segments);
  return r.found ? r.value : undefined;
}

import { renderString, renderValue, type TemplateVars } from './template.js';

/**
 * Options of an HTTP target. Every string may hold `{{ name }}` placeholders over the case input
 * (see `template.ts`).
 *
 * @example
 * ```ts
 * const target = new HttpTarget({
 *   url: 'https://api.example.com/v1/answer?lang={{lang}}',
 *   headers: { authorization: `Bearer ${process.env.API_TOKEN}` },
 *   body: { question: '{{query}}', options: '{{options}}' },
 *   outputPath: '$.data.answer',
 *   tokensPath: '$.usage.total_tokens',
 * });
 * ```
 */
export interface HttpTargetOptions extends TransportOptions {
  readonly url: string;
  /** @default 'POST' when there is a body, else 'GET' */
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** An object or array is sent as JSON; a string as it is. */
  readonly body?: unknown;
  /** Where the output is in the JSON response. @default the whole body */
  readonly outputPath?: string;
  /** Where the token count is, reported to the engine's token budget and stop rules. */
  readonly tokensPath?: string;
  /** Where the cost is. */
  readonly costPath?: string;
  /**
   * Values to redact from results and errors. Values of headers named like credentials
   * (authorization, api-key, token, secret, cookie, password) and of such URL query parameters
   * are added automatically.
   */
  readonly secrets?: readonly string[];
  /** Rate bucket key. @default `http:<METHOD> <origin><path>` (never a query string) */
  readonly key?: string;
  /** Keep the parsed body in `raw`. @default false */
  readonly includeRaw?: boolean;
  readonly onRateLimits?: RateLimitListener;
}

/** The result of one HTTP call. */
export interface HttpOutput {
  /** The value at `outputPath`, or the whole body (parsed JSON, or text). */
  readonly output: unknown;
  readonly status: number;
  readonly rateLimits?: RateLimitInfo;
  readonly raw?: unknown;
}

const SERVICE = 'HTTP target';
const CREDENTIAL = /authorization|api[-_]?key|token|secret|cookie|password|passwd|signature|sig$/i;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

function credentialValues(headers: Readonly<Record<string, string>>, url: string): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!CREDENTIAL.test(name) || value.includes('{{')) continue;
    out.push(value);
    const bare = value.replace(/^(Bearer|Basic|Token)\s+/i, '');
    if (bare !== value) out.push(bare);
  }
  try {
    const u = new URL(url.replace(/\{\{[^}]*\}\}/g, 'x'));
    if (u.password !== '') out.push(decodeURIComponent(u.password));
    for (const [name, value] of u.searchParams)
      if (CREDENTIAL.test(name) || /^key$/i.test(name)) out.push(value);
  } catch {
    // A URL templated in its host cannot be parsed before rendering: nothing to add.
  }
  return out;
}

/** A key without credentials and without the query string. */
function keyOf(method: string, url: string): string {
  const noQuery = url.split('?')[0]!.split('#')[0]!;
  return `http:${method} ${noQuery.replace(/\/\/[^/@]*@/, '//')}`;
}

/**
 * Any HTTP API as a Stride Target.
 *
 * @example
 * ```ts
 * const target = new HttpTarget({ url: `${mock.url}/echo`, body: { q: '{{query}}' }, outputPath: '$.body.q' });
 * ```
 */
export class HttpTarget implements Target<unknown, HttpOutput> {
  readonly key: string;
  private readonly transport: Transport;
  private readonly redactor: Redactor;
  private readonly method: string;
  private readonly outputPath: PathSegment[] | undefined;
  private readonly tokensPath: PathSegment[] | undefined;
  private readonly costPath: PathSegment[] | undefined;
  private readonly includeRaw: boolean;
  private readonly onRateLimits: RateLimitListener | undefined;
  readonly #url: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #body: unknown;

  constructor(options: HttpTargetOptions) {
    if (!isRecord(options)) throw new InvalidOptionError('http', options, 'an options object');
    if (typeof options.url !== 'string' || options.url === '')
      throw new InvalidOptionError('url', options.url, 'a URL (it may hold {{placeholders}})');
    if (!options.url.includes('{{')) {
      let ok = false;
      try {
        const u = new URL(options.url);
        ok = u.protocol === 'http:' || u.protocol === 'https:';
      } catch {}
      if (!ok)
        throw new InvalidOptionError(
          'url',
          '(not an absolute http(s) URL)',
          'an absolute http(s) URL',
        );
    }
    const rawMethod = options.method ?? (options.body === undefined ? 'GET' : 'POST');
    if (typeof rawMethod !== 'string')
      throw new InvalidOptionError('method', rawMethod, 'an HTTP method');
    const method = rawMethod.includes('{{') ? rawMethod : rawMethod.toUpperCase();
    if (!method.includes('{{') && !METHODS.has(method))
      throw new InvalidOptionError('method', options.method, [...METHODS].join(' | '));
    const headers = options.headers ?? {};
    if (!isRecord(headers) || Object.values(headers).some((v) => typeof v !== 'string'))
      throw new InvalidOptionError('headers', '(hidden)', 'an object of string values');
    if (options.secrets !== undefined && !Array.isArray(options.secrets))
      throw new InvalidOptionError('secrets', '(hidden)', 'an array of strings');
    this.method = method;
    this.#url = options.url;
    this.#headers = headers;
    this.#body = options.body;
    this.outputPath =
      options.outputPath === undefined ? undefined : parsePath(options.outputPath, 'outputPath');
    this.tokensPath =
      options.tokensPath === undefined ? undefined : parsePath(options.tokensPath, 'tokensPath');
    this.costPath =
      options.costPath === undefined ? undefined : parsePath(options.costPath, 'costPath');
    this.includeRaw = options.includeRaw ?? false;
    this.onRateLimits = options.onRateLimits;
    this.redactor = new Redactor([
      ...(options.secrets ?? []),
      ...credentialValues(headers, options.url),
    ]);
    this.key = options.key ?? keyOf(method, options.url);
    this.transport = new Transport(options);
  }

  get dispatcher(): Dispatcher {
    return this.transport.dispatcher;
  }

  async execute(task: TaskView<unknown>, ctx: AttemptContext): Promise<HttpOutput> {
    const vars = variables(task, ctx);
    const method = renderString(this.method, vars, 'method').toUpperCase();
    if (!METHODS.has(method))
      throw new ValidationError(`HTTP method ${JSON.stringify(method)} is not supported`);
    const rendered = renderString(this.#url, vars, 'url', encodeURIComponent);
    let url: URL;
    try {
      url = new URL(rendered);
    } catch {
      throw new ValidationError('the rendered url is not an absolute URL');
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.#headers))
      headers[name.toLowerCase()] = renderString(value, vars, `headers.${name}`);
    let body: string | undefined;
    if (this.#body !== undefined && method !== 'GET' && method !== 'HEAD') {
      const value = renderValue(this.#body, vars, 'body');
      if (typeof value === 'string') {
        body = value;
        headers['content-type'] ??= 'text/plain; charset=utf-8';
      } else {
        body = JSON.stringify(value);
        headers['content-type'] ??= 'application/json';
      }
    }
    if (url.username !== '' || url.password !== '') {
      headers.authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    }
    const signal = ctx.signal;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.transport.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
      });
    } catch (err) {
      throw transportError(SERVICE, err, signal, this.redactor);
    }
    const limits = parseRateLimitHeaders(res.headers);
    publishLimits(ctx, limits, this.onRateLimits);
    let text: string;
    try {
      text = await readText(res.body, this.redactor);
    } catch (err) {
      throw transportError(SERVICE, err, signal, this.redactor);
    }
    if (res.statusCode < 200 || res.statusCode >= 300)
      throw errorFromResponse(SERVICE, res.statusCode, res.headers, text, this.redactor, limits);
    const type = String(res.headers['content-type'] ?? '');
    let parsed: unknown = text;
    if (type.includes('json') || /^\s*[[{]/.test(text)) {
      try {
        parsed = JSON.parse(text);
      } catch {
        if (type.includes('json'))
          throw new TaskFailedError(`${SERVICE}: the response is not valid JSON`, { output: text });
      }
    }
    const tokens =
      this.tokensPath === undefined ? undefined : num(getPath(parsed, this.tokensPath));
    const cost = this.costPath === undefined ? undefined : num(getPath(parsed, this.costPath));
    // A path that found nothing stays absent: unknown, not 0.
    if (tokens !== undefined || cost !== undefined)
      ctx.reportUsage({
        ...(tokens === undefined ? {} : { tokens }),
        ...(cost === undefined ? {} : { cost }),
      });
    let output = parsed;
    if (this.outputPath !== undefined) {
      output = getPath(parsed, this.outputPath);
      if (output === undefined)
        throw new TaskFailedError(`${SERVICE}: the response has nothing at the output path`, {
          output: parsed,
        });
    }
    return compact<HttpOutput>({
      output,
      status: res.statusCode,
      rateLimits: limits,
      raw: this.includeRaw ? parsed : undefined,
    });
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  destroy(): Promise<void> {
    return this.transport.destroy();
  }
}

/** Template variables: the input's fields (and its `inputs` fields), `input`, `$taskId`, `$attempt`. */
function variables(task: TaskView<unknown>, ctx: AttemptContext): TemplateVars {
  const input = task.input;
  const vars: Record<string, unknown> = {};
  if (isRecord(input)) {
    if (isRecord(input.inputs)) Object.assign(vars, input.inputs);
    Object.assign(vars, input);
  }
  vars.input = input;
  vars.$taskId = task.id;
  vars.$attempt = ctx.attempt;
  return vars;
}
