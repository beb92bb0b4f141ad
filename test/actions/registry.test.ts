import { describe, expect, test } from 'vitest';
import { ToolRegistry } from '../../src/actions/registry.js';
import type { Tool, ToolContext } from '../../src/actions/tool.js';
import { isStrideError } from '../../src/core/errors.js';

const ctx: ToolContext = {
  signal: new AbortController().signal,
  attempt: 1,
  stepId: 's',
  planId: 'p',
  usage: { networkRequest: () => {}, diskRead: () => {}, diskWrite: () => {} },
};

const upper: Tool<{ text: string }, string> = {
  name: 'upper',
  description: 'upper-cases text',
  schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  execute: async ({ text }) => text.toUpperCase(),
};

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('ToolRegistry', () => {
  test('register, get, has, names, unregister, size', async () => {
    const registry = new ToolRegistry().register(upper);
    expect(registry.has('upper')).toBe(true);
    expect(registry.names()).toEqual(['upper']);
    expect(registry.size).toBe(1);
    const tool = registry.get('upper');
    expect(tool).toBe(upper);
    expect(await tool?.execute({ text: 'abc' }, ctx)).toBe('ABC');
    expect(registry.get('nope')).toBeUndefined();
    expect(registry.unregister('upper')).toBe(true);
    expect(registry.unregister('upper')).toBe(false);
    expect(registry.has('upper')).toBe(false);
    expect(registry.names()).toEqual([]);
  });

  test('a duplicate name is an INVALID_OPTION error', () => {
    const registry = new ToolRegistry([upper]);
    const err = thrown(() => registry.register({ ...upper }));
    expect(isStrideError(err)).toBe(true);
    expect(err.code).toBe('INVALID_OPTION');
    expect(err.message).toBe(
      'invalid option tool.name: "upper" (expected a name not registered yet)',
    );
  });

  test('a tool without a name or execute is refused', () => {
    const registry = new ToolRegistry();
    expect(thrown(() => registry.register({ ...upper, name: '' })).message).toMatch(
      /^invalid option tool.name: "" \(expected a non-empty string\)/,
    );
    expect(thrown(() => registry.register({ name: 'x' } as unknown as Tool)).message).toMatch(
      /^invalid option tool x.execute: undefined \(expected a function\)/,
    );
    expect(
      thrown(() => registry.register({ ...upper, compensate: 3 } as unknown as Tool)).code,
    ).toBe('INVALID_OPTION');
    expect(thrown(() => registry.register(null as unknown as Tool)).code).toBe('INVALID_OPTION');
    expect(registry.names()).toEqual([]);
  });

  test('registerTool registers under the given name, delegating to the tool', async () => {
    const calls: string[] = [];
    class Counter implements Tool<{ n: number }, number> {
      readonly name = 'counter';
      private total = 0;
      async execute({ n }: { n: number }): Promise<number> {
        this.total += n;
        return this.total;
      }
      async compensate({ n }: { n: number }): Promise<void> {
        this.total -= n;
        calls.push(`undo ${n} -> ${this.total}`);
      }
    }
    const counter = new Counter();
    const registry = new ToolRegistry()
      .registerTool('custom_task', counter)
      .registerTool('counter', counter);
    expect(registry.names()).toEqual(['custom_task', 'counter']);
    expect(registry.get('counter')).toBe(counter);
    const alias = registry.require('custom_task');
    expect(alias.name).toBe('custom_task');
    expect(await alias.execute({ n: 2 }, ctx)).toBe(2);
    expect(await counter.execute({ n: 3 })).toBe(5); // same state: `this` is kept
    await alias.compensate?.({ n: 2 }, 2, ctx);
    expect(calls).toEqual(['undo 2 -> 3']);
    expect(thrown(() => registry.registerTool('custom_task', upper)).code).toBe('INVALID_OPTION');
    expect(thrown(() => registry.registerTool('', upper)).code).toBe('INVALID_OPTION');
  });

  test('registerTool accepts a tool without a name of its own', async () => {
    const registry = new ToolRegistry().registerTool('echo', {
      execute: async (args: Record<string, unknown>) => args,
    });
    expect(await registry.require('echo').execute({ a: 1 }, ctx)).toEqual({ a: 1 });
    expect(registry.get('echo')?.compensate).toBeUndefined();
  });

  test('require lists the registered names when the tool is missing', () => {
    expect(thrown(() => new ToolRegistry().require('x')).message).toBe(
      'invalid option tool: "x" (expected a registered tool (none are registered))',
    );
    expect(thrown(() => new ToolRegistry([upper]).require('lower')).message).toBe(
      'invalid option tool: "lower" (expected one of upper)',
    );
  });

  test('withBuiltins holds the built-in tools, file tools only with a root', () => {
    expect(ToolRegistry.withBuiltins().names()).toEqual(['http', 'sleep', 'transform']);
    const registry = ToolRegistry.withBuiltins({ root: '.' });
    expect(registry.names()).toEqual(['http', 'sleep', 'transform', 'file.read', 'file.write']);
    expect(registry.has('shell')).toBe(false);
    // still open for the user's own tools
    registry.register(upper);
    expect(registry.has('upper')).toBe(true);
  });
});
