/** Progress and summary rendering for terminals and CI logs. */

import type { Run, RunExecutionResult } from '../core/index.js';

function pad(s: string | number, n: number): string {
  return String(s).padStart(n);
}

function ms(v: number): string {
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

/**
 * Prints a progress line on an interval: rewritten in place on a TTY, one line per tick
 * elsewhere (CI logs), so both stay readable.
 */
export class ProgressPrinter {
  private timer: NodeJS.Timeout | undefined;
  private readonly tty: boolean;

  constructor(
    private readonly run: Pick<Run, 'progress'>,
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly everyMs = 250,
  ) {
    this.tty = out.isTTY === true;
  }

  start(): void {
    this.timer = setInterval(() => this.print(), this.tty ? this.everyMs : this.everyMs * 4);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.print();
    if (this.tty) this.out.write('\n');
  }

  line(): string {
    const p = this.run.progress;
    const s = p.byStatus;
    const done = p.settled;
    const total = p.total;
    const pct = total === 0 ? 0 : Math.floor((100 * done) / total);
    return (
      `[${pad(pct, 3)}%] ${done}/${total} done · ${s.running} running · ${s.queued} queued · ` +
      `${s.pending} backing off · ok ${s.succeeded} · failed ${s.failed} · timeout ${s.timeout} · ` +
      `error ${s.error} · cancelled ${s.cancelled} · ${p.attempts} attempts`
    );
  }

  private print(): void {
    this.out.write(this.tty ? `\r\x1b[2K${this.line()}` : `${this.line()}\n`);
  }
}

/** A human summary of a finished run. */
export function formatSummary(result: RunExecutionResult): string {
  const s = result.statistics;
  const l = s.latencyMs;
  const lines = [
    '',
    `Run ${result.runId}: ${result.status}${result.stoppedBy ? ` (stopped by ${result.stoppedBy.rule}: ${result.stoppedBy.message})` : ''}`,
    `  tasks      ${s.totalTasks}: ${s.succeededTasks} succeeded, ${s.failedTasks} failed, ${s.timeoutTasks} timeout, ${s.errorTasks} error, ${s.cancelledTasks} cancelled`,
    `  attempts   ${s.attempts} (${s.retries} retries, ${s.interrupted} interrupted, ${s.zombies} zombies)`,
    `  usage      ${s.tokens} tokens, cost ${s.cost.toFixed(4)}`,
    `  latency    p50 ${ms(l.p50)} · p90 ${ms(l.p90)} · p99 ${ms(l.p99)} · max ${ms(l.max)}`,
    `  wall time  ${ms(s.wallTimeMs)} · success rate ${(s.successRate * 100).toFixed(1)}%`,
  ];
  const failures = result.tasks.filter((t) => t.status !== 'succeeded' && t.status !== 'cancelled');
  if (failures.length > 0) {
    lines.push('  not passed:');
    for (const t of failures.slice(0, 10)) {
      lines.push(
        `    ${t.id}: ${t.status} after ${t.attempts} attempt(s): ${t.error?.code ?? ''} ${t.error?.message ?? ''}`,
      );
    }
    if (failures.length > 10) lines.push(`    ... and ${failures.length - 10} more`);
  }
  return lines.join('\n');
}
