/**
 * The HTML report's pace section (issue #17): the effective concurrency and the adapted rate
 * over the run, drawn from the journaled pace changes (`Store.paceChanges`), and the summary's
 * pace line. Inline SVG, no script, like the rest of the report (report/html.ts).
 */

import type { PaceRecord } from '../store/port.js';
import { escapeHtml as h } from './text.js';

/** What the pace section draws. Plain data. */
export interface HtmlPace {
  /** The plan's concurrency: the ceiling the pace starts at. */
  readonly ceiling: number;
  /** How long the run took, ms: the chart's time axis. */
  readonly durationMs: number;
  /** The changes, oldest first, `at` in ms since the run started. */
  readonly changes: readonly PaceRecord[];
  /** The summary's pace line (`pace  concurrency 20 → 4 at the end ...`), if any. */
  readonly line?: readonly string[];
}

/**
 * The pace of a stored run for the report: `changes` (`Store.paceChanges`, run-clock times)
 * moved to ms since the run's start (`startedAt` epoch ms, `clockOffsetMs` the run clock's
 * offset to epoch ms). A resumed run's later sessions have their own clock offset; their
 * changes are clamped into the run's span rather than guessed.
 *
 * @example
 * ```ts
 * const pace = htmlPaceOf(record, await store.paceChanges(record.id), 20, lines);
 * ```
 */
export function htmlPaceOf(
  run: {
    readonly startedAt: number;
    readonly clockOffsetMs: number;
    readonly finishedAt?: number | undefined;
  },
  changes: readonly PaceRecord[],
  ceiling: number,
  line: readonly string[] = [],
): HtmlPace | undefined {
  if (changes.length === 0 && line.length === 0) return undefined;
  const durationMs = Math.max(
    1,
    (run.finishedAt ?? run.startedAt) - run.startedAt,
    ...changes.map((c) => c.at + run.clockOffsetMs - run.startedAt),
  );
  return {
    ceiling,
    durationMs,
    changes: changes.map((c) => ({
      ...c,
      at: Math.min(durationMs, Math.max(0, c.at + run.clockOffsetMs - run.startedAt)),
    })),
    line,
  };
}

function seconds(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** A step line through (time, value) points, as an SVG path; undefined values break it. */
function stepPath(
  points: readonly (readonly [number, number | undefined])[],
  end: number,
  x: (t: number) => number,
  y: (v: number) => number,
): string {
  let d = '';
  let open = false;
  for (let i = 0; i < points.length; i++) {
    const [t, v] = points[i]!;
    const next = i + 1 < points.length ? points[i + 1]![0] : end;
    if (v === undefined) {
      open = false;
      continue;
    }
    d += `${open ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}H${x(next).toFixed(1)}`;
    open = true;
  }
  return d;
}

/**
 * The pace section: a chart of the effective concurrency (left axis, from the plan's ceiling)
 * and, when the pace limited it, the adapted rate per minute (right axis), each change a dot
 * whose tooltip is its message; then the summary's pace line. Empty when the pace never
 * changed and nothing was refused.
 */
export function paceSection(p: HtmlPace | undefined): string {
  if (p === undefined) return '';
  const lineHtml =
    p.line === undefined || p.line.length === 0
      ? ''
      : `<pre class="value" data-testid="pace-line">${h(p.line.map((l) => l.trim()).join('\n'))}</pre>`;
  if (p.changes.length === 0)
    return `<section id="pace"><h2>Pace</h2><p class="muted">The pace stayed at the plan's concurrency (${p.ceiling}).</p>${lineHtml}</section>`;
  const W = 720;
  const H = 200;
  const left = 40;
  const right = 64;
  const top = 14;
  const plotW = W - left - right;
  const plotH = H - top - 30;
  const end = p.durationMs;
  const x = (t: number) => left + (Math.min(end, Math.max(0, t)) / end) * plotW;
  const maxC = Math.max(p.ceiling, ...p.changes.map((c) => c.concurrency));
  const yc = (v: number) => top + plotH - (v / maxC) * plotH;
  const conc: [number, number][] = [
    [0, p.ceiling],
    ...p.changes.map((c): [number, number] => [c.at, c.concurrency]),
  ];
  const rates = p.changes.map((c) => c.ratePerMinute).filter((r): r is number => r !== undefined);
  const maxR = rates.length === 0 ? 0 : Math.max(...rates);
  const yr = (v: number) => top + plotH - (v / maxR) * plotH;
  const rate: [number, number | undefined][] = [
    [0, undefined],
    ...p.changes.map((c): [number, number | undefined] => [c.at, c.ratePerMinute]),
  ];
  const dots = p.changes
    .map(
      (c) =>
        `<circle data-testid="pace-change" data-at="${Math.round(c.at)}" data-concurrency="${c.concurrency}"${c.ratePerMinute === undefined ? '' : ` data-rate="${Math.round(c.ratePerMinute)}"`} cx="${x(c.at).toFixed(1)}" cy="${yc(c.concurrency).toFixed(1)}" r="3" fill="${c.reason === 'recovered' ? '#1a7f37' : c.reason === 'set' ? '#656d76' : '#cf222e'}"><title>${h(`${seconds(c.at)}: ${c.message}`)}</title></circle>`,
    )
    .join('');
  const rateAxis =
    maxR === 0
      ? ''
      : `<path data-testid="pace-rate" d="${stepPath(rate, end, x, yr)}" fill="none" stroke="#bc4c00" stroke-width="1.5" stroke-dasharray="5 3"/>` +
        `<text x="${W - right + 6}" y="${top + 4}" fill="#bc4c00">${Math.round(maxR)}/min</text>` +
        `<text x="${W - right + 6}" y="${top + plotH + 4}" fill="#bc4c00">0/min</text>`;
  const svg =
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Effective concurrency and rate over the run" data-testid="pace" data-ceiling="${p.ceiling}" data-duration="${Math.round(end)}" xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui,sans-serif">` +
    `<line x1="${left}" y1="${top}" x2="${W - right}" y2="${top}" stroke="#d0d7de" stroke-dasharray="3 3"/>` +
    `<line x1="${left}" y1="${top + plotH}" x2="${W - right}" y2="${top + plotH}" stroke="#d0d7de"/>` +
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end" fill="#0969da">${maxC}</text>` +
    `<text x="${left - 6}" y="${top + plotH + 4}" text-anchor="end" fill="#0969da">0</text>` +
    `<path data-testid="pace-concurrency" d="${stepPath(conc, end, x, yc)}" fill="none" stroke="#0969da" stroke-width="2"/>` +
    rateAxis +
    dots +
    `<text x="${left}" y="${H - 8}" fill="#656d76">0 s</text>` +
    `<text x="${W - right}" y="${H - 8}" text-anchor="end" fill="#656d76">${seconds(end)}</text></svg>`;
  const legend =
    `<p class="muted">Blue: effective concurrency (plan: ${p.ceiling})` +
    (maxR === 0 ? '' : '; dashed orange: adapted rate per minute (right axis)') +
    `; dots: changes (red down, green up; hover for why). ${p.changes.length} change${p.changes.length === 1 ? '' : 's'}.</p>`;
  return `<section id="pace"><h2>Pace over the run</h2>${svg}${legend}${lineHtml}</section>`;
}
