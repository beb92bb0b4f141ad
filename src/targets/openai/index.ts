/**
 * The OpenAI-compatible target: `POST {baseUrl}/chat/completions`, blocking or streaming, with
 * usage tokens reported to the engine and the `x-ratelimit-*` / Retry-After headers parsed for
 * the rate limiter. No retries here: the engine owns the only retry layer.
 */

import type { Dispatcher } from 'undici';
import {
  type AttemptContext,
  InvalidOptionError,
  NonRetryableError,
  type Target,
  type TaskView,
  ValidationError,
} from '../../core/index.js';
import type { ResponseMode } from '../dify/index.js';
import {
  type BaseUrl,
  compact,
  errorFromResponse,
  incompleteStream,
  isRecord,
  num,
  parseBaseUrl,
  publishLimits,
  type RateLimitListener,
  Redactor,
  readText,
  streamError,
  Transport,
  type TransportOptions,
  transportError,
} from '../internal/http.js';
import { parseRateLimitHeaders, type RateLimitInfo } from '../internal/ratelimit.js';
import { readSse } from '../internal/sse.js';

/**
 * Options of an OpenAI-compatible target (OpenAI, Azure-style gateways, vLLM, Ollama, LiteLLM...).
 *
 * @example
 * ```ts
 * const gpt = new OpenAITarget({
 *   baseUrl: 'https://api.openai.com/v1',
 *   apiKey: process.env.OPENAI_API_KEY!,
 *   model: 'gpt-4o-mini',
 *   body: { temperature: 0 },
 * });
 * ```
 */
export interface OpenAITargetOptions extends TransportOptions {
  /** @default 'https://api.openai.com/v1' */
  readonly baseUrl?: string;
  /** Sent as `Authorization: Bearer …`; optional for local servers. Never in a result or error. */
  readonly apiKey?: string;
  readonly model: string;
  /** @default 'blocking' */
  readonly responseMode?: ResponseMode;
  /** Extra request headers (`OpenAI-Organization`, a gateway's own). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Default body fields (`temperature`, `max_tokens`, ...); a case's own fields win. */
  readonly body?: Readonly<Record<string, unknown>>;
  /** Prices per million tokens, to report a cost; without it only tokens are reported. */
  readonly pricePerMillion?: { readonly input: number; readonly output: number };
  /** Rate bucket key. @default `openai:<baseUrl>:<model>` (never the key) */
  readonly key?: string;
  /** Keep the response body (blocking) or the last chunk (streaming) in `raw`. @default false */
  readonly includeRaw?: boolean;
  /** Receives the `x-ratelimit-*` headers of every response. */
  readonly onRateLimits?: RateLimitListener;
}

/**
 * What a case gives an OpenAI target: a string (one user message), `{ messages, ...fields }`, or
 * `{ prompt, system?, ...fields }`. Other fields go into the request body as they are.
 */
export type OpenAIInput =
  | string
  | ({ readonly messages: readonly unknown[] } & Readonly<Record<string, unknown>>)
  | ({ readonly prompt: string; readonly system?: string } & Readonly<Record<string, unknown>>);

/** The result of one chat completion. */
export interface OpenAIOutput {
  /** The assistant message's content ('' for a tool call). */
  readonly text: string;
  readonly finishReason?: string;
  readonly model?: string;
  readonly id?: string;
  readonly toolCalls?: unknown[];
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly totalTokens?: number;
  /** The cost computed from `pricePerMillion`, if given. */
  readonly cost?: number;
  /** What the rate-limit headers said. */
  readonly rateLimits?: RateLimitInfo;
  readonly raw?: unknown;
}

const SERVICE = 'OpenAI-compatible API';

interface CompletionState {
  text: string;
  finishReason?: string | undefined;
  model?: string | undefined;
  id?: string | undefined;
  toolCalls?: unknown[] | undefined;
  /** Streamed tool calls being assembled, by their `index`. */
  toolParts?: Map<number, ToolCallPart> | undefined;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  totalTokens?: number | undefined;
  done: boolean;
  raw?: unknown | undefined;
}

