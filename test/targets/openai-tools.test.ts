/**
 * Tool calls come back the same in both response modes (issue #18 item 9): OpenAI streams a tool
 * call as deltas by `index` (the first with id, type, name and `arguments: ""`, the rest with
 * argument fragments only), while blocking mode returns whole calls. The target assembles the
 * deltas, so `toolCalls` is the blocking shape either way.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenAIOutput, OpenAITarget } from '../../src/targets/index.js';
import { attempt } from './helpers.js';

/** The two calls the server answers with, in OpenAI's blocking shape. */
const CALLS = [
  {
    id: 'call_weather',
    type: 'function',
    function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' },
  },
  {
    id: 'call_time',
    type: 'function',
    function: { name: 'get_time', arguments: '{"tz":"Europe/Paris"}' },
  },
];

/** The stream OpenAI sends for CALLS: interleaved argument fragments, by index. */
function chunks(): unknown[] {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm' };
  const delta = (d: unknown, finish: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }],
  });
  const start = (i: number) => ({
    index: i,
    id: CALLS[i]!.id,
    type: 'function',
    function: { name: CALLS[i]!.function.name, arguments: '' },
  });
  const frag = (i: number, text: string) => ({ index: i, function: { arguments: text } });
  return [
    delta({ role: 'assistant', content: null, tool_calls: [start(0)] }),
    delta({ tool_calls: [frag(0, '{"city":')] }),
    delta({ tool_calls: [frag(0, '"Paris",')] }),
    delta({ tool_calls: [start(1)] }),
    delta({ tool_calls: [frag(1, '{"tz":"Europe/')] }),
    delta({ tool_calls: [frag(0, '"unit":"c"}')] }),
    delta({ tool_calls: [frag(1, 'Paris"}')] }),
    delta({}, 'tool_calls'),
    { ...base, choices: [], usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 } },
  ];
}

/** The same calls from a compatible server that sends no `index` (not interleaved then). */
function withoutIndex(): unknown[] {
  const base = { id: 'chatcmpl-2', object: 'chat.completion.chunk', created: 1, model: 'm' };
  const delta = (tool: unknown) => ({
    ...base,
    choices: [{ index: 0, delta: { tool_calls: [tool] }, finish_reason: null }],
  });
  const out: unknown[] = [];
  for (const call of CALLS) {
    const half = Math.ceil(call.function.arguments.length / 2);
    out.push(
      delta({ id: call.id, type: 'function', function: { name: call.function.name } }),
      delta({ function: { arguments: call.function.arguments.slice(0, half) } }),
      delta({ function: { arguments: call.function.arguments.slice(half) } }),
    );
  }
  out.push({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
  return out;
}

let server: Server;
let baseUrl: string;
const targets: OpenAITarget[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => {
      text += c.toString();
    });
    req.on('end', () => {
      const body = JSON.parse(text) as { stream?: boolean; model?: string };
      if (body.stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const c of body.model === 'no-index' ? withoutIndex() : chunks())
          res.write(`data: ${JSON.stringify(c)}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'm',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: null, tool_calls: CALLS },
              finish_reason: 'tool_calls',
            },
          ],
          usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  await Promise.all(targets.map((t) => t.close()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function ask(responseMode: 'blocking' | 'streaming', model = 'm'): Promise<OpenAIOutput> {
  const t = new OpenAITarget({ baseUrl, model, responseMode });
  targets.push(t);
  const { value, error } = await attempt(t, 'What is the weather and the time in Paris?');
  expect(error).toBeUndefined();
  return value as OpenAIOutput;
}

describe('OpenAI tool calls', () => {
  it('blocking mode returns the whole calls', async () => {
    const out = await ask('blocking');
    expect(out.toolCalls).toEqual(CALLS);
    expect(out.finishReason).toBe('tool_calls');
  });

  it('streaming assembles the deltas by index into the same calls', async () => {
    const streamed = await ask('streaming');
    expect(streamed.toolCalls).toEqual(CALLS);
    expect(JSON.parse(CALLS[0]!.function.arguments)).toEqual({ city: 'Paris', unit: 'c' });
    const blocking = await ask('blocking');
    expect({ ...streamed, id: undefined }).toEqual({ ...blocking, id: undefined });
  });

  it('a server that sends no index: each new id opens a call, fragments continue it', async () => {
    const out = await ask('streaming', 'no-index');
    expect(out.toolCalls).toEqual(CALLS);
  });
});
