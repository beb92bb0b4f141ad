/**
 * Awaitable states of a run (`waitFor`, `onIdle`, `onPaused`): tests and shutdown await a state,
 * never sleep. Each predicate is checked after every state change.
 */

/** Promises that resolve once their predicate holds. */
export class Waiters {
  private waiting: { check: () => boolean; resolve: () => void }[] = [];

  /** Resolves once `predicate` holds. */
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ check: predicate, resolve }));
  }

  /** The state changed: resolves every waiter whose predicate holds now. */
  notify(): void {
    if (this.waiting.length === 0) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) {
      if (w.check()) w.resolve();
      else this.waiting.push(w);
    }
  }
}
