/**
 * The mock's options, its fault catalogue, and the deterministic parts: outputs derived from the
 * inputs, token counts, latency draws from a seeded generator.
 */

import { InvalidOptionError, seededRandom } from '../core/index.js';
import { type MockGraderRule, type ResolvedGraderRule, resolveGraderRule } from './grader.js';

/**
 * Faults the mock can inject, by `errorRates` (a share of requests) or per request (input
 * `__fault`, header `x-mock-fault`):
 *
 * | fault | what the client sees |
 * |---|---|
 * | `429` | HTTP 429 `too_many_requests` (Dify's concurrency limiter: no Retry-After) |
 * | `429-retry-after` | HTTP 429 with `Retry-After: <retryAfterSeconds>` |
 * | `429-quota` | HTTP 429 `rate_limit_error` (Dify's billing quota) |
 * | `400` | HTTP 400 `invalid_param` |
 * | `401` / `403` / `404` | `unauthorized` / `forbidden` / `not_found` |
 * | `500` / `502` / `503` / `504` | server errors (502-504 as a proxy sends them: HTML) |
 * | `hang` | blocking: never answers; streaming: sends the first event (with `task_id`), then only pings until stopped or disconnected |
 * | `break` | streaming: half the events, then the socket is destroyed; blocking: the socket is destroyed before any answer |
 * | `reset` | the socket is destroyed at once, before any answer |
 * | `stream-error` | streaming: an `error` event (500 `internal_server_error`) inside the open stream |
 * | `stream-error-400` | streaming: an `error` event (400 `invalid_param`) inside the open stream |
 * | `slow` | streaming: every chunk waits `slowChunkDelayMs` |
 * | `failed` | a workflow that ends `status: "failed"` with HTTP 200 (a failed run, not an HTTP error) |
 */
export type MockFault =
  | '429'
  | '429-retry-after'
  | '429-quota'
  | '400'
  | '401'
  | '403'
  | '404'
  | '500'
  | '502'
  | '503'
  | '504'
  | 'hang'
  | 'break'
  | 'reset'
  | 'stream-error'
  | 'stream-error-400'
  | 'slow'
  | 'failed';

export const MOCK_FAULTS: readonly MockFault[] = [
  '429',
  '429-retry-after',
  '429-quota',
  '400',
  '401',
  '403',
  '404',
  '500',
  '502',
  '503',
  '504',
  'hang',
  'break',
  'reset',
  'stream-error',
  'stream-error-400',
  'slow',
  'failed',
];

/**
 * Latency of every answer: fixed milliseconds, uniform `{ min, max }`, normal `{ mean, stddev }`
 * (clamped at 0) or exponential `{ exponential: mean }`.
 */
export type LatencySpec =
  | number
  | { readonly min: number; readonly max: number }
  | { readonly mean: number; readonly stddev: number }
  | { readonly exponential: number };

/**
 * How the answer is derived from the input text (the query, else `inputs.query`, else the only
 * string input, else the inputs as JSON), so a plan's assertions pass or fail on purpose:
 * `echo` (the text), `upper`, `lower`, `reverse`, `{ template: 'Answer: {{text}}' }` (also
 * `{{query}}` or any input name), or `{ lookup: { question: answer }, fallback? }`. A request's
 * `__output` input wins over all of them.
 */
export type MockOutputRule =
  | 'echo'
  | 'upper'
  | 'lower'
  | 'reverse'
  | { readonly template: string }
  | { readonly lookup: Readonly<Record<string, string>>; readonly fallback?: string };

/** A Dify app's mode, as `GET /v1/info` names it. */
export type DifyAppMode = 'workflow' | 'chat' | 'agent-chat' | 'advanced-chat' | 'completion';

export const DIFY_APP_MODES: readonly DifyAppMode[] = [
  'workflow',
  'chat',
  'agent-chat',
  'advanced-chat',
  'completion',
];

/** The models `GET /v1/models` lists by default. */
export const DEFAULT_MODELS: readonly string[] = ['gpt-4o-mini', 'gpt-4o', 'stride-mock'];

