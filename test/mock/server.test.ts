import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/index.js';
import { type MockOptions, type MockServer, startMock } from '../../src/mock/index.js';
import { latencySampler } from '../../src/mock/options.js';
import { until } from '../core/harness.js';
import { hangingRun } from './helpers.js';

let mock: MockServer | undefined;

async function start(options: MockOptions = {}): Promise<MockServer> {
  mock = await startMock(options);
  return mock;
}

afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

const KEY = 'Bearer app-mock-test';

// biome-ignore lint/suspicious/noExplicitAny: loosely typed JSON read back from the wire
type Json = any;

async function post(
  m: MockServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = { authorization: KEY },
): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: () => Json }> {
  const res = await request(`${m.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

function events(text: string): Json[] {
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)));
}

describe('mock: Dify auth and validation', () => {
  it('answers 401 the Dify way for a missing header, another scheme and an unknown key', async () => {
    const m = await start({ apiKeys: ['app-known'] });
    const a = await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' }, {});
    expect(a.status).toBe(401);
    expect(a.json()).toEqual({
      code: 'unauthorized',
      message: "Authorization header must be provided and start with 'Bearer'",
      status: 401,
    });
    expect(a.headers['www-authenticate']).toBe('Bearer realm="api"');
    const b = await post(
      m,
      '/v1/workflows/run',
      { inputs: {}, user: 'u' },
      { authorization: 'Basic abc' },
    );
    expect(b.json().message).toBe("Authorization scheme must be 'Bearer'");
    const c = await post(
      m,
      '/v1/workflows/run',
      { inputs: {}, user: 'u' },
      { authorization: 'Bearer app-other' },
    );
    expect(c.json().message).toBe('Access token is invalid');
    const ok = await post(
      m,
      '/v1/workflows/run',
      { inputs: {}, user: 'u' },
      { authorization: 'Bearer app-known' },
    );
    expect(ok.status).toBe(200);
  });

  it('by default accepts any app- key and refuses others', async () => {
    const m = await start();
    expect((await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' })).status).toBe(200);
    expect(
      (
        await post(
          m,
          '/v1/workflows/run',
          { inputs: {}, user: 'u' },
          { authorization: 'Bearer sk-x' },
        )
      ).status,
    ).toBe(401);
  });

  it('requires user, inputs, a query for chat, and the required inputs, with invalid_param', async () => {
    const m = await start({ requiredInputs: ['title'] });
    const noUser = await post(m, '/v1/workflows/run', { inputs: { title: 't' } });
    expect(noUser.json()).toEqual({
      code: 'invalid_param',
      message: 'Arg user must be provided.',
      status: 400,
    });
    expect((await post(m, '/v1/workflows/run', { user: 'u' })).json().code).toBe('invalid_param');
    expect((await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' })).json().message).toBe(
      'title is required in input form',
    );
    expect((await post(m, '/v1/chat-messages', { inputs: {}, user: 'u' })).json().code).toBe(
      'invalid_param',
    );
    expect((await post(m, '/v1/workflows/run', 'not json')).json().message).toBe(
      'Invalid JSON payload received or JSON payload is empty.',
    );
    expect(m.stats().byStatus).toEqual({ '400': 5 });
  });
});

describe('mock: answers', () => {
  it('derives outputs deterministically: echo, upper, template, lookup, __output', async () => {
    const ask = async (o: MockOptions, inputs: Record<string, unknown>) => {
      const m = await startMock(o);
      try {
        return (await post(m, '/v1/workflows/run', { inputs, user: 'u' })).json().data.outputs.text;
      } finally {
        await m.close();
      }
    };
    expect(await ask({}, { query: 'Hi there' })).toBe('Hi there');
    expect(await ask({ output: 'upper' }, { query: 'Hi there' })).toBe('HI THERE');
    expect(
      await ask({ output: { template: '[{{lang}}] {{text}}' } }, { query: 'q', lang: 'fr' }),
    ).toBe('[fr] q');
    expect(
      await ask({ output: { lookup: { q1: 'a1' }, fallback: 'no idea' } }, { query: 'q1' }),
    ).toBe('a1');
    expect(
      await ask({ output: { lookup: { q1: 'a1' }, fallback: 'no idea' } }, { query: 'q2' }),
    ).toBe('no idea');
    expect(await ask({}, { query: 'x', __output: 'forced' })).toBe('forced');
  });

  it('streams a workflow in the newest shape: ping first, started, chunks, node price, finished', async () => {
    const m = await start({ tokens: 100, chunks: 2 });
    const res = await post(m, '/v1/workflows/run', {
      inputs: { query: 'abcd' },
      response_mode: 'streaming',
      user: 'u',
    });
    expect(res.headers['content-type']).toContain('text/event-stream');
    expect(res.text.startsWith('event: ping\n\n')).toBe(true);
    const ev = events(res.text);
    // start -> LLM (streaming its text) -> end; the graph's checks are in routes.test.ts.
    expect(ev.map((e) => e.event)).toEqual([
      'workflow_started',
      'node_started',
      'node_finished',
      'node_started',
      'text_chunk',
      'text_chunk',
      'node_finished',
      'node_started',
      'node_finished',
      'workflow_finished',
    ]);
    expect(ev.map((e) => (e.event === 'text_chunk' ? e.data.text : '')).join('')).toBe('abcd');
    expect(ev[6].data.execution_metadata).toEqual({
      total_tokens: 100,
      total_price: '0.0001250',
      currency: 'USD',
    });
    expect(ev[9].data).toMatchObject({
      status: 'succeeded',
      outputs: { text: 'abcd' },
      total_tokens: 100,
    });
    expect(new Set(ev.map((e) => e.task_id)).size).toBe(1);
    expect(m.stats().tokens).toBe(100);
  });

  it('answers chat blocking with metadata.usage and streaming with message_end', async () => {
    const m = await start({ tokens: 40 });
    const b = (await post(m, '/v1/chat-messages', { inputs: {}, query: 'hey', user: 'u' })).json();
    expect(b).toMatchObject({
      event: 'message',
      mode: 'chat',
      answer: 'hey',
      metadata: { usage: { total_tokens: 40, currency: 'USD' } },
    });
    expect(b.id).toBe(b.message_id);
    const s = events(
      (
        await post(m, '/v1/chat-messages', {
          inputs: {},
          query: 'hey',
          response_mode: 'streaming',
          user: 'u',
        })
      ).text,
    );
    expect(s.at(-1)).toMatchObject({
      event: 'message_end',
      metadata: { usage: { total_tokens: 40 } },
    });
    expect(
      s
        .filter((e) => e.event === 'message')
        .map((e) => e.answer)
        .join(''),
    ).toBe('hey');
  });

  it('answers OpenAI chat completions with usage and x-ratelimit headers, and [DONE] when streaming', async () => {
    const m = await start({ tokens: 12 });
    const body = { model: 'm', messages: [{ role: 'user', content: 'ping' }] };
    const b = await post(m, '/v1/chat/completions', body, { authorization: 'Bearer sk-x' });
    expect(b.json()).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { content: 'ping' } }],
      usage: { total_tokens: 12 },
    });
    expect(b.headers['x-ratelimit-remaining-requests']).toBe('9999');
    const s = await post(
      m,
      '/v1/chat/completions',
      { ...body, stream: true, stream_options: { include_usage: true } },
      { authorization: 'Bearer sk-x' },
    );
    expect(s.text.trim().endsWith('data: [DONE]')).toBe(true);
  });
});

describe('mock: faults', () => {
  it('injects faults per request, by input or header, and only the first N times with __fault_times', async () => {
    const m = await start();
    expect(
      (await post(m, '/v1/workflows/run', { inputs: { __fault: '503' }, user: 'u' })).status,
    ).toBe(503);
    expect(
      (
        await post(
          m,
          '/v1/workflows/run',
          { inputs: {}, user: 'u' },
          { authorization: KEY, 'x-mock-fault': '429' },
        )
      ).json().code,
    ).toBe('too_many_requests');
    const flaky = { inputs: { __fault: '500', __fault_times: 2, __case: 'f' }, user: 'u' };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(m, '/v1/workflows/run', flaky)).status);
    expect(statuses).toEqual([500, 500, 200]);
    expect(m.stats().faults).toEqual({ '503': 1, '429': 1, '500': 2 });
    expect(m.stats().byCase.f).toBe(3);
  });

  it('429 comes with Retry-After only when asked; 502-504 look like a proxy', async () => {
    const m = await start({ retryAfterSeconds: 3 });
    const plain = await post(m, '/v1/workflows/run', { inputs: { __fault: '429' }, user: 'u' });
    expect(plain.headers['retry-after']).toBeUndefined();
    const ra = await post(m, '/v1/workflows/run', {
      inputs: { __fault: '429-retry-after' },
      user: 'u',
    });
    expect(ra.headers['retry-after']).toBe('3');
    const quota = await post(m, '/v1/workflows/run', {
      inputs: { __fault: '429-quota' },
      user: 'u',
    });
    expect(quota.json().code).toBe('rate_limit_error');
    const gw = await post(m, '/v1/workflows/run', { inputs: { __fault: '502' }, user: 'u' });
    expect(gw.headers['content-type']).toBe('text/html');
  });

  it('draws faults from error rates with a seed: the same seed gives the same sequence', async () => {
    const seq = async () => {
      const m = await startMock({ errorRates: { '500': 0.3, '429': 0.2 }, seed: 42 });
      const out: number[] = [];
      for (let i = 0; i < 30; i++)
        out.push((await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' })).status);
      await m.close();
      return out;
    };
    const a = await seq();
    expect(a).toEqual(await seq());
    expect(a.filter((s) => s === 500).length).toBeGreaterThan(3);
    expect(a.filter((s) => s === 429).length).toBeGreaterThan(1);
    expect(a.filter((s) => s === 200).length).toBeGreaterThan(8);
  });

  it('enforces its concurrency limit like Dify: plain 429 too_many_requests, also for streams, no Retry-After', async () => {
    const m = await start({ maxConcurrency: 2 });
    // Two hanging streams hold both slots until they are stopped, however slow the machine.
    const held = [await hangingRun(m.url, KEY), await hangingRun(m.url, KEY)];
    const all = await Promise.all(
      [2, 3].map((i) =>
        post(m, '/v1/workflows/run', {
          inputs: { query: `q${i}` },
          response_mode: 'streaming',
          user: 'u',
        }),
      ),
    );
    const refused = all.filter((r) => r.status === 429);
    expect(refused).toHaveLength(2);
    expect(refused[0]!.headers['content-type']).toBe('application/json');
    expect(refused[0]!.headers['retry-after']).toBeUndefined();
    expect(refused[0]!.json().message).toMatch(
      /maximum concurrent requests allowed for .* is 2\.$/,
    );
    expect(m.stats().limited).toBe(2);
    // Slots come back when runs end.
    for (const h of held) await post(m, `/v1/workflows/tasks/${h.taskId}/stop`, { user: 'u' });
    for (const h of held)
      expect((await h.rest).at(-1)).toMatchObject({ event: 'workflow_finished' });
    await until(() => m.stats().inFlight === 0, 'the stopped runs to end');
    expect((await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' })).status).toBe(200);
  });

  it('enforces a request rate with 429 rate_limit_error', async () => {
    // A token every 10 s: the third and fourth requests find none however slowly they go.
    const m = await start({ rateLimit: { perMinute: 6, burst: 2, retryAfter: true } });
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' })).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    const r = await post(m, '/v1/workflows/run', { inputs: {}, user: 'u' });
    expect(r.json().code).toBe('rate_limit_error');
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('a stop call ends a hanging stream with status stopped; a client that leaves without one orphans the run', async () => {
    const m = await start({ pingIntervalMs: 5 });
    const res = await request(`${m.url}/v1/workflows/run`, {
      method: 'POST',
      headers: { authorization: KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { __fault: 'hang' }, response_mode: 'streaming', user: 'u' }),
    });
    let text = '';
    let taskId: string | undefined;
    for await (const c of res.body) {
      text += c.toString();
      const started = events(text).find((e) => e.event === 'workflow_started');
      if (started && taskId === undefined) {
        taskId = started.task_id;
        const stop = await post(m, `/v1/workflows/tasks/${taskId}/stop`, { user: 'u' });
        expect(stop.json()).toEqual({ result: 'success' });
      }
    }
    expect(events(text).at(-1)).toMatchObject({
      event: 'workflow_finished',
      data: { status: 'stopped', error: 'Stopped by user.' },
    });
    expect(m.stats()).toMatchObject({ stops: 1, stoppedLive: 1, orphaned: 0, inFlight: 0 });
    // Without a user the stop is refused.
    expect((await post(m, `/v1/workflows/tasks/${taskId}/stop`, {})).status).toBe(400);

    const ac = new AbortController();
    const left = await request(`${m.url}/v1/workflows/run`, {
      method: 'POST',
      headers: { authorization: KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { __fault: 'hang' }, response_mode: 'streaming', user: 'u' }),
      signal: ac.signal,
    });
    left.body.on('error', () => {});
    ac.abort();
    await until(() => m.stats().inFlight === 0, 'the abandoned stream to close');
    expect(m.stats()).toMatchObject({ orphaned: 1, aborted: 1, inFlight: 0 });
  });

  it('GET /__stats serves the statistics; POST /__reset zeroes them', async () => {
    const m = await start();
    await post(m, '/v1/workflows/run', { inputs: { query: 'a' }, user: 'u' });
    const s = await request(`${m.url}/__stats`);
    const stats = (await s.body.json()) as Record<string, unknown>;
    expect(stats).toMatchObject({
      requests: 1,
      runs: 1,
      peakInFlight: 1,
      byCase: { a: 1 },
      byEndpoint: { workflow: 1 },
    });
    await post(m, '/__reset', {});
    expect(m.stats().requests).toBe(0);
  });
});

describe('mock: lifecycle', () => {
  it('closes promptly with hanging requests and open keep-alive sockets, and frees the port', async () => {
    const m = await start({ pingIntervalMs: 1000 });
    const hanging = request(`${m.url}/v1/workflows/run`, {
      method: 'POST',
      headers: { authorization: KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { __fault: 'hang' }, user: 'u' }),
    }).catch((e: unknown) => e);
    await until(() => m.stats().inFlight === 1, 'the hanging request');
    await m.close();
    expect(await hanging).toBeInstanceOf(Error);
    const refused = await request(`${m.url}/__stats`).catch((e: { code?: string }) => e.code);
    expect(refused).toBe('ECONNREFUSED');
    await m.close(); // idempotent
    mock = undefined;
  });

  it('validates its options', async () => {
    await expect(startMock({ errorRates: { '418': 0.5 } as never })).rejects.toThrow(
      /errorRates\.418/,
    );
    await expect(startMock({ errorRates: { '500': 0.7, '429': 0.7 } })).rejects.toThrow(
      /errorRates/,
    );
    await expect(startMock({ latencyMs: { min: 5, max: 1 } })).rejects.toThrow(/latencyMs\.max/);
    await expect(startMock({ port: 70_000 })).rejects.toThrow(/port/);
  });

  it('samples latency from its distributions', () => {
    const r = seededRandom(3);
    const uni = latencySampler({ min: 10, max: 20 }, r);
    const draws = Array.from({ length: 200 }, uni);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...draws)).toBeLessThanOrEqual(20);
    const exp = latencySampler({ exponential: 50 }, r);
    const mean = Array.from({ length: 2000 }, exp).reduce((a, b) => a + b, 0) / 2000;
    expect(mean).toBeGreaterThan(40);
    expect(mean).toBeLessThan(60);
    const normal = latencySampler({ mean: 5, stddev: 10 }, r);
    expect(Math.min(...Array.from({ length: 500 }, normal))).toBe(0);
  });
});
