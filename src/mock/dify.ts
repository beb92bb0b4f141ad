/**
 * Dify's Service API as the mock answers it: `/workflows/run`, `/chat-messages`,
 * `/completion-messages` (blocking and streaming) and their stop endpoints, with the newest
 * response shapes of shared/reference/dify-api.md.
 */

import { randomUUID } from 'node:crypto';
import {
  chunk,
  type DifyAppMode,
  deriveOutput,
  type MockFault,
  sourceText,
  tokenSplit,
} from './options.js';
import { difyAuthorized, type Exchange, type MockCore } from './server.js';
import { price, type Run, stepsOf, workflowData, workflowStream } from './workflow.js';

export type DifyApp = 'workflow' | 'chat' | 'completion';

const APP_ID = '6c8c3f41-2c6f-4e1b-8f4f-7f11c8f2ad2a';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const conversations = new WeakMap<MockCore, Set<string>>();

function fail(
  ex: Exchange,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): void {
  ex.json(status, { code, message, status }, headers);
}

function proxyPage(ex: Exchange, status: number): void {
  const title =
    status === 502
      ? '502 Bad Gateway'
      : status === 503
        ? '503 Service Temporarily Unavailable'
        : '504 Gateway Time-out';
  ex.raw(
    status,
    'text/html',
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function usage(tokens: { prompt: number; completion: number; total: number }, latencyS: number) {
  const p = price(tokens);
  return {
    prompt_tokens: tokens.prompt,
    prompt_unit_price: '0.001',
    prompt_price_unit: '0.001',
    prompt_price: p.prompt,
    completion_tokens: tokens.completion,
    completion_unit_price: '0.002',
    completion_price_unit: '0.001',
    completion_price: p.completion,
    total_tokens: tokens.total,
    total_price: p.total,
    currency: 'USD',
    latency: latencyS,
    time_to_first_token: null,
    time_to_generate: null,
  };
}

/** The mode of the app the request's key is bound to; undefined: a key that serves every route. */
function appModeOf(core: MockCore, ex: Exchange): DifyAppMode | undefined {
  const token = ex.req.headers.authorization?.split(' ', 2)[1];
  return token === undefined ? undefined : core.options.apps.get(token);
}

/** What each route accepts, and what Dify answers an app of another mode (checked first). */
const ROUTE_MODES: Readonly<
  Record<DifyApp, { modes: readonly DifyAppMode[]; code: string; message: string }>
> = {
  workflow: {
    modes: ['workflow'],
    code: 'not_workflow_app',
    message: 'Please check if your Workflow app mode matches the right API route.',
  },
  chat: {
    modes: ['chat', 'agent-chat', 'advanced-chat'],
    code: 'not_chat_app',
    message: 'Please check if your app mode matches the right API route.',
  },
  completion: {
    modes: ['completion'],
    code: 'app_unavailable',
    message: 'App unavailable, please check your app configurations.',
  },
};

/** Answers 400 when the key's app has another mode than the route's; true if it did. */
function wrongMode(core: MockCore, ex: Exchange, app: DifyApp): boolean {
  const mode = appModeOf(core, ex);
  const route = ROUTE_MODES[app];
  if (mode === undefined || route.modes.includes(mode)) return false;
  fail(ex, 400, route.code, route.message);
  return true;
}

/**
 * The answers every fault that is an HTTP error gets, as Dify (or the proxy in front of it)
 * sends them. Returns false for faults that are not an HTTP error.
 */
function httpFault(core: MockCore, ex: Exchange, fault: MockFault, app: DifyApp): boolean {
  switch (fault) {
    case '429':
      fail(
        ex,
        429,
        'too_many_requests',
        `Too many requests. Please try again later. The current maximum concurrent requests allowed for ${APP_ID} is ${core.options.maxConcurrency ?? 5}.`,
      );
      return true;
    case '429-retry-after':
      fail(ex, 429, 'too_many_requests', 'Too many requests. Please try again later.', {
        'retry-after': String(core.options.retryAfterSeconds),
      });
      return true;
    case '429-quota':
      fail(
        ex,
        429,
        'rate_limit_error',
        'Rate limit exceeded, please upgrade your plan or your RPD was 5000 requests/day',
      );
      return true;
    case '400':
      fail(ex, 400, 'invalid_param', 'query is required in input form');
      return true;
    case '401':
      fail(ex, 401, 'unauthorized', 'Access token is invalid', {
        'www-authenticate': 'Bearer realm="api"',
      });
      return true;
    case '403':
      fail(ex, 403, 'forbidden', "The app's API service has been disabled.");
      return true;
    case '404':
      fail(
        ex,
        404,
        'not_found',
        app === 'workflow' ? 'Workflow not found.' : 'Conversation Not Exists.',
      );
      return true;
    case '500':
      fail(
        ex,
        500,
        'internal_server_error',
        'The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.',
      );
      return true;
    case '502':
    case '503':
    case '504':
      proxyPage(ex, Number(fault));
      return true;
    default:
      return false;
  }
}

/** POST /v1/workflows/run, /v1/chat-messages, /v1/completion-messages. */
export function handleDifyRun(
  core: MockCore,
  ex: Exchange,
  app: DifyApp,
  text: string | undefined,
): void {
  if (!difyAuthorized(core, ex) || wrongMode(core, ex, app)) return;
  let body: unknown;
  try {
    body = text === undefined || text.trim() === '' ? undefined : JSON.parse(text);
  } catch {}
  if (!isRecord(body)) {
    fail(ex, 400, 'invalid_param', 'Invalid JSON payload received or JSON payload is empty.');
    return;
  }
  if (typeof body.user !== 'string' || body.user === '') {
    fail(ex, 400, 'invalid_param', 'Arg user must be provided.');
    return;
  }
  if (!isRecord(body.inputs)) {
    fail(ex, 400, 'invalid_param', 'inputs is required and must be a JSON object');
    return;
  }
  const inputs = body.inputs;
  const mode = body.response_mode ?? 'blocking';
  if (mode !== 'blocking' && mode !== 'streaming') {
    fail(ex, 400, 'invalid_param', "response_mode must be 'blocking' or 'streaming'");
    return;
  }
  const query = body.query;
  if (app === 'chat' && (typeof query !== 'string' || query === '')) {
    fail(ex, 400, 'invalid_param', 'query is required');
    return;
  }
  let known = conversations.get(core);
  if (known === undefined) {
    known = new Set();
    conversations.set(core, known);
  }
  let conversationId: string | undefined;
  if (app === 'chat') {
    const given = body.conversation_id;
    if (given !== undefined && given !== '' && given !== null) {
      if (typeof given !== 'string' || !UUID.test(given)) {
        fail(ex, 400, 'invalid_param', `${String(given)} is not a valid uuid`);
        return;
      }
      if (!known.has(given)) {
        fail(ex, 404, 'not_found', 'Conversation Not Exists.');
        return;
      }
      conversationId = given;
    } else {
      conversationId = randomUUID();
      known.add(conversationId);
    }
  }
  if (app !== 'chat') {
    for (const name of core.options.requiredInputs) {
      const v = inputs[name];
      if (v === undefined || v === null || v === '') {
        fail(ex, 400, 'invalid_param', `${name} is required in input form`);
        return;
      }
    }
  }
  const src = sourceText(query, inputs);
  const ctl = core.control(ex, inputs, src);
  core.record(ex, app, ctl.caseKey, body);
  const limit = core.admit();
  if (limit !== undefined) {
    if (limit.kind === 'concurrency') {
      fail(
        ex,
        429,
        'too_many_requests',
        `Too many requests. Please try again later. The current maximum concurrent requests allowed for ${APP_ID} is ${limit.limit}.`,
      );
    } else {
      const rl = core.options.rateLimit!;
      fail(
        ex,
        429,
        rl.code,
        rl.code === 'too_many_requests'
          ? `Too many requests. Please try again later. The rate limit is ${rl.perMinute} requests/minute.`
          : `Rate limit exceeded, please upgrade your plan or your RPM was ${rl.perMinute} requests/minute`,
        rl.retryAfter ? { 'retry-after': String(Math.max(1, Math.ceil(limit.waitMs / 1000))) } : {},
      );
    }
    return;
  }
  ex.onFinish(() => core.release());
  const out = deriveOutput(core.options.output, src, query, inputs);
  const tokens = tokenSplit(ctl.tokens, src, out);
  const run: Run = {
    app,
    mode: appModeOf(core, ex) ?? app,
    taskId: randomUUID(),
    runId: randomUUID(),
    messageId: randomUUID(),
    conversationId,
    out,
    tokens,
    ctl,
    inputs,
    user: body.user,
    created: Math.floor(Date.now() / 1000),
  };
  if (ctl.fault === 'reset') {
    ex.destroy();
    return;
  }
  if (mode === 'streaming') stream(core, ex, run);
  else blocking(core, ex, run);
}

function blocking(core: MockCore, ex: Exchange, run: Run): void {
  const fault = run.ctl.fault;
  if (fault === 'hang') return;
  ex.later(run.ctl.latencyMs, () => {
    if (fault !== undefined && httpFault(core, ex, fault, run.app)) return;
    if (fault === 'break') {
      ex.destroy();
      return;
    }
    const elapsed = run.ctl.latencyMs / 1000;
    if (fault === 'stream-error' || fault === 'stream-error-400') {
      // Blocking mode turns the same failures into HTTP errors.
      if (fault === 'stream-error')
        fail(ex, 500, 'internal_server_error', 'Internal Server Error, please contact support.');
      else fail(ex, 400, 'invalid_param', 'Run failed: [mock] injected failure');
      return;
    }
    if (run.app === 'workflow') {
      const failed = fault === 'failed';
      core.charge(run.tokens.total);
      ex.json(200, {
        task_id: run.taskId,
        workflow_run_id: run.runId,
        data: workflowData(
          run,
          failed ? 'failed' : 'succeeded',
          failed ? 'Node LLM run failed: [mock] injected failure' : null,
          elapsed,
          stepsOf(failed),
        ),
      });
      return;
    }
    if (fault === 'failed') {
      fail(ex, 400, 'completion_request_error', '[mock] injected model failure');
      return;
    }
    core.charge(run.tokens.total);
    const message: Record<string, unknown> = {
      event: 'message',
      task_id: run.taskId,
      id: run.messageId,
      message_id: run.messageId,
    };
    if (run.app === 'chat') message.conversation_id = run.conversationId;
    Object.assign(message, {
      mode: run.mode,
      answer: run.out,
      metadata: { usage: usage(run.tokens, elapsed), retriever_resources: [] },
      created_at: run.created,
    });
    ex.json(200, message);
  });
}

function stream(core: MockCore, ex: Exchange, run: Run): void {
  const fault = run.ctl.fault;
  // The limiter and quota run before the stream opens: their 429s are plain JSON.
  if (fault !== undefined && /^\d{3}/.test(fault)) {
    ex.later(run.ctl.latencyMs, () => httpFault(core, ex, fault, run.app));
    return;
  }
  ex.openStream();
  ex.taskId = run.taskId;
  ex.hangs = fault === 'hang';
  core.running.set(run.taskId, ex);
  const delay = fault === 'slow' ? core.options.slowChunkDelayMs : core.options.streamChunkDelayMs;
  const chunks = chunk(run.out, core.options.chunks);
  const half = Math.ceil(chunks.length / 2);
  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  if (run.app === 'workflow') workflowStream(core, ex, run, chunks, half, delay, elapsed);
  else messageStream(core, ex, run, chunks, half, delay, elapsed);
}

function messageStream(
  core: MockCore,
  ex: Exchange,
  run: Run,
  chunks: string[],
  half: number,
  delay: number,
  elapsed: () => number,
): void {
  const fault = run.ctl.fault;
  const base: Record<string, unknown> = {
    message_id: run.messageId,
    created_at: run.created,
    task_id: run.taskId,
    id: run.messageId,
  };
  if (run.app === 'chat') base.conversation_id = run.conversationId;
  const end = (tokens: { prompt: number; completion: number; total: number }): void => {
    ex.event({
      event: 'message_end',
      ...base,
      metadata: { usage: usage(tokens, elapsed()), retriever_resources: [] },
      files: [],
    });
    ex.endStream();
  };
  // The first chunk carries the task id at once, so a client can stop the run from the start.
  ex.event({ event: 'message', ...base, answer: '' });
  ex.onStop = () => end({ prompt: 0, completion: 0, total: 0 });
  if (fault === 'hang') return;
  const send = (i: number): void => {
    if (fault === 'break' && i === half) {
      ex.destroy();
      return;
    }
    if (i >= chunks.length) {
      core.charge(run.tokens.total);
      end(run.tokens);
      return;
    }
    ex.event({ event: 'message', ...base, answer: chunks[i] });
    ex.later(delay, () => send(i + 1));
  };
  ex.later(run.ctl.latencyMs, () => {
    if (fault === 'stream-error' || fault === 'stream-error-400' || fault === 'failed') {
      const is500 = fault === 'stream-error';
      ex.event({
        event: 'error',
        ...base,
        code: is500
          ? 'internal_server_error'
          : fault === 'failed'
            ? 'completion_request_error'
            : 'invalid_param',
        status: is500 ? 500 : 400,
        message: is500
          ? 'Internal Server Error, please contact support.'
          : 'Run failed: [mock] injected failure',
      });
      ex.endStream();
      return;
    }
    send(0);
  });
}

/** POST /v1/workflows/tasks/:id/stop, /v1/chat-messages/:id/stop, /v1/completion-messages/:id/stop. */
export function handleDifyStop(
  core: MockCore,
  ex: Exchange,
  app: DifyApp,
  taskId: string,
  text: string | undefined,
): void {
  if (!difyAuthorized(core, ex) || wrongMode(core, ex, app)) return;
  let body: unknown;
  try {
    body = text === undefined || text === '' ? undefined : JSON.parse(text);
  } catch {}
  if (!isRecord(body) || typeof body.user !== 'string' || body.user === '') {
    fail(ex, 400, 'invalid_param', 'Arg user must be provided.');
    return;
  }
  core.record(ex, 'stop', undefined, body);
  core.stats.stops++;
  if (core.stats.stoppedTaskIds.length < 10_000) core.stats.stoppedTaskIds.push(taskId);
  // Stopping sets a flag upstream; the run ends `stopped` and its stream closes.
  const live = core.running.get(taskId);
  if (live !== undefined) {
    core.stats.stoppedLive++;
    core.running.delete(taskId);
    live.onStop?.();
  }
  ex.json(200, { result: 'success' });
}

/** `GET /v1/info` and `/v1/parameters`; `/v1/info` names the mode of the key's app. */
export function handleAppInfo(core: MockCore, ex: Exchange, path: string): void {
  if (!difyAuthorized(core, ex)) return;
  if (path === '/v1/info') {
    ex.json(200, {
      name: 'Stride mock',
      description: 'A Dify-compatible mock',
      tags: [],
      // A key without a mode serves every route; it calls itself a workflow app.
      mode: appModeOf(core, ex) ?? 'workflow',
      author_name: 'stride',
    });
    return;
  }
  const form = (
    core.options.requiredInputs.length > 0 ? core.options.requiredInputs : ['query']
  ).map((variable) => ({
    'text-input': { label: variable, variable, required: true, default: '' },
  }));
  ex.json(200, {
    opening_statement: null,
    suggested_questions: [],
    suggested_questions_after_answer: { enabled: false },
    speech_to_text: { enabled: false },
    text_to_speech: { enabled: false },
    retriever_resource: { enabled: false },
    annotation_reply: { enabled: false },
    more_like_this: { enabled: false },
    user_input_form: form,
    sensitive_word_avoidance: { enabled: false, type: '', configs: [] },
    file_upload: {
      image: {
        enabled: false,
        number_limits: 3,
        detail: 'high',
        transfer_methods: ['remote_url', 'local_file'],
      },
    },
    system_parameters: {
      file_size_limit: 15,
      image_file_size_limit: 10,
      audio_file_size_limit: 50,
      video_file_size_limit: 100,
      workflow_file_upload_limit: 10,
    },
  });
}
