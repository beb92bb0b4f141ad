/**
 * Which handler answers a request under /v1 and /echo, and what a route the mock does not serve
 * gets: a known route called with another method answers as its provider does (Dify's Flask
 * router: 405 with `Allow`; OpenAI: a 404 "Invalid URL"), and an unknown path answers in the shape
 * of the provider it belongs to (OpenAI's resources, else Dify's).
 */

import { type DifyApp, handleAppInfo, handleDifyRun, handleDifyStop } from './dify.js';
import { handleEmbeddings, handleModels, handleOpenAI, openAiInvalidUrl } from './openai.js';
import { type Exchange, handleEcho, type MockCore } from './server.js';

const RUNS: Readonly<Record<string, DifyApp>> = {
  '/v1/workflows/run': 'workflow',
  '/v1/chat-messages': 'chat',
  '/v1/completion-messages': 'completion',
};

const STOP = /^\/v1\/(workflows\/tasks|chat-messages|completion-messages)\/([^/]+)\/stop$/;
const STOP_APPS: Readonly<Record<string, DifyApp>> = {
  'workflows/tasks': 'workflow',
  'chat-messages': 'chat',
  'completion-messages': 'completion',
};

/**
 * First path segments under /v1 that are OpenAI's. Dify's Service API uses none of them (its
 * `files` and `conversations` are left to Dify: both providers have them).
 */
const OPENAI_RESOURCES = new Set([
  'chat',
  'completions',
  'embeddings',
  'models',
  'responses',
  'audio',
  'images',
  'moderations',
  'fine_tuning',
  'batches',
  'assistants',
  'threads',
  'vector_stores',
  'uploads',
  'realtime',
  'organization',
]);

/** Whether a request generates an answer (counted in flight from its arrival). */
export function isGeneration(path: string, method: string): boolean {
  if (path === '/echo' || path.startsWith('/echo/')) return true;
  return (
    method === 'POST' &&
    (RUNS[path] !== undefined || path === '/v1/chat/completions' || path === '/v1/embeddings')
  );
}

function notFound(ex: Exchange): void {
  ex.json(404, {
    code: 'not_found',
    message:
      'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.',
    status: 404,
  });
}

/** Flask's answer to a known route called with a method it does not have. */
function methodNotAllowed(ex: Exchange, allow: string): void {
  ex.json(
    405,
    {
      code: 'method_not_allowed',
      message: 'The method is not allowed for the requested URL.',
      status: 405,
    },
    { allow },
  );
}

const POST_ONLY = 'OPTIONS, POST';
const GET_ONLY = 'GET, HEAD, OPTIONS';

/** Answers one request under /v1 or /echo, its body read. */
export function dispatch(
  core: MockCore,
  ex: Exchange,
  url: URL,
  path: string,
  method: string,
  text: string | undefined,
): void {
  const app = RUNS[path];
  const stop = STOP.exec(path);
  const resource = path.startsWith('/v1/') ? path.slice(4).split('/')[0]! : '';
  if (app !== undefined || stop !== null) {
    if (method !== 'POST') methodNotAllowed(ex, POST_ONLY);
    else if (app !== undefined) {
      core.count(core.stats.byEndpoint, app);
      handleDifyRun(core, ex, app, text);
    } else {
      core.count(core.stats.byEndpoint, 'stop');
      handleDifyStop(core, ex, STOP_APPS[stop![1]!]!, decodeURIComponent(stop![2]!), text);
    }
  } else if (path === '/v1/parameters' || path === '/v1/info') {
    if (method !== 'GET' && method !== 'HEAD') methodNotAllowed(ex, GET_ONLY);
    else {
      core.count(core.stats.byEndpoint, path.slice(4));
      handleAppInfo(core, ex, path);
    }
  } else if (path === '/echo' || path.startsWith('/echo/')) {
    core.count(core.stats.byEndpoint, 'echo');
    handleEcho(core, ex, url, text);
  } else if (OPENAI_RESOURCES.has(resource)) {
    if (path === '/v1/chat/completions' && method === 'POST') {
      // Counted as 'openai' or 'grade' once the body says which.
      handleOpenAI(core, ex, text);
    } else if (path === '/v1/embeddings' && method === 'POST') {
      core.count(core.stats.byEndpoint, 'embeddings');
      handleEmbeddings(core, ex, text);
    } else if ((path === '/v1/models' || path.startsWith('/v1/models/')) && method === 'GET') {
      core.count(core.stats.byEndpoint, 'models');
      handleModels(core, ex, path);
    } else openAiInvalidUrl(ex, method, url.pathname);
  } else notFound(ex);
}
