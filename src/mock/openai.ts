/**
 * OpenAI's `POST /v1/chat/completions` as the mock answers it: blocking and streaming (with
 * `stream_options.include_usage`), `x-ratelimit-*` headers on every answer, OpenAI's error
 * envelope. Per-request control values go in the body's `metadata` (or the `x-mock-*` headers).
 */

import { randomUUID } from 'node:crypto';
import { embeddingTokens, gradedText, gradingHangs, mockEmbedding, mockVerdict } from './grader.js';
import { chunk, deriveOutput, tokenSplit } from './options.js';
import type { Exchange, MockCore } from './server.js';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function error(
  ex: Exchange,
  status: number,
  message: string,
  type: string,
  code: string | null,
  headers: Record<string, string> = {},
  param: string | null = null,
): void {
  ex.json(status, { error: { message, type, param, code } }, headers);
}

/** OpenAI's answer to a path or method it does not serve (a 404, also for a wrong method). */
export function openAiInvalidUrl(ex: Exchange, method: string, pathname: string): void {
  error(ex, 404, `Invalid URL (${method} ${pathname})`, 'invalid_request_error', null);
}

/** OpenAI's Bearer check; answers 401 in OpenAI's shape itself when it fails. */
export function openAiAuthorized(core: MockCore, ex: Exchange): boolean {
  const auth = ex.req.headers.authorization;
  const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
  const keys = core.options.apiKeys;
  if (token !== undefined && token !== '' && (keys === undefined || keys.has(token))) return true;
  const shown =
    token === undefined
      ? ''
      : core.options.leakKeyInErrors
        ? token
        : `${token.slice(0, 3)}***${token.slice(-4)}`;
  error(
    ex,
    401,
    token === undefined
      ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
      : `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    'invalid_request_error',
    token === undefined ? null : 'invalid_api_key',
  );
  return false;
}

/** `GET /v1/models` (the list clients fetch first) and `GET /v1/models/{model}`. */
export function handleModels(core: MockCore, ex: Exchange, path: string): void {
  if (!openAiAuthorized(core, ex)) return;
  // A fixed creation time: the same answer on every run.
  const model = (id: string) => ({
    id,
    object: 'model',
    created: 1_700_000_000,
    owned_by: 'stride',
  });
  if (path === '/v1/models') {
    ex.json(200, { object: 'list', data: core.options.models.map(model) });
    return;
  }
  const id = decodeURIComponent(path.slice('/v1/models/'.length));
  if (core.options.models.includes(id)) ex.json(200, model(id));
  else
    error(
      ex,
      404,
      `The model '${id}' does not exist`,
      'invalid_request_error',
      'model_not_found',
      {},
      'model',
    );
}

function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(3))}s`;
  return `${Math.floor(s / 60)}m${Number((s % 60).toFixed(3))}s`;
}

/**
 * Answers an HTTP fault in OpenAI's shape; false when `fault` is not an HTTP one (the caller then
 * answers, or breaks the socket itself).
 */
function openAiFault(
  core: MockCore,
  ex: Exchange,
  fault: string | undefined,
  model: string,
  rateHeaders: () => Record<string, string>,
): boolean {
  switch (fault) {
    case '429':
      error(
        ex,
        429,
        `Rate limit reached for ${model} on requests per min (RPM). Please try again in 1s.`,
        'requests',
        'rate_limit_exceeded',
        {
          ...rateHeaders(),
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': '1s',
        },
      );
      return true;
    case '429-retry-after':
      error(ex, 429, `Rate limit reached for ${model}.`, 'requests', 'rate_limit_exceeded', {
        ...rateHeaders(),
        'retry-after': String(core.options.retryAfterSeconds),
      });
      return true;
    case '429-quota':
      error(
        ex,
        429,
        'You exceeded your current quota, please check your plan and billing details.',
        'insufficient_quota',
        'insufficient_quota',
      );
      return true;
    case '400':
    case 'failed':
      error(ex, 400, "Invalid value for 'messages'.", 'invalid_request_error', 'invalid_value');
      return true;
    case '401':
      error(ex, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
      return true;
    case '403':
      error(
        ex,
        403,
        'You are not allowed to sample from this model',
        'invalid_request_error',
        'model_not_allowed',
      );
      return true;
    case '404':
      error(
        ex,
        404,
        `The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        'model_not_found',
      );
      return true;
    case '500':
    case '502':
    case '503':
    case '504':
      error(
        ex,
        Number(fault),
        'The server had an error while processing your request. Sorry about that!',
        'server_error',
        null,
      );
      return true;
    default:
      return false;
  }
}

/**
 * The mock's limits for an OpenAI request: answers the 429 itself and returns undefined when over
 * them, else takes a slot (given back when the answer ends) and returns the rate headers' source.
 */
function admitOpenAI(
  core: MockCore,
  ex: Exchange,
  model: string,
  tokens: number | undefined,
): (() => Record<string, string>) | undefined {
  const rateHeaders = (): Record<string, string> => {
    const rs = core.rateState();
    return {
      'x-ratelimit-limit-requests': String(rs?.limit ?? 10_000),
      'x-ratelimit-remaining-requests': String(rs?.remaining ?? 9_999),
      'x-ratelimit-reset-requests': fmtDuration(rs?.resetMs ?? 6),
      'x-ratelimit-limit-tokens': '2000000',
      'x-ratelimit-remaining-tokens': String(Math.max(0, 2_000_000 - (tokens ?? 0))),
      'x-ratelimit-reset-tokens': '0s',
    };
  };
  const limit = core.admit();
  if (limit !== undefined) {
    const waitMs = limit.kind === 'rate' ? limit.waitMs : 1000;
    error(
      ex,
      429,
      `Rate limit reached for ${model} on requests per min (RPM): Limit ${core.options.rateLimit?.perMinute ?? 0}. Please try again in ${fmtDuration(waitMs)}.`,
      'requests',
      'rate_limit_exceeded',
      {
        ...rateHeaders(),
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': fmtDuration(waitMs),
      },
    );
    return undefined;
  }
  ex.onFinish(() => core.release());
  return rateHeaders;
}

/** The last user message's text. */
function lastUserText(messages: unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (!isRecord(m) || m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      return m.content
        .map((p) => (isRecord(p) && typeof p.text === 'string' ? p.text : ''))
        .join('');
    }
  }
  return '';
}

/** The request's JSON object, or undefined after answering OpenAI's 400 for anything else. */
function jsonBody(ex: Exchange, text: string | undefined): Record<string, unknown> | undefined {
  let body: unknown;
  try {
    body = text === undefined || text === '' ? undefined : JSON.parse(text);
  } catch {}
  if (isRecord(body)) return body;
  error(
    ex,
    400,
    'We could not parse the JSON body of your request.',
    'invalid_request_error',
    null,
  );
  return undefined;
}

export function handleOpenAI(core: MockCore, ex: Exchange, text: string | undefined): undefined {
  // A request refused before its model is read counts as an app call.
  const refused = (): undefined => {
    core.count(core.stats.byEndpoint, 'openai');
  };
  if (!openAiAuthorized(core, ex)) return refused();
  const body = jsonBody(ex, text);
  if (body === undefined) return refused();
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    error(
      ex,
      400,
      "Missing required parameter: 'messages'.",
      'invalid_request_error',
      'missing_required_parameter',
    );
    return refused();
  }
  if (typeof body.model !== 'string' || body.model === '') {
    error(ex, 400, 'you must provide a model parameter', 'invalid_request_error', null);
    return refused();
  }
  const metadata = isRecord(body.metadata) ? body.metadata : {};
  const src = lastUserText(body.messages);
  const gradeRaw = ex.req.headers['x-mock-grade'] ?? metadata.__grade;
  const override = Array.isArray(gradeRaw)
    ? gradeRaw[0]
    : gradeRaw === undefined
      ? undefined
      : String(gradeRaw);
  const grading = override !== undefined || core.options.grader.models.has(body.model);
  // Gradings are counted apart from app calls, so a test can tell them apart at the mock.
  core.count(core.stats.byEndpoint, grading ? 'grade' : 'openai');
  const ctl = core.control(ex, metadata, grading ? `grade:${gradedText(src)}` : src);
  core.record(ex, grading ? 'grade' : 'openai', ctl.caseKey, body);
  const rateHeaders = admitOpenAI(core, ex, body.model, ctl.tokens);
  if (rateHeaders === undefined) return;
  const inputs: Record<string, unknown> = { ...metadata };
  const out = grading
    ? mockVerdict(core.options.grader, src, override)
    : deriveOutput(core.options.output, src, src, inputs);
  const tokens = tokenSplit(ctl.tokens, src, out);
  const id = `chatcmpl-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
  const created = Math.floor(Date.now() / 1000);
  const model = body.model;
  const fault = ctl.fault;
  const streaming = body.stream === true;
  const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
  if (fault === 'reset') {
    ex.destroy();
    return;
  }
  if (fault === 'hang' && !streaming) return;
  if (grading && override === undefined && gradingHangs(core.options.grader, src)) return;
  const httpFault = (): boolean => openAiFault(core, ex, fault, model, rateHeaders);
  const usage = {
    prompt_tokens: tokens.prompt,
    completion_tokens: tokens.completion,
    total_tokens: tokens.total,
  };
  if (!streaming) {
    ex.later(ctl.latencyMs, () => {
      if (httpFault()) return;
      if (fault === 'break') {
        ex.destroy();
        return;
      }
      if (fault === 'stream-error' || fault === 'stream-error-400') {
        error(
          ex,
          fault === 'stream-error' ? 500 : 400,
          'The server had an error while processing your request.',
          'server_error',
          null,
        );
        return;
      }
      core.charge(tokens.total);
      ex.json(
        200,
        {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: out, refusal: null },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage,
          system_fingerprint: 'fp_stride_mock',
        },
        rateHeaders(),
      );
    });
    return;
  }
  if (fault !== undefined && /^\d{3}/.test(fault)) {
    ex.later(ctl.latencyMs, () => httpFault());
    return;
  }
  ex.openStream(rateHeaders(), false);
  const base = {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    system_fingerprint: 'fp_stride_mock',
  };
  ex.event({
    ...base,
    choices: [
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ],
  });
  if (fault === 'hang') return;
  const pieces = chunk(out, core.options.chunks);
  const half = Math.ceil(pieces.length / 2);
  const delay = fault === 'slow' ? core.options.slowChunkDelayMs : core.options.streamChunkDelayMs;
  const send = (i: number): void => {
    if (fault === 'break' && i === half) {
      ex.destroy();
      return;
    }
    if (i >= pieces.length) {
      core.charge(tokens.total);
      ex.event({
        ...base,
        choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }],
      });
      if (includeUsage) ex.event({ ...base, choices: [], usage });
      ex.event('[DONE]');
      ex.endStream();
      return;
    }
    ex.event({
      ...base,
      choices: [{ index: 0, delta: { content: pieces[i] }, logprobs: null, finish_reason: null }],
    });
    ex.later(delay, () => send(i + 1));
  };
  ex.later(ctl.latencyMs, () => {
    if (fault === 'stream-error' || fault === 'stream-error-400') {
      ex.event({
        error: {
          message: 'The server had an error while processing your request.',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
      ex.endStream();
      return;
    }
    send(0);
  });
}

/**
 * `POST /v1/embeddings`: `input` a string or a list of strings; `dimensions` (default the mock's
 * `embeddingDimensions`); `encoding_format` `float` or `base64`. Deterministic vectors (see
 * `mockEmbedding`), OpenAI's shape with `usage`; the mock's limits, latency and faults apply.
 */
export function handleEmbeddings(core: MockCore, ex: Exchange, text: string | undefined): void {
  if (!openAiAuthorized(core, ex)) return;
  const body = jsonBody(ex, text);
  if (body === undefined) return;
  if (typeof body.model !== 'string' || body.model === '') {
    error(ex, 400, 'you must provide a model parameter', 'invalid_request_error', null);
    return;
  }
  const raw = body.input;
  const inputs = typeof raw === 'string' ? [raw] : raw;
  if (
    !Array.isArray(inputs) ||
    inputs.length === 0 ||
    !inputs.every((t): t is string => typeof t === 'string' && t !== '')
  ) {
    error(
      ex,
      400,
      "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
      'invalid_request_error',
      null,
    );
    return;
  }
  const dimsRaw = body.dimensions ?? core.options.embeddingDimensions;
  if (typeof dimsRaw !== 'number' || !Number.isInteger(dimsRaw) || dimsRaw < 1 || dimsRaw > 4096) {
    error(
      ex,
      400,
      `Invalid value for 'dimensions': ${JSON.stringify(dimsRaw)}.`,
      'invalid_request_error',
      'invalid_value',
      {},
      'dimensions',
    );
    return;
  }
  const base64 = body.encoding_format === 'base64';
  const metadata = isRecord(body.metadata) ? body.metadata : {};
  const ctl = core.control(ex, metadata, `embed:${inputs[0]}`);
  core.record(ex, 'embeddings', ctl.caseKey, body);
  const model = body.model;
  const rateHeaders = admitOpenAI(core, ex, model, ctl.tokens);
  if (rateHeaders === undefined) return;
  if (ctl.fault === 'reset') {
    ex.destroy();
    return;
  }
  if (ctl.fault === 'hang') return;
  ex.later(ctl.latencyMs, () => {
    if (openAiFault(core, ex, ctl.fault, model, rateHeaders)) return;
    if (ctl.fault === 'break') {
      ex.destroy();
      return;
    }
    const tokens = inputs.reduce((n, t) => n + embeddingTokens(t), 0);
    core.charge(tokens);
    ex.json(
      200,
      {
        object: 'list',
        data: inputs.map((t, index) => {
          const v = mockEmbedding(t, dimsRaw);
          return {
            object: 'embedding',
            index,
            embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
          };
        }),
        model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      },
      rateHeaders(),
    );
  });
}