/** Options of `startMock`. Every field is optional. */
export interface MockOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** @default 0 */
  readonly latencyMs?: LatencySpec;
  /** Share of requests (0..1) that get each fault, drawn from the seeded generator. */
  readonly errorRates?: Readonly<Partial<Record<MockFault, number>>>;
  /** Seconds sent in Retry-After by `429-retry-after` and by the rate limit. @default 1 */
  readonly retryAfterSeconds?: number;
  /** Dify's app concurrency limit: more runs in flight get 429 `too_many_requests`. */
  readonly maxConcurrency?: number;
  /** A request rate limit: over it, 429 `rate_limit_error` (Dify) / `rate_limit_exceeded` (OpenAI). */
  readonly rateLimit?: {
    readonly perMinute: number;
    /** @default 1 */
    readonly burst?: number;
    /** Send Retry-After with these 429s (Dify sends none). @default false */
    readonly retryAfter?: boolean;
    /**
     * The code of the Dify 429s: `rate_limit_error` is Dify's billing quota (a client does not
     * retry it); `too_many_requests` answers like the app's concurrency limiter, as a gateway's
     * per-minute limit in front of Dify would: a bare 429 a client should slow down for.
     * @default 'rate_limit_error'
     */
    readonly code?: 'rate_limit_error' | 'too_many_requests';
  };
  /** Accepted keys; without it (and `apps`), any `Bearer app-…` (Dify) or any Bearer token (OpenAI) passes. */
  readonly apiKeys?: readonly string[];
  /**
   * Dify app keys and their app's mode, one key per app as Dify binds them: `/v1/info` says the
   * key's mode, and a route of another mode answers 400 `not_workflow_app` / `not_chat_app` /
   * `app_unavailable`. These keys are accepted (with `apiKeys`, if given; a key of `apiKeys`
   * without a mode serves every route). Without it any key serves every route.
   */
  readonly apps?: Readonly<Record<string, DifyAppMode>>;
  /** Model ids `GET /v1/models` lists (chat completions accept any model). @default DEFAULT_MODELS */
  readonly models?: readonly string[];
  /** Inputs every workflow run must have (`<name> is required in input form`). */
  readonly requiredInputs?: readonly string[];
  /** @default 'echo' */
  readonly output?: MockOutputRule;
  /** Total tokens of every answer; by default about a quarter of the characters in and out. */
  readonly tokens?: number;
  /** Pings on open streams. @default 10_000 */
  readonly pingIntervalMs?: number;
  /** Delay between stream chunks. @default 0 */
  readonly streamChunkDelayMs?: number;
  /** Delay between chunks of a `slow` stream. @default 100 */
  readonly slowChunkDelayMs?: number;
  /** Text chunks per streamed answer. @default 3 */
  readonly chunks?: number;
  /** Seed of fault and latency draws. @default 1 */
  readonly seed?: number;
  /** Keep every request (endpoint, case, headers without Authorization, body) for `requests()`. @default false */
  readonly recordRequests?: boolean;
  /** Put the presented key in 401 messages, to test that clients redact it. @default false */
  readonly leakKeyInErrors?: boolean;
  /** Timeline entries kept for `maxInWindow`. @default 100_000 */
  readonly logLimit?: number;
  /** How chat completions for a grader model are graded (see `MockGraderRule`). */
  readonly grader?: MockGraderRule;
  /** Length of `/v1/embeddings` vectors when the request gives no `dimensions`. @default 256 */
  readonly embeddingDimensions?: number;
}

export interface ResolvedMockOptions {
  host: string;
  port: number;
  latency: () => number;
  errorRates: [MockFault, number][];
  retryAfterSeconds: number;
  maxConcurrency: number | undefined;
  rateLimit:
    | {
        perMinute: number;
        burst: number;
        retryAfter: boolean;
        code: 'rate_limit_error' | 'too_many_requests';
      }
    | undefined;
  apiKeys: ReadonlySet<string> | undefined;
  apps: ReadonlyMap<string, DifyAppMode>;
  models: readonly string[];
  requiredInputs: readonly string[];
  output: MockOutputRule;
  tokens: number | undefined;
  pingIntervalMs: number;
  streamChunkDelayMs: number;
  slowChunkDelayMs: number;
  chunks: number;
  random: () => number;
  recordRequests: boolean;
  leakKeyInErrors: boolean;
  logLimit: number;
  grader: ResolvedGraderRule;
  embeddingDimensions: number;
}

function nonNegative(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new InvalidOptionError(field, value, 'a number >= 0');
  return value;
}

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new InvalidOptionError(field, value, 'an integer >= 1');
  return value;
}

