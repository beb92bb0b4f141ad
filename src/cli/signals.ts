/**
 * Ctrl-C from the bin's first line. Node kills a process on SIGINT/SIGTERM while nothing
 * listens, and a run session installs its graceful stop only once its run is journaled: a signal
 * in between killed the process after the run's row was written, with no `interrupted` status
 * and no resume command. The bin therefore takes both signals at once into a `SignalGate`:
 * - a command that drives no run releases the gate before it starts: a signal it kept is raised
 *   again, and Node's default ends the process as it would have;
 * - a command that drives a run claims the gate when its session starts. A signal kept before
 *   that (while the plan was read) ends the command there, exit 130, before any run exists;
 *   one that comes after is kept until the graceful stop is installed and delivered to it then.
 * A third signal nobody listened for ends the process at once (a session stuck before its start).
 */

import type { SignalSource } from '../runner/graceful.js';

type Listener = (signal: NodeJS.Signals) => void;

/** Signals kept before anyone listens; the third one ends the process (a session stuck before its start). */
const FORCE_AFTER = 3;

/**
 * A signal source that keeps the signals nobody listened for yet and delivers them, in the
 * order they came, to the first listener of their kind.
 *
 * @example
 * ```ts
 * const gate = new SignalGate();            // SIGINT and SIGTERM are taken from here on
 * // ... journal the run, then:
 * const dispose = gracefulStop(run, journal, { process: gate }); // early Ctrl-Cs arrive now
 * // ... at the end:
 * dispose();
 * gate.dispose();
 * ```
 */
export class SignalGate implements SignalSource {
  readonly #source: SignalSource;
  readonly #signals: readonly NodeJS.Signals[];
  readonly #listeners = new Map<NodeJS.Signals, Set<Listener>>();
  readonly #kept: NodeJS.Signals[] = [];
  readonly #force: (signal: NodeJS.Signals) => void;
  #open = true;
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    const listeners = this.#listeners.get(signal);
    if (listeners !== undefined && listeners.size > 0) {
      for (const l of [...listeners]) l(signal);
      return;
    }
    this.#kept.push(signal);
    if (this.#kept.length >= FORCE_AFTER) this.#force(signal);
  };

  constructor(
    options: {
      readonly signals?: readonly NodeJS.Signals[];
      readonly source?: SignalSource;
      /** Called on the third signal nobody listened for; default: exit 130. */
      readonly force?: (signal: NodeJS.Signals) => void;
    } = {},
  ) {
    this.#source = options.source ?? process;
    this.#signals = options.signals ?? ['SIGINT', 'SIGTERM'];
    this.#force =
      options.force ??
      ((signal) => {
        process.stderr.write(`\nInterrupted (${signal}) before the run started.\n`);
        process.exit(130);
      });
    for (const s of this.#signals) this.#source.on(s, this.#onSignal);
  }

  /** The signals kept so far and not yet delivered. */
  get kept(): readonly NodeJS.Signals[] {
    return [...this.#kept];
  }

  on(signal: NodeJS.Signals, listener: Listener): this {
    let set = this.#listeners.get(signal);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(signal, set);
    }
    set.add(listener);
    // Delivered after the caller's own set-up (it may register several signals in a loop).
    queueMicrotask(() => this.#deliver(signal));
    return this;
  }

  off(signal: NodeJS.Signals, listener: Listener): this {
    this.#listeners.get(signal)?.delete(listener);
    return this;
  }

  #deliver(signal: NodeJS.Signals): void {
    const listeners = this.#listeners.get(signal);
    if (listeners === undefined || listeners.size === 0) return;
    for (let i = 0; i < this.#kept.length; ) {
      if (this.#kept[i] !== signal) {
        i++;
        continue;
      }
      this.#kept.splice(i, 1);
      for (const l of [...listeners]) l(signal);
    }
  }

  /** Stops taking signals: from here on Node's default (or another listener) has them. */
  dispose(): void {
    if (!this.#open) return;
    this.#open = false;
    for (const s of this.#signals) this.#source.off(s, this.#onSignal);
  }

  /**
   * Gives the signals back to Node: stops taking them and raises again each one kept, so a
   * command that drives no run ends on an early Ctrl-C exactly as without the gate.
   */
  release(): void {
    this.dispose();
    const kept = this.#kept.splice(0);
    for (const s of kept) process.kill(process.pid, s);
  }
}

let early: SignalGate | undefined;

/** Takes SIGINT and SIGTERM for the process from now on (the bin's first line). */
export function catchEarlySignals(): void {
  early ??= new SignalGate();
}

/**
 * The gate a command that drives a run listens to: the bin's early one, or a new one when `main`
 * runs in process. Dispose it when the command ends. `interrupted` is the signal that came
 * before the claim, if any: the command should end at once (exit 130), having started nothing.
 */
export function claimSignals(): { gate: SignalGate; interrupted?: NodeJS.Signals } {
  const gate = early ?? new SignalGate();
  early = undefined;
  const first = gate.kept[0];
  if (first === undefined) return { gate };
  gate.dispose();
  return { gate, interrupted: first };
}

/** What a run command prints when a signal came before its session claimed the gate. */
export function beforeStartMessage(signal: NodeJS.Signals): string {
  return `Interrupted (${signal}) before the run started; no run was recorded.\n`;
}

/** For a command that drives no run: Node's default again, with any early signal raised. */
export function releaseEarlySignals(): void {
  early?.release();
  early = undefined;
}
