/**
 * Ready queues for the run loop. Priorities are few and tasks many, so a FIFO per priority level
 * plus a sorted list of levels gives O(1) push and pop in the common case (one level), where a
 * binary heap would pay log n comparisons per task.
 */

/** A FIFO with amortised O(1) shift (an array with a moving head, compacted when half empty). */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns every item, in order. */
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}

/** Highest priority first; first in, first out within a priority. */
export class PriorityFifo<T> {
  private readonly levels = new Map<number, Fifo<T>>();
  /** Priority levels in descending order. */
  private order: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(item: T, priority: number): void {
    let fifo = this.levels.get(priority);
    if (fifo === undefined) {
      fifo = new Fifo<T>();
      this.levels.set(priority, fifo);
      let i = 0;
      while (i < this.order.length && this.order[i]! > priority) i++;
      this.order.splice(i, 0, priority);
    }
    fifo.push(item);
    this.count++;
  }

  peek(): T | undefined {
    for (const p of this.order) {
      const item = this.levels.get(p)!.peek();
      if (item !== undefined) return item;
    }
    return undefined;
  }

  shift(): T | undefined {
    for (const p of this.order) {
      const fifo = this.levels.get(p)!;
      if (fifo.size > 0) {
        this.count--;
        return fifo.shift();
      }
    }
    return undefined;
  }

  /** Removes and returns every item, highest priority first. */
  drain(): T[] {
    const out: T[] = [];
    for (const p of this.order) out.push(...this.levels.get(p)!.drain());
    this.levels.clear();
    this.order = [];
    this.count = 0;
    return out;
  }
}
