/**
 * The run's slots: the attempts in flight, from the start of one to the settlement of its
 * promise. It keeps the slot count (zombies included), each attempt's timeout countdown, the
 * zombie grace timer after an abort, and the send gate that holds a started attempt until the
 * journal made its start durable. What an attempt's end means for its task (succeeded, retried,
 * re-queued, cancelled) is the Run's settlement, told through `SlotHost`.
 *
 * Invariant kept here: a slot is taken when an attempt starts and given back only when that
 * attempt's promise settles, even after a timeout: work that ignores its abort keeps its slot.
 */

import type { Clock } from './clock.js';
import { DeadlineQueue } from './deadlines.js';
import { CancelledError } from './errors.js';
import type { Target } from './model.js';
import { type GateCommit, type GateOptions, SendGate } from './send-gate.js';
import type { AbortKind, Attempt } from './task.js';

/** What the slots tell the run: each is called once the slot's own bookkeeping is done. */
export interface SlotHost<I, O> {
  /** The attempt's promise settled (its slot is free again); `ok` with the value, else the error. */
  settled(att: Attempt<I, O>, ok: boolean, value: unknown): void;
  /** The attempt's timeout expired while it was still undecided. */
  timedOut(att: Attempt<I, O>): void;
  /** The attempt ignored its abort for the zombie grace: it keeps its slot, its task is decided. */
  zombie(att: Attempt<I, O>): void;
  /** A held attempt aborted before it was sent: no attempt at all (its slot is free already). */
  withdrawn(att: Attempt<I, O>): void;
  /** Something changed outside any of the calls above (a gate turn withdrew attempts). */
  changed(): void;
}

/** The attempts in flight and their slots. */
export class InFlight<I, O> {
  /** Attempts whose promise has not settled. */
  readonly attempts = new Set<Attempt<I, O>>();
  /** Slots taken: attempts started and not settled, zombies included. */
  running = 0;
  /** Slots held by attempts that ignored their abort past the grace. */
  zombiesRunning = 0;
  private readonly deadlines: DeadlineQueue<Attempt<I, O>>;
  private readonly gate = new SendGate<Attempt<I, O>>(
    (att, durable) => this.release(att, durable),
    () => this.host.changed(),
  );

  constructor(
    private readonly clock: Clock,
    private readonly target: Target<I, O>,
    private readonly zombieGraceMs: number,
    private readonly host: SlotHost<I, O>,
  ) {
    this.deadlines = new DeadlineQueue(clock, (att) => {
      if (!att.settled && !att.decided) host.timedOut(att);
    });
  }

  /** Slots taken by attempts that may still answer (zombies aside). */
  get active(): number {
    return this.running - this.zombiesRunning;
  }

  /** Installs the journal's durability point (`Run.gateSends`). */
  gateSends(commit: GateCommit, options?: GateOptions): () => void {
    return this.gate.install(commit, options);
  }

  /**
   * Takes a slot for `att` and sends it, or holds it for the send gate: the journal commits its
   * start (and every verdict before it, so the slot's last answer) before the request leaves.
   */
  launch(att: Attempt<I, O>, timeoutMs: number | undefined): void {
    this.attempts.add(att);
    this.running++;
    if (timeoutMs !== undefined) {
      att.timeoutMs = timeoutMs;
      this.deadlines.add(att, timeoutMs);
    }
    if (this.gate.active) this.gate.hold(att);
    else this.send(att);
  }

  /** Aborts `att`; if it has not settled within the zombie grace, it becomes a zombie. */
  abort(att: Attempt<I, O>, kind: AbortKind, reason: unknown): void {
    const first = att.abortReason === undefined;
    att.abort(kind, reason);
    if (first && !att.settled) {
      att.zombieCancel = this.clock.schedule(this.zombieGraceMs, () => this.onZombie(att));
    }
  }

  /** Aborts every attempt whose task is not decided yet. */
  abortUndecided(kind: AbortKind, reason: unknown): void {
    for (const att of this.attempts) if (!att.decided) this.abort(att, kind, reason);
  }

  /** The run ended: no countdown may fire any more. */
  clear(): void {
    this.deadlines.clear();
  }

  private send(att: Attempt<I, O>): void {
    let promise: Promise<O>;
    try {
      promise = this.target.execute(att.rec, att.context);
      if (promise === null || typeof (promise as Promise<O>)?.then !== 'function')
        promise = Promise.resolve(promise);
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (value) => this.onSettled(att, true, value),
      (err: unknown) => this.onSettled(att, false, err),
    );
  }

  /** A held attempt after the gate ran: sent, settled, or withdrawn (returns true) if aborted. */
  private release(att: Attempt<I, O>, durable: boolean): boolean {
    if (att.settled) return false;
    // Its start could not be made durable (the journal's store failed): never sent, given back.
    if (!durable && !att.decided && att.abortReason === undefined)
      att.abort('pause', new CancelledError('its start could not be journaled'));
    if (att.decided) this.onSettled(att, false, att.abortReason);
    else if (att.abortReason !== undefined) {
      this.free(att);
      att.decided = true;
      this.host.withdrawn(att);
      return true;
    } else this.send(att);
    return false;
  }

  /**
   * `AttemptContext.releaseSlot`: the attempt stays in flight (a cancel or stop still aborts it)
   * but its slot goes to the next one, and its timeout stops (the rest has its own bounds).
   * Returns false when there was nothing to release.
   */
  releaseSlot(att: Attempt<I, O>): boolean {
    if (att.settled || att.decided || att.slotReleased || att.zombie) return false;
    att.slotReleased = true;
    if (att.timeoutMs !== undefined) this.deadlines.remove(att);
    this.running--;
    return true;
  }

  private onSettled(att: Attempt<I, O>, ok: boolean, value: unknown): void {
    if (att.settled) return;
    this.free(att);
    if (att.zombie && !att.slotReleased) this.zombiesRunning--;
    this.host.settled(att, ok, value);
  }

  /** Gives the slot back: the attempt's promise settled, or it was never sent. */
  private free(att: Attempt<I, O>): void {
    att.settled = true;
    if (att.timeoutMs !== undefined) this.deadlines.remove(att);
    att.zombieCancel?.();
    att.zombieCancel = undefined;
    this.attempts.delete(att);
    if (!att.slotReleased) this.running--;
  }

  private onZombie(att: Attempt<I, O>): void {
    att.zombieCancel = undefined;
    if (att.settled) return;
    att.zombie = true;
    // A released slot is no slot the zombie holds: it counts in neither running nor here.
    if (!att.slotReleased) this.zombiesRunning++;
    this.host.zombie(att);
  }
}