/** A sampler for a latency spec, drawing from `random`. */
export function latencySampler(
  spec: LatencySpec,
  random: () => number,
  field = 'latencyMs',
): () => number {
  if (typeof spec === 'number') {
    const ms = nonNegative(spec, field);
    return () => ms;
  }
  if (typeof spec !== 'object' || spec === null)
    throw new InvalidOptionError(
      field,
      spec,
      'ms, { min, max }, { mean, stddev } or { exponential }',
    );
  if ('min' in spec) {
    const min = nonNegative(spec.min, `${field}.min`);
    const max = nonNegative(spec.max, `${field}.max`);
    if (max < min) throw new InvalidOptionError(`${field}.max`, max, `>= min (${min})`);
    return () => min + random() * (max - min);
  }
  if ('mean' in spec) {
    const mean = nonNegative(spec.mean, `${field}.mean`);
    const sd = nonNegative(spec.stddev, `${field}.stddev`);
    return () => {
      // Box-Muller; 1 - u avoids log(0).
      const u = 1 - random();
      const v = random();
      return Math.max(0, mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
    };
  }
  if ('exponential' in spec) {
    const mean = nonNegative(spec.exponential, `${field}.exponential`);
    return () => -mean * Math.log(1 - random());
  }
  throw new InvalidOptionError(
    field,
    spec,
    'ms, { min, max }, { mean, stddev } or { exponential }',
  );
}

/** The limits a running mock can change (`MockServer.setLimits`, `POST /__limits`). */
export interface MockLimits {
  /** The new app concurrency limit; `null` removes it. Absent: unchanged. */
  readonly maxConcurrency?: number | null;
  /** The new requests per minute of the rate limit (the mock must have one). Absent: unchanged. */
  readonly ratePerMinute?: number;
}

/**
 * Applies `limits` to resolved options, from now on: a target whose capacity changes mid-run.
 * Throws InvalidOptionError naming the bad field, and then changes nothing.
 */
export function applyMockLimits(options: ResolvedMockOptions, limits: MockLimits): void {
  if (typeof limits !== 'object' || limits === null)
    throw new InvalidOptionError('limits', limits, '{ maxConcurrency?, ratePerMinute? }');
  const max = limits.maxConcurrency;
  if (max !== undefined && max !== null) positiveInt(max, 'maxConcurrency');
  const rate = limits.ratePerMinute;
  if (rate !== undefined) {
    if (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate))
      throw new InvalidOptionError('ratePerMinute', rate, 'a number > 0');
    if (options.rateLimit === undefined)
      throw new InvalidOptionError('ratePerMinute', rate, 'a mock started with a rateLimit');
  }
  if (max !== undefined) options.maxConcurrency = max ?? undefined;
  if (rate !== undefined) options.rateLimit!.perMinute = rate;
}

/** Merges defaults and validates; throws InvalidOptionError naming the bad field. */
export function resolveMockOptions(o: MockOptions): ResolvedMockOptions {
  const random = seededRandom(o.seed ?? 1);
  const errorRates: [MockFault, number][] = [];
  let total = 0;
  for (const [fault, rate] of Object.entries(o.errorRates ?? {})) {
    if (!MOCK_FAULTS.includes(fault as MockFault))
      throw new InvalidOptionError(`errorRates.${fault}`, fault, MOCK_FAULTS.join(' | '));
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1))
      throw new InvalidOptionError(`errorRates.${fault}`, rate, 'a share in [0, 1]');
    total += rate;
    if (rate > 0) errorRates.push([fault as MockFault, rate]);
  }
  if (total > 1 + 1e-9)
    throw new InvalidOptionError('errorRates', o.errorRates, 'shares summing to at most 1');
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidOptionError('port', port, 'an integer in [0, 65535]');
  let rateLimit: ResolvedMockOptions['rateLimit'];
  if (o.rateLimit !== undefined) {
    const perMinute = o.rateLimit.perMinute;
    if (typeof perMinute !== 'number' || !(perMinute > 0))
      throw new InvalidOptionError('rateLimit.perMinute', perMinute, 'a number > 0');
    const code = o.rateLimit.code ?? 'rate_limit_error';
    if (code !== 'rate_limit_error' && code !== 'too_many_requests')
      throw new InvalidOptionError(
        'rateLimit.code',
        code,
        "'rate_limit_error' or 'too_many_requests'",
      );
    rateLimit = {
      perMinute,
      burst: positiveInt(o.rateLimit.burst ?? 1, 'rateLimit.burst'),
      retryAfter: o.rateLimit.retryAfter ?? false,
      code,
    };
  }
  if (o.apiKeys !== undefined && !Array.isArray(o.apiKeys))
    throw new InvalidOptionError('apiKeys', '(hidden)', 'an array of keys');
  const apps = new Map<string, DifyAppMode>();
  if (o.apps !== undefined) {
    if (typeof o.apps !== 'object' || o.apps === null || Array.isArray(o.apps))
      throw new InvalidOptionError('apps', '(hidden)', 'a mapping of app keys to modes');
    for (const [key, mode] of Object.entries(o.apps)) {
      // The key is a secret: only its mode is shown.
      if (!DIFY_APP_MODES.includes(mode))
        throw new InvalidOptionError('apps.<key>', mode, DIFY_APP_MODES.join(' | '));
      apps.set(key, mode);
    }
  }
  const models = o.models ?? DEFAULT_MODELS;
  if (!Array.isArray(models) || !models.every((m) => typeof m === 'string' && m !== ''))
    throw new InvalidOptionError('models', models, 'a list of model ids');
  // Keys of `apps` are accepted keys too: with either option, only the listed keys pass.
  const keys =
    o.apiKeys === undefined && o.apps === undefined
      ? undefined
      : new Set([...(o.apiKeys ?? []), ...apps.keys()]);
  const output = o.output ?? 'echo';
  if (
    !(
      output === 'echo' ||
      output === 'upper' ||
      output === 'lower' ||
      output === 'reverse' ||
      (typeof output === 'object' &&
        output !== null &&
        (typeof (output as { template?: unknown }).template === 'string' ||
          typeof (output as { lookup?: unknown }).lookup === 'object'))
    )
  )
    throw new InvalidOptionError(
      'output',
      output,
      "'echo' | 'upper' | 'lower' | 'reverse' | { template } | { lookup }",
    );
  return {
    host: o.host ?? '127.0.0.1',
    port,
    latency: latencySampler(o.latencyMs ?? 0, random),
    errorRates,
    retryAfterSeconds: nonNegative(o.retryAfterSeconds ?? 1, 'retryAfterSeconds'),
    maxConcurrency:
      o.maxConcurrency === undefined ? undefined : positiveInt(o.maxConcurrency, 'maxConcurrency'),
    rateLimit,
    apiKeys: keys,
    apps,
    models,
    requiredInputs: o.requiredInputs ?? [],
    output,
    tokens: o.tokens === undefined ? undefined : positiveInt(o.tokens, 'tokens'),
    pingIntervalMs: positiveInt(o.pingIntervalMs ?? 10_000, 'pingIntervalMs'),
    streamChunkDelayMs: nonNegative(o.streamChunkDelayMs ?? 0, 'streamChunkDelayMs'),
    slowChunkDelayMs: nonNegative(o.slowChunkDelayMs ?? 100, 'slowChunkDelayMs'),
    chunks: positiveInt(o.chunks ?? 3, 'chunks'),
    random,
    recordRequests: o.recordRequests ?? false,
    leakKeyInErrors: o.leakKeyInErrors ?? false,
    logLimit: positiveInt(o.logLimit ?? 100_000, 'logLimit'),
    grader: resolveGraderRule(o.grader),
    embeddingDimensions: positiveInt(o.embeddingDimensions ?? 256, 'embeddingDimensions'),
  };
}

