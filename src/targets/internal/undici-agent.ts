/**
 * undici's `Agent` without undici's package index. The index loads ~110 files (fetch, WebSocket,
 * the cache, the mocks), and its cookies module reads `globalThis.Headers`, which makes Node load
 * its own bundled undici as well: ~130 ms of CPU of a one-case `stride run` that only ever uses
 * `Agent` and `Dispatcher#request` (~30 files). Measured in docs/benchmarks.md, "CLI start-up".
 *
 * `Dispatcher#request` and its siblings are attached to `Dispatcher.prototype` by the index
 * (`Object.assign(Dispatcher.prototype, api)`); this does the same assignment on the same cached
 * module, so a later `import 'undici'` (a library user's) finds the prototype as it expects and
 * a target's `dispatcher` is a full undici Dispatcher either way. The files are not undici's
 * documented API: if a release moves them, the require throws and the index is used instead
 * (slower start-up, same behaviour); test/targets/undici-agent.test.ts notices that.
 */

import { createRequire } from 'node:module';
import type { Agent } from 'undici';

const require = createRequire(import.meta.url);

let agentClass: typeof Agent | undefined;

/** Whether the last `agentConstructor()` came from undici's own files (false: the index). */
export let narrowUndici = false;

/** undici's `Agent` class, loaded once, from its own files when they are where undici 7 keeps them. */
export function agentConstructor(): typeof Agent {
  if (agentClass !== undefined) return agentClass;
  try {
    const dispatcher = require('undici/lib/dispatcher/dispatcher') as { prototype: object };
    const api = require('undici/lib/api') as Record<string, unknown>;
    const agent = require('undici/lib/dispatcher/agent') as typeof Agent;
    if (typeof agent !== 'function' || typeof api.request !== 'function') throw new Error('moved');
    if (!('request' in dispatcher.prototype)) Object.assign(dispatcher.prototype, api);
    agentClass = agent;
    narrowUndici = true;
  } catch {
    agentClass = (require('undici') as typeof import('undici')).Agent;
    narrowUndici = false;
  }
  return agentClass;
}
