/** The API key never appears in results, errors, thrown values or the target object. */
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Run } from '../../src/core/index.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { type ClosableTarget, createTarget, HttpTarget } from '../../src/targets/index.js';
import { attempt } from './helpers.js';

const KEY = 'app-SECRET-4f9c2a7e1b';
const OPENAI_KEY = 'sk-SECRET-77aa99cc11';
let mock: MockServer;
const targets: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  // This mock puts the presented key in its 401 messages, as a careless gateway might.
  mock = await startMock({ apiKeys: ['app-the-right-one'], leakKeyInErrors: true });
});
afterAll(async () => {
  await Promise.all(targets.map((t) => t.close()));
  await mock.close();
});

function track<T extends { close(): Promise<void> }>(t: T): T {
  targets.push(t);
  return t;
}

function serialise(value: unknown): string {
  return `${JSON.stringify(value, (_, v) => (v instanceof Error ? { ...v, message: v.message, name: v.name, stack: v.stack, cause: String(v.cause) } : v))}\n${inspect(value, { depth: 10 })}`;
}

describe('secrets', () => {
  it('a wrong Dify key that the server echoes is redacted from the error, the results and the journal events', async () => {
    const t = track(
      createTarget({ type: 'dify', baseUrl: mock.baseUrl, apiKey: KEY, responseMode: 'blocking' }),
    );
    const direct = await attempt(t, { query: 'x' });
    expect(direct.verdict?.code).toBe('AUTH_ERROR');
    expect((direct.error as Error).message).toContain('[redacted]');
    const events: unknown[] = [];
    const run = new Run([{ input: { query: 'a' } }, { input: { query: 'b' } }], t, {
      retry: { maxAttempts: 1 },
    });
    run.on('transition', (e) => events.push(e));
    const result = await run.start();
    const dump = serialise([direct.error, result, events]);
    expect(dump).toContain('Access token is invalid');
    expect(dump).not.toContain(KEY);
    expect(dump).not.toContain(KEY.slice(4));
  });

  it('the target object does not show its key through JSON, inspect or its key property', () => {
    const t = track(createTarget({ type: 'dify', baseUrl: mock.baseUrl, apiKey: KEY }));
    expect(JSON.stringify(t)).not.toContain(KEY);
    expect(inspect(t, { depth: 5, showHidden: true })).not.toContain(KEY);
    expect(t.key).not.toContain(KEY);
  });

  it('an OpenAI key echoed in a 401 message is redacted', async () => {
    const t = track(
      createTarget({ type: 'openai', baseUrl: mock.baseUrl, apiKey: OPENAI_KEY, model: 'm' }),
    );
    const { error, verdict } = await attempt(t, 'hello');
    expect(verdict?.code).toBe('AUTH_ERROR');
    expect((error as Error).message).toContain('Incorrect API key provided: [redacted]');
    expect(serialise(error)).not.toContain(OPENAI_KEY);
  });

  it('an HTTP target redacts credential headers and query parameters that the server echoes back', async () => {
    const token = 'tok-SECRET-0123456789';
    const t = track(
      new HttpTarget({
        url: `${mock.url}/echo/search?api_key=${token}&q={{query}}`,
        headers: { authorization: `Bearer ${token}`, 'x-api-key': token },
        body: { q: '{{query}}' },
      }),
    );
    const { value, error } = await attempt(t, { query: 'hello' });
    expect(error).toBeUndefined();
    const dump = serialise(value);
    expect(dump).toContain('hello');
    expect(dump).toContain('[redacted]');
    expect(dump).not.toContain(token);
    expect(t.key).toBe(`http:POST ${mock.url}/echo/search`);
  });

  it('an invalid option never prints the key', () => {
    expect(() => createTarget({ type: 'dify', baseUrl: 'ftp://x', apiKey: KEY })).toThrow(
      /baseUrl/,
    );
    try {
      createTarget({ type: 'dify', baseUrl: 'ftp://x', apiKey: KEY });
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(KEY);
    }
    const t = track(
      createTarget({
        type: 'dify',
        baseUrl: `http://u:${KEY}@127.0.0.1:1/v1?k=${KEY}`,
        apiKey: KEY,
      }) as ClosableTarget,
    );
    expect(t.key).toBe('dify:http://127.0.0.1:1/v1:workflow');
  });
});