/** The text an answer is derived from. */
export function sourceText(query: unknown, inputs: Record<string, unknown>): string {
  if (typeof query === 'string' && query !== '') return query;
  if (typeof inputs.query === 'string') return inputs.query;
  const visible = Object.entries(inputs).filter(([k]) => !k.startsWith('__'));
  const strings = visible.filter(([, v]) => typeof v === 'string');
  if (strings.length === 1) return strings[0]![1] as string;
  return JSON.stringify(Object.fromEntries(visible));
}

function lookupVar(vars: Record<string, unknown>, name: string): string {
  let value: unknown = vars;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null) return '';
    value = (value as Record<string, unknown>)[part];
  }
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The deterministic answer for a request. */
export function deriveOutput(
  rule: MockOutputRule,
  text: string,
  query: unknown,
  inputs: Record<string, unknown>,
): string {
  if (typeof inputs.__output === 'string') return inputs.__output;
  const simple = (r: string): string => {
    switch (r) {
      case 'upper':
        return text.toUpperCase();
      case 'lower':
        return text.toLowerCase();
      case 'reverse':
        return [...text].reverse().join('');
      case 'echo':
        return text;
      default:
        return r;
    }
  };
  if (typeof rule === 'string') return simple(rule);
  if ('template' in rule) {
    const vars = {
      ...inputs,
      inputs,
      query: typeof query === 'string' ? query : inputs.query,
      text,
    };
    return rule.template.replace(/\{\{\s*([^{}\s]+)\s*\}\}/g, (_, name: string) =>
      lookupVar(vars, name),
    );
  }
  const hit = rule.lookup[text];
  if (hit !== undefined) return hit;
  return simple(rule.fallback ?? 'echo');
}

/** Prompt and completion tokens of an answer: fixed, per request, or from the lengths. */
export function tokenSplit(
  fixed: number | undefined,
  text: string,
  out: string,
): { prompt: number; completion: number; total: number } {
  if (fixed !== undefined) {
    const prompt = Math.round(fixed * 0.75);
    return { prompt, completion: fixed - prompt, total: fixed };
  }
  const prompt = 10 + Math.ceil(text.length / 4);
  const completion = 1 + Math.ceil(out.length / 4);
  return { prompt, completion, total: prompt + completion };
}

/** Splits a text into `n` chunks (fewer when the text is short); '' gives one empty chunk. */
export function chunk(text: string, n: number): string[] {
  if (text.length === 0) return [''];
  const size = Math.ceil(text.length / n);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}
