/**
 * The HTML report: one self-contained file a person can open from a CI artifact or an e-mail,
 * offline. Inline CSS and inline SVG only; no script at all, and a Content-Security-Policy
 * that forbids scripts and remote loads, so even a missed escape could not run a model's answer.
 */

import type { AssertionOutcome } from '../plans/index.js';
import type { TestResult, TestStatus } from './convert.js';
import { diffText, lineDiff } from './diff.js';
import { type HtmlPace, paceSection } from './html-pace.js';
import { copyInto, FileSink, type ResultSource, writeFileStreamed } from './sink.js';
import type { HistogramBucket, ReportSummary } from './summary.js';
import { caseName, clip, datasetOf, groupDigits, escapeHtml as h, isCancelled } from './text.js';
import {
  type FinishOptions,
  type FormatWriter,
  ResultRow,
  removeAll,
  scratchPath,
} from './writer.js';

/** Failures, errors and timeouts listed in full; the rest are counted in a note. */
export const HTML_MAX_FAILURES = 1000;
/** Characters of one value (inputs, outputs, expected, actual) shown; the rest is cut. */
const MAX_VALUE = 20_000;
/** Lines of one diff shown. */
const MAX_DIFF_LINES = 400;
/** Failures whose details start open; the rest open on a click. */
const OPEN_FAILURES = 20;

export interface HtmlOptions {
  /** @default HTML_MAX_FAILURES */
  readonly maxFailures?: number;
  /**
   * The plan's recent runs, oldest first, this run last: their pass rates are drawn as a small
   * chart under the summary (`stride run` and `stride report` give the last 20).
   */
  readonly trend?: readonly HtmlTrendPoint[];
  /**
   * The adaptive pace over the run (`htmlPaceOf`: the journaled changes and the summary's pace
   * line), drawn under the summary.
   */
  readonly pace?: HtmlPace;
  /** A comparison made with this run (`stride run --baseline`): linked from the header. */
  readonly comparison?: { readonly href: string; readonly text: string };
}

/** A run on the report's pass-rate chart. */
export interface HtmlTrendPoint {
  readonly runId: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Null when the run has no result. */
  readonly passRate: number | null;
}

const STATUS_LABEL: Readonly<Record<TestStatus | 'cancelled', string>> = {
  success: 'passed',
  failed: 'failed',
  error: 'error',
  timeout: 'timeout',
  cancelled: 'cancelled',
};

