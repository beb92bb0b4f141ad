/**
 * The mock's own limits as the adaptive pace needs them (issue #17): a rate limit that answers
 * like Dify's concurrency limiter (a bare 429 `too_many_requests`, to slow down for) instead of
 * its billing quota, and limits that change while requests are running.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type MockOptions, type MockServer, startMock } from '../../src/mock/index.js';
import { hangingRun } from './helpers.js';

let mock: MockServer | undefined;

afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

async function start(options: MockOptions): Promise<MockServer> {
  mock = await startMock(options);
  return mock;
}

async function post(m: MockServer, path: string, body: unknown) {
  const res = await request(`${m.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer app-limits' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: () => JSON.parse(text) };
}

const run = (m: MockServer, latency = 0) =>
  post(m, '/v1/workflows/run', {
    inputs: { query: 'q', __latency_ms: latency },
    response_mode: 'blocking',
    user: 'u',
  });

describe('mock: the rate limit code', () => {
  it('answers rate_limit_error (the billing quota) by default, too_many_requests when asked, never a Retry-After', async () => {
    const quota = await start({ rateLimit: { perMinute: 1 } });
    expect((await run(quota)).status).toBe(200);
    const refused = await run(quota);
    expect(refused.status).toBe(429);
    expect(refused.json().code).toBe('rate_limit_error');
    await quota.close();

    const pace = await start({ rateLimit: { perMinute: 1, code: 'too_many_requests' } });
    expect((await run(pace)).status).toBe(200);
    const bare = await run(pace);
    expect(bare.status).toBe(429);
    expect(bare.json()).toMatchObject({ code: 'too_many_requests', status: 429 });
    expect(bare.headers['retry-after']).toBeUndefined();
    expect(pace.stats().limited).toBe(1);
  });

  it('rejects an unknown code', async () => {
    await expect(
      startMock({ rateLimit: { perMinute: 1, code: 'nope' as 'too_many_requests' } }),
    ).rejects.toThrow(/rateLimit\.code: "nope"/);
  });
});

describe('mock: limits changed while it runs', () => {
  it('setLimits lowers and raises the concurrency limit; admitted requests keep running', async () => {
    const m = await start({ maxConcurrency: 4 });
    // Three hanging runs admitted (they hold their slots until stopped, however slow the
    // machine), then the limit goes to 2: a fourth is refused.
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await hangingRun(m.url, 'Bearer app-limits'));
    m.setLimits({ maxConcurrency: 2 });
    const refused = await run(m);
    expect(refused.status).toBe(429);
    expect(refused.json().message).toContain('is 2.');
    m.setLimits({ maxConcurrency: null });
    expect((await run(m)).status).toBe(200);
    // The three kept running through both changes, and end normally when stopped.
    for (const h of held) await post(m, `/v1/workflows/tasks/${h.taskId}/stop`, { user: 'u' });
    for (const h of held) {
      expect((await h.rest).at(-1)).toMatchObject({
        event: 'workflow_finished',
        data: { status: 'stopped' },
      });
    }
  });

  it('POST /__limits does the same over HTTP, and a bad value changes nothing (400)', async () => {
    const m = await start({ maxConcurrency: 1, rateLimit: { perMinute: 6000, burst: 3 } });
    const bad = await post(m, '/__limits', { maxConcurrency: 0, ratePerMinute: 60 });
    expect(bad.status).toBe(400);
    expect(bad.json().message).toMatch(/maxConcurrency: 0/);
    const ok = await post(m, '/__limits', { maxConcurrency: 3, ratePerMinute: 60_000 });
    expect(ok.status).toBe(200);
    const answers = await Promise.all([run(m, 100), run(m, 100), run(m, 100)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect((await post(m, '/__limits', 'not json')).status).toBe(400);
    const noRate = await startMock({});
    expect((await post(noRate, '/__limits', { ratePerMinute: 5 })).json().message).toMatch(
      /a mock started with a rateLimit/,
    );
    await noRate.close();
  });
});
