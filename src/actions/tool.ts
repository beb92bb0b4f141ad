/**
 * The tool port of action plans: what a step calls. A tool has a name, a schema for its
 * arguments (validated before the call), an `execute`, and an optional `compensate` that undoes
 * it (the saga's compensation). Tools report what they consume through `ctx.usage`, so
 * `ResourceUsage` is measured, never invented.
 */

/** A JSON Schema subset (see docs/actions.md, "Schemas"), or a zod-like schema with `safeParse`. */
export type ToolSchema =
  | JsonSchema
  | { safeParse(value: unknown): { success: boolean; error?: unknown } };

/**
 * The JSON Schema subset Stride validates: `type` (string, number, integer, boolean, object,
 * array, null, or a list of them), `properties`, `required`, `additionalProperties` (boolean),
 * `items`, `enum`, `const`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`,
 * `minItems`, `maxItems`.
 */
export interface JsonSchema {
  readonly type?: JsonType | readonly JsonType[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
  readonly items?: JsonSchema;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly description?: string;
}

export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/** Counters a tool adds to while it runs; the executor sums them into `ResourceUsage`. */
export interface ToolUsage {
  /** Counts one network request; throws `ResourceExhausted` if the plan's limit is reached. */
  networkRequest(): void;
  /** Counts one read of `bytes` bytes from disk. */
  diskRead(bytes: number): void;
  /** Counts one write of `bytes` bytes to disk. */
  diskWrite(bytes: number): void;
}

/** What a tool's `execute` and `compensate` receive. */
export interface ToolContext {
  /** Aborted on timeout, cancel or pause-with-abort: stop at once and clean up. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The step this call belongs to. */
  readonly stepId: string;
  /** The plan's id. */
  readonly planId: string;
  readonly usage: ToolUsage;
}

/**
 * A tool.
 *
 * @example
 * ```ts
 * const createUser: Tool<{ name: string }, { id: string }> = {
 *   name: 'users.create',
 *   schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
 *   execute: async ({ name }, ctx) => api.createUser(name, { signal: ctx.signal }),
 *   compensate: async (_args, created) => api.deleteUser(created.id),
 * };
 * ```
 */
export interface Tool<A = Record<string, unknown>, O = unknown> {
  readonly name: string;
  readonly description?: string;
  /** Checked before every call; a mismatch is a validation error, never retried. */
  readonly schema?: ToolSchema;
  execute(args: A, ctx: ToolContext): Promise<O>;
  /**
   * Undoes a call: given the arguments and the output (undefined when the outcome is unknown:
   * the step timed out or was in flight at a crash). Must be idempotent: it may run again after
   * a crash during rollback.
   */
  compensate?(args: A, output: O | undefined, ctx: ToolContext): Promise<void>;
}
