/**
 * The Dify target: one attempt is one call of a Dify app's Service API (`/workflows/run`,
 * `/chat-messages` or `/completion-messages`), blocking or streaming. No retries here: the
 * engine owns the only retry layer; this file only says what each outcome means.
 */

import type { Dispatcher } from 'undici';
import {
  type AttemptContext,
  InvalidOptionError,
  NonRetryableError,
  type Target,
  TaskFailedError,
  type TaskView,
  ValidationError,
} from '../../core/index.js';
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
import { parseRateLimitHeaders } from '../internal/ratelimit.js';
import { readSse } from '../internal/sse.js';

/** The three Dify app families, by the endpoint they are called on. */
export type DifyApp = 'workflow' | 'chat' | 'completion';

/** Blocking waits for the whole answer; streaming reads server-sent events. */
export type ResponseMode = 'blocking' | 'streaming';

/**
 * Options of a Dify target.
 *
 * @example
 * ```ts
 * const dify = new DifyTarget({
 *   baseUrl: 'http://127.0.0.1:5001/v1',
 *   apiKey: process.env.DIFY_API_KEY!,
 *   app: 'workflow',
 *   responseMode: 'streaming',
 *   user: 'stride-regression',
 * });
 * ```
 */
export interface DifyTargetOptions extends TransportOptions {
  /** The Service API base, `{host}/v1` (Dify Cloud: `https://api.dify.ai/v1`). */
  readonly baseUrl: string;
  /** The app key (`app-…`). Sent only in the Authorization header; never in a result or error. */
  readonly apiKey: string;
  /** Which endpoint to call. @default 'workflow' */
  readonly app?: DifyApp;
  /**
   * Streaming can be stopped upstream on a timeout or cancel (Dify's stop endpoints only affect
   * streaming runs) and is not cut by proxies after 60-100 s. @default 'streaming'
   */
  readonly responseMode?: ResponseMode;
  /** Dify's `user`, sent on every call (runs and stops); a case may override it. @default 'stride' */
  readonly user?: string;
  /** Rate bucket key. @default `dify:<baseUrl>:<app>` (never the key) */
  readonly key?: string;
  /** Extra request headers (for a gateway in front of Dify). */
  readonly headers?: Readonly<Record<string, string>>;
  /** How long a stop call may take before it is abandoned. @default 500 */
  readonly stopTimeoutMs?: number;
  /** Keep the response body (blocking) or the final event (streaming) in `raw`. @default false */
  readonly includeRaw?: boolean;
  /** Receives rate-limit headers, when the server (or a gateway) sends them. */
  readonly onRateLimits?: RateLimitListener;
  /**
   * Receives every parsed stream event (`workflow_started`, `node_finished`, `message`...), for
   * progress displays. Runs synchronously; it must not throw.
   */
  readonly onEvent?: (event: Readonly<Record<string, unknown>>, ctx: AttemptContext) => void;
}

/**
 * What a case gives a Dify target. A case's input is either this envelope or the `inputs` object
 * itself; a string is the query (chat) or `inputs.query` (workflow, completion).
 */
export interface DifyInput {
  /** The app's input variables, sent as they are (`__`-prefixed keys steer the mock). */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The user message (required for chat apps). */
  readonly query?: string;
  /** Continue a chat conversation. */
  readonly conversationId?: string;
  readonly conversation_id?: string;
  /** Dify file objects (`{type, transfer_method, url|upload_file_id}`). */
  readonly files?: readonly unknown[];
  /** Overrides the target's `user` for this case. */
  readonly user?: string;
}

/**
 * The result of one successful Dify call.
 *
 * - `text` is the string to assert on: the answer of a chat/completion app; for a workflow the
 *   `text` output, else `answer`, `result` or `output`, else the only string output, else the
 *   outputs as JSON.
 * - Tokens and price: blocking workflows give tokens only (Dify sends no price there); streaming
 *   workflows sum `total_price` over `node_finished` events; chat/completion read
 *   `metadata.usage`. The same figures are reported to the engine through `ctx.reportUsage`
 *   (`cost` is `totalPrice` in `currency`, not converted).
 */
