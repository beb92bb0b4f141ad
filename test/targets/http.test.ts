import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type HttpOutput, HttpTarget } from '../../src/targets/index.js';
import { attempt } from './helpers.js';

let mock: MockServer;
const targets: HttpTarget[] = [];

function http(options: ConstructorParameters<typeof HttpTarget>[0]): HttpTarget {
  const t = new HttpTarget(options);
  targets.push(t);
  return t;
}

beforeAll(async () => {
  mock = await startMock({ output: 'upper' });
});
afterAll(async () => {
  await Promise.all(targets.map((t) => t.close()));
  await mock.close();
});

describe('HTTP target', () => {
  it('templates method, URL, headers and body from the case input; picks the output by path', async () => {
    const t = http({
      method: '{{verb}}',
      url: `${mock.url}/echo/items/{{id}}?q={{query}}`,
      headers: { 'x-case': 'case-{{id}}', 'x-attempt': '{{$attempt}}' },
      body: { question: '{{query}}', meta: '{{meta}}', label: 'id={{id}}', n: 1 },
      outputPath: '$.body',
      tokensPath: '$.usage.total_tokens',
    });
    const { value, usage, error } = await attempt(
      t,
      { verb: 'put', id: 7, query: 'a b&c', meta: { deep: [1, 2] } },
      'task-9',
    );
    expect(error).toBeUndefined();
    const echoed = (value as HttpOutput).output;
    expect(echoed).toEqual({ question: 'a b&c', meta: { deep: [1, 2] }, label: 'id=7', n: 1 });
    expect((value as HttpOutput).status).toBe(200);
    // No costPath: the cost is absent (unknown), never a made-up 0.
    expect(usage).toEqual([{ tokens: 10 }]);
  });

  it('percent-encodes URL values and sends rendered headers', async () => {
    const t = http({
      url: `${mock.url}/echo?q={{query}}`,
      headers: { 'x-who': '{{$taskId}}/{{inputs.user}}' },
    });
    const { value } = await attempt(t, { inputs: { query: 'x y/z', user: 'u1' } }, 'case-1');
    const body = (value as HttpOutput).output as {
      method: string;
      query: Record<string, string>;
      headers: Record<string, string>;
    };
    expect(body.method).toBe('GET');
    expect(body.query).toEqual({ q: 'x y/z' });
    expect(body.headers['x-who']).toBe('case-1/u1');
  });

  it('a placeholder the case does not have is a permanent validation error, sent nowhere', async () => {
    mock.reset();
    const t = http({ url: `${mock.url}/echo`, body: { q: '{{missing}}' } });
    const { verdict, error } = await attempt(t, { query: 'x' });
    expect(verdict).toMatchObject({ code: 'VALIDATION_ERROR', retryable: false });
    expect((error as Error).message).toContain('{{missing}}');
    expect(mock.stats().requests).toBe(0);
  });

  it('a missing output path is a failed verdict that keeps the body', async () => {
    const t = http({ url: `${mock.url}/echo`, outputPath: '$.nope[0]' });
    const { verdict, error } = await attempt(t, {});
    expect(verdict).toMatchObject({ code: 'TASK_FAILED', status: 'failed' });
    expect((error as { output?: { method?: string } }).output?.method).toBe('GET');
  });

  it('classifies statuses like every target', async () => {
    const t = http({ url: `${mock.url}/echo`, headers: { 'x-mock-fault': '{{fault}}' } });
    const verdict = async (fault: string) => (await attempt(t, { fault })).verdict;
    expect(await verdict('401')).toMatchObject({
      code: 'AUTH_ERROR',
      retryable: false,
      auth: true,
    });
    expect(await verdict('403')).toMatchObject({ code: 'AUTH_ERROR', retryable: false });
    expect(await verdict('400')).toMatchObject({ code: 'HTTP_ERROR', retryable: false });
    expect(await verdict('404')).toMatchObject({ code: 'HTTP_ERROR', retryable: false });
    expect(await verdict('429')).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      retryAfterMs: undefined,
    });
    expect(await verdict('429-retry-after')).toMatchObject({
      code: 'RATE_LIMITED',
      retryAfterMs: 1000,
    });
    for (const s of ['500', '502', '503', '504'])
      expect(await verdict(s)).toMatchObject({ code: 'HTTP_ERROR', retryable: true });
    expect(await verdict('reset')).toMatchObject({ code: 'NETWORK_ERROR', retryable: true });
  });

  it('a connection refused is a retryable network error', async () => {
    const t = http({ url: 'http://127.0.0.1:1/nothing' });
    const { verdict } = await attempt(t, {});
    expect(verdict).toMatchObject({ code: 'NETWORK_ERROR', retryable: true });
  });

  it('validates options at construction', () => {
    expect(() => new HttpTarget({ url: '' })).toThrow(/url/);
    expect(() => new HttpTarget({ url: 'ftp://x' })).toThrow(/url/);
    expect(() => new HttpTarget({ url: 'http://x', method: 'FETCH' })).toThrow(/method/);
    expect(() => new HttpTarget({ url: 'http://x', outputPath: '$..a' })).toThrow(/outputPath/);
  });
});
