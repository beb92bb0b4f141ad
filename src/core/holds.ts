/**
 * Pause as counted holds: the run is paused while any hold is held, so owners that pause for
 * different reasons (the user, a graceful stop, backpressure, the dashboard, a Redis outage)
 * never resume each other's pause. The first hold pauses the run, releasing the last resumes.
 */

import type { Clock } from './clock.js';
import type { Hold, HoldInfo } from './model.js';

/** Options of one hold (see `Run.hold`). */
export interface HoldOptions {
  readonly by?: string;
  readonly abortInFlight?: boolean;
}

/** The holds on one run, the user's among them. */
export class Holds {
  private readonly held = new Set<HoldInfo>();
  private user: Hold | undefined;

  constructor(
    private readonly clock: Clock,
    /** Pause now (again: an `abortInFlight` hold on a paused run still aborts). */
    private readonly pause: (options: HoldOptions) => void,
    /** The last hold was released. */
    private readonly resume: () => void,
  ) {}

  /** Takes a hold for `reason`; the run pauses. */
  take(reason: string, options: HoldOptions): Hold {
    const entry: HoldInfo = {
      reason,
      ...(options.by === undefined ? {} : { by: options.by }),
      since: this.clock.now(),
    };
    this.held.add(entry);
    this.pause(options);
    let released = false;
    return {
      reason,
      release: () => {
        if (released) return;
        released = true;
        this.held.delete(entry);
        if (this.held.size === 0) this.resume();
      },
    };
  }

  /** Who holds the run, oldest first. */
  list(): HoldInfo[] {
    return [...this.held];
  }

  /** The user pauses: takes the `user` hold, or pauses again if it is held (or the run ended). */
  pauseByUser(options: HoldOptions, finished: boolean): void {
    if (this.user === undefined && !finished) this.user = this.take('user', options);
    else this.pause(options);
  }

  /** The user resumes: releases the `user` hold. */
  resumeByUser(): void {
    const hold = this.user;
    this.user = undefined;
    hold?.release();
  }
}