export interface DifyOutput {
  readonly app: DifyApp;
  readonly text: string;
  /** Workflow outputs; `{}` for chat and completion apps. */
  readonly outputs: Record<string, unknown>;
  /** The answer of a chat/completion app. */
  readonly answer?: string;
  /** Workflow status (`succeeded`, `partial-succeeded`), or `succeeded` for messages. */
  readonly status: string;
  readonly workflowRunId?: string;
  /** Dify's task id: what the stop endpoints take. */
  readonly taskId?: string;
  readonly messageId?: string;
  readonly conversationId?: string;
  readonly totalTokens?: number;
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly totalPrice?: number;
  /** `USD` or `RMB`, as Dify reports it. */
  readonly currency?: string;
  /** Seconds, as Dify reports them (`elapsed_time`, or `usage.latency` for messages). */
  readonly elapsedTime?: number;
  /** The raw response (blocking) or final event (streaming), with `includeRaw`. */
  readonly raw?: unknown;
}

const SERVICE = 'Dify';

/**
 * Dify's 429 `rate_limit_error` is its billing quota (a Cloud plan's requests per day, a
 * workflow quota), unlike `too_many_requests`, the app's concurrency limit. Dify's own guide
 * says not to retry it until the quota resets (docs.dify.ai, API errors).
 */
const DIFY_QUOTA_CODES: ReadonlySet<string> = new Set(['rate_limit_error']);
const ENDPOINT: Record<DifyApp, string> = {
  workflow: '/workflows/run',
  chat: '/chat-messages',
  completion: '/completion-messages',
};

interface DifyRequest {
  inputs: Record<string, unknown>;
  query: string | undefined;
  conversationId: string | undefined;
  files: readonly unknown[] | undefined;
  user: string;
}

/** What a run told us so far; filled by blocking bodies and stream events alike. */
interface RunState {
  taskId?: string | undefined;
  workflowRunId?: string | undefined;
  messageId?: string | undefined;
  conversationId?: string | undefined;
  outputs?: Record<string, unknown> | undefined;
  status?: string | undefined;
  error?: string | undefined;
  answer: string;
  totalTokens?: number | undefined;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  price?: number | undefined;
  currency?: string | undefined;
  elapsedTime?: number | undefined;
  /** Tokens and price summed over node_finished events (streaming workflows). */
  nodeTokens: number;
  nodePrice: number;
  nodePriced: boolean;
  finished: boolean;
  raw?: unknown | undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The text to assert on, from a workflow's outputs. */
export function workflowText(outputs: Record<string, unknown>): string {
  for (const k of ['text', 'answer', 'result', 'output']) {
    const v = outputs[k];
    if (typeof v === 'string') return v;
  }
  const strings = Object.values(outputs).filter((v): v is string => typeof v === 'string');
  if (strings.length === 1) return strings[0]!;
  return JSON.stringify(outputs);
}

/**
 * A Dify app as a Stride Target.
 *
 * @example
 * ```ts
 * const target = new DifyTarget({ baseUrl, apiKey, app: 'chat' });
 * const result = await new Run(cases, target, { concurrency: 5, timeoutMs: 60_000 }).start();
 * await target.close();
 * ```
 */
export class DifyTarget implements Target<unknown, DifyOutput> {
  readonly key: string;
  readonly app: DifyApp;
  readonly responseMode: ResponseMode;
  readonly user: string;
  private readonly base: BaseUrl;
  private readonly transport: Transport;
  private readonly redactor: Redactor;
  private readonly stopTimeoutMs: number;
  private readonly includeRaw: boolean;
  private readonly onRateLimits: RateLimitListener | undefined;
  private readonly onEvent: DifyTargetOptions['onEvent'];
  // Private fields: never enumerated by JSON.stringify or util.inspect.
  readonly #headers: Record<string, string>;
  readonly #stopHeaders: Record<string, string>;

