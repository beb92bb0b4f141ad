import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CancelledError, VirtualClock } from '../../src/core/index.js';

function turns(n: number): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < n; i++) p = p.then(() => new Promise((r) => setImmediate(r)));
  return p;
}

describe('VirtualClock ordering', () => {
  it('fires timers due at the same instant in the order they were scheduled (FIFO)', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const order: string[] = [];
    clock.schedule(10, () => order.push('a'));
    clock.schedule(10, () => order.push('b'));
    clock.schedule(5, () => order.push('early'));
    clock.schedule(10, () => order.push('c'));
    clock.schedule(10, () => order.push('d'));
    await clock.runAll();
    expect(order).toEqual(['early', 'a', 'b', 'c', 'd']);
    expect(clock.now()).toBe(10);
  });

  it('keeps FIFO among many same-instant timers (heap ties broken by sequence)', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const order: number[] = [];
    // Interleave two instants so the heap reorders a lot; ties must still come out by sequence.
    for (let i = 0; i < 50; i++) clock.schedule(i % 2 === 0 ? 7 : 3, () => order.push(i));
    await clock.runAll();
    const odd = Array.from({ length: 25 }, (_, k) => 2 * k + 1);
    const even = Array.from({ length: 25 }, (_, k) => 2 * k);
    expect(order).toEqual([...odd, ...even]);
  });

  it('runs a zero-delay timer scheduled from a callback after the other timers of that instant', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const order: string[] = [];
    clock.schedule(10, () => {
      order.push('a');
      clock.schedule(0, () => order.push('a-child'));
    });
    clock.schedule(10, () => order.push('b'));
    await clock.runAll();
    expect(order).toEqual(['a', 'b', 'a-child']);
    expect(clock.now()).toBe(10);
  });

  it('treats negative and non-finite delays as zero', async () => {
    const at: number[] = [];
    const clock = new VirtualClock({
      autoAdvance: false,
      onSchedule: (_ms, when) => at.push(when),
    });
    clock.schedule(-5, () => {});
    clock.schedule(Number.NaN, () => {});
    clock.schedule(Number.POSITIVE_INFINITY, () => {});
    expect(at).toEqual([0, 0, 0]);
    await clock.runAll();
    expect(clock.now()).toBe(0);
  });
});

describe('VirtualClock auto-advance', () => {
  it('does not move time while work is still busy in microtasks', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const sleeper = clock.sleep(1000).then(() => seen.push(clock.now()));
    // A long chain of microtasks: the clock must not jump while it runs.
    let p = Promise.resolve();
    for (let i = 0; i < 2000; i++) {
      p = p.then(() => {
        if (clock.now() !== 0) seen.push(-1);
      });
    }
    await p;
    expect(clock.now()).toBe(0);
    await sleeper;
    expect(seen).toEqual([1000]);
  });

  it('lets work started by a fired timer schedule its own timer before time moves on', async () => {
    const clock = new VirtualClock();
    const trace: string[] = [];
    const worker = async (name: string, delays: number[]) => {
      for (const d of delays) {
        await clock.sleep(d);
        trace.push(`${name}@${clock.now()}`);
      }
    };
    await Promise.all([worker('a', [10, 10, 10]), worker('b', [15, 10])]);
    expect(trace).toEqual(['a@10', 'b@15', 'a@20', 'b@25', 'a@30']);
  });

  it('never advances with autoAdvance off: a sleep stays pending until advance()', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    let woke = false;
    void clock.sleep(100).then(() => {
      woke = true;
    });
    await turns(20);
    expect(woke).toBe(false);
    expect(clock.now()).toBe(0);
    expect(clock.pending).toBe(1);
    await clock.advance(99);
    expect(woke).toBe(false);
    await clock.advance(1);
    expect(woke).toBe(true);
    expect(clock.now()).toBe(100);
  });

  it('does nothing (and does not move time) when nothing waits', async () => {
    const clock = new VirtualClock({ start: 500 });
    await turns(10);
    expect(clock.now()).toBe(500);
    expect(clock.pending).toBe(0);
  });
});

