/**
 * A comparison for people: the terminal summary (`stride compare`, and after `stride run
 * --baseline`) and the short markdown block for a pull-request comment (`--format md`).
 * Regressions come first in both.
 */

import { groupDigits } from '../report/text.js';
import type { CaseChange, Comparison, Rate, SideSummary } from './types.js';

/** Cases of each list printed in the terminal and in markdown; `--json` has them all. */
export const TEXT_MAX_CASES = 20;

function pct(x: number | null): string {
  return x === null ? 'unknown' : `${(x * 100).toFixed(1)}%`;
}

/** A pass rate with its interval: `71.4% [35.9-91.8%]`. */
function rateText(r: Rate): string {
  if (r.pass_rate === null || r.ci95 === null) return 'unknown (no results)';
  return `${pct(r.pass_rate)} [${(r.ci95.low * 100).toFixed(1)}–${pct(r.ci95.high)}]`;
}

/** A difference of shares in percentage points, signed: `−14.3 pts`. */
function pts(d: number | null): string {
  if (d === null) return 'unknown';
  const v = d * 100;
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(1)} pts`;
}

function secs(s: number | null): string {
  if (s === null) return 'unknown';
  const a = Math.abs(s);
  return a < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(a < 10 ? 2 : 1)} s`;
}

function signed(d: number | null, unit: (x: number) => string): string {
  if (d === null) return 'unknown';
  return `${d > 0 ? '+' : d < 0 ? '−' : '±'}${unit(Math.abs(d))}`;
}

function money(n: number): string {
  return n.toFixed(4);
}

/** A side's cost: the figure, or what is unknown of it (never a partial sum read as the cost). */
function sideCost(s: { readonly cost: number; readonly cost_unknown: number }): string {
  return s.cost_unknown === 0
    ? money(s.cost)
    : `unknown for ${s.cost_unknown} (partial ${money(s.cost)})`;
}

function int(n: number): string {
  return groupDigits(Math.round(n));
}

function runsOf(s: SideSummary): string {
  return s.runs.map((r) => r.id).join(',');
}

function plans(c: Comparison): string {
  const names = [...new Set([...c.summary.base.runs, ...c.summary.head.runs].map((r) => r.plan))];
  return names.length === 1 ? `plan ${names[0]}` : `plans ${names.join(' → ')}`;
}

/** One line of what the paired test says. */
export function verdictLine(c: Comparison): string {
  const t = c.summary.test;
  const p = t.p_value < 0.001 ? t.p_value.toExponential(1) : t.p_value.toFixed(3);
  const name = t.test === 'mcnemar-exact' ? "McNemar's exact test" : "McNemar's test (normal)";
  const judgement =
    t.regressed + t.fixed === 0
      ? 'no case changed its verdict'
      : c.summary.significant
        ? `significant regression at ${c.summary.alpha}`
        : t.p_value < c.summary.alpha
          ? `significant improvement at ${c.summary.alpha}`
          : `not significant at ${c.summary.alpha}: could be chance`;
  return `${name}: ${t.regressed} regressed vs ${t.fixed} fixed, p = ${p} (${judgement})`;
}

function sidesText(side: CaseChange['base']): string {
  if (side === null) return '-';
  const verdict = side.samples > 1 ? `${side.passed}/${side.samples}` : side.status;
  return side.score === null || side.score === undefined
    ? verdict
    : `${verdict} (${side.score.toFixed(2)})`;
}

function scoreText(x: number | null): string {
  return x === null ? 'unknown' : x.toFixed(3);
}

/** What a listed case's line says after its statuses: the broken assertion or the error. */
function why(c: CaseChange): string {
  if (c.similarity !== undefined && c.base?.status === 'success' && c.head?.status === 'success') {
    return `similarity ${c.similarity.toFixed(2)}`;
  }
  const message =
    c.assertion?.message ?? c.head?.error ?? c.base?.error ?? (c.detailed ? '' : '(no details)');
  const first = message.split('\n', 1)[0] ?? '';
  const line = c.verdict === 'fixed' && first !== '' ? `was: ${first}` : first;
  return line.length > 100 ? `${line.slice(0, 97)}...` : line;
}

const LISTS: readonly [keyof Omit<Comparison, 'summary'>, string][] = [
  ['regressions', 'REGRESSIONS: passed in base, not in head'],
  ['fixes', 'FIXES: not passed in base, passed in head'],
  ['flaky', 'FLAKY: varies within a run (not counted as regressions or fixes)'],
  ['added', 'ADDED: only in head'],
  ['removed', 'REMOVED: only in base'],
  ['still_failing', 'STILL FAILING'],
  ['changed', 'CHANGED: passed in both, output differs'],
  ['unjudged', 'UNJUDGED: cancelled on one side'],
];

/**
 * The terminal summary: both runs, pass rates with intervals, latency, usage, the paired test,
 * then each non-empty list (regressions first), at most `maxCases` lines each.
 */
