/**
 * The run's stop rules (`RunOptions.stop`): authentication errors in a row, fail-fast, a failure
 * count or ratio, a cost or token ceiling. The Run asks after every terminal task; the deadline
 * and the zombie stall are timers and slots, so the Run keeps those.
 */

import type { StopInfo, TaskStatus } from './model.js';
import type { RunOptions } from './options.js';

/** Decides whether the run must stop, from the counts so far. */
export class StopRules {
  private consecutiveAuth = 0;
  private readonly authLimit: number;

  constructor(private readonly stop: RunOptions['stop']) {
    this.authLimit = stop?.maxConsecutiveAuthErrors ?? 3;
  }

  /** What a stop rule does with attempts still in flight. */
  get inFlight(): 'abort' | 'drain' {
    return this.stop?.inFlight ?? 'abort';
  }

  /** An attempt answered: the authentication streak is broken. */
  answered(): void {
    this.consecutiveAuth = 0;
  }

  /** An attempt failed; `auth` if for authentication (the streak grows, else it is broken). */
  failed(auth: boolean): void {
    if (auth) this.consecutiveAuth++;
    else this.consecutiveAuth = 0;
  }

  /** The rule that stops the run now, if any. */
  check(
    c: Readonly<Record<TaskStatus, number>>,
    tokens: number,
    cost: number,
    costUnknown = 0,
  ): StopInfo | undefined {
    const s = this.stop;
    const failures = c.failed + c.timeout + c.error;
    let info: StopInfo | undefined;
    if (this.authLimit > 0 && this.consecutiveAuth >= this.authLimit) {
      info = {
        rule: 'auth_errors',
        message: `${this.consecutiveAuth} authentication errors in a row`,
      };
    } else if (s?.failFast === true && failures > 0) {
      info = { rule: 'fail_fast', message: 'a task failed and fail_fast is set' };
    } else if (s === undefined) {
      return undefined;
    } else if (s.maxFailures !== undefined && s.maxFailures >= 1 && failures >= s.maxFailures) {
      info = {
        rule: 'max_failures',
        message: `${failures} failures reached max_failures ${s.maxFailures}`,
      };
    } else if (s.maxFailures !== undefined && s.maxFailures < 1) {
      const settled = failures + c.succeeded;
      if (settled >= (s.minSettled ?? 10) && failures / settled > s.maxFailures) {
        info = {
          rule: 'max_failures',
          message: `${failures} of ${settled} settled tasks failed, more than ${s.maxFailures * 100}%`,
        };
      }
    }
    if (info === undefined && s !== undefined) {
      if (s.maxCost !== undefined && cost >= s.maxCost) {
        // Known costs only: a case without a price adds nothing, and the message says so.
        const partial =
          costUnknown === 0
            ? ''
            : ` (known costs only: cost unknown for ${costUnknown} case${costUnknown === 1 ? '' : 's'})`;
        info = {
          rule: 'max_cost',
          message: `cost ${cost}${partial} reached max_cost ${s.maxCost}`,
        };
      } else if (s.maxTokens !== undefined && tokens >= s.maxTokens) {
        info = {
          rule: 'max_tokens',
          message: `${tokens} tokens reached max_tokens ${s.maxTokens}`,
        };
      }
    }
    return info;
  }
}
