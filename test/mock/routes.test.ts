/**
 * The mock against the providers' route behaviour (issue #18 item 10): OpenAI's `GET /v1/models`
 * (clients call it first) and OpenAI's error shape on its unknown routes; Dify's one key per app
 * mode (`/v1/info` says the key's mode, a route of another mode answers 400 `not_*_app`), a
 * streamed workflow whose `total_steps` and predecessor ids name only nodes it sends, and 405 for
 * a known route called with the wrong method.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
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

async function call(
  m: MockServer,
  method: string,
  path: string,
  key: string | undefined,
  body?: unknown,
): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: Json }> {
  const res = await request(`${m.url}${path}`, {
    method: method as 'GET',
    headers: {
      ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

function events(text: string): Json[] {
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)));
}

const OPENAI_404 = (method: string, path: string) => ({
  error: {
    message: `Invalid URL (${method} ${path})`,
    type: 'invalid_request_error',
    param: null,
    code: null,
  },
});

describe('mock: OpenAI routes', () => {
  it('GET /v1/models lists the models, GET /v1/models/{id} retrieves one', async () => {
    const m = await start({ models: ['gpt-4o-mini', 'local-llama'] });
    const list = await call(m, 'GET', '/v1/models', 'sk-test');
    expect(list.status).toBe(200);
    expect(list.json).toEqual({
      object: 'list',
      data: [
        { id: 'gpt-4o-mini', object: 'model', created: expect.any(Number), owned_by: 'stride' },
        { id: 'local-llama', object: 'model', created: expect.any(Number), owned_by: 'stride' },
      ],
    });
    const one = await call(m, 'GET', '/v1/models/local-llama', 'sk-test');
    expect(one.json).toMatchObject({ id: 'local-llama', object: 'model' });
    const missing = await call(m, 'GET', '/v1/models/gpt-9', 'sk-test');
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found',
    });
    expect(m.stats().byEndpoint.models).toBe(3);
  });

  it('the models list asks for a key like chat completions, in OpenAI error shape', async () => {
    const m = await start({ apiKeys: ['sk-good'] });
    const none = await call(m, 'GET', '/v1/models', undefined);
    expect(none.status).toBe(401);
    expect(none.json.error.message).toMatch(/You didn't provide an API key/);
    const wrong = await call(m, 'GET', '/v1/models', 'sk-bad');
    expect(wrong.json.error.code).toBe('invalid_api_key');
    const ok = await call(m, 'GET', '/v1/models', 'sk-good');
    expect(ok.json.data.map((d: Json) => d.id)).toContain('gpt-4o-mini');
  });

  it("unknown OpenAI routes and wrong methods answer OpenAI's Invalid URL 404, not Dify's", async () => {
    const m = await start();
    // The mock serves POST /v1/embeddings (issue #20); moderations stays an unknown route.
    const moderations = await call(m, 'POST', '/v1/moderations', 'sk-test', { input: 'x' });
    expect(moderations.status).toBe(404);
    expect(moderations.json).toEqual(OPENAI_404('POST', '/v1/moderations'));
    const getEmbeddings = await call(m, 'GET', '/v1/embeddings', 'sk-test');
    expect(getEmbeddings.status).toBe(404);
    expect(getEmbeddings.json).toEqual(OPENAI_404('GET', '/v1/embeddings'));
    const getChat = await call(m, 'GET', '/v1/chat/completions', 'sk-test');
    expect(getChat.status).toBe(404);
    expect(getChat.json).toEqual(OPENAI_404('GET', '/v1/chat/completions'));
    const postModels = await call(m, 'POST', '/v1/models', 'sk-test', {});
    expect(postModels.json).toEqual(OPENAI_404('POST', '/v1/models'));
    // Anything else under /v1 is Dify's.
    const other = await call(m, 'GET', '/v1/nothing-here', 'app-x');
    expect(other.json).toMatchObject({ code: 'not_found', status: 404 });
  });
});

describe('mock: Dify routes', () => {
  it('a known route with the wrong method answers 405 with Allow, as Flask does', async () => {
    const m = await start();
    const get = await call(m, 'GET', '/v1/workflows/run', 'app-x');
    expect(get.status).toBe(405);
    expect(get.json).toEqual({
      code: 'method_not_allowed',
      message: 'The method is not allowed for the requested URL.',
      status: 405,
    });
    expect(get.headers.allow).toBe('OPTIONS, POST');
    const stop = await call(m, 'GET', '/v1/chat-messages/t-1/stop', 'app-x');
    expect(stop.status).toBe(405);
    const info = await call(m, 'POST', '/v1/info', 'app-x', {});
    expect(info.status).toBe(405);
    expect(info.headers.allow).toBe('GET, HEAD, OPTIONS');
  });

  const APPS = {
    'app-flow': 'workflow',
    'app-chat': 'chat',
    'app-advanced': 'advanced-chat',
    'app-agent': 'agent-chat',
    'app-text': 'completion',
  } as const;

  it('one key per app: /v1/info says the mode of the key', async () => {
    const m = await start({ apps: APPS });
    for (const [key, mode] of Object.entries(APPS)) {
      const info = await call(m, 'GET', '/v1/info', key);
      expect(info.json).toMatchObject({ mode });
    }
    // Keys outside `apps` (and `apiKeys`) are unknown keys.
    expect((await call(m, 'GET', '/v1/info', 'app-other')).status).toBe(401);
  });

  it('a route of another mode answers 400 not_workflow_app / not_chat_app / app_unavailable', async () => {
    const m = await start({ apps: APPS });
    const run = { inputs: { query: 'hi' }, query: 'hi', user: 'u' };
    const chatOnWorkflow = await call(m, 'POST', '/v1/workflows/run', 'app-chat', run);
    expect(chatOnWorkflow.status).toBe(400);
    expect(chatOnWorkflow.json).toEqual({
      code: 'not_workflow_app',
      message: 'Please check if your Workflow app mode matches the right API route.',
      status: 400,
    });
    const flowOnChat = await call(m, 'POST', '/v1/chat-messages', 'app-flow', run);
    expect(flowOnChat.json).toEqual({
      code: 'not_chat_app',
      message: 'Please check if your app mode matches the right API route.',
      status: 400,
    });
    const chatOnCompletion = await call(m, 'POST', '/v1/completion-messages', 'app-chat', run);
    expect(chatOnCompletion.json).toEqual({
      code: 'app_unavailable',
      message: 'App unavailable, please check your app configurations.',
      status: 400,
    });
    const stop = await call(m, 'POST', '/v1/workflows/tasks/t-1/stop', 'app-chat', { user: 'u' });
    expect(stop.json.code).toBe('not_workflow_app');
    // The chat family shares /chat-messages; the answer's mode echoes the app's.
    for (const key of ['app-chat', 'app-advanced', 'app-agent']) {
      const ok = await call(m, 'POST', '/v1/chat-messages', key, run);
      expect(ok.status).toBe(200);
      expect(ok.json.mode).toBe(APPS[key as keyof typeof APPS]);
    }
    expect((await call(m, 'POST', '/v1/workflows/run', 'app-flow', run)).status).toBe(200);
    expect((await call(m, 'POST', '/v1/completion-messages', 'app-text', run)).json.mode).toBe(
      'completion',
    );
  });

  it('without apps a key serves every route, as before', async () => {
    const m = await start();
    const run = { inputs: { query: 'hi' }, query: 'hi', user: 'u' };
    for (const path of ['/v1/workflows/run', '/v1/chat-messages', '/v1/completion-messages'])
      expect((await call(m, 'POST', path, 'app-any', run)).status).toBe(200);
  });
});

describe('mock: a streamed workflow names only the nodes it sends', () => {
  /** Checks that every predecessor and total_steps refer to nodes the stream did send. */
  function checkGraph(ev: Json[]): { steps: number; nodes: string[] } {
    const started: string[] = [];
    for (const e of ev) {
      if (e.event !== 'node_started' && e.event !== 'node_finished') continue;
      const d = e.data;
      if (e.event === 'node_started') {
        if (d.predecessor_node_id !== null) expect(started).toContain(d.predecessor_node_id);
        expect(d.index).toBe(started.length + 1);
        started.push(d.node_id);
      } else {
        expect(started).toContain(d.node_id);
      }
    }
    const finished = ev.find((e) => e.event === 'workflow_finished');
    expect(finished.data.total_steps).toBe(started.length);
    return { steps: started.length, nodes: started };
  }

  it('start -> llm -> end, each started and finished, total_steps 3 (blocking says 3 too)', async () => {
    const m = await start({ tokens: 100, chunks: 2 });
    const run = { inputs: { query: 'abcd' }, user: 'u' };
    const s = await call(m, 'POST', '/v1/workflows/run', 'app-x', {
      ...run,
      response_mode: 'streaming',
    });
    const ev = events(s.text);
    expect(ev.map((e) => `${e.event}${e.data?.node_type ? `:${e.data.node_type}` : ''}`)).toEqual([
      'workflow_started',
      'node_started:start',
      'node_finished:start',
      'node_started:llm',
      'text_chunk',
      'text_chunk',
      'node_finished:llm',
      'node_started:end',
      'node_finished:end',
      'workflow_finished',
    ]);
    expect(checkGraph(ev).steps).toBe(3);
    // Only the model-calling node carries a price.
    const metas = ev
      .filter((e) => e.event === 'node_finished')
      .map((e) => e.data.execution_metadata);
    expect(metas).toEqual([
      null,
      { total_tokens: 100, total_price: '0.0001250', currency: 'USD' },
      null,
    ]);
    const b = await call(m, 'POST', '/v1/workflows/run', 'app-x', run);
    expect(b.json.data.total_steps).toBe(3);
  });

  it('a workflow that fails at the LLM node ran 2 steps, streamed and blocking', async () => {
    const m = await start();
    const run = { inputs: { query: 'x', __fault: 'failed' }, user: 'u' };
    const s = await call(m, 'POST', '/v1/workflows/run', 'app-x', {
      ...run,
      response_mode: 'streaming',
    });
    const ev = events(s.text);
    expect(checkGraph(ev)).toEqual({ steps: 2, nodes: ['1710', '1711'] });
    expect(ev.at(-1).data.status).toBe('failed');
    const b = await call(m, 'POST', '/v1/workflows/run', 'app-x', run);
    expect(b.json.data).toMatchObject({ status: 'failed', total_steps: 2 });
  });
});