/** One streamed tool call: its first delta names it, later ones append argument text. */
interface ToolCallPart {
  id?: string | undefined;
  type?: string | undefined;
  name?: string | undefined;
  arguments: string;
}

/**
 * Adds one chunk's `delta.tool_calls` to the calls being assembled. OpenAI sends each call's id,
 * type and name once (with `arguments: ""`), then fragments of its arguments, all keyed by
 * `index`; calls may interleave.
 */
function addToolDeltas(parts: Map<number, ToolCallPart>, deltas: readonly unknown[]): void {
  for (const d of deltas) {
    if (!isRecord(d)) continue;
    const id = str(d.id);
    let index = typeof d.index === 'number' ? d.index : undefined;
    if (index === undefined) {
      // No index: a known id continues its call, a new id opens the next one, a bare fragment
      // continues the last call.
      const known = id === undefined ? undefined : [...parts].find(([, p]) => p.id === id)?.[0];
      const last = parts.size === 0 ? -1 : Math.max(...parts.keys());
      index = known ?? (id === undefined ? Math.max(last, 0) : last + 1);
    }
    let part = parts.get(index);
    if (part === undefined) {
      part = { arguments: '' };
      parts.set(index, part);
    }
    part.id ??= id;
    part.type ??= str(d.type);
    const fn = isRecord(d.function) ? d.function : {};
    part.name ??= str(fn.name);
    if (typeof fn.arguments === 'string') part.arguments += fn.arguments;
  }
}

/** The assembled calls in blocking mode's shape (`message.tool_calls`), in index order. */
function assembledToolCalls(parts: Map<number, ToolCallPart>): unknown[] {
  return [...parts.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, p]) =>
      compact<Record<string, unknown>>({
        id: p.id,
        type: p.type ?? 'function',
        function: { name: p.name ?? '', arguments: p.arguments },
      }),
    );
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * An OpenAI-compatible chat model as a Stride Target.
 *
 * @example
 * ```ts
 * const target = new OpenAITarget({ baseUrl: mock.baseUrl, apiKey: 'sk-test', model: 'mock' });
 * const out = await new Run([{ input: 'hello' }], target).start();
 * ```
 */
export class OpenAITarget implements Target<unknown, OpenAIOutput> {
  readonly key: string;
  readonly model: string;
  readonly responseMode: ResponseMode;
  private readonly base: BaseUrl;
  private readonly transport: Transport;
  private readonly redactor: Redactor;
  private readonly defaults: Readonly<Record<string, unknown>>;
  private readonly price: { readonly input: number; readonly output: number } | undefined;
  private readonly includeRaw: boolean;
  private readonly onRateLimits: RateLimitListener | undefined;
  readonly #headers: Record<string, string>;

