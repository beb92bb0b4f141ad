import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Run } from '../../src/core/index.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type OpenAIOutput, OpenAITarget, type RateLimitInfo } from '../../src/targets/index.js';
import { attempt } from './helpers.js';

let mock: MockServer;
const targets: OpenAITarget[] = [];

function openai(
  options: Partial<ConstructorParameters<typeof OpenAITarget>[0]> = {},
): OpenAITarget {
  const t = new OpenAITarget({
    baseUrl: mock.baseUrl,
    apiKey: 'sk-test',
    model: 'mock-1',
    ...options,
  });
  targets.push(t);
  return t;
}

beforeAll(async () => {
  mock = await startMock({
    output: { template: 'Answer: {{text}}' },
    recordRequests: true,
    retryAfterSeconds: 2,
  });
});
afterAll(async () => {
  await Promise.all(targets.map((t) => t.close()));
  await mock.close();
});

describe('OpenAI-compatible target', () => {
  for (const responseMode of ['blocking', 'streaming'] as const) {
    it(`${responseMode}: text, finish reason, usage reported, rate-limit headers parsed`, async () => {
      const seen: RateLimitInfo[] = [];
      const t = openai({
        responseMode,
        pricePerMillion: { input: 1, output: 2 },
        onRateLimits: (i) => seen.push(i),
      });
      const { value, usage, limits } = await attempt(t, 'ping');
      const out = value as OpenAIOutput;
      expect(out.text).toBe('Answer: ping');
      expect(out.finishReason).toBe('stop');
      expect(out.model).toBe('mock-1');
      expect(out.totalTokens).toBe(out.promptTokens! + out.completionTokens!);
      expect(out.cost).toBeCloseTo((out.promptTokens! * 1 + out.completionTokens! * 2) / 1e6, 12);
      expect(usage).toEqual([{ tokens: out.totalTokens, cost: out.cost }]);
      expect(out.rateLimits).toMatchObject({
        limitRequests: 10_000,
        remainingRequests: 9_999,
        limitTokens: 2_000_000,
      });
      // The same figures went to the proposed ctx.reportLimits hook and to onRateLimits.
      expect(limits).toEqual([out.rateLimits]);
      expect(seen).toEqual([out.rateLimits]);
    });
  }

  it('sends the model, the case messages and body defaults; streaming asks for usage', async () => {
    mock.reset();
    await attempt(openai({ body: { temperature: 0 } }), {
      prompt: 'p',
      system: 's',
      max_tokens: 5,
    });
    await attempt(openai({ responseMode: 'streaming' }), {
      messages: [{ role: 'user', content: 'm' }],
    });
    const [a, b] = mock.requests().map((r) => r.body as Record<string, unknown>);
    expect(a).toEqual({
      model: 'mock-1',
      temperature: 0,
      max_tokens: 5,
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: 'p' },
      ],
    });
    expect(b).toMatchObject({
      model: 'mock-1',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('a 429 without Retry-After waits for the exhausted budget reset (x-ratelimit-reset-requests)', async () => {
    const { verdict } = await attempt(openai(), { prompt: 'x', metadata: { __fault: '429' } });
    expect(verdict).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      rateLimited: true,
      retryAfterMs: 1000,
    });
  });

  it('a 429 with Retry-After uses it', async () => {
    const { verdict } = await attempt(openai(), {
      prompt: 'x',
      metadata: { __fault: '429-retry-after' },
    });
    expect(verdict).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 2000 });
  });

  it('insufficient_quota is a 429 that is not retried, coded QUOTA_EXCEEDED', async () => {
    const { verdict } = await attempt(openai(), {
      prompt: 'x',
      metadata: { __fault: '429-quota' },
    });
    expect(verdict).toMatchObject({ code: 'QUOTA_EXCEEDED', retryable: false, rateLimited: false });
  });

  it('errors: 401 auth, 400 permanent, 5xx retryable, broken and errored streams retryable', async () => {
    const code = async (fault: string, responseMode: 'blocking' | 'streaming' = 'blocking') =>
      (await attempt(openai({ responseMode }), { prompt: 'x', metadata: { __fault: fault } }))
        .verdict;
    expect(await code('401')).toMatchObject({ code: 'AUTH_ERROR', retryable: false, auth: true });
    expect(await code('400')).toMatchObject({ code: 'HTTP_ERROR', retryable: false });
    expect(await code('503')).toMatchObject({ code: 'HTTP_ERROR', retryable: true });
    expect(await code('break', 'streaming')).toMatchObject({
      code: 'NETWORK_ERROR',
      retryable: true,
    });
    expect(await code('stream-error', 'streaming')).toMatchObject({
      code: 'HTTP_ERROR',
      retryable: true,
    });
  });

  it('runs under the engine with the mock rate limit: every 429 is retried by the engine alone', async () => {
    // Two pass at once (the burst); the mock's bucket gains a token a second, so the other two,
    // sent in the same tick, are refused unless the machine stalls a whole second between them
    // (at 600/min, 100 ms was enough; the refusals' own reset hints pace the retries).
    const limited = await startMock({ rateLimit: { perMinute: 60, burst: 2 } });
    const t = new OpenAITarget({ baseUrl: limited.baseUrl, apiKey: 'sk-x', model: 'm' });
    try {
      const cases = Array.from({ length: 4 }, (_, i) => ({ input: `q${i}` }));
      const result = await new Run(cases, t, {
        concurrency: 4,
        retry: { maxAttempts: 5, backoffMs: 1 },
        rate: { perMinute: 60_000, burst: 4 },
      }).start();
      expect(result.statistics.succeededTasks).toBe(4);
      const s = limited.stats();
      // The refused ones cooled the bucket and passed later, each 429 retried by the engine alone.
      expect(s.limited).toBeGreaterThanOrEqual(2);
      expect(s.runs).toBe(4 + s.limited);
      expect(result.statistics.attempts).toBe(s.runs);
    } finally {
      await t.close();
      await limited.close();
    }
  });

  it('validates options', () => {
    expect(() => new OpenAITarget({ model: '' })).toThrow(/model/);
    expect(() => new OpenAITarget({ model: 'm', responseMode: 'x' as 'blocking' })).toThrow(
      /responseMode/,
    );
    expect(
      () => new OpenAITarget({ model: 'm', pricePerMillion: { input: -1, output: 1 } }),
    ).toThrow(/pricePerMillion/);
    const t = new OpenAITarget({ model: 'gpt' });
    expect(t.key).toBe('openai:https://api.openai.com/v1:gpt');
    return t.close();
  });
});