  constructor(options: DifyTargetOptions) {
    if (!isRecord(options)) throw new InvalidOptionError('dify', options, 'an options object');
    this.base = parseBaseUrl(options.baseUrl, 'baseUrl');
    if (typeof options.apiKey !== 'string' || options.apiKey.trim() === '') {
      // Never show the value: it is a secret, even when malformed.
      throw new InvalidOptionError(
        'apiKey',
        options.apiKey === undefined ? undefined : '(hidden)',
        'a non-empty string',
      );
    }
    const app = options.app ?? 'workflow';
    if (app !== 'workflow' && app !== 'chat' && app !== 'completion')
      throw new InvalidOptionError('app', app, "'workflow', 'chat' or 'completion'");
    const mode = options.responseMode ?? 'streaming';
    if (mode !== 'blocking' && mode !== 'streaming')
      throw new InvalidOptionError('responseMode', mode, "'blocking' or 'streaming'");
    const user = options.user ?? 'stride';
    if (typeof user !== 'string' || user === '')
      throw new InvalidOptionError('user', user, 'a non-empty string');
    const stopTimeoutMs = options.stopTimeoutMs ?? 500;
    if (!Number.isFinite(stopTimeoutMs) || stopTimeoutMs <= 0)
      throw new InvalidOptionError('stopTimeoutMs', stopTimeoutMs, 'a number > 0');
    this.app = app;
    this.responseMode = mode;
    this.user = user;
    this.stopTimeoutMs = stopTimeoutMs;
    this.includeRaw = options.includeRaw ?? false;
    this.onRateLimits = options.onRateLimits;
    this.onEvent = options.onEvent;
    this.key = options.key ?? `dify:${this.base.display}:${app}`;
    const apiKey = options.apiKey.trim();
    this.redactor = new Redactor([apiKey, options.apiKey]);
    const common = {
      ...options.headers,
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
    };
    this.#headers = {
      ...common,
      accept: mode === 'streaming' ? 'text/event-stream' : 'application/json',
    };
    this.#stopHeaders = { ...common, accept: 'application/json' };
    this.transport = new Transport(options);
  }

  /** The undici dispatcher this target sends through. */
  get dispatcher(): Dispatcher {
    return this.transport.dispatcher;
  }

