/**
 * Live progress of a run. On a TTY, one line rewritten in place a few times a second; elsewhere
 * (a pipe, a CI log, or `CI` set) a plain line every few seconds, so logs stay readable.
 *
 * Rendering never slows the scheduler: the run's counters are read on an unref'd timer, and the
 * only listeners (rate-limit waits, retries) do O(1) work per event.
 */

import type { Run, TaskTransition } from '../core/index.js';

/** Where progress goes: stderr, so stdout stays clean for `--json`. */
export interface ProgressOut {
  write(s: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressOptions {
  /** Line mode: rewritten in place (TTY) or printed every `plainEveryMs`. */
  readonly tty: boolean;
  /** @default 200 */
  readonly ttyEveryMs?: number;
  /** @default 5000 */
  readonly plainEveryMs?: number;
  /**
   * What earlier sessions of the run decided (a resume): added to this session's counts, so
   * done/total and ok/fail/err are all the whole run's (one scope), and the line says so.
   */
  readonly before?: ProgressBefore;
  /** Total cases of the run when known up front (a resume knows it; a fresh run learns it). */
  readonly total?: number;
  /** Wall clock in ms for the rate and ETA. @default performance.now */
  readonly now?: () => number;
}

/** Verdicts of a run's earlier sessions, for a resumed run's progress line. */
export interface ProgressBefore {
  /** Cases with a verdict (cancelled ones are run again, so not done). */
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Errors and timeouts. */
  readonly error: number;
}

/**
 * A stored run's verdicts as ProgressBefore.
 *
 * @example
 * ```ts
 * const before = progressBefore((await store.getRun(runId))!.counts);
 * ```
 */
export function progressBefore(c: {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timeout: number;
  readonly error: number;
  readonly cancelled: number;
}): ProgressBefore {
  return {
    done: c.total - c.cancelled,
    succeeded: c.succeeded,
    failed: c.failed,
    error: c.error + c.timeout,
  };
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * Prints a run's progress until `stop()`.
 *
 * @example
 * ```ts
 * const progress = new Progress(run, process.stderr, { tty: process.stderr.isTTY === true });
 * progress.start();
 * await run.start();
 * progress.stop();
 * ```
 */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private rateWaits = 0;
  private retries = 0;
  /** The adaptive pace's last change, as it explains itself. */
  private paceNote: string | undefined;
  private readonly off: (() => void)[] = [];
  private readonly now: () => number;
  /** (time, done) samples of the last ~10 s, for a rate that follows the current pace. */
  private readonly samples: { at: number; done: number }[] = [];
  private lastLength = 0;

  constructor(
    private readonly run: Pick<Run<unknown, unknown>, 'progress' | 'concurrency' | 'pace' | 'on'>,
    private readonly out: ProgressOut,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  start(): void {
    this.off.push(
      this.run.on('rateLimited', () => {
        this.rateWaits++;
      }),
      this.run.on('transition', (t: TaskTransition) => {
        // A task goes back to `pending` only to back off before a retry.
        if (t.to === 'pending') this.retries++;
      }),
      this.run.on('paceChanged', (c) => {
        this.paceNote = c.message;
      }),
    );
    const every = this.options.tty
      ? (this.options.ttyEveryMs ?? 200)
      : (this.options.plainEveryMs ?? 5000);
    this.samples.push({ at: this.now(), done: 0 });
    this.timer = setInterval(() => this.print(), every);
    this.timer.unref();
  }

  /** Stops printing; on a TTY, clears the live line so the summary starts on a clean line. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const off of this.off.splice(0)) off();
    if (this.options.tty && this.lastLength > 0) this.out.write('\r\x1b[2K');
  }

  /** The current line. */
  line(): string {
    const p = this.run.progress;
    const s = p.byStatus;
    const b = this.options.before;
    const before = b?.done ?? 0;
    const done = before + p.settled;
    const total = Math.max(this.options.total ?? 0, before + p.total, done);
    const pct = total === 0 ? 0 : Math.floor((100 * done) / total);
    const at = this.now();
    this.samples.push({ at, done: p.settled });
    while (this.samples.length > 2 && at - this.samples[0]!.at > 10_000) this.samples.shift();
    const first = this.samples[0]!;
    const perSec = at > first.at ? ((p.settled - first.done) * 1000) / (at - first.at) : 0;
    const eta = perSec > 0 ? ((total - done) / perSec) * 1000 : Number.POSITIVE_INFINITY;
    // Fits 80 columns for runs up to 99,999 cases while the pace is the plan's; wider terminals
    // just get the same line. An adapted pace adds the plan's ceiling, the rate and why.
    const pace = this.run.pace;
    const ceiling = pace.concurrency < pace.ceiling ? ` of ${pace.ceiling}` : '';
    const rate =
      pace.ratePerMinute === undefined ? '' : ` rate ${Math.round(pace.ratePerMinute)}/min`;
    const parts = [
      // After a resume every count is the whole run's, and labelled so (with this session's share):
      // a cumulative done beside this session's verdicts read as 243/500 done but 83 judged.
      `[${String(pct).padStart(3)}%] ${done}/${total} ok ${s.succeeded + (b?.succeeded ?? 0)} fail ${s.failed + (b?.failed ?? 0)} err ${s.error + s.timeout + (b?.error ?? 0)}${b === undefined ? '' : ` (whole run; ${p.settled} this session)`}`,
      `${perSec >= 10 ? Math.round(perSec) : perSec.toFixed(1)}/s ETA ${done >= total ? '0s' : duration(eta)}`,
      `conc ${p.running}/${this.run.concurrency}${ceiling}${rate} waits ${this.rateWaits} retries ${this.retries}`,
    ];
    if (this.paceNote !== undefined) parts.push(this.paceNote);
    return parts.join(' | ');
  }

  private print(): void {
    let text = this.line();
    if (this.options.tty) {
      // A pseudo-terminal may report 0 columns: then there is nothing to fit.
      const width = this.out.columns ?? 0;
      if (width > 1 && text.length > width - 1) text = text.slice(0, width - 1);
      this.lastLength = text.length;
      this.out.write(`\r\x1b[2K${text}`);
    } else {
      this.out.write(`${text}\n`);
    }
  }
}

/** Whether progress is a live line: a TTY and not CI. */
export function isLiveTerminal(out: ProgressOut, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && (env.CI === undefined || env.CI === '' || env.CI === 'false');
}
