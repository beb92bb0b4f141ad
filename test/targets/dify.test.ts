import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Run } from '../../src/core/index.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type DifyOutput, DifyTarget } from '../../src/targets/index.js';
import { attempt } from './helpers.js';

let mock: MockServer;
const targets: DifyTarget[] = [];

function dify(options: Partial<ConstructorParameters<typeof DifyTarget>[0]> = {}): DifyTarget {
  const t = new DifyTarget({ baseUrl: mock.baseUrl, apiKey: 'app-test-key-123', ...options });
  targets.push(t);
  return t;
}

beforeAll(async () => {
  mock = await startMock({
    output: 'upper',
    pingIntervalMs: 2,
    streamChunkDelayMs: 3,
    chunks: 4,
    recordRequests: true,
  });
});

afterAll(async () => {
  await Promise.all(targets.map((t) => t.close()));
  await mock.close();
});

describe('Dify target: successful runs', () => {
  for (const responseMode of ['blocking', 'streaming'] as const) {
    it(`workflow ${responseMode}: outputs, ids, tokens and usage are captured`, async () => {
      const t = dify({ app: 'workflow', responseMode });
      const { value, usage } = await attempt(t, { inputs: { query: 'hello world' } });
      const out = value as DifyOutput;
      expect(out.text).toBe('HELLO WORLD');
      expect(out.outputs).toEqual({ text: 'HELLO WORLD' });
      expect(out.status).toBe('succeeded');
      expect(out.workflowRunId).toMatch(/^[0-9a-f-]{36}$/);
      expect(out.taskId).toMatch(/^[0-9a-f-]{36}$/);
      expect(out.totalTokens).toBeGreaterThan(0);
      expect(typeof out.elapsedTime).toBe('number');
      if (responseMode === 'streaming') {
        // Price arrives only on node_finished events, as strings.
        expect(out.totalPrice).toBeGreaterThan(0);
        expect(out.currency).toBe('USD');
      } else {
        expect(out.totalPrice).toBeUndefined();
      }
      // A blocking workflow has no price: the cost is absent (unknown), never a made-up 0.
      expect(usage).toEqual([
        out.totalPrice === undefined
          ? { tokens: out.totalTokens }
          : { tokens: out.totalTokens, cost: out.totalPrice },
      ]);
    });

    it(`chat ${responseMode}: answer, message and conversation ids, usage with price`, async () => {
      const t = dify({ app: 'chat', responseMode });
      const { value, usage } = await attempt(t, { inputs: { lang: 'en' }, query: 'what is dify' });
      const out = value as DifyOutput;
      expect(out.answer).toBe('WHAT IS DIFY');
      expect(out.text).toBe('WHAT IS DIFY');
      expect(out.messageId).toMatch(/^[0-9a-f-]{36}$/);
      expect(out.conversationId).toMatch(/^[0-9a-f-]{36}$/);
      expect(out.promptTokens! + out.completionTokens!).toBe(out.totalTokens);
      expect(out.totalPrice).toBeGreaterThan(0);
      expect(usage).toEqual([{ tokens: out.totalTokens, cost: out.totalPrice }]);
    });

    it(`completion ${responseMode}: answer and usage`, async () => {
      const t = dify({ app: 'completion', responseMode });
      const { value } = await attempt(t, 'translate this');
      const out = value as DifyOutput;
      expect(out.answer).toBe('TRANSLATE THIS');
      expect(out.conversationId).toBeUndefined();
      expect(out.totalTokens).toBeGreaterThan(0);
    });
  }

  it('sends user on every call, inputs as given, and the chosen response_mode', async () => {
    mock.reset();
    const t = dify({ app: 'workflow', responseMode: 'blocking', user: 'regression-bot' });
    await attempt(t, { inputs: { query: 'a', n: 1 } });
    await attempt(t, { inputs: { query: 'b' }, user: 'case-user' });
    const bodies = mock.requests().map((r) => r.body);
    expect(bodies).toEqual([
      { inputs: { query: 'a', n: 1 }, response_mode: 'blocking', user: 'regression-bot' },
      { inputs: { query: 'b' }, response_mode: 'blocking', user: 'case-user' },
    ]);
    expect(mock.requests()[0]!.headers['content-type']).toBe('application/json');
  });

  it('takes the inputs object itself as input, and a chat query out of it', async () => {
    mock.reset();
    await attempt(dify({ app: 'workflow', responseMode: 'blocking' }), { query: 'q1', lang: 'fr' });
    await attempt(dify({ app: 'chat', responseMode: 'blocking' }), { query: 'q2', lang: 'fr' });
    const bodies = mock.requests().map((r) => r.body as Record<string, unknown>);
    expect(bodies[0]!.inputs).toEqual({ query: 'q1', lang: 'fr' });
    expect(bodies[0]!.query).toBeUndefined();
    expect(bodies[1]!.inputs).toEqual({ lang: 'fr' });
    expect(bodies[1]!.query).toBe('q2');
  });

  it('continues a conversation with conversationId', async () => {
    const t = dify({ app: 'chat', responseMode: 'streaming' });
    const first = (await attempt(t, { inputs: {}, query: 'hi' })).value as DifyOutput;
    const second = await attempt(t, {
      inputs: {},
      query: 'again',
      conversationId: first.conversationId,
    });
    expect((second.value as DifyOutput).conversationId).toBe(first.conversationId);
    const unknown = await attempt(t, {
      inputs: {},
      query: 'x',
      conversationId: '00000000-0000-4000-8000-000000000000',
    });
    expect(unknown.verdict).toMatchObject({ code: 'HTTP_ERROR', retryable: false });
    expect((unknown.error as Error).message).toContain('Conversation Not Exists.');
  });

  it('accepts a partial-succeeded workflow and fails a failed one with its output kept', async () => {
    const t = dify({ app: 'workflow', responseMode: 'streaming' });
    const failed = await attempt(t, { inputs: { query: 'x', __fault: 'failed' } });
    expect(failed.verdict).toMatchObject({
      code: 'TASK_FAILED',
      retryable: false,
      status: 'failed',
    });
    expect((failed.error as Error).message).toContain('Node LLM run failed');
    expect((failed.error as { output?: DifyOutput }).output?.status).toBe('failed');
    // A failed run still consumed tokens: they are reported.
    expect(failed.usage[0]!.tokens).toBeGreaterThan(0);
  });
});