  async execute(task: TaskView<unknown>, ctx: AttemptContext): Promise<DifyOutput> {
    const req = this.toRequest(task.input);
    const payload: Record<string, unknown> = {
      inputs: req.inputs,
      response_mode: this.responseMode,
      user: req.user,
    };
    if (req.query !== undefined) payload.query = req.query;
    if (req.conversationId !== undefined) payload.conversation_id = req.conversationId;
    if (req.files !== undefined) payload.files = req.files;
    const signal = ctx.signal;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.transport.request({
        origin: this.base.origin,
        path: `${this.base.path}${ENDPOINT[this.app]}`,
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify(payload),
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
      throw errorFromResponse(
        SERVICE,
        res.statusCode,
        res.headers,
        text,
        this.redactor,
        limits,
        DIFY_QUOTA_CODES,
      );
    }
    const type = String(res.headers['content-type'] ?? '');
    const state: RunState = {
      answer: '',
      nodeTokens: 0,
      nodePrice: 0,
      nodePriced: false,
      finished: false,
    };
    if (type.includes('text/event-stream')) await this.readStream(res, state, req.user, ctx);
    else await this.readBlocking(res, state, ctx);
    return this.settle(state, ctx);
  }

  /** Closes this target's connection pool (a borrowed dispatcher is left open). */
  close(): Promise<void> {
    return this.transport.close();
  }

  /** Closes every socket now. */
  destroy(): Promise<void> {
    return this.transport.destroy();
  }

  // ------------------------------------------------------------------ input

  /** Reads a case input into a request; a shape that can never work is a ValidationError. */
  private toRequest(input: unknown): DifyRequest {
    if (typeof input === 'string') {
      return this.app === 'chat'
        ? this.request({}, input, undefined, undefined, undefined)
        : this.request({ query: input }, undefined, undefined, undefined, undefined);
    }
    if (!isRecord(input))
      throw new ValidationError(
        `Dify input must be an object ({ inputs, query? } or the inputs themselves) or a string, got ${Array.isArray(input) ? 'an array' : typeof input}`,
      );
    if (isRecord(input.inputs)) {
      const query = input.query;
      if (query !== undefined && typeof query !== 'string')
        throw new ValidationError('Dify input.query must be a string');
      const conv = input.conversationId ?? input.conversation_id;
      if (conv !== undefined && typeof conv !== 'string')
        throw new ValidationError('Dify input.conversationId must be a string');
      const files = input.files;
      if (files !== undefined && !Array.isArray(files))
        throw new ValidationError('Dify input.files must be an array');
      const user = input.user;
      if (user !== undefined && (typeof user !== 'string' || user === ''))
        throw new ValidationError('Dify input.user must be a non-empty string');
      return this.request(input.inputs, query, conv, files, user);
    }
    if (input.inputs !== undefined)
      throw new ValidationError('Dify input.inputs must be an object');
    if (this.app === 'chat') {
      const { query, ...rest } = input;
      if (query !== undefined && typeof query !== 'string')
        throw new ValidationError('Dify input.query must be a string');
      return this.request(rest, query, undefined, undefined, undefined);
    }
    return this.request(input, undefined, undefined, undefined, undefined);
  }

  private request(
    inputs: Record<string, unknown>,
    query: string | undefined,
    conversationId: string | undefined,
    files: readonly unknown[] | undefined,
    user: string | undefined,
  ): DifyRequest {
    if (this.app === 'chat' && query === undefined)
      throw new ValidationError('a Dify chat app needs a query: give input.query');
    return { inputs, query, conversationId, files, user: user ?? this.user };
  }

  // ------------------------------------------------------------------ responses

  private async readBlocking(
    res: Dispatcher.ResponseData,
    state: RunState,
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
      throw new NonRetryableError(`${SERVICE} answered with JSON that is not an object`);
    if (this.includeRaw) state.raw = body;
    state.taskId = str(body.task_id);
    if (this.app === 'workflow') {
      state.workflowRunId = str(body.workflow_run_id);
      const data = isRecord(body.data) ? body.data : {};
      this.applyWorkflowData(state, data);
      state.workflowRunId ??= str(data.id);
    } else {
      this.applyMessage(state, body);
      state.answer = typeof body.answer === 'string' ? body.answer : '';
      if (isRecord(body.metadata)) this.applyUsage(state, body.metadata.usage);
    }
    state.finished = true;
  }

  /**
   * Reads the event stream. On any abnormal end while the run is still going upstream (our
   * timeout or cancel, a broken socket), the run's stop endpoint is called with its task_id so
   * the work stops there too; the attempt settles once the stop call returns or its own short
   * timeout passes, so the slot is never held longer than `stopTimeoutMs` for it.
   */
  private async readStream(
    res: Dispatcher.ResponseData,
    state: RunState,
    user: string,
    ctx: AttemptContext,
  ): Promise<void> {
    const terminal = this.app === 'workflow' ? 'workflow_finished' : 'message_end';
    let failure: unknown;
    try {
      for await (const message of readSse(res.body, SERVICE)) {
        if (message.event === 'ping') continue;
        let event: unknown;
        try {
          event = JSON.parse(
            this.redactor.active ? this.redactor.redact(message.data) : message.data,
          );
        } catch {
          continue; // Not JSON: not a Dify event. Unknown events are ignored, as Dify asks.
        }
        if (!isRecord(event)) continue;
        const kind = event.event;
        state.taskId ??= str(event.task_id);
        this.onEvent?.(event, ctx);
        if (kind === 'error') {
          failure = streamError(
            SERVICE,
            num(event.status),
            str(event.code),
            str(event.message),
            this.redactor,
          );
          break;
        }
        this.applyEvent(state, kind, event);
        if (kind === terminal) {
          state.finished = true;
          if (this.includeRaw) state.raw = event;
        }
      }
    } catch (err) {
      // A socket that breaks after the final event loses nothing: the answer is complete.
      if (!state.finished || ctx.signal.aborted)
        failure = transportError(SERVICE, err, ctx.signal, this.redactor);
    }
    if (failure === undefined && !state.finished) {
      failure = incompleteStream(SERVICE, `the stream closed before ${terminal}`);
    }
    if (failure === undefined) return;
    // Paid work is reported even when the attempt fails: every attempt is paid for.
    this.report(state, ctx);
    // An `error` event ends the run upstream; an abort or a broken stream may leave it running.
    const mayBeRunning =
      ctx.signal.aborted || (failure as { code?: unknown }).code === 'NETWORK_ERROR';
    if (mayBeRunning && state.taskId !== undefined && !state.finished)
      await this.stop(state.taskId, user);
    throw failure;
  }

  private applyEvent(state: RunState, kind: unknown, event: Record<string, unknown>): void {
    const data = isRecord(event.data) ? event.data : undefined;
    switch (kind) {
      case 'workflow_started':
        state.workflowRunId ??= str(event.workflow_run_id) ?? str(data?.id);
        break;
      case 'node_finished': {
        const meta =
          data !== undefined && isRecord(data.execution_metadata)
            ? data.execution_metadata
            : undefined;
        if (meta !== undefined) {
          state.nodeTokens += num(meta.total_tokens) ?? 0;
          const price = num(meta.total_price);
          if (price !== undefined) {
            state.nodePrice += price;
            state.nodePriced = true;
          }
          state.currency ??= str(meta.currency);
        }
        break;
      }
      case 'workflow_finished':
        state.workflowRunId ??= str(event.workflow_run_id);
        if (data !== undefined) this.applyWorkflowData(state, data);
        break;
      case 'message':
      case 'agent_message':
        this.applyMessage(state, event);
        if (typeof event.answer === 'string') state.answer += event.answer;
        break;
      case 'message_replace':
        if (typeof event.answer === 'string') state.answer = event.answer;
        break;
      case 'message_end':
        this.applyMessage(state, event);
        if (isRecord(event.metadata)) this.applyUsage(state, event.metadata.usage);
        break;
      default:
        // text_chunk, node_started, iterations, tts, agent thoughts...: nothing to keep.
        break;
    }
  }

  private applyWorkflowData(state: RunState, data: Record<string, unknown>): void {
    state.outputs = isRecord(data.outputs) ? data.outputs : {};
    state.status = str(data.status) ?? state.status;
    state.error = str(data.error);
    state.totalTokens = num(data.total_tokens) ?? state.totalTokens;
    state.elapsedTime = num(data.elapsed_time) ?? state.elapsedTime;
  }

  private applyMessage(state: RunState, event: Record<string, unknown>): void {
    state.messageId ??= str(event.message_id) ?? str(event.id);
    state.conversationId ??= str(event.conversation_id);
  }

  private applyUsage(state: RunState, usage: unknown): void {
    if (!isRecord(usage)) return;
    state.totalTokens = num(usage.total_tokens) ?? state.totalTokens;
    state.promptTokens = num(usage.prompt_tokens) ?? state.promptTokens;
    state.completionTokens = num(usage.completion_tokens) ?? state.completionTokens;
    state.price = num(usage.total_price) ?? state.price;
    state.currency = str(usage.currency) ?? state.currency;
    state.elapsedTime = num(usage.latency) ?? state.elapsedTime;
  }

  private tokens(state: RunState): number | undefined {
    return state.totalTokens ?? (state.nodeTokens > 0 ? state.nodeTokens : undefined);
  }

  private price(state: RunState): number | undefined {
    return state.price ?? (state.nodePriced ? state.nodePrice : undefined);
  }

  private report(state: RunState, ctx: AttemptContext): void {
    const tokens = this.tokens(state);
    const cost = this.price(state);
    if (tokens === undefined && cost === undefined) return;
    // What Dify did not send stays absent (a blocking workflow has no price): unknown, not 0.
    ctx.reportUsage({
      ...(tokens === undefined ? {} : { tokens }),
      ...(cost === undefined ? {} : { cost }),
    });
  }

  private settle(state: RunState, ctx: AttemptContext): DifyOutput {
    this.report(state, ctx);
    const outputs = state.outputs ?? {};
    const isWorkflow = this.app === 'workflow';
    const status = isWorkflow ? (state.status ?? 'succeeded') : 'succeeded';
    const output = compact<DifyOutput>({
      app: this.app,
      text: isWorkflow ? workflowText(outputs) : state.answer,
      outputs,
      answer: isWorkflow ? undefined : state.answer,
      status,
      workflowRunId: state.workflowRunId,
      taskId: state.taskId,
      messageId: state.messageId,
      conversationId: state.conversationId,
      totalTokens: this.tokens(state),
      promptTokens: state.promptTokens,
      completionTokens: state.completionTokens,
      totalPrice: this.price(state),
      currency: state.currency,
      elapsedTime: state.elapsedTime,
      raw: state.raw,
    });
    if (isWorkflow && status !== 'succeeded' && status !== 'partial-succeeded') {
      // A failed workflow is still HTTP 200: the run happened and its answer is a failure.
      throw new TaskFailedError(
        this.redactor.redact(
          `Dify workflow ${status}${state.error === undefined ? '' : `: ${state.error}`}`,
        ),
        { output },
      );
    }
    return output;
  }

  /** Calls the stop endpoint of a streaming run. Never throws; bounded by `stopTimeoutMs`. */
  private async stop(taskId: string, user: string): Promise<void> {
    const id = encodeURIComponent(taskId);
    const path =
      this.app === 'workflow'
        ? `/workflows/tasks/${id}/stop`
        : this.app === 'chat'
          ? `/chat-messages/${id}/stop`
          : `/completion-messages/${id}/stop`;
    try {
      const res = await this.transport.request({
        origin: this.base.origin,
        path: `${this.base.path}${path}`,
        method: 'POST',
        headers: this.#stopHeaders,
        body: JSON.stringify({ user }),
        signal: AbortSignal.timeout(this.stopTimeoutMs),
      });
      await res.body.dump();
    } catch {
      // Best effort: the run upstream ends by itself at Dify's execution cap.
    }
  }
}
