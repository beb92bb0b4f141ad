/**
 * The tools an action plan may call, by name (the seeds' `ToolRegistry`).
 */

import { InvalidOptionError } from '../core/errors.js';
import { type BuiltinToolsOptions, builtinTools } from './builtins.js';
import type { Tool } from './tool.js';

/**
 * Named tools. A name is registered once; a step's `tool` is looked up here.
 *
 * @example
 * ```ts
 * const tools = ToolRegistry.withBuiltins({ root: './work' }).register({
 *   name: 'users.create',
 *   schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
 *   execute: async ({ name }, ctx) => api.createUser(String(name), { signal: ctx.signal }),
 *   compensate: async (_args, created) => { if (created) await api.deleteUser(created.id); },
 * });
 * tools.names(); // ['http', 'sleep', 'transform', 'file.read', 'file.write', 'users.create']
 * ```
 */
export class ToolRegistry {
  private readonly tools = new Map<string, Tool>();

  /** A registry holding `tools` (same checks as `register`). */
  constructor(tools: Iterable<Tool<never, unknown>> = []) {
    for (const tool of tools) this.register(tool);
  }

  /**
   * Adds a tool under its `name`. Returns the registry, for chaining.
   *
   * @throws InvalidOptionError when the tool has no name or no `execute`, when `compensate` is
   *   not a function, or when the name is already taken.
   */
  register<A, O>(tool: Tool<A, O>): this {
    if (typeof tool !== 'object' || tool === null)
      throw new InvalidOptionError('tool', tool, 'a tool object with name and execute');
    if (typeof tool.name !== 'string' || tool.name.trim() === '')
      throw new InvalidOptionError('tool.name', tool.name, 'a non-empty string');
    if (typeof tool.execute !== 'function')
      throw new InvalidOptionError(`tool ${tool.name}.execute`, tool.execute, 'a function');
    if (tool.compensate !== undefined && typeof tool.compensate !== 'function')
      throw new InvalidOptionError(`tool ${tool.name}.compensate`, tool.compensate, 'a function');
    if (this.tools.has(tool.name))
      throw new InvalidOptionError('tool.name', tool.name, 'a name not registered yet');
    this.tools.set(tool.name, tool as unknown as Tool);
    return this;
  }

  /**
   * The seeds' `register_tool(name, tool)`: registers `tool` under `name`. When the tool's own
   * `name` differs (or is missing), a wrapper carrying `name` and delegating to the tool is
   * registered, so the same implementation can serve under several names.
   *
   * @example
   * ```ts
   * registry.registerTool('fetch', httpTool({ allowedHosts: ['api.example.com'] }));
   * ```
   */
  registerTool<A, O>(name: string, tool: Tool<A, O> | Omit<Tool<A, O>, 'name'>): this {
    if (typeof name !== 'string' || name.trim() === '')
      throw new InvalidOptionError('name', name, 'a non-empty string');
    if (typeof tool !== 'object' || tool === null)
      throw new InvalidOptionError(`tool ${name}`, tool, 'a tool object with execute');
    if ((tool as { name?: unknown }).name === name) return this.register(tool as Tool<A, O>);
    if (typeof tool.execute !== 'function')
      throw new InvalidOptionError(`tool ${name}.execute`, tool.execute, 'a function');
    const compensate = tool.compensate;
    const alias: Tool<A, O> = {
      name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      ...(tool.schema === undefined ? {} : { schema: tool.schema }),
      execute: (args, ctx) => tool.execute(args, ctx),
      ...(compensate === undefined
        ? {}
        : {
            compensate: (args: A, output: O | undefined, ctx: Parameters<typeof compensate>[2]) =>
              compensate.call(tool, args, output, ctx),
          }),
    };
    return this.register(alias);
  }

  /** The tool registered as `name`, or undefined. */
  get(name: string): Tool | undefined {
    return this.tools.get(name);
  }

  /**
   * The tool registered as `name`.
   *
   * @throws InvalidOptionError listing the registered names when there is none.
   */
  require(name: string): Tool {
    const tool = this.tools.get(name);
    if (tool === undefined) {
      const known = this.names();
      throw new InvalidOptionError(
        'tool',
        name,
        known.length === 0
          ? 'a registered tool (none are registered)'
          : `one of ${known.join(', ')}`,
      );
    }
    return tool;
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.tools.keys()];
  }

  /** Removes a tool; true if it was there. */
  unregister(name: string): boolean {
    return this.tools.delete(name);
  }

  /** How many tools are registered. */
  get size(): number {
    return this.tools.size;
  }

  /**
   * A registry holding the built-in tools (`http`, `sleep`, `transform`, and the file tools
   * when `root` is given).
   *
   * @example
   * ```ts
   * const tools = ToolRegistry.withBuiltins({ root: './work', http: { timeoutMs: 10_000 } });
   * ```
   */
  static withBuiltins(options: BuiltinToolsOptions = {}): ToolRegistry {
    return new ToolRegistry(builtinTools(options));
  }
}
