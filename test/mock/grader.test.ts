import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMockArgs } from '../../src/mock/cli.js';
import { type MockOptions, type MockServer, startMock } from '../../src/mock/index.js';

let mock: MockServer | undefined;

async function start(options: MockOptions = {}): Promise<MockServer> {
  mock = await startMock(options);
  return mock;
}

afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: loosely typed JSON read back from the wire
type Json = any;

async function post(
  m: MockServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Json }> {
  const res = await request(`${m.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, json: JSON.parse(await res.body.text()) };
}

function gradePrompt(output: string): string {
  return `Grade the answer.\n<rubric>mentions the refund page</rubric>\n<output>\n${output}\n</output>`;
}

async function grade(
  m: MockServer,
  output: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; content: string; usage: Json }> {
  const r = await post(
    m,
    '/v1/chat/completions',
    {
      model: 'stride-grader',
      messages: [{ role: 'user', content: gradePrompt(output) }],
      ...extra,
    },
    headers,
  );
  return {
    status: r.status,
    content: r.json.choices?.[0]?.message?.content,
    usage: r.json.usage,
  };
}

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

describe('mock: grader mode', () => {
  it('passes when the graded output contains the keyword, with the fixed scores and reason', async () => {
    const m = await start({
      grader: { passWhenContains: 'Refund Page', passScore: 0.9, failScore: 0.2, reason: 'rule' },
    });
    const pass = await grade(m, 'See the refund page at /refunds.');
    expect(pass.status).toBe(200);
    expect(JSON.parse(pass.content)).toEqual({ pass: true, score: 0.9, reason: 'rule' });
    expect(pass.usage.total_tokens).toBeGreaterThan(0);
    const fail = await grade(m, 'We do not do refunds.');
    expect(JSON.parse(fail.content)).toEqual({ pass: false, score: 0.2, reason: 'rule' });
    // The rubric is outside <output>: it does not make a failing answer pass.
    const rubricOnly = await grade(m, 'nothing here');
    expect(JSON.parse(rubricOnly.content).pass).toBe(false);
    expect(m.stats().byEndpoint).toEqual({ grade: 3 });
  });

  it('answers an unparsable verdict on the garble keyword, and obeys the per-request override', async () => {
    const m = await start({ grader: { passWhenContains: 'refund', garbleWhenContains: 'xyzzy' } });
    const garbled = await grade(m, 'refund xyzzy');
    expect(() => JSON.parse(garbled.content)).toThrow();
    const forcedFail = await grade(m, 'refund', {}, { 'x-mock-grade': 'fail' });
    expect(JSON.parse(forcedFail.content)).toMatchObject({ pass: false, score: 0 });
    const forcedScore = await grade(m, 'nope', { metadata: { __grade: '0.7' } });
    expect(JSON.parse(forcedScore.content)).toMatchObject({ pass: true, score: 0.7 });
    // An override grades even a request for a model that is not a grader model.
    const other = await post(
      m,
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      { 'x-mock-grade': 'garbage' },
    );
    expect(() => JSON.parse(other.json.choices[0].message.content)).toThrow();
  });

  it('answers app models as before, counted apart from gradings', async () => {
    const m = await start({});
    const app = await post(m, '/v1/chat/completions', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(app.json.choices[0].message.content).toBe('hello');
    const g = await grade(m, 'anything');
    expect(JSON.parse(g.content)).toMatchObject({ pass: true, score: 1 });
    expect(m.stats().byEndpoint).toEqual({ openai: 1, grade: 1 });
  });

  it('applies faults to gradings (a 429 the grader client must retry)', async () => {
    const m = await start({});
    const r = await grade(m, 'x', {}, { 'x-mock-fault': '429' });
    expect(r.status).toBe(429);
  });

  it('takes the rule from the command line and refuses bad scores', () => {
    const o = parseMockArgs([
      '--grader-model',
      'judge',
      '--grade-pass-when',
      'refund',
      '--grade-fail-score',
      '0.1',
      '--embedding-dims',
      '64',
    ]);
    expect(o.grader).toEqual({ models: ['judge'], passWhenContains: 'refund', failScore: 0.1 });
    expect(o.embeddingDimensions).toBe(64);
    expect(() => parseMockArgs(['--grade-pass-score', '1.5'])).toThrow(
      '--grade-pass-score: 1.5 is above 1',
    );
    expect(() => parseMockArgs(['--grade-pass-when', ''])).toThrow('must not be empty');
  });
});

describe('mock: /v1/embeddings', () => {
  it('answers OpenAI-shaped, deterministic vectors: equal texts cosine 1, unrelated low', async () => {
    const m = await start({});
    const texts = [
      'Our refund page is at /refunds',
      'our REFUND page is at /refunds!',
      'The weather in Lisbon is sunny today',
      'Refunds: see the refund page',
    ];
    const r = await post(m, '/v1/embeddings', { model: 'text-embedding-3-small', input: texts });
    expect(r.status).toBe(200);
    expect(r.json.object).toBe('list');
    expect(r.json.model).toBe('text-embedding-3-small');
    expect(r.json.data.map((d: Json) => [d.object, d.index, d.embedding.length])).toEqual([
      ['embedding', 0, 256],
      ['embedding', 1, 256],
      ['embedding', 2, 256],
      ['embedding', 3, 256],
    ]);
    expect(r.json.usage.prompt_tokens).toBe(r.json.usage.total_tokens);
    expect(r.json.usage.total_tokens).toBeGreaterThan(0);
    const [a, b, c, d] = r.json.data.map((x: Json) => x.embedding as number[]);
    expect(cosine(a, b)).toBeCloseTo(1, 10);
    expect(Math.abs(cosine(a, c))).toBeLessThan(0.4);
    const partial = cosine(a, d);
    expect(partial).toBeGreaterThan(0.4);
    expect(partial).toBeLessThan(0.95);
    // The same text gives the same vector in another request and another server.
    const again = await post(m, '/v1/embeddings', { model: 'm', input: texts[0] });
    expect(again.json.data[0].embedding).toEqual(a);
    expect(m.stats().byEndpoint).toEqual({ embeddings: 2 });
  });

  it('honours dimensions and base64, and refuses an empty input in OpenAI shape', async () => {
    const m = await start({ embeddingDimensions: 32 });
    const r = await post(m, '/v1/embeddings', { model: 'm', input: 'abc' });
    expect(r.json.data[0].embedding).toHaveLength(32);
    const d = await post(m, '/v1/embeddings', { model: 'm', input: 'abc', dimensions: 8 });
    expect(d.json.data[0].embedding).toHaveLength(8);
    const b = await post(m, '/v1/embeddings', {
      model: 'm',
      input: 'abc',
      dimensions: 8,
      encoding_format: 'base64',
    });
    const bytes = Uint8Array.from(Buffer.from(b.json.data[0].embedding, 'base64'));
    const floats = new Float32Array(bytes.buffer);
    expect(floats).toHaveLength(8);
    expect(floats[0]).toBeCloseTo(d.json.data[0].embedding[0], 5);
    const empty = await post(m, '/v1/embeddings', { model: 'm', input: '' });
    expect(empty.status).toBe(400);
    expect(empty.json.error.type).toBe('invalid_request_error');
    const limited = await post(
      m,
      '/v1/embeddings',
      { model: 'm', input: 'x' },
      {
        'x-mock-fault': '503',
      },
    );
    expect(limited.status).toBe(503);
  });
});
