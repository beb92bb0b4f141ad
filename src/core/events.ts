/**
 * The run's event hub: listeners per event, delivered in the order things happened. Kept apart
 * from the loop so run.ts reads as scheduling alone; the Run owns one and forwards `on`.
 */

import type { ErrorInfo } from './errors.js';
import type { RunEvents, TaskStatus, TaskTransition } from './model.js';
import type { TaskRecord } from './task.js';

type Listeners = { [K in keyof RunEvents]: RunEvents[K][] };

/** Listeners of a Run, with ordered, non-re-entrant delivery. */
export class RunEmitter {
  readonly listeners: Listeners = {
    transition: [],
    rateLimited: [],
    coolDown: [],
    zombie: [],
    usage: [],
    paused: [],
    resumed: [],
    concurrency: [],
    paceChanged: [],
    stopping: [],
    done: [],
  };
  private dispatching = false;
  private readonly queue: (() => void)[] = [];

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof RunEvents>(event: K, listener: RunEvents[K]): () => void {
    const list = this.listeners[event] as RunEvents[K][];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof RunEvents>(event: K, payload: Parameters<RunEvents[K]>[0]): void {
    const list = this.listeners[event];
    if (list.length > 0) this.dispatch(list as ((p: typeof payload) => void)[], payload);
  }

  /**
   * Delivers events in the order they happened. A listener that changes the run (cancel, pause)
   * causes new events while others still wait for the current one: those are queued, never
   * delivered re-entrantly, so every listener sees a task's transitions in order.
   */
  dispatch<P>(list: ((p: P) => void)[], payload: P): void {
    if (this.dispatching) {
      this.queue.push(() => this.deliver(list, payload));
      return;
    }
    this.dispatching = true;
    try {
      this.deliver(list, payload);
      while (this.queue.length > 0) this.queue.shift()!();
    } finally {
      this.dispatching = false;
    }
  }

  private deliver<P>(list: ((p: P) => void)[], payload: P): void {
    for (const fn of list.length === 1 ? list : [...list]) {
      try {
        fn(payload);
      } catch (err) {
        // A throwing listener is a bug in the caller's code: surface it loudly, but never let it
        // corrupt the scheduler's bookkeeping halfway through a transition.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** The event of `rec`'s move from `from` to `to` (its status is already `to`). */
export function transitionEvent<I, O>(
  rec: TaskRecord<I, O>,
  from: TaskStatus,
  to: TaskStatus,
  at: number,
  attempt: number,
  retry: boolean,
  retryInMs: number,
  error: ErrorInfo | undefined,
): TaskTransition {
  // Every literal is written out in full: a spread (`{ ...base, to }`) takes V8 off its
  // fast path and cost more than the rest of a task's bookkeeping (bench S1).
  const taskId = rec.id;
  switch (to) {
    case 'queued':
      return { taskId, from, at, attempt, to, retry };
    case 'pending':
      return { taskId, from, at, attempt, to, retryInMs, error: error! };
    case 'running':
      return { taskId, from, at, attempt, to };
    case 'succeeded':
      return { taskId, from, at, attempt, to, result: rec };
    case 'cancelled':
      return { taskId, from, at, attempt, to, reason: rec.reason!, result: rec };
    default:
      return { taskId, from, at, attempt, to, error: rec.error!, result: rec };
  }
}