describe('stride mock flags', () => {
  it('--app KEY=MODE binds keys to modes, --model lists models; a bad mode is a usage error', async () => {
    const { parseMockArgs } = await import('../../src/mock/cli.js');
    const o = parseMockArgs([
      '--app',
      'app-a=chat',
      '--app',
      'app-b=advanced-chat',
      '--model',
      'm1',
    ]);
    expect(o.apps).toEqual({ 'app-a': 'chat', 'app-b': 'advanced-chat' });
    expect(o.models).toEqual(['m1']);
    expect(() => parseMockArgs(['--app', 'app-secret=chatbot'])).toThrow(
      /--app: .*MODE one of workflow, chat.*got "chatbot"/,
    );
    expect(() => parseMockArgs(['--app', 'app-secret=chatbot'])).not.toThrow(/app-secret/);
    expect(() => parseMockArgs(['--app', 'chat'])).toThrow(/--app: .*got no =/);
  });

  it('--responses FILE answers from a YAML mapping, other messages by --output', async () => {
    const { parseMockArgs } = await import('../../src/mock/cli.js');
    const dir = await mkdtemp(join(tmpdir(), 'stride-responses-'));
    try {
      const file = join(dir, 'responses.yaml');
      await writeFile(file, 'What is 17 * 3?: "51"\n"Say {\\"ok\\": true}": \'{"ok": true}\'\n');
      const o = parseMockArgs(['--responses', file, '--output', 'upper']);
      expect(o.output).toEqual({
        lookup: { 'What is 17 * 3?': '51', 'Say {"ok": true}': '{"ok": true}' },
        fallback: 'upper',
      });
      const m = await start(o);
      const ask = async (content: string) =>
        (
          await call(m, 'POST', '/v1/chat/completions', 'sk-test', {
            model: 'gpt-4o-mini',
            messages: [
              { role: 'system', content: 'Be terse.' },
              { role: 'user', content },
            ],
          })
        ).json.choices[0].message.content;
      expect(await ask('What is 17 * 3?')).toBe('51');
      expect(await ask('Say {"ok": true}')).toBe('{"ok": true}');
      expect(await ask('anything else')).toBe('ANYTHING ELSE');
      const wf = await call(m, 'POST', '/v1/workflows/run', 'app-x', {
        inputs: { query: 'What is 17 * 3?' },
        user: 'u',
      });
      expect(wf.json.data.outputs).toEqual({ text: '51' });
      // Bad files are usage errors naming the file and the entry.
      await writeFile(file, 'q: [not, a, string]\n');
      expect(() => parseMockArgs(['--responses', file])).toThrow(
        /--responses: .*responses\.yaml: the answer to "q" must be a string/,
      );
      expect(() => parseMockArgs(['--responses', join(dir, 'missing.yaml')])).toThrow(
        /--responses: cannot read .*missing\.yaml: ENOENT/,
      );
      await writeFile(file, '- a list\n');
      expect(() => parseMockArgs(['--responses', file])).toThrow(/must be a mapping/);
      expect(() =>
        parseMockArgs(['--responses', join(dir, 'x'), '--output', 'template:{{text}}']),
      ).toThrow(/--output, which must then be echo, upper, lower or reverse/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