export function formatComparison(c: Comparison, maxCases = TEXT_MAX_CASES): string {
  const s = c.summary;
  const n = s.counts;
  const lines = [
    `Compare ${runsOf(s.base)} → ${runsOf(s.head)} (${plans(c)}): ${s.matched} cases matched, ${n.added} added, ${n.removed} removed`,
    `  pass rate   ${rateText(s.base)} → ${rateText(s.head)}   ${pts(s.delta.pass_rate)}`,
    `  latency     p50 ${secs(s.base.latency.p50)} → ${secs(s.head.latency.p50)} (${signed(s.delta.p50, (x) => secs(x))}) · p90 ${secs(s.base.latency.p90)} → ${secs(s.head.latency.p90)} (${signed(s.delta.p90, (x) => secs(x))})`,
    `  usage       tokens ${int(s.base.tokens)} → ${int(s.head.tokens)} (${signed(s.delta.tokens, int)}) · cost ${sideCost(s.base)} → ${sideCost(s.head)} (${signed(s.delta.cost, money)})`,
    ...(s.base.mean_score === null && s.head.mean_score === null
      ? []
      : [
          `  mean score  ${scoreText(s.base.mean_score)} → ${scoreText(s.head.mean_score)} (${signed(s.delta.mean_score, (x) => x.toFixed(3))})`,
        ]),
    `  is it real  ${verdictLine(c)}`,
    `  cases       ${n.regressions} regressed, ${n.fixes} fixed, ${n.flaky} flaky, ${n.still_failing} still failing, ${n.changed} changed, ${n.unchanged} unchanged`,
  ];
  if (s.datasets.length > 1) {
    lines.push('  datasets');
    for (const d of s.datasets) {
      lines.push(
        `    ${d.name.padEnd(20)} ${pct(d.base.pass_rate)} → ${pct(d.head.pass_rate)} (${pts(d.delta_pass_rate)})${d.base_mean_score === null && d.head_mean_score === null ? '' : ` · score ${scoreText(d.base_mean_score)} → ${scoreText(d.head_mean_score)}`}`,
      );
    }
  }
  for (const [key, title] of LISTS) {
    const list = c[key];
    if (list.length === 0) continue;
    lines.push('', `${title} (${list.length})`);
    const idWidth = Math.min(40, Math.max(...list.slice(0, maxCases).map((x) => x.id.length)));
    for (const x of list.slice(0, maxCases)) {
      lines.push(
        `  ${x.id.padEnd(idWidth)}  [${x.dataset}]  ${sidesText(x.base)} → ${sidesText(x.head)}  ${why(x)}`.trimEnd(),
      );
    }
    if (list.length > maxCases)
      lines.push(`  … and ${list.length - maxCases} more (--json lists every case)`);
  }
  if (s.warnings.length > 0) {
    lines.push('', 'notes:');
    for (const w of s.warnings) lines.push(`  ${w}`);
  }
  return lines.join('\n');
}

/** Markdown table cell: pipes escaped, one line, code spans kept short. */
function cell(text: string): string {
  const line = (text.split('\n', 1)[0] ?? '').replace(/\|/g, '\\|');
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

function code(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

function mdList(title: string, list: readonly CaseChange[], maxCases: number): string[] {
  if (list.length === 0) return [];
  const out = [
    `#### ${title} (${list.length})`,
    '',
    '| case | dataset | base | head | details |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const x of list.slice(0, maxCases)) {
    out.push(
      `| ${cell(code(x.id))} | ${cell(x.dataset)} | ${sidesText(x.base)} | ${sidesText(x.head)} | ${cell(why(x))} |`,
    );
  }
  if (list.length > maxCases) out.push('', `… and ${list.length - maxCases} more.`);
  out.push('');
  return out;
}

/**
 * A short markdown block for a pull-request comment: the verdict, a table of the figures and
 * their deltas, the regressions and fixes, the other lists folded in a `<details>`.
 */
export function comparisonMarkdown(c: Comparison, maxCases = TEXT_MAX_CASES): string {
  const s = c.summary;
  const n = s.counts;
  const head = `**${n.regressions} regression${n.regressions === 1 ? '' : 's'}**, ${n.fixes} fix${n.fixes === 1 ? '' : 'es'}, ${n.flaky} flaky, ${n.added} added, ${n.removed} removed`;
  const out = [
    `### Stride compare: ${code(runsOf(s.base))} → ${code(runsOf(s.head))}`,
    '',
    `${head} · ${verdictLine(c)}`,
    '',
    '| | base | head | Δ |',
    '| --- | ---: | ---: | ---: |',
    `| pass rate | ${rateText(s.base)} | ${rateText(s.head)} | ${pts(s.delta.pass_rate)} |`,
    `| p50 | ${secs(s.base.latency.p50)} | ${secs(s.head.latency.p50)} | ${signed(s.delta.p50, (x) => secs(x))} |`,
    `| p90 | ${secs(s.base.latency.p90)} | ${secs(s.head.latency.p90)} | ${signed(s.delta.p90, (x) => secs(x))} |`,
    `| tokens | ${int(s.base.tokens)} | ${int(s.head.tokens)} | ${signed(s.delta.tokens, int)} |`,
    `| cost | ${sideCost(s.base)} | ${sideCost(s.head)} | ${signed(s.delta.cost, money)} |`,
    ...(s.base.mean_score === null && s.head.mean_score === null
      ? []
      : [
          `| mean score | ${scoreText(s.base.mean_score)} | ${scoreText(s.head.mean_score)} | ${signed(s.delta.mean_score, (x) => x.toFixed(3))} |`,
        ]),
    '',
    ...mdList('Regressions', c.regressions, maxCases),
    ...mdList('Fixes', c.fixes, maxCases),
  ];
  const rest = [
    ...mdList('Flaky', c.flaky, maxCases),
    ...mdList('Added', c.added, maxCases),
    ...mdList('Removed', c.removed, maxCases),
    ...mdList('Still failing', c.still_failing, maxCases),
    ...mdList('Changed', c.changed, maxCases),
    ...mdList('Unjudged', c.unjudged, maxCases),
  ];
  if (rest.length > 0) {
    out.push(
      `<details><summary>Flaky ${n.flaky}, added ${n.added}, removed ${n.removed}, still failing ${n.still_failing}, changed ${n.changed}</summary>`,
      '',
      ...rest,
      '</details>',
      '',
    );
  }
  for (const w of s.warnings) out.push(`> ${w}`, '');
  return `${out.join('\n').trimEnd()}\n`;
}
