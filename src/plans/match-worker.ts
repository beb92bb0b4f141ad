/**
 * Matches too large for the event loop's thread run on one worker thread, ended when the attempt
 * that asked is aborted (its timeout, a cancel, Ctrl-C). Linear-time matching bounds the work by
 * program size × text length, but a 2,000-instruction pattern over a 100 KB answer is still
 * 10 s of CPU (measured): on the main thread that would hold back the case's timeout and every
 * signal, as the backtracking RegExp did. `Worker.terminate()` stops a thread mid-match.
 *
 * One worker, one match at a time, created on first use and kept: a match that fits the budget
 * never comes here (`fitsInThread`), so this path is for large outputs and is not hot. The
 * worker holds the process open only while a match is in flight.
 */

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { CompiledPattern } from './pattern.js';

// The worker is evaluated code, not a file: the same source serves dist/ and the TypeScript
// sources under test, and it needs nothing but re2js (its CommonJS build, by absolute path).
const RE2JS_PATH = createRequire(import.meta.url).resolve('re2js');
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { RE2JS } = require(workerData);
const cache = new Map();
parentPort.on('message', ({ source, flags, text }) => {
  try {
    const key = flags + ':' + source;
    let re = cache.get(key);
    if (re === undefined) {
      if (cache.size >= 100) cache.clear();
      re = RE2JS.compile(source, flags);
      cache.set(key, re);
    }
    parentPort.postMessage({ matched: re.test(text) });
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message || e) });
  }
});
`;

interface Job {
  readonly source: string;
  readonly flags: number;
  readonly text: string;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (matched: boolean) => void;
  readonly reject: (reason: unknown) => void;
  onAbort?: () => void;
}

class MatchWorker {
  #worker: Worker | undefined;
  #running: Job | undefined;
  readonly #queue: Job[] = [];

  match(pattern: CompiledPattern, text: string, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<boolean>((resolve, reject) => {
      const job: Job = {
        source: pattern.engineSource,
        flags: pattern.flags,
        text,
        signal,
        resolve,
        reject,
      };
      if (signal !== undefined) {
        job.onAbort = () => this.#abort(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#next();
    });
  }

  #start(): Worker {
    const worker = new Worker(WORKER_CODE, { eval: true, workerData: RE2JS_PATH });
    worker.on('message', (m: { matched?: boolean; error?: string }) => {
      if (worker !== this.#worker) return;
      if (m.error !== undefined) this.#settle(undefined, new Error(m.error));
      else this.#settle(m.matched === true);
    });
    worker.on('error', (e) => {
      if (worker !== this.#worker) return;
      this.#worker = undefined;
      this.#settle(undefined, e);
    });
    worker.on('exit', (code) => {
      if (worker !== this.#worker) return;
      this.#worker = undefined;
      this.#settle(undefined, new Error(`the pattern worker exited with code ${code}`));
    });
    return worker;
  }

  #next(): void {
    if (this.#running !== undefined) return;
    const job = this.#queue.shift();
    if (job === undefined) {
      this.#worker?.unref();
      return;
    }
    this.#running = job;
    this.#worker ??= this.#start();
    this.#worker.ref();
    this.#worker.postMessage({ source: job.source, flags: job.flags, text: job.text });
  }

  #settle(matched: boolean | undefined, error?: unknown): void {
    const job = this.#running;
    if (job === undefined) return;
    this.#running = undefined;
    if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
    if (error !== undefined) job.reject(error);
    else job.resolve(matched === true);
    this.#next();
  }

  #abort(job: Job): void {
    if (job === this.#running) {
      // The only way to stop a match in progress: end its thread. The next job gets a new one.
      const worker = this.#worker;
      this.#worker = undefined;
      void worker?.terminate();
      this.#settle(undefined, job.signal?.reason ?? new Error('aborted'));
      return;
    }
    const at = this.#queue.indexOf(job);
    if (at >= 0) this.#queue.splice(at, 1);
    job.reject(job.signal?.reason ?? new Error('aborted'));
  }
}

let shared: MatchWorker | undefined;

/**
 * Matches on the worker thread; rejects with `signal.reason` as soon as `signal` aborts, ending
 * the match in progress.
 */
export function matchInWorker(
  pattern: CompiledPattern,
  text: string,
  signal?: AbortSignal,
): Promise<boolean> {
  shared ??= new MatchWorker();
  return shared.match(pattern, text, signal);
}