describe('Dify target: SSE parsing', () => {
  it('ignores ping keep-alives between slow chunks and keeps the text in order', async () => {
    const t = dify({ app: 'workflow', responseMode: 'streaming' });
    const { value } = await attempt(t, { inputs: { query: 'abcdefghijklmnop', __fault: 'slow' } });
    expect((value as DifyOutput).text).toBe('ABCDEFGHIJKLMNOP');
  });

  for (const app of ['workflow', 'chat'] as const) {
    it(`${app}: an error event inside the open stream fails the attempt with its code and status`, async () => {
      const t = dify({ app, responseMode: 'streaming' });
      const e500 = await attempt(t, { inputs: { __fault: 'stream-error' }, query: 'q' });
      expect(e500.verdict).toMatchObject({ code: 'HTTP_ERROR', retryable: true });
      expect((e500.error as Error).message).toContain('internal_server_error');
      const e400 = await attempt(t, { inputs: { __fault: 'stream-error-400' }, query: 'q' });
      expect(e400.verdict).toMatchObject({ code: 'HTTP_ERROR', retryable: false });
      expect((e400.error as { status?: number }).status).toBe(400);
      expect((e400.error as Error).message).toContain('invalid_param');
    });
  }

  it('a stream that breaks half-way is a retryable network error, and its run is stopped', async () => {
    mock.reset();
    // A stop call never abandoned: its default 500 ms bound is a real timer that load can beat.
    const t = dify({ app: 'workflow', responseMode: 'streaming', stopTimeoutMs: 60_000 });
    const { verdict, error } = await attempt(t, {
      inputs: { query: 'long enough text', __fault: 'break' },
    });
    expect(verdict).toMatchObject({ code: 'NETWORK_ERROR', retryable: true });
    expect((error as Error).message).toMatch(/Dify/);
    expect(mock.stats().stops).toBe(1);
  });
});