describe('VirtualClock sleep and abort', () => {
  it('rejects with the signal reason when aborted and removes its timer', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const controller = new AbortController();
    const sleeping = clock.sleep(1000, controller.signal);
    expect(clock.pending).toBe(1);
    const reason = new Error('stop it');
    controller.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
    expect(clock.pending).toBe(0);
    await clock.runAll();
    expect(clock.now()).toBe(0);
  });

  it('rejects at once, scheduling nothing, when the signal is already aborted', async () => {
    const scheduled: number[] = [];
    const clock = new VirtualClock({ onSchedule: (ms) => scheduled.push(ms) });
    const reason = { why: 'pre-aborted' };
    await expect(clock.sleep(50, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(scheduled).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('rejects with the AbortError the platform gives when aborted without a reason', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const sleeping = clock.sleep(1000, controller.signal);
    controller.abort();
    await expect(sleeping).rejects.toMatchObject({ name: 'AbortError' });
    expect(clock.now()).toBe(0);
  });

  it('removes its abort listener once it resolves or rejects', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    await clock.sleep(20, controller.signal);
    expect(clock.now()).toBe(20);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const second = clock.sleep(20, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('late'));
    await expect(second).rejects.toThrow('late');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // A sleep on a signal that is already aborted is refused at once.
    await expect(clock.sleep(5, controller.signal)).rejects.toThrow('late');
    expect(clock.now()).toBe(20);
  });

  it('passes a CancelledError reason through unchanged', async () => {
    const clock = new VirtualClock();
    const reason = new CancelledError('user cancel');
    await expect(clock.sleep(5, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('a cancelled timer does not fire and cancelling twice is harmless', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    let fired = 0;
    const cancel = clock.schedule(10, () => fired++);
    clock.schedule(10, () => fired++);
    expect(clock.pending).toBe(2);
    cancel();
    cancel();
    expect(clock.pending).toBe(1);
    await clock.runAll();
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
  });
});

describe('VirtualClock advance and runAll', () => {
  it('advance fires due timers in order, stops at the target, leaves later timers pending', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const fired: [string, number][] = [];
    clock.schedule(30, () => fired.push(['30', clock.now()]));
    clock.schedule(10, () => {
      fired.push(['10', clock.now()]);
      // Scheduled during the advance and due inside the window: fires in this advance too.
      clock.schedule(5, () => fired.push(['15', clock.now()]));
    });
    clock.schedule(60, () => fired.push(['60', clock.now()]));
    await clock.advance(40);
    expect(fired).toEqual([
      ['10', 10],
      ['15', 15],
      ['30', 30],
    ]);
    expect(clock.now()).toBe(40);
    expect(clock.pending).toBe(1);
    await clock.advance(20);
    expect(fired.at(-1)).toEqual(['60', 60]);
    expect(clock.now()).toBe(60);
  });

  it('advance lets awaiting code run between timers', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const trace: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(10);
        trace.push(clock.now());
      }
    })();
    await clock.advance(100);
    await loop;
    expect(trace).toEqual([10, 20, 30]);
    expect(clock.now()).toBe(100);
  });

  it('runAll fires chained timers until none is left', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    let count = 0;
    const again = () => {
      count++;
      if (count < 5) clock.schedule(100, again);
    };
    clock.schedule(100, again);
    await clock.runAll();
    expect(count).toBe(5);
    expect(clock.now()).toBe(500);
  });

  it('runAll stops a runaway loop at its limit with an error', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const forever = () => {
      clock.schedule(1, forever);
    };
    clock.schedule(1, forever);
    await expect(clock.runAll(10)).rejects.toThrow('more than 10 timers');
  });

  it('reports each wait to onSchedule as (ms, due time)', async () => {
    const calls: [number, number][] = [];
    const clock = new VirtualClock({ start: 100, onSchedule: (ms, at) => calls.push([ms, at]) });
    await clock.sleep(50);
    await clock.sleep(25);
    expect(calls).toEqual([
      [50, 150],
      [25, 175],
    ]);
  });

  it('wallTime is epoch plus elapsed virtual time', async () => {
    const clock = new VirtualClock({ start: 1000, epoch: 1_000_000 });
    expect(clock.wallTime()).toBe(1_000_000);
    await clock.sleep(2500);
    expect(clock.now()).toBe(3500);
    expect(clock.wallTime()).toBe(1_002_500);
  });
});
