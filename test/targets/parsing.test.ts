import { describe, expect, it } from 'vitest';
import {
  parseRateLimitHeaders,
  parseResetDuration,
  parseRetryAfter,
} from '../../src/targets/index.js';
import { readSse } from '../../src/targets/internal/sse.js';

async function collect(
  chunks: (string | Uint8Array)[],
): Promise<{ event: string | undefined; data: string }[]> {
  async function* body() {
    for (const c of chunks) yield c;
  }
  const out: { event: string | undefined; data: string }[] = [];
  for await (const m of readSse(body(), 'test')) out.push({ event: m.event, data: m.data });
  return out;
}

describe('SSE reading', () => {
  const stream =
    'event: ping\n\n' +
    'data: {"event":"workflow_started","task_id":"T"}\n\n' +
    'event: ping\n\n' +
    'data: {"event": "text_chunk", "data": {"text": "né"}}\n\n' +
    ': a comment\n\n' +
    'data: {"event":"workflow_finished"}\n\n';

  it('skips data-less ping events and comments; a ping does not leak its type into the next event', async () => {
    const events = await collect([stream]);
    expect(events.map((e) => e.event)).toEqual([undefined, undefined, undefined]);
    expect(events.map((e) => JSON.parse(e.data).event)).toEqual([
      'workflow_started',
      'text_chunk',
      'workflow_finished',
    ]);
  });

  it('gives the same events whatever the chunking: byte by byte, CRLF line ends, split UTF-8', async () => {
    const whole = await collect([stream]);
    const bytes = new TextEncoder().encode(stream);
    const byteByByte = await collect(Array.from(bytes, (b) => Uint8Array.of(b)));
    const crlf = await collect([stream.replace(/\n/g, '\r\n')]);
    expect(byteByByte).toEqual(whole);
    expect(crlf).toEqual(whole);
    expect(JSON.parse(byteByByte[1]!.data).data.text).toBe('né');
  });

  it('drops an event that never got its blank line (a cut stream)', async () => {
    const events = await collect(['data: {"a":1}\n\ndata: {"b":2}']);
    expect(events).toEqual([{ event: undefined, data: '{"a":1}' }]);
  });
});

describe('rate-limit headers', () => {
  it('parses OpenAI durations', () => {
    expect(parseResetDuration('1s')).toBe(1000);
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('20ms')).toBe(20);
    expect(parseResetDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseResetDuration('2.5')).toBe(2500);
    expect(parseResetDuration('soon')).toBeUndefined();
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('later', now)).toBeUndefined();
  });

  it('reads OpenAI, generic and IETF headers; nothing when there are none', () => {
    const now = 1_700_000_000_000;
    expect(
      parseRateLimitHeaders(
        {
          'x-ratelimit-limit-requests': '500',
          'x-ratelimit-remaining-requests': '499',
          'x-ratelimit-reset-requests': '120ms',
          'x-ratelimit-limit-tokens': '30000',
          'x-ratelimit-remaining-tokens': '29000',
          'x-ratelimit-reset-tokens': '2s',
          'retry-after-ms': '250',
        },
        now,
      ),
    ).toEqual({
      retryAfterMs: 250,
      limitRequests: 500,
      remainingRequests: 499,
      resetRequestsMs: 120,
      limitTokens: 30_000,
      remainingTokens: 29_000,
      resetTokensMs: 2000,
    });
    expect(
      parseRateLimitHeaders(
        { 'ratelimit-limit': '10', 'ratelimit-remaining': '0', 'ratelimit-reset': '3' },
        now,
      ),
    ).toEqual({
      limitRequests: 10,
      remainingRequests: 0,
      resetRequestsMs: 3000,
    });
    // A reset that is an epoch timestamp, not a delta.
    expect(parseRateLimitHeaders({ 'x-ratelimit-reset': String(now / 1000 + 5) }, now)).toEqual({
      resetRequestsMs: 5000,
    });
    expect(parseRateLimitHeaders({ 'content-type': 'application/json' }, now)).toBeUndefined();
  });
});