describe('Dify target: 429s', () => {
  it('too_many_requests (the app concurrency limit) is a rate limit: retried, cools the bucket', async () => {
    const { verdict } = await attempt(dify(), { inputs: { query: 'q', __fault: '429' } });
    expect(verdict).toMatchObject({ code: 'RATE_LIMITED', retryable: true, rateLimited: true });
  });

  it('rate_limit_error (the billing quota) is QUOTA_EXCEEDED: not retried, the bucket not cooled', async () => {
    const { verdict, error } = await attempt(dify(), {
      inputs: { query: 'q', __fault: '429-quota' },
    });
    expect(verdict).toMatchObject({ code: 'QUOTA_EXCEEDED', retryable: false, rateLimited: false });
    expect((error as Error).message).toContain('rate_limit_error');
    expect((error as { status?: number }).status).toBe(429);
  });

  it('under the engine a spent quota costs one request per case, not max_attempts', async () => {
    mock.reset();
    const run = new Run(
      [
        { id: 'q1', input: { inputs: { query: 'q', __fault: '429-quota', __case: 'q1' } } },
        { id: 'q2', input: { inputs: { query: 'q', __fault: '429-quota', __case: 'q2' } } },
      ],
      dify(),
      { retry: { maxAttempts: 4, backoffMs: 1 } },
    );
    const coolDowns: number[] = [];
    run.on('coolDown', (e) => coolDowns.push(e.ms));
    const result = await run.start();
    expect(result.tasks.map((t) => [t.id, t.status, t.error?.code, t.attempts])).toEqual([
      ['q1', 'error', 'QUOTA_EXCEEDED', 1],
      ['q2', 'error', 'QUOTA_EXCEEDED', 1],
    ]);
    expect(mock.stats().byCase).toEqual({ q1: 1, q2: 1 });
    expect(coolDowns).toEqual([]);
  });
});

describe('Dify target: input validation (permanent, before any request)', () => {
  it('rejects inputs that can never be sent', async () => {
    mock.reset();
    const chat = dify({ app: 'chat' });
    const wf = dify({ app: 'workflow' });
    for (const [t, input] of [
      [chat, { inputs: {} }],
      [wf, 42],
      [wf, ['a']],
      [wf, { inputs: 'x' }],
      [wf, { inputs: {}, files: 'x' }],
    ] as const) {
      const { verdict } = await attempt(t, input);
      expect(verdict).toMatchObject({ code: 'VALIDATION_ERROR', retryable: false });
    }
    expect(mock.stats().requests).toBe(0);
  });

  it('validates options at construction, naming the field without showing the key', () => {
    expect(() => new DifyTarget({ baseUrl: 'not a url', apiKey: 'app-x' })).toThrow(/baseUrl/);
    expect(() => new DifyTarget({ baseUrl: mock.baseUrl, apiKey: '' })).toThrow(/apiKey/);
    expect(
      () => new DifyTarget({ baseUrl: mock.baseUrl, apiKey: 'app-x', app: 'agent' as 'chat' }),
    ).toThrow(/app/);
    expect(
      () =>
        new DifyTarget({
          baseUrl: mock.baseUrl,
          apiKey: 'app-x',
          responseMode: 'sync' as 'blocking',
        }),
    ).toThrow(/responseMode/);
  });

  it('derives its rate key from base URL and app, never from the key', () => {
    const t = dify({ app: 'chat', baseUrl: `http://user:pw@127.0.0.1:${mock.port}/v1/?token=zzz` });
    expect(t.key).toBe(`dify:http://127.0.0.1:${mock.port}/v1:chat`);
    expect(t.key).not.toContain('app-test-key-123');
  });
});
