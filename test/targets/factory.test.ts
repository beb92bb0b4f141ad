import { describe, expect, it } from 'vitest';
import { Run, TaskFailedError } from '../../src/core/index.js';
import {
  createTarget,
  DifyTarget,
  FunctionRegistry,
  functionTarget,
  HttpTarget,
  OpenAITarget,
} from '../../src/targets/index.js';

describe('createTarget', () => {
  it('builds each type from a camelCase config', async () => {
    const dify = createTarget(
      { type: 'dify', baseUrl: 'http://127.0.0.1:5001/v1', apiKey: 'app-x', app: 'chat' },
      { concurrency: 4 },
    );
    const openai = createTarget({ type: 'openai', model: 'm', apiKey: 'sk' });
    const http = createTarget({ type: 'http', url: 'http://127.0.0.1:9/x' });
    expect(dify).toBeInstanceOf(DifyTarget);
    expect(dify.key).toBe('dify:http://127.0.0.1:5001/v1:chat');
    expect(openai).toBeInstanceOf(OpenAITarget);
    expect(http).toBeInstanceOf(HttpTarget);
    await Promise.all([dify.close(), openai.close(), http.close()]);
  });

  it('rejects snake_case keys with the camelCase name, and unknown types', () => {
    expect(() => createTarget({ type: 'dify', base_url: 'x', apiKey: 'k' } as never)).toThrow(
      /target\.baseUrl/,
    );
    expect(() => createTarget({ type: 'grpc' } as never)).toThrow(/target\.type/);
    expect(() => createTarget({ type: 'openai', model: 'm' }, { concurrency: 0 })).toThrow(
      /concurrency/,
    );
  });

  it('resolves function targets from a registry or a plain object, by name', async () => {
    const registry = new FunctionRegistry().register('double', (n: number) => n * 2);
    const a = createTarget({ type: 'function', name: 'double' }, { functions: registry });
    const b = createTarget(
      { type: 'function', name: 'shout' },
      { functions: { shout: async (s: unknown) => `${String(s)}!` } },
    );
    expect(a.key).toBe('function:double');
    const r1 = await new Run([{ input: 21 }], a).start();
    const r2 = await new Run([{ input: 'hey' }], b).start();
    expect(r1.tasks[0]!.output).toBe(42);
    expect(r2.tasks[0]!.output).toBe('hey!');
    expect(() => createTarget({ type: 'function', name: 'nope' }, { functions: registry })).toThrow(
      /one of double/,
    );
    expect(() => registry.register('double', () => 0)).toThrow(/already registered/);
  });
});

describe('functionTarget', () => {
  it('passes input, context and task; errors are classified by the engine as thrown', async () => {
    const seen: string[] = [];
    const t = functionTarget(
      async (input: { q: string }, ctx, task) => {
        seen.push(`${task.id}:${ctx.attempt}`);
        ctx.reportUsage({ tokens: 5 });
        if (input.q === 'wrong') throw new TaskFailedError('wrong answer', { output: 'nope' });
        if (input.q === 'flaky' && ctx.attempt === 1)
          throw Object.assign(new Error('upstream 503'), { status: 503 });
        return input.q.toUpperCase();
      },
      { name: 'upper' },
    );
    const result = await new Run(
      [
        { id: 'a', input: { q: 'ok' } },
        { id: 'b', input: { q: 'wrong' } },
        { id: 'c', input: { q: 'flaky' } },
      ],
      t,
      { retry: { maxAttempts: 3, backoffMs: 1 }, concurrency: 1 },
    ).start();
    const byId = Object.fromEntries(result.tasks.map((r) => [r.id, r]));
    expect(byId.a!.output).toBe('OK');
    expect(byId.b!.status).toBe('failed');
    expect(byId.b!.output).toBe('nope');
    expect(byId.c!.status).toBe('succeeded');
    expect(seen).toEqual(['a:1', 'b:1', 'c:1', 'c:2']);
    expect(result.statistics.tokens).toBe(20);
  });

  it('rejects what is not a function', () => {
    expect(() => functionTarget(42 as never)).toThrow(/function/);
  });
});
