/**
 * The send gate: the journal's durability point (`Run.gateSends`). The attempts started in one
 * microtask turn are held until one commit ran, so what the commit makes durable holds the start
 * of every attempt before its request leaves.
 */

import { StrideError } from './errors.js';

/**
 * A durability point: makes what happened so far durable, synchronously. Returns `false` when
 * it could not (nothing held may be sent then); nothing or `true` when it did.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a commit written as `() => void` keeps working.
export type GateCommit = () => boolean | void;

/** How long a gate holds the attempts started before its one commit. */
export interface GateOptions {
  /**
   * Hold the attempts started in one event-loop tick (released from `setImmediate`, after the
   * tick's I/O callbacks) instead of one microtask turn. Under load the answers of many sockets
   * arrive in one tick, so one commit covers what a microtask gate commits one by one: the
   * journal's choice (bench/cpu-per-case.mjs). The guarantees are the same, a start is durable
   * before its request leaves and a verdict before its slot is used again; an attempt leaves at
   * most one tick later.
   */
  readonly tick?: boolean;
}

/**
 * Holds the attempts started in one microtask turn, runs the commit once, then releases them
 * (`release` sends, or withdraws an attempt aborted meanwhile or whose start the commit could not
 * make durable, and says if it withdrew one; `withdrew` is then called once).
 */
export class SendGate<A> {
  private commit: GateCommit | undefined;
  private held: A[] = [];
  private queued = false;
  private tick = false;

  constructor(
    private readonly release: (att: A, durable: boolean) => boolean,
    private readonly withdrew: () => void,
  ) {}

  /** A commit is installed: started attempts must be held. */
  get active(): boolean {
    return this.commit !== undefined;
  }

  /** Installs `commit`; returns a function that removes it. One per run. */
  install(commit: GateCommit, options: GateOptions = {}): () => void {
    if (this.commit !== undefined)
      throw new StrideError(
        'INVALID_STATE',
        'this run already has a send gate (one journal per run)',
      );
    this.commit = commit;
    this.tick = options.tick === true;
    return () => {
      if (this.commit === commit) this.commit = undefined;
    };
  }

  /** Holds `att` until the turn's commit ran. One commit per microtask turn (or tick). */
  hold(att: A): void {
    this.held.push(att);
    if (!this.queued) {
      this.queued = true;
      if (this.tick) setImmediate(this.releaseHeld);
      else queueMicrotask(this.releaseHeld);
    }
  }

  /**
   * Runs the commit once for every attempt held since the last turn, then releases them. An
   * attempt aborted while held (a cancel, a stop rule or a pause with `abortInFlight` in the
   * same turn) never reached the target: it is withdrawn, not sent.
   */
  private readonly releaseHeld = (): void => {
    this.queued = false;
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    const commit = this.commit;
    // False: the commit could not make the starts durable (the journal's store failed); the
    // held attempts are then given back unsent.
    let durable = true;
    if (commit !== undefined) {
      try {
        durable = commit() !== false;
      } catch (err) {
        // The gate's owner handles its own failures (the journal cancels the run): a throw is a
        // bug, surfaced loudly like a throwing listener's.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    let withdrawn = false;
    for (const att of held) if (this.release(att, durable)) withdrawn = true;
    if (withdrawn) this.withdrew();
  };
}
