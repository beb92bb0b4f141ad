/**
 * `assert_module` checks run on worker threads, never on the run's thread: a user's module that
 * loops forever (or awaits forever) would otherwise hold the event loop, and with it every
 * timeout, Ctrl-C and the journal (the regex fix of issue #16 had the same cause).
 * `Worker.terminate()` stops a thread mid-loop, so a call ends at its time limit or when the
 * attempt that asked is aborted, whatever the module does.
 *
 * A small pool (at most `POOL_SIZE` threads, created on demand, one call each at a time): a
 * check that takes 50 ms must not make twenty concurrent cases queue behind one thread. Idle
 * threads are unref'd, so they never hold the process open; a thread ended by a time limit is
 * replaced on the next call.
 */

import { isAbsolute, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';

/** How long one call of a check may take, unless the caller says otherwise. */
export const MODULE_TIMEOUT_MS = 5_000;

const POOL_SIZE = 4;

// Evaluated code, not a file: the same source serves dist/ and the TypeScript sources under
// test. `import()` loads ESM and CommonJS alike (a .cjs module's `module.exports` is its
// default export, its named exports found by Node's lexer).
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
parentPort.on('message', async ({ id, file, name, arg, check }) => {
  let fn;
  try {
    const mod = await import(pathToFileURL(file).href);
    fn = mod[name];
  } catch (e) {
    parentPort.postMessage({ id, load: String((e && e.message) || e) });
    return;
  }
  if (typeof fn !== 'function') {
    parentPort.postMessage({ id, missing: fn === undefined ? 'no such export' : 'not a function' });
    return;
  }
  if (check) {
    parentPort.postMessage({ id, ok: true });
    return;
  }
  try {
    const value = await fn(arg);
    parentPort.postMessage({ id, value });
  } catch (e) {
    try {
      parentPort.postMessage({ id, error: String((e && e.message) || e) });
    } catch {
      parentPort.postMessage({ id, error: 'the check threw a value that cannot be sent' });
    }
  }
});
`;

/** Why a module check could not give a verdict. */
export class ModuleCallError extends Error {
  constructor(
    readonly kind: 'load' | 'missing' | 'threw' | 'timeout' | 'crashed',
    message: string,
  ) {
    super(message);
    this.name = 'ModuleCallError';
  }
}

interface Job {
  readonly id: number;
  readonly message: Record<string, unknown>;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
  onAbort?: (() => void) | undefined;
  timer?: ReturnType<typeof setTimeout>;
  slot?: Slot;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

interface Reply {
  readonly id: number;
  readonly value?: unknown;
  readonly ok?: true;
  readonly load?: string;
  readonly missing?: string;
  readonly error?: string;
}

class ModulePool {
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #ids = 0;

  run(message: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: ++this.#ids,
        message,
        timeoutMs,
        signal,
        resolve,
        reject,
      };
      if (signal !== undefined) {
        job.onAbort = () => this.#end(job, signal.reason);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#next();
    });
  }

  #spawn(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_CODE, { eval: true }), job: undefined };
    slot.worker.on('message', (m: Reply) => {
      const job = slot.job;
      if (job === undefined || job.id !== m.id) return;
      if (m.load !== undefined) {
        this.#end(job, new ModuleCallError('load', `cannot be loaded: ${m.load}`));
      } else if (m.missing !== undefined) {
        this.#end(job, new ModuleCallError('missing', m.missing));
      } else if (m.error !== undefined) {
        this.#end(job, new ModuleCallError('threw', `threw: ${m.error}`));
      } else {
        this.#end(job, undefined, m.ok === true ? true : m.value);
      }
    });
    const gone = (why: string) => {
      const at = this.#slots.indexOf(slot);
      if (at >= 0) this.#slots.splice(at, 1);
      if (slot.job !== undefined) this.#end(slot.job, new ModuleCallError('crashed', why));
    };
    slot.worker.on('error', (e) => gone(`the check's thread failed: ${e.message}`));
    slot.worker.on('exit', (code) => gone(`the check's thread exited with code ${code}`));
    this.#slots.push(slot);
    return slot;
  }

  #next(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.job === undefined);
      if (slot === undefined) {
        if (this.#slots.length >= POOL_SIZE) return;
        slot = this.#spawn();
      }
      const job = this.#queue.shift()!;
      slot.job = job;
      job.slot = slot;
      slot.worker.ref();
      // The limit counts from the call's start on a thread, not from its wait in the queue.
      job.timer = setTimeout(
        () =>
          this.#end(
            job,
            new ModuleCallError('timeout', `did not answer within ${job.timeoutMs} ms`),
          ),
        job.timeoutMs,
      );
      slot.worker.postMessage({ id: job.id, ...job.message });
    }
  }

  #end(job: Job, error: unknown, value?: unknown): void {
    if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
    job.onAbort = undefined;
    if (job.timer !== undefined) clearTimeout(job.timer);
    const slot = job.slot;
    if (slot === undefined) {
      const at = this.#queue.indexOf(job);
      if (at < 0) return;
      this.#queue.splice(at, 1);
    } else {
      if (slot.job !== job) return;
      slot.job = undefined;
      if (error !== undefined && !(error instanceof ModuleCallError && error.kind !== 'timeout')) {
        // A time limit or an abort: the call may still be running, and only ending its thread
        // stops it. The next call gets a new thread.
        const at = this.#slots.indexOf(slot);
        if (at >= 0) this.#slots.splice(at, 1);
        void slot.worker.terminate();
      } else {
        slot.worker.unref();
      }
    }
    if (error !== undefined) job.reject(error);
    else job.resolve(value);
    this.#next();
  }
}

let shared: ModulePool | undefined;

/** The absolute path of a module named relative to a plan's directory. */
export function modulePath(module: string, baseDir: string | undefined): string {
  return isAbsolute(module) ? module : resolve(baseDir ?? '.', module);
}

/**
 * Calls `name` of the module at `file` with `arg` on a worker thread and resolves with what it
 * returned (awaited). Rejects with a `ModuleCallError` when the module cannot be loaded, has no
 * such function, throws, or takes longer than `timeoutMs`; with `signal.reason` when `signal`
 * aborts first. `arg` and the result cross threads by structured clone.
 */
export function callModule(
  file: string,
  name: string,
  arg: unknown,
  options: { timeoutMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<unknown> {
  shared ??= new ModulePool();
  return shared.run(
    { file, name, arg, check: false },
    options.timeoutMs ?? MODULE_TIMEOUT_MS,
    options.signal,
  );
}

/**
 * Loads the module at `file` on a worker thread and checks that `name` is a function: the
 * problem in words, or undefined when the check can be called. Bounded like `callModule`.
 */
export async function moduleProblem(
  file: string,
  name: string,
  timeoutMs = MODULE_TIMEOUT_MS,
): Promise<string | undefined> {
  shared ??= new ModulePool();
  try {
    await shared.run({ file, name, check: true }, timeoutMs);
    return undefined;
  } catch (e) {
    if (!(e instanceof ModuleCallError)) throw e;
    if (e.kind === 'missing') {
      return e.message === 'no such export'
        ? `the module has no export ${JSON.stringify(name)}`
        : `export ${JSON.stringify(name)} is not a function`;
    }
    if (e.kind === 'timeout') return `the module did not load within ${timeoutMs} ms`;
    return `the module ${e.message}`;
  }
}