  constructor(options: OpenAITargetOptions) {
    if (!isRecord(options)) throw new InvalidOptionError('openai', options, 'an options object');
    this.base = parseBaseUrl(options.baseUrl ?? 'https://api.openai.com/v1', 'baseUrl');
    if (typeof options.model !== 'string' || options.model === '')
      throw new InvalidOptionError('model', options.model, 'a non-empty string');
    if (options.apiKey !== undefined && typeof options.apiKey !== 'string')
      throw new InvalidOptionError('apiKey', '(hidden)', 'a string');
    const mode = options.responseMode ?? 'blocking';
    if (mode !== 'blocking' && mode !== 'streaming')
      throw new InvalidOptionError('responseMode', mode, "'blocking' or 'streaming'");
    const price = options.pricePerMillion;
    if (
      price !== undefined &&
      !(isRecord(price) && (num(price.input) ?? -1) >= 0 && (num(price.output) ?? -1) >= 0)
    )
      throw new InvalidOptionError('pricePerMillion', price, '{ input, output } numbers >= 0');
    this.model = options.model;
    this.responseMode = mode;
    this.defaults = options.body ?? {};
    this.price = price;
    this.includeRaw = options.includeRaw ?? false;
    this.onRateLimits = options.onRateLimits;
    this.key = options.key ?? `openai:${this.base.display}:${options.model}`;
    const apiKey = options.apiKey?.trim();
    this.redactor = new Redactor([apiKey, options.apiKey]);
    this.#headers = {
      ...options.headers,
      'content-type': 'application/json',
      accept: mode === 'streaming' ? 'text/event-stream' : 'application/json',
    };
    if (apiKey !== undefined && apiKey !== '') this.#headers.authorization = `Bearer ${apiKey}`;
    this.transport = new Transport(options);
  }

  get dispatcher(): Dispatcher {
    return this.transport.dispatcher;
  }

  async execute(task: TaskView<unknown>, ctx: AttemptContext): Promise<OpenAIOutput> {
    const body = this.toBody(task.input);
    const signal = ctx.signal;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.transport.request({
        origin: this.base.origin,
        path: `${this.base.path}/chat/completions`,
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      throw transportError(SERVICE, err, signal, this.redactor);
    }
    const limits = parseRateLimitHeaders(res.headers);
    publishLimits(ctx, limits, this.onRateLimits);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      let text: string;
      try {
        text = await readText(res.body, this.redactor);
      } catch (err) {
        throw transportError(SERVICE, err, signal, this.redactor);
      }
      throw errorFromResponse(SERVICE, res.statusCode, res.headers, text, this.redactor, limits);
    }
    const state: CompletionState = { text: '', done: false };
    const type = String(res.headers['content-type'] ?? '');
    if (type.includes('text/event-stream')) await this.readStream(res, state, ctx);
    else await this.readBlocking(res, state, ctx);
    const cost = this.costOf(state);
    // Without prices the cost is unknown: reported as absent, never as 0.
    if (state.totalTokens !== undefined || cost !== undefined)
      ctx.reportUsage({
        ...(state.totalTokens === undefined ? {} : { tokens: state.totalTokens }),
        ...(cost === undefined ? {} : { cost }),
      });
    return compact<OpenAIOutput>({
      text: state.text,
      finishReason: state.finishReason,
      model: state.model,
      id: state.id,
      toolCalls: state.toolCalls,
      promptTokens: state.promptTokens,
      completionTokens: state.completionTokens,
      totalTokens: state.totalTokens,
      cost,
      rateLimits: limits,
      raw: state.raw,
    });
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  destroy(): Promise<void> {
    return this.transport.destroy();
  }

  private toBody(input: unknown): Record<string, unknown> {
    const body: Record<string, unknown> = { model: this.model, ...this.defaults };
    if (typeof input === 'string') {
      body.messages = [{ role: 'user', content: input }];
    } else if (isRecord(input) && Array.isArray(input.messages)) {
      Object.assign(body, input);
    } else if (isRecord(input) && typeof input.prompt === 'string') {
      const { prompt, system, ...rest } = input;
      if (system !== undefined && typeof system !== 'string')
        throw new ValidationError('OpenAI input.system must be a string');
      Object.assign(body, rest);
      body.messages =
        system === undefined
          ? [{ role: 'user', content: prompt }]
          : [
              { role: 'system', content: system },
              { role: 'user', content: prompt },
            ];
    } else {
      throw new ValidationError(
        'OpenAI input must be a string, { messages, ... } or { prompt, system?, ... }',
      );
    }
    if (this.responseMode === 'streaming') {
      body.stream = true;
      const opts = isRecord(body.stream_options) ? body.stream_options : {};
      body.stream_options = { include_usage: true, ...opts };
    } else {
      delete body.stream;
      delete body.stream_options;
    }
    return body;
  }

  private async readBlocking(
    res: Dispatcher.ResponseData,
    state: CompletionState,
    ctx: AttemptContext,
  ): Promise<void> {
    let text: string;
    try {
      text = await readText(res.body, this.redactor);
    } catch (err) {
      throw transportError(SERVICE, err, ctx.signal, this.redactor);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new NonRetryableError(
        `${SERVICE} answered HTTP ${res.statusCode} with a body that is not JSON: ${text.slice(0, 120)}`,
      );
    }
    if (!isRecord(body))
      throw new NonRetryableError(`${SERVICE} answered JSON that is not an object`);
    if (this.includeRaw) state.raw = body;
    state.id = str(body.id);
    state.model = str(body.model);
    const choice = Array.isArray(body.choices) && isRecord(body.choices[0]) ? body.choices[0] : {};
    const message = isRecord(choice.message) ? choice.message : {};
    state.text = typeof message.content === 'string' ? message.content : '';
    if (Array.isArray(message.tool_calls)) state.toolCalls = message.tool_calls;
    state.finishReason = str(choice.finish_reason);
    this.applyUsage(state, body.usage);
    state.done = true;
  }

  private async readStream(
    res: Dispatcher.ResponseData,
    state: CompletionState,
    ctx: AttemptContext,
  ): Promise<void> {
    let failure: unknown;
    try {
      for await (const message of readSse(res.body, SERVICE)) {
        const data = message.data.trim();
        if (data === '[DONE]') {
          state.done = true;
          continue;
        }
        let chunk: unknown;
        try {
          chunk = JSON.parse(this.redactor.active ? this.redactor.redact(data) : data);
        } catch {
          continue;
        }
        if (!isRecord(chunk)) continue;
        if (isRecord(chunk.error)) {
          // Some compatible servers report a failure inside the open stream.
          const e = chunk.error;
          const status = num(e.status) ?? num(e.code);
          failure = streamError(
            SERVICE,
            status,
            str(e.code) ?? str(e.type),
            str(e.message),
            this.redactor,
          );
          break;
        }
        state.id ??= str(chunk.id);
        state.model ??= str(chunk.model);
        if (this.includeRaw) state.raw = chunk;
        const choice =
          Array.isArray(chunk.choices) && isRecord(chunk.choices[0]) ? chunk.choices[0] : undefined;
        if (choice !== undefined) {
          const delta = isRecord(choice.delta) ? choice.delta : {};
          if (typeof delta.content === 'string') state.text += delta.content;
          if (Array.isArray(delta.tool_calls)) {
            state.toolParts ??= new Map();
            addToolDeltas(state.toolParts, delta.tool_calls);
          }
          state.finishReason = str(choice.finish_reason) ?? state.finishReason;
        }
        this.applyUsage(state, chunk.usage);
      }
    } catch (err) {
      failure = transportError(SERVICE, err, ctx.signal, this.redactor);
    }
    if (state.toolParts !== undefined) state.toolCalls = assembledToolCalls(state.toolParts);
    if (failure === undefined && !state.done && state.finishReason === undefined)
      failure = incompleteStream(SERVICE, 'the stream closed before [DONE]');
    if (failure === undefined) return;
    // Tokens already counted by the server are paid for, even if the attempt fails.
    if (state.totalTokens !== undefined) ctx.reportUsage({ tokens: state.totalTokens });
    throw failure;
  }

  private applyUsage(state: CompletionState, usage: unknown): void {
    if (!isRecord(usage)) return;
    state.promptTokens = num(usage.prompt_tokens) ?? state.promptTokens;
    state.completionTokens = num(usage.completion_tokens) ?? state.completionTokens;
    state.totalTokens =
      num(usage.total_tokens) ??
      (state.promptTokens !== undefined || state.completionTokens !== undefined
        ? (state.promptTokens ?? 0) + (state.completionTokens ?? 0)
        : state.totalTokens);
  }

  private costOf(state: CompletionState): number | undefined {
    if (this.price === undefined) return undefined;
    if (state.promptTokens === undefined && state.completionTokens === undefined) return undefined;
    return (
      ((state.promptTokens ?? 0) * this.price.input +
        (state.completionTokens ?? 0) * this.price.output) /
      1_000_000
    );
  }
}
