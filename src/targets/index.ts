/**
 * Targets: what executes one attempt of a case. Dify is the first-class one; OpenAI-compatible
 * chat completions, any HTTP API and any function are the others. None retries: the engine
 * owns the only retry layer. Targets import the engine through `core/index.js` only.
 */

import type { Dispatcher } from 'undici';
import { InvalidOptionError, type Target } from '../core/index.js';
import { DifyTarget, type DifyTargetOptions } from './dify/index.js';
import { FunctionRegistry, functionTarget, type TargetFunction } from './function.js';
import { HttpTarget, type HttpTargetOptions } from './http/index.js';
import { isRecord } from './internal/http.js';
import { OpenAITarget, type OpenAITargetOptions } from './openai/index.js';

export {
  type DifyApp,
  type DifyInput,
  type DifyOutput,
  DifyTarget,
  type DifyTargetOptions,
  type ResponseMode,
  workflowText,
} from './dify/index.js';
export {
  FunctionRegistry,
  type FunctionTarget,
  type FunctionTargetOptions,
  functionTarget,
  type TargetFunction,
} from './function.js';
export { type HttpOutput, HttpTarget, type HttpTargetOptions } from './http/index.js';
export type { RateLimitListener, TransportOptions } from './internal/http.js';
export {
  parseRateLimitHeaders,
  parseResetDuration,
  parseRetryAfter,
  type RateLimitInfo,
} from './internal/ratelimit.js';
export {
  type OpenAIInput,
  type OpenAIOutput,
  OpenAITarget,
  type OpenAITargetOptions,
} from './openai/index.js';

/** A target made by `createTarget`: it owns a connection pool, so close it when done. */
export interface ClosableTarget<I = unknown, O = unknown> extends Target<I, O> {
  readonly key: string;
  /** Closes the connection pool once in-flight requests end (no-op for functions). */
  close(): Promise<void>;
}

interface ConfigCommon {
  /** A label for reports; for `function`, the registered function's name. */
  readonly name?: string;
}

export type DifyTargetConfig = { readonly type: 'dify' } & DifyTargetOptions & ConfigCommon;
export type OpenAITargetConfig = { readonly type: 'openai' } & OpenAITargetOptions & ConfigCommon;
export type HttpTargetConfig = { readonly type: 'http' } & HttpTargetOptions & ConfigCommon;
export interface FunctionTargetConfig {
  readonly type: 'function';
  /** The name the function is registered under. */
  readonly name: string;
  readonly key?: string;
}

/**
 * A target as a plan file describes it, in camelCase (the plan loader maps `base_url`,
 * `api_key`, `response_mode`, `output_path` to `baseUrl`, `apiKey`, `responseMode`, `outputPath`).
 */
export type TargetConfig =
  | DifyTargetConfig
  | OpenAITargetConfig
  | HttpTargetConfig
  | FunctionTargetConfig;

export interface CreateTargetOptions {
  /** Functions a `function` target may name. */
  readonly functions?: FunctionRegistry | Readonly<Record<string, TargetFunction>>;
  /** The run's concurrency: sizes the connection pool (unless the config sets `connections`). */
  readonly concurrency?: number;
  /** Send through this undici dispatcher (shared pools, proxies, test mocks). */
  readonly dispatcher?: Dispatcher;
}

const TYPES = ['dify', 'openai', 'http', 'function'] as const;

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Builds a target from a config object.
 *
 * @example
 * ```ts
 * const target = createTarget(
 *   { type: 'dify', baseUrl: 'http://127.0.0.1:5001/v1', apiKey: key, app: 'workflow', responseMode: 'streaming' },
 *   { concurrency: 20 },
 * );
 * try { await new Run(cases, target, { concurrency: 20 }).start(); } finally { await target.close(); }
 * ```
 */
export function createTarget(
  config: TargetConfig,
  options: CreateTargetOptions = {},
): ClosableTarget {
  if (!isRecord(config)) throw new InvalidOptionError('target', config, 'a target config object');
  const type = (config as { type?: unknown }).type;
  if (!TYPES.includes(type as (typeof TYPES)[number]))
    throw new InvalidOptionError('target.type', type, TYPES.join(' | '));
  for (const key of Object.keys(config)) {
    if (key.includes('_'))
      throw new InvalidOptionError(
        `target.${key}`,
        '(snake_case key)',
        `the camelCase key target.${camel(key)}`,
      );
  }
  if (
    options.concurrency !== undefined &&
    (!Number.isInteger(options.concurrency) || options.concurrency < 1)
  )
    throw new InvalidOptionError('concurrency', options.concurrency, 'an integer >= 1');
  const transport: { connections?: number; dispatcher?: Dispatcher } = {};
  const connections = (config as { connections?: number }).connections ?? options.concurrency;
  if (connections !== undefined) transport.connections = connections;
  if (options.dispatcher !== undefined) transport.dispatcher = options.dispatcher;

  switch (config.type) {
    case 'dify':
      return new DifyTarget({ ...config, ...transport });
    case 'openai':
      return new OpenAITarget({ ...config, ...transport });
    case 'http':
      return new HttpTarget({ ...config, ...transport });
    default: {
      const fnConfig = config as FunctionTargetConfig;
      if (typeof fnConfig.name !== 'string' || fnConfig.name === '')
        throw new InvalidOptionError(
          'target.name',
          fnConfig.name,
          'the name of a registered function',
        );
      const fns = options.functions;
      const registry = fns instanceof FunctionRegistry ? fns : FunctionRegistry.from(fns ?? {});
      const fn = registry.get(fnConfig.name);
      return functionTarget(fn, {
        name: fnConfig.name,
        ...(fnConfig.key === undefined ? {} : { key: fnConfig.key }),
      });
    }
  }
}