/** The reports' style sheet (also the comparison page's, src/compare/html.ts). */
export const REPORT_CSS = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--ok:#1a7f37;--fail:#cf222e;--err:#bc4c00;--tmo:#8250df;--skip:#8c959f;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
code,pre{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
header.top{background:var(--card);border-bottom:1px solid var(--line);padding:24px 32px 20px}
.brand{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:var(--muted)}
h1{margin:4px 0 12px;font-size:26px;word-break:break-all}
h2{font-size:17px;margin:0 0 12px}
dl.meta{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0}
dl.meta div{display:flex;gap:6px}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;font-weight:500;word-break:break-all}
.command{margin:14px 0 0;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 12px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.verdict{display:inline-block;margin-top:14px;padding:4px 12px;border-radius:999px;font-weight:600}
.verdict.ok{background:#dafbe1;color:var(--ok)}
.verdict.bad{background:#ffebe9;color:var(--fail)}
.verdict.link{background:#ddf4ff;color:var(--accent);margin-left:8px;text-decoration:none}
nav{position:sticky;top:0;z-index:1;background:rgba(255,255,255,.95);border-bottom:1px solid var(--line);padding:8px 32px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:var(--accent);text-decoration:none;font-weight:500}
main{max-width:1200px;margin:0 auto;padding:24px 32px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:12px;background:none;border:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px;border-top:4px solid var(--line)}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.card .num{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums;white-space:nowrap}
.card .sub{color:var(--muted);font-size:12px}
.card.ok{border-top-color:var(--ok)}.card.fail{border-top-color:var(--fail)}.card.err{border-top-color:var(--err)}.card.tmo{border-top-color:var(--tmo)}.card.skip{border-top-color:var(--skip)}.card.rate{border-top-color:var(--accent)}
.bar{display:flex;height:18px;border-radius:9px;overflow:hidden;background:var(--bg)}
.bar span{display:block;height:100%}
.s-success{background:var(--ok)}.s-failed{background:var(--fail)}.s-error{background:var(--err)}.s-timeout{background:var(--tmo)}.s-cancelled{background:var(--skip)}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin-top:10px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.latency{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.latency svg{flex:1 1 560px;max-width:100%;height:auto}
.stats{border-collapse:collapse;min-width:180px}
.stats td{padding:3px 10px 3px 0}.stats td+td{text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
table.grid{width:100%;border-collapse:collapse}
table.grid th,table.grid td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
table.grid th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table.grid td.n{text-align:right;font-variant-numeric:tabular-nums}
.mini{display:inline-block;width:80px;height:8px;background:#ffebe9;border-radius:4px;overflow:hidden;vertical-align:middle;margin-left:8px}
.mini b{display:block;height:100%;background:var(--ok)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.muted{color:var(--muted)}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;margin:0 0 12px}
article.case{border:1px solid var(--line);border-left:4px solid var(--fail);border-radius:8px;margin:10px 0;background:var(--card)}
article.case[data-status=error]{border-left-color:var(--err)}article.case[data-status=timeout]{border-left-color:var(--tmo)}
article.case summary{cursor:pointer;padding:10px 14px;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
article.case summary .id{font-weight:650;word-break:break-all}
article.case summary .msg{color:var(--muted);flex:1 1 300px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.body{padding:0 14px 14px}
.facts{display:flex;flex-wrap:wrap;gap:4px 20px;color:var(--muted);margin-bottom:8px}
.facts b{color:var(--fg);font-weight:600}
.error-message{white-space:pre-wrap;word-break:break-word;background:#fff1e5;border-radius:6px;padding:8px 10px;margin:8px 0}
ul.assertions{list-style:none;padding:0;margin:8px 0}
ul.assertions li{padding:2px 0}
ul.assertions .pass{color:var(--ok)}ul.assertions .fail{color:var(--fail)}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
.cols h4,.assertion h4{margin:10px 0 4px;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
pre.value,pre.diff{margin:0;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px;max-height:360px;overflow:auto;white-space:pre-wrap;word-break:break-word}
pre.diff span{display:block}
pre.diff .del{background:#ffebe9;color:#82071e}
pre.diff .add{background:#dafbe1;color:#116329}
footer{color:var(--muted);text-align:center;padding:0 0 32px;font-size:12px}
`;

const BADGE_COLOR: Readonly<Record<TestStatus | 'cancelled', string>> = {
  success: 'var(--ok)',
  failed: 'var(--fail)',
  error: 'var(--err)',
  timeout: 'var(--tmo)',
  cancelled: 'var(--skip)',
};

function badge(status: TestStatus | 'cancelled'): string {
  return `<span class="badge" style="background:${BADGE_COLOR[status]}">${STATUS_LABEL[status]}</span>`;
}

function int(n: number): string {
  return groupDigits(n);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** A duration in seconds for people: `420 ms`, `3.21 s`, `4 min 12 s`. */
function dur(s: number): string {
  if (!Number.isFinite(s)) return '-';
  if (s === 0) return '0 s';
  if (s < 0.001) return `${(s * 1e6).toPrecision(3)} µs`;
  if (s < 1) return `${Number((s * 1000).toPrecision(3))} ms`;
  if (s < 60) return `${s.toFixed(2)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function when(epochMs: number | undefined): string {
  if (epochMs === undefined) return '-';
  const d = new Date(epochMs);
  // UTC, not the viewer's zone: the file has no script to localise it, and CI logs are in UTC.
  return Number.isNaN(d.getTime()) ? '-' : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function money(n: number): string {
  return n === 0 ? '0' : n < 0.01 ? n.toPrecision(2) : n.toFixed(n < 10 ? 4 : 2);
}

function card(
  testid: string,
  label: string,
  /** null: unknown (an empty data-value, never 0). */
  value: number | null,
  text: string,
  cls: string,
  sub = '',
): string {
  return (
    `<div class="card ${cls}"><div class="label">${h(label)}</div>` +
    `<div class="num" data-testid="${testid}" data-value="${value ?? ''}">${h(text)}</div>` +
    `${sub === '' ? '' : `<div class="sub">${h(sub)}</div>`}</div>`
  );
}

function header(s: ReportSummary, comparison: HtmlOptions['comparison']): string {
  const m = s.meta;
  const facts: [string, string][] = [
    ['Run', m.runId],
    ['Started', when(m.startedAt)],
    ['Finished', m.finishedAt === undefined ? 'not finished' : when(m.finishedAt)],
    // Apart (issue #18): a resumed run's wall time holds the hours between its sessions.
    [
      'Active time',
      s.durationSeconds === undefined
        ? '-'
        : s.activeSeconds === undefined
          ? 'unknown'
          : dur(s.activeSeconds),
    ],
    ['Wall time', s.durationSeconds === undefined ? '-' : dur(s.durationSeconds)],
  ];
  if (s.sessions > 1) facts.push(['Sessions', String(s.sessions)]);
  if (m.stoppedBy !== undefined) facts.push(['Stopped by', m.stoppedBy]);
  if (m.parentId !== undefined) facts.push(['Resumed from', m.parentId]);
  const notPassed = s.total - s.counts.success;
  const verdict =
    s.total === 0
      ? '<div class="verdict bad">No results</div>'
      : notPassed === 0
        ? `<div class="verdict ok">All ${int(s.total)} cases passed</div>`
        : `<div class="verdict bad">${int(notPassed)} of ${int(s.total)} cases did not pass</div>`;
  return (
    `<header class="top"><div class="brand">Stride test report</div>` +
    `<h1 data-testid="plan">${h(m.plan)}</h1><dl class="meta">` +
    facts
      .map(([k, v]) => `<div data-fact="${h(k)}"><dt>${h(k)}</dt><dd>${h(v)}</dd></div>`)
      .join('') +
    '</dl>' +
    (m.command === undefined
      ? ''
      : `<pre class="command" data-testid="command" title="Command to reproduce this run"><code>${h(m.command)}</code></pre>`) +
    verdict +
    (comparison === undefined
      ? ''
      : `<a class="verdict link" data-testid="comparison-link" href="${h(comparison.href)}">${h(comparison.text)}</a>`) +
    '</header>'
  );
}

function cards(s: ReportSummary): string {
  const c = s.counts;
  return (
    '<section class="cards" id="summary">' +
    card(
      'total',
      'Total',
      s.total,
      int(s.total),
      '',
      s.retried > 0 ? `${int(s.retried)} retried` : '',
    ) +
    card('passed', 'Passed', c.success, int(c.success), 'ok') +
    card('failed', 'Failed', c.failed, int(c.failed), 'fail') +
    card('errors', 'Errors', c.error, int(c.error), 'err') +
    card('timeouts', 'Timeouts', c.timeout, int(c.timeout), 'tmo') +
    (s.cancelled > 0
      ? card('cancelled', 'Cancelled', s.cancelled, int(s.cancelled), 'skip', 'not judged')
      : '') +
    card('pass-rate', 'Pass rate', s.passRate, pct(s.passRate), 'rate') +
    (s.meanScore === null
      ? ''
      : card(
          'mean-score',
          'Mean score',
          s.meanScore,
          s.meanScore.toFixed(3),
          'rate',
          `of ${int(s.scored)} scored`,
        )) +
    card('tokens', 'Tokens', s.tokens, int(s.tokens), '') +
    (s.costUnknown === 0
      ? card('cost', 'Cost', s.cost, money(s.cost), '')
      : card(
          'cost',
          'Cost',
          null,
          'unknown',
          '',
          `no price known for ${int(s.costUnknown)} of ${int(s.total)} cases${s.costUnknown < s.total ? `; the others: ${money(s.cost)}` : ''}`,
        )) +
    '</section>'
  );
}

function statusBar(s: ReportSummary): string {
  const parts: [TestStatus | 'cancelled', number][] = [
    ['success', s.counts.success],
    ['failed', s.counts.failed],
    ['error', s.counts.error],
    ['timeout', s.counts.timeout],
    ['cancelled', s.cancelled],
  ];
  const total = Math.max(1, s.total);
  const spans = parts
    .filter(([, n]) => n > 0)
    .map(
      ([st, n]) =>
        `<span class="s-${st}" style="width:${((100 * n) / total).toFixed(3)}%" title="${STATUS_LABEL[st]}: ${int(n)}"></span>`,
    )
    .join('');
  const legend = parts
    // cancelled only when there are some: most runs have none
    .filter(([st, n]) => st !== 'cancelled' || n > 0)
    .map(
      ([st, n]) =>
        `<span><i class="s-${st}"></i>${STATUS_LABEL[st]} <b>${int(n)}</b> <span class="muted">(${pct(n / total)})</span></span>`,
    )
    .join('');
  return `<section id="status"><h2>Status</h2><div class="bar" data-testid="status-bar">${spans}</div><div class="legend">${legend}</div></section>`;
}

function edgeLabel(v: number): string {
  return v < 1 ? `${Number((v * 1000).toPrecision(3))}ms` : `${v}s`;
}

/** Where the percentile labels' baseline is, and where their leader lines meet the plot. */
const LABEL_Y = 12;
const PLOT_TOP = 34;
/** A generous width per character of an 11px bold label: an estimate must not under-reserve. */
const LABEL_CHAR = 7.5;
/** Space kept between two labels. */
const LABEL_GAP = 8;

interface PlacedLabel {
  /** Where the percentile's line is. */
  readonly x: number;
  /** The label's centre: over its line unless that would cover a neighbour. */
  readonly labelX: number;
  readonly names: string[];
}

/**
 * Lays out the p50/p90/p95/p99 labels so none covers another (issue #18): percentiles within a
 * few pixels share one line and one label ("p95 p99"); the other labels, in one row above the
 * plot (so none covers a bar, however tall), are pushed apart until their estimated boxes clear
 * each other and kept inside the chart; a slanted leader joins each moved label to its line.
 * SVG text cannot be measured before it is drawn, hence the estimate (checked in Chromium by
 * test/report/html-browser.test.ts).
 */
function percentileLabels(
  s: ReportSummary,
  xOf: (v: number) => number,
  width: number,
): PlacedLabel[] {
  const marks: [string, number][] = [
    ['p50', s.latency.p50],
    ['p90', s.latency.p90],
    ['p95', s.latency.p95],
    ['p99', s.latency.p99],
  ];
  const groups: { x: number; names: string[] }[] = [];
  for (const [name, v] of marks) {
    const x = xOf(v);
    const near = groups.find((g) => Math.abs(g.x - x) < 6);
    if (near === undefined) groups.push({ x, names: [name] });
    else near.names.push(name);
  }
  // Percentiles are ordered, so the groups are in x order: push right, then back from the edge.
  const half = groups.map((g) => (g.names.join(' ').length * LABEL_CHAR) / 2);
  const at = groups.map((g) => g.x);
  for (let i = 0; i < at.length; i++) {
    const floor = i === 0 ? half[0]! : at[i - 1]! + half[i - 1]! + LABEL_GAP + half[i]!;
    at[i] = Math.max(at[i]!, floor);
  }
  for (let i = at.length - 1; i >= 0; i--) {
    const ceiling =
      i === at.length - 1 ? width - half[i]! : at[i + 1]! - half[i + 1]! - LABEL_GAP - half[i]!;
    at[i] = Math.min(at[i]!, ceiling);
  }
  return groups.map((g, i) => ({ x: g.x, labelX: at[i]!, names: g.names }));
}

/** An SVG bar chart of the histogram's non-empty range, with the percentiles marked. */
function histogramSvg(s: ReportSummary): string {
  const bars = s.histogram;
  const first = bars.findIndex((b) => b.count > 0);
  if (first === -1) return '<p class="muted">No latencies recorded.</p>';
  let last = bars.length - 1;
  while (bars[last]!.count === 0) last--;
  const shown = bars.slice(first, last + 1);
  const W = 720;
  const left = 44;
  const bottom = 28;
  const plotW = W - left - 12;
  const bw = plotW / shown.length;
  // Where a value falls on the chart: its bar, and log-interpolated within the bar.
  const xOf = (v: number): number => {
    const i = shown.findIndex((b) => b.to === null || v < b.to);
    const b = shown[i === -1 ? shown.length - 1 : i]!;
    const idx = i === -1 ? shown.length - 1 : i;
    const to = b.to ?? b.from * 2.5;
    const frac =
      b.from <= 0 ? Math.min(1, v / to) : Math.min(1, Math.log(v / b.from) / Math.log(to / b.from));
    return left + (idx + Math.max(0, frac)) * bw;
  };
  const H = 240;
  const top = PLOT_TOP;
  const plotH = H - top - bottom;
  const peak = Math.max(...shown.map((b) => b.count));
  const out: string[] = [
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Latency histogram" data-testid="latency-histogram" xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui,sans-serif">`,
    `<line x1="${left}" y1="${top + plotH}" x2="${W - 12}" y2="${top + plotH}" stroke="#d0d7de"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end" fill="#656d76">${int(peak)}</text>`,
    `<text x="${left - 6}" y="${top + plotH}" text-anchor="end" fill="#656d76">0</text>`,
  ];
  shown.forEach((b: HistogramBucket, i) => {
    const bh = b.count === 0 ? 0 : Math.max(2, (b.count / peak) * plotH);
    const x = left + i * bw;
    const range = `${edgeLabel(b.from)}${b.to === null ? '+' : `–${edgeLabel(b.to)}`}`;
    out.push(
      `<rect x="${(x + 2).toFixed(1)}" y="${(top + plotH - bh).toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${bh.toFixed(1)}" rx="2" fill="#54aeff"><title>${h(range)}: ${int(b.count)}</title></rect>`,
      `<text x="${x.toFixed(1)}" y="${H - 10}" text-anchor="middle" fill="#656d76">${h(edgeLabel(b.from))}</text>`,
    );
  });
  for (const g of percentileLabels(s, xOf, W)) {
    const x = g.x.toFixed(1);
    out.push(
      `<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${top + plotH}" stroke="#cf222e" stroke-dasharray="4 3" stroke-width="1.2"/>`,
      `<line x1="${g.labelX.toFixed(1)}" y1="${LABEL_Y + 4}" x2="${x}" y2="${top - 4}" stroke="#cf222e" stroke-width="1"/>`,
      `<text data-testid="percentile-label" x="${g.labelX.toFixed(1)}" y="${LABEL_Y}" text-anchor="middle" fill="#cf222e" font-weight="600">${g.names.join(' ')}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('');
}

function latency(s: ReportSummary): string {
  const l = s.latency;
  if (l.count === 0) {
    return '<section id="latency"><h2>Latency</h2><p class="muted" data-testid="latency-count" data-value="0">No case ran to a verdict: no latency to show.</p></section>';
  }
  const rows: [string, string, number][] = [
    ['min', 'lat-min', l.min],
    ['mean', 'lat-mean', l.mean],
    ['p50', 'p50', l.p50],
    ['p90', 'p90', l.p90],
    ['p95', 'p95', l.p95],
    ['p99', 'p99', l.p99],
    ['max', 'lat-max', l.max],
  ];
  return (
    '<section id="latency"><h2>Latency</h2><div class="latency">' +
    histogramSvg(s) +
    '<table class="stats">' +
    rows
      .map(
        ([k, id, v]) =>
          `<tr><td>${k}</td><td data-testid="${id}" data-value="${v}">${dur(v)}</td></tr>`,
      )
      .join('') +
    `</table></div><p class="muted">Per case, first attempt to verdict (retries and backoff included), over the <span data-testid="latency-count" data-value="${l.count}">${int(l.count)}</span> ${l.count === 1 ? 'case' : 'cases'} that ran to a verdict${s.total > l.count ? ` (${int(s.total - l.count)} cancelled or not run are left out)` : ''}. Percentiles within 1 %.</p></section>`
  );
}

function datasets(s: ReportSummary): string {
  if (s.datasets.length === 0) return '';
  const rows = s.datasets
    .map(
      (d) =>
        `<tr data-testid="dataset-row" data-dataset="${h(d.name)}"><td>${h(d.name)}</td>` +
        `<td class="n">${int(d.total)}</td><td class="n">${int(d.success)}</td>` +
        `<td class="n">${int(d.failed)}</td><td class="n">${int(d.error)}</td>` +
        `<td class="n">${int(d.timeout)}</td><td class="n">${int(d.cancelled)}</td>` +
        `<td class="n">${pct(d.passRate)}<span class="mini"><b style="width:${(d.passRate * 100).toFixed(1)}%"></b></span></td>` +
        `<td class="n" data-testid="dataset-score">${d.meanScore === null ? '–' : d.meanScore.toFixed(3)}</td>` +
        `<td class="n">${dur(d.seconds)}</td></tr>`,
    )
    .join('');
  return (
    '<section id="datasets"><h2>Datasets</h2><table class="grid"><thead><tr><th>Dataset</th><th>Total</th><th>Passed</th><th>Failed</th><th>Errors</th><th>Timeouts</th><th>Cancelled</th><th>Pass rate</th><th title="Mean of the scored cases scores">Mean score</th><th title="Sum of case times">Case time</th></tr></thead><tbody>' +
    rows +
    '</tbody></table></section>'
  );
}

function errorCodes(s: ReportSummary): string {
  if (s.errors.length === 0) return '';
  const rows = s.errors
    .map(
      (e) =>
        `<tr data-testid="error-row" data-code="${h(e.code)}"><td><code>${h(e.code)}</code></td><td class="n">${int(e.count)}</td><td class="muted">${h(e.example ?? '')}</td></tr>`,
    )
    .join('');
  return `<section id="errors"><h2>Errors by code</h2><table class="grid"><thead><tr><th>Code</th><th>Cases</th><th>Example message</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function slowest(s: ReportSummary): string {
  if (s.slowest.length === 0) return '';
  const rows = s.slowest
    .map(
      (c) =>
        `<tr><td>${h(c.id)}</td><td>${h(c.dataset)}</td><td>${badge(c.status)}</td><td class="n">${dur(c.seconds)}</td></tr>`,
    )
    .join('');
  return `<section id="slowest"><h2>Slowest cases</h2><table class="grid"><thead><tr><th>Case</th><th>Dataset</th><th>Status</th><th>Time</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

/** The plan's recent pass rates as a line chart (no script: an inline SVG). */
function trendSection(points: readonly HtmlTrendPoint[], runId: string): string {
  const known = points.filter((p) => p.passRate !== null);
  if (points.length < 2 || known.length === 0) return '';
  const W = 720;
  const H = 160;
  const left = 48;
  const top = 16;
  const plotW = W - left - 16;
  const plotH = H - top - 28;
  // The axis starts at the lowest rate rounded down to 10 %: a plan's rate moves by a few points.
  const floor = Math.min(0.9, Math.floor(Math.min(...known.map((p) => p.passRate!)) * 10) / 10);
  const x = (i: number) =>
    left + (points.length === 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
  const y = (r: number) => top + plotH - ((r - floor) / (1 - floor)) * plotH;
  const line = points
    .map((p, i) => (p.passRate === null ? null : `${x(i).toFixed(1)},${y(p.passRate).toFixed(1)}`))
    .filter((v) => v !== null)
    .join(' ');
  const dots = points
    .map((p, i) => {
      if (p.passRate === null) return '';
      const current = p.runId === runId;
      return `<circle data-testid="trend-point" data-run-id="${h(p.runId)}" data-value="${p.passRate}" cx="${x(i).toFixed(1)}" cy="${y(p.passRate).toFixed(1)}" r="${current ? 5 : 3.5}" fill="${current ? '#cf222e' : '#0969da'}"><title>${h(`${p.runId}: ${pct(p.passRate)}`)}</title></circle>`;
    })
    .join('');
  const svg =
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Pass rate of the plan's recent runs" data-testid="trend" xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui,sans-serif">` +
    `<line x1="${left}" y1="${top}" x2="${W - 16}" y2="${top}" stroke="#d0d7de" stroke-dasharray="3 3"/>` +
    `<line x1="${left}" y1="${top + plotH}" x2="${W - 16}" y2="${top + plotH}" stroke="#d0d7de"/>` +
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end" fill="#656d76">100%</text>` +
    `<text x="${left - 6}" y="${top + plotH + 4}" text-anchor="end" fill="#656d76">${pct(floor)}</text>` +
    `<polyline points="${line}" fill="none" stroke="#0969da" stroke-width="2"/>${dots}` +
    `<text x="${left}" y="${H - 6}" fill="#656d76">${h(points[0]!.runId)}</text>` +
    `<text x="${W - 16}" y="${H - 6}" text-anchor="end" fill="#656d76">${h(points[points.length - 1]!.runId)}</text></svg>`;
  return `<section id="trend"><h2>Pass rate, last ${points.length} runs of the plan</h2>${svg}<p class="muted">Oldest on the left; this run in red.</p></section>`;
}

function value(v: unknown): string {
  return `<pre class="value">${h(clip(diffText(v), MAX_VALUE))}</pre>`;
}

function diffBlock(a: AssertionOutcome): string {
  const lines = lineDiff(
    clip(diffText(a.expected), MAX_VALUE),
    clip(diffText(a.actual), MAX_VALUE),
  );
  const shown = lines.slice(0, MAX_DIFF_LINES).map((l) => {
    const cls = l.op === '-' ? 'del' : l.op === '+' ? 'add' : 'same';
    return `<span class="${cls}">${l.op} ${h(l.text)}</span>`;
  });
  if (lines.length > MAX_DIFF_LINES) {
    shown.push(`<span class="same">… ${int(lines.length - MAX_DIFF_LINES)} more lines</span>`);
  }
  return `<pre class="diff" data-testid="diff">${shown.join('')}</pre>`;
}

function assertionsBlock(r: TestResult): string {
  if (r.assertions.length === 0) return '';
  const items = r.assertions
    .map(
      (a) =>
        `<li class="${a.passed ? 'pass' : 'fail'}">${a.passed ? '✓' : '✗'} <code>${h(a.type)}</code> ${h(a.message)}${a.score === undefined || a.score === 0 || a.score === 1 ? '' : ` <span class="muted">(score ${a.score.toFixed(3)})</span>`}${a.weight === undefined ? '' : ` <span class="muted">(weight ${a.weight})</span>`}</li>`,
    )
    .join('');
  const diffs = r.assertions
    .filter((a) => !a.passed && 'expected' in a && 'actual' in a)
    .map(
      (a) =>
        `<div class="assertion"><h4>${h(a.type)}: − expected / + actual</h4>${diffBlock(a)}</div>`,
    )
    .join('');
  const expectedOnly = r.assertions
    .filter((a) => !a.passed && 'expected' in a && !('actual' in a))
    .map((a) => `<div class="assertion"><h4>${h(a.type)}: expected</h4>${value(a.expected)}</div>`)
    .join('');
  return `<ul class="assertions">${items}</ul>${diffs}${expectedOnly}`;
}

function failure(r: TestResult, open: boolean): string {
  const m = r.metadata;
  const facts: [string, string][] = [
    ['dataset', datasetOf(r)],
    ['attempts', String(m.attemptCount)],
    ['time', dur(r.executionTime)],
  ];
  if (r.score !== undefined) facts.push(['score', r.score.toFixed(3)]);
  if (m.errorCode !== undefined) facts.push(['code', m.errorCode]);
  if (m.scenario !== undefined) facts.push(['scenario', m.scenario]);
  if (m.tags.length > 0) facts.push(['tags', m.tags.join(', ')]);
  const message = r.errorMessage ?? '';
  const id = caseName(r);
  return (
    `<article class="case" data-testid="failure" data-case-id="${h(id)}" data-status="${r.status}">` +
    `<details${open ? ' open' : ''}><summary>${badge(r.status)}<span class="id">${h(id)}</span>` +
    `<span class="msg">${h(message.split('\n', 1)[0] ?? '')}</span></summary><div class="body">` +
    `<div class="facts">${facts.map(([k, v]) => `<span>${h(k)} <b>${h(v)}</b></span>`).join('')}</div>` +
    (message === '' ? '' : `<div class="error-message">${h(clip(message, MAX_VALUE))}</div>`) +
    assertionsBlock(r) +
    `<div class="cols"><div><h4>Inputs</h4>${value(r.inputs)}</div><div><h4>Output</h4>${value(r.outputs)}</div></div>` +
    '</div></details></article>'
  );
}

/** Everything above the failures' list: the head, the header, the summary sections. */
function documentHead(s: ReportSummary, options: HtmlOptions, max: number): string {
  const listable = s.counts.failed + s.counts.timeout + s.counts.error;
  const leftOut = Math.max(0, listable - max);
  return (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    // No script may run and nothing may load: the report shows untrusted model output.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">` +
    `<title>${h(`${s.meta.plan} · ${s.meta.runId} · Stride report`)}</title>` +
    `<style>${REPORT_CSS}</style></head><body>` +
    header(s, options.comparison) +
    '<nav><a href="#summary">Summary</a>' +
    (options.pace === undefined ? '' : '<a href="#pace">Pace</a>') +
    '<a href="#latency">Latency</a>' +
    (s.datasets.length > 0 ? '<a href="#datasets">Datasets</a>' : '') +
    (s.errors.length > 0 ? '<a href="#errors">Errors</a>' : '') +
    (s.slowest.length > 0 ? '<a href="#slowest">Slowest</a>' : '') +
    `<a href="#failures">Failures (${int(listable)})</a></nav><main>` +
    cards(s) +
    trendSection(options.trend ?? [], s.meta.runId) +
    paceSection(options.pace) +
    statusBar(s) +
    latency(s) +
    datasets(s) +
    errorCodes(s) +
    slowest(s) +
    `<section id="failures"><h2>Failures, errors and timeouts <span class="muted" data-testid="failure-count" data-value="${listable}">(${int(listable)})</span></h2>` +
    (leftOut > 0
      ? `<p class="note" data-testid="left-out" data-value="${leftOut}">Showing the first ${int(max)}; ${int(leftOut)} more are not listed here (see results.jsonl or results.csv).</p>`
      : '') +
    (s.cancelled > 0
      ? `<p class="muted" data-testid="cancelled-note">${int(s.cancelled)} cancelled ${s.cancelled === 1 ? 'case is' : 'cases are'} counted above but not listed: they were not judged.</p>`
      : '') +
    (listable === 0 ? '<p class="muted">None. Every judged case passed.</p>' : '')
  );
}

/**
 * The HTML report fed one result at a time: the failures (the first `maxFailures`) go to a
 * scratch file as they come; `finish` writes the summary parts and copies them in below.
 */
class HtmlWriter implements FormatWriter {
  private listed = 0;

  private constructor(
    readonly path: string,
    private readonly max: number,
    private readonly bodyPath: string,
    private readonly body: FileSink,
  ) {}

  static async open(path: string, max: number): Promise<HtmlWriter> {
    const bodyPath = scratchPath(path, 'body');
    return new HtmlWriter(path, max, bodyPath, await FileSink.open(bodyPath, undefined, path));
  }

  /** True once `maxFailures` failures are listed: the rest are only counted. */
  get full(): boolean {
    return this.listed >= this.max;
  }

  async add(row: ResultRow): Promise<void> {
    const r = row.result;
    if (this.listed >= this.max || r.status === 'success' || isCancelled(r)) return;
    await this.body.write(failure(r, this.listed < OPEN_FAILURES));
    this.listed++;
  }

  async finish(summary: ReportSummary, options: FinishOptions = {}): Promise<void> {
    try {
      await this.body.close();
      await writeFileStreamed(this.path, async (out) => {
        await out.write(documentHead(summary, options.html ?? {}, this.max));
        await copyInto(out, this.bodyPath, this.path);
        await out.write(
          `</section></main><footer>Generated by Stride · ${h(when(Date.now()))} · a self-contained file: no network needed.</footer></body></html>\n`,
        );
      });
    } finally {
      await removeAll([this.bodyPath]);
    }
  }

  async abort(): Promise<void> {
    await this.body.abort();
    await removeAll([this.bodyPath]);
  }
}

/**
 * Opens an HTML report writer for `path` (report/fanout.ts feeds it). `maxFailures` caps the
 * failures listed (default HTML_MAX_FAILURES); the trend and comparison are `finish` options.
 */
export function openHtmlWriter(
  path: string,
  options: { readonly maxFailures?: number } = {},
): Promise<FormatWriter> {
  return HtmlWriter.open(path, options.maxFailures ?? HTML_MAX_FAILURES);
}

/**
 * Writes `report.html`: a header (plan, run id, start, duration, the command to reproduce),
 * summary cards, a status bar, a latency histogram with p50/p90/p95/p99, tables per dataset,
 * per error code and of the slowest cases, then every failed, errored and timed-out case (up to
 * `maxFailures`, default 1,000, with a note saying how many were left out) with its inputs,
 * outputs, assertions and an expected/actual line diff. Cancelled cases are counted, not listed.
 *
 * The summary parts come from `summary`; the source is read once, for the failures.
 *
 * @example
 * ```ts
 * await writeHtml('out/report.html', summary, () => results);
 * ```
 */
export async function writeHtml(
  path: string,
  summary: ReportSummary,
  source: ResultSource,
  options: HtmlOptions = {},
): Promise<void> {
  const max = options.maxFailures ?? HTML_MAX_FAILURES;
  const writer = await HtmlWriter.open(path, max);
  const listable = summary.counts.failed + summary.counts.timeout + summary.counts.error;
  try {
    if (max > 0 && listable > 0) {
      for await (const r of source()) {
        await writer.add(new ResultRow(r));
        if (writer.full) break;
      }
    }
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await writer.finish(summary, { html: options });
}
