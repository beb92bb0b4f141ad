/**
 * The comparison as one self-contained HTML page (`stride compare --format html`): the figures
 * of both sides with their deltas and the paired test, then the lists, regressions first, each
 * detailed case with the base and head outputs side by side and their line diff. Same rules as
 * the run report (src/report/html.ts): inline CSS, no script, a CSP that forbids scripts and
 * remote loads, every value escaped.
 */

import type { AssertionOutcome } from '../plans/index.js';
import { diffText, lineDiff } from '../report/diff.js';
import { REPORT_CSS } from '../report/html.js';
import { writeFileStreamed } from '../report/sink.js';
import { clip, escapeHtml as h } from '../report/text.js';
import { verdictLine } from './text.js';
import type { CaseChange, CaseSide, Comparison, Rate } from './types.js';

/** Cases per list shown as rows once their details run out; the rest are counted. */
const HTML_MAX_ROWS = 1000;
const MAX_VALUE = 20_000;
const MAX_DIFF_LINES = 400;

const EXTRA_CSS = `
.cols2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.cols2 h4{margin:10px 0 4px;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
article.case[data-list=fixes]{border-left-color:var(--ok)}
article.case[data-list=flaky]{border-left-color:var(--tmo)}
article.case[data-list=changed],article.case[data-list=added]{border-left-color:var(--accent)}
article.case[data-list=removed],article.case[data-list=unjudged]{border-left-color:var(--skip)}
.delta-bad{color:var(--fail);font-weight:600}.delta-good{color:var(--ok);font-weight:600}
`;

const LISTS: readonly [keyof Omit<Comparison, 'summary'>, string, string][] = [
  ['regressions', 'Regressions', 'Passed in the base, not in the head.'],
  ['fixes', 'Fixes', 'Not passed in the base, passed in the head.'],
  ['flaky', 'Flaky', 'The outcome varies within a run: never counted as a regression or a fix.'],
  ['added', 'Added', 'Only in the head.'],
  ['removed', 'Removed', 'Only in the base.'],
  ['still_failing', 'Still failing', 'Not passed on either side.'],
  ['changed', 'Changed', 'Passed on both sides; the output differs.'],
  ['unjudged', 'Unjudged', 'Cancelled on one side: no verdict to compare.'],
];

function pct(x: number | null): string {
  return x === null ? 'unknown' : `${(x * 100).toFixed(1)}%`;
}

function rateCell(r: Rate): string {
  if (r.pass_rate === null || r.ci95 === null) return 'unknown';
  return `${pct(r.pass_rate)} <span class="muted">[${(r.ci95.low * 100).toFixed(1)}–${pct(r.ci95.high)}]</span>`;
}

function secs(s: number | null): string {
  if (s === null) return 'unknown';
  return Math.abs(s) < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

/** A signed delta, coloured: red when worse (`higherIsWorse` for latency, tokens, cost). */
function delta(d: number | null, text: (x: number) => string, higherIsWorse: boolean): string {
  if (d === null) return 'unknown';
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
  const worse = higherIsWorse ? d > 0 : d < 0;
  const cls = d === 0 ? '' : worse ? 'delta-bad' : 'delta-good';
  return `<span class="${cls}">${sign}${h(text(Math.abs(d)))}</span>`;
}

function card(testid: string, label: string, value: number | null, text: string, cls = ''): string {
  return (
    `<div class="card ${cls}"><div class="label">${h(label)}</div>` +
    `<div class="num" data-testid="${testid}" data-value="${value ?? ''}">${h(text)}</div></div>`
  );
}

function header(c: Comparison): string {
  const s = c.summary;
  const ids = (side: typeof s.base) => side.runs.map((r) => r.id).join(', ');
  const plans = [...new Set([...s.base.runs, ...s.head.runs].map((r) => r.plan))].join(' → ');
  const facts: [string, string][] = [
    ['Plan', plans],
    ['Base', ids(s.base)],
    ['Head', ids(s.head)],
    ['Matched cases', String(s.matched)],
  ];
  const n = s.counts;
  const verdict =
    n.regressions === 0
      ? `<div class="verdict ok" data-testid="verdict">No regressions · ${n.fixes} fixed</div>`
      : `<div class="verdict bad" data-testid="verdict">${n.regressions} regression${n.regressions === 1 ? '' : 's'} · ${n.fixes} fixed${s.significant ? ' · significant' : ''}</div>`;
  return (
    '<header class="top"><div class="brand">Stride comparison</div>' +
    `<h1 data-testid="title">${h(ids(s.base))} → ${h(ids(s.head))}</h1><dl class="meta">` +
    facts.map(([k, v]) => `<div><dt>${h(k)}</dt><dd>${h(v)}</dd></div>`).join('') +
    `</dl><p class="muted" data-testid="test">${h(verdictLine(c))}</p>${verdict}</header>`
  );
}

function figures(c: Comparison): string {
  const s = c.summary;
  const n = s.counts;
  const cards =
    '<section class="cards" id="summary">' +
    card('base-pass-rate', 'Base pass rate', s.base.pass_rate, pct(s.base.pass_rate), 'rate') +
    card('head-pass-rate', 'Head pass rate', s.head.pass_rate, pct(s.head.pass_rate), 'rate') +
    card('regressions-count', 'Regressions', n.regressions, String(n.regressions), 'fail') +
    card('fixes-count', 'Fixes', n.fixes, String(n.fixes), 'ok') +
    card('flaky-count', 'Flaky', n.flaky, String(n.flaky), 'tmo') +
    card('p-value', 'p-value', s.p_value, s.p_value.toPrecision(3)) +
    '</section>';
  const row = (name: string, base: string, head: string, d: string) =>
    `<tr><td>${name}</td><td class="n">${base}</td><td class="n">${head}</td><td class="n">${d}</td></tr>`;
  const table =
    '<section id="figures"><h2>Figures</h2><table class="grid" data-testid="figures"><thead><tr><th></th><th>Base</th><th>Head</th><th>Δ</th></tr></thead><tbody>' +
    row(
      'pass rate [95% CI]',
      rateCell(s.base),
      rateCell(s.head),
      delta(s.delta.pass_rate, (x) => `${(x * 100).toFixed(1)} pts`, false),
    ) +
    row('p50', secs(s.base.latency.p50), secs(s.head.latency.p50), delta(s.delta.p50, secs, true)) +
    row('p90', secs(s.base.latency.p90), secs(s.head.latency.p90), delta(s.delta.p90, secs, true)) +
    row(
      'tokens',
      String(Math.round(s.base.tokens)),
      String(Math.round(s.head.tokens)),
      delta(s.delta.tokens, (x) => String(Math.round(x)), true),
    ) +
    row(
      'cost',
      s.base.cost_unknown === 0
        ? s.base.cost.toFixed(4)
        : `unknown for ${s.base.cost_unknown} (partial ${s.base.cost.toFixed(4)})`,
      s.head.cost_unknown === 0
        ? s.head.cost.toFixed(4)
        : `unknown for ${s.head.cost_unknown} (partial ${s.head.cost.toFixed(4)})`,
      delta(s.delta.cost, (x) => x.toFixed(4), true),
    ) +
    '</tbody></table></section>';
  const datasets =
    s.datasets.length === 0
      ? ''
      : '<section id="datasets"><h2>Datasets</h2><table class="grid"><thead><tr><th>Dataset</th><th>Base</th><th>Head</th><th>Δ</th></tr></thead><tbody>' +
        s.datasets
          .map(
            (d) =>
              `<tr data-testid="dataset-row" data-dataset="${h(d.name)}"><td>${h(d.name)}</td><td class="n">${rateCell(d.base)}</td><td class="n">${rateCell(d.head)}</td><td class="n">${delta(d.delta_pass_rate, (x) => `${(x * 100).toFixed(1)} pts`, false)}</td></tr>`,
          )
          .join('') +
        '</tbody></table></section>';
  return cards + table + datasets;
}

function value(v: unknown): string {
  return `<pre class="value">${h(clip(diffText(v), MAX_VALUE))}</pre>`;
}

function diffBlock(text: string): string {
  const lines = text.split('\n').map((l) => {
    const cls = l.startsWith('- ') ? 'del' : l.startsWith('+ ') ? 'add' : 'same';
    return `<span class="${cls}">${h(l)}</span>`;
  });
  return `<pre class="diff" data-testid="diff">${lines.join('')}</pre>`;
}

function sideFacts(label: string, s: CaseSide | null): string {
  if (s === null) return `<span>${label} <b>absent</b></span>`;
  const rate = s.samples > 1 ? ` (${s.passed}/${s.samples} passed)` : '';
  return `<span>${label} <b data-testid="${label}-status">${h(s.status)}</b>${h(rate)}</span>`;
}

function assertion(a: AssertionOutcome): string {
  const both = 'expected' in a && 'actual' in a;
  const body = both
    ? (() => {
        const lines = lineDiff(
          clip(diffText(a.expected), MAX_VALUE),
          clip(diffText(a.actual), MAX_VALUE),
        );
        return diffBlock(
          lines
            .slice(0, MAX_DIFF_LINES)
            .map((l) => `${l.op} ${l.text}`)
            .join('\n'),
        );
      })()
    : '';
  return `<div class="assertion"><h4>${h(a.passed ? 'assertion' : 'assertion that broke')}</h4><ul class="assertions"><li class="${a.passed ? 'pass' : 'fail'}">${a.passed ? '✓' : '✗'} <code>${h(a.type)}</code> ${h(a.message)}</li></ul>${body}</div>`;
}

function detailed(list: string, c: CaseChange, open: boolean): string {
  const facts =
    `<div class="facts">${sideFacts('base', c.base)}${sideFacts('head', c.head)}` +
    `${c.verdict === null ? '' : `<span>verdict <b>${h(c.verdict)}</b></span>`}` +
    `${c.similarity === undefined ? '' : `<span>similarity <b data-testid="similarity">${c.similarity.toFixed(2)}</b></span>`}</div>`;
  // A failed assertion's message is the error's: shown once, with the assertion.
  const errors = [c.base, c.head]
    .map((s, i) =>
      s?.error === undefined || s.error === null || s.error_code === 'TASK_FAILED'
        ? ''
        : `<div class="error-message">${i === 0 ? 'base' : 'head'}: ${h(clip(s.error, MAX_VALUE))}</div>`,
    )
    .join('');
  const outputs =
    `<div class="cols2"><div><h4>Base output</h4>${c.base === null ? '<p class="muted">not in the base</p>' : value(c.base.output)}</div>` +
    `<div><h4>Head output</h4>${c.head === null ? '<p class="muted">not in the head</p>' : value(c.head.output)}</div></div>`;
  const first = (c.head?.error ?? c.base?.error ?? '').split('\n', 1)[0] ?? '';
  return (
    `<article class="case" data-testid="case" data-list="${list}" data-case-id="${h(c.id)}" data-dataset="${h(c.dataset)}">` +
    `<details${open ? ' open' : ''}><summary><span class="id">${h(c.id)}</span><span class="muted">${h(c.dataset)}</span>` +
    `<span class="msg">${h(`${list === 'fixes' ? 'was: ' : ''}${c.assertion?.message ?? first}`)}</span></summary><div class="body">` +
    facts +
    errors +
    (c.assertion === undefined || c.assertion === null ? '' : assertion(c.assertion)) +
    outputs +
    (c.diff === undefined
      ? ''
      : `<div class="assertion"><h4>Output diff: − base / + head</h4>${diffBlock(c.diff)}</div>`) +
    `<div class="assertion"><h4>Inputs</h4>${value(c.inputs)}</div></div></details></article>`
  );
}

function rows(list: string, cases: readonly CaseChange[]): string {
  if (cases.length === 0) return '';
  const shown = cases.slice(0, HTML_MAX_ROWS);
  const cell = (s: CaseSide | null) =>
    s === null ? '-' : s.samples > 1 ? `${s.status} (${s.passed}/${s.samples})` : s.status;
  return (
    `<table class="grid"><thead><tr><th>Case</th><th>Dataset</th><th>Base</th><th>Head</th></tr></thead><tbody>` +
    shown
      .map(
        (c) =>
          `<tr data-testid="case" data-list="${list}" data-case-id="${h(c.id)}" data-dataset="${h(c.dataset)}"><td>${h(c.id)}</td><td>${h(c.dataset)}</td><td>${h(cell(c.base))}</td><td>${h(cell(c.head))}</td></tr>`,
      )
      .join('') +
    '</tbody></table>' +
    (cases.length > shown.length
      ? `<p class="note" data-testid="left-out" data-list="${list}" data-value="${cases.length - shown.length}">${cases.length - shown.length} more not shown (see --json).</p>`
      : '')
  );
}

/**
 * Writes the comparison page to `path` (a temporary file renamed when complete: the page
 * appears whole or not at all).
 *
 * @example
 * ```ts
 * await writeComparisonHtml('compare.html', await compareRuns(history, 'r1', 'r2'));
 * ```
 */
export async function writeComparisonHtml(path: string, c: Comparison): Promise<void> {
  const s = c.summary;
  await writeFileStreamed(path, async (sink) => {
    await sink.write(
      '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
        '<meta name="viewport" content="width=device-width, initial-scale=1">' +
        // No script may run and nothing may load: the page shows untrusted model output.
        `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">` +
        `<title>${h(`${s.base.runs.map((r) => r.id).join(',')} → ${s.head.runs.map((r) => r.id).join(',')} · Stride comparison`)}</title>` +
        `<style>${REPORT_CSS}${EXTRA_CSS}</style></head><body>`,
    );
    await sink.write(header(c));
    await sink.write(
      `<nav><a href="#summary">Summary</a>${LISTS.filter(([k]) => c[k].length > 0)
        .map(([k, title]) => `<a href="#${k}">${title} (${c[k].length})</a>`)
        .join('')}</nav><main>`,
    );
    if (s.warnings.length > 0) {
      await sink.write(
        `<section id="notes">${s.warnings.map((w) => `<p class="note" data-testid="warning">${h(w)}</p>`).join('')}</section>`,
      );
    }
    await sink.write(figures(c));
    for (const [key, title, about] of LISTS) {
      const list = c[key];
      if (list.length === 0) continue;
      await sink.write(
        `<section id="${key}" data-testid="list" data-list="${key}"><h2>${title} <span class="muted" data-testid="${key}-total" data-value="${list.length}">(${list.length})</span></h2><p class="muted">${h(about)}</p>`,
      );
      let i = 0;
      for (; i < list.length && list[i]!.detailed; i++) {
        await sink.write(detailed(key, list[i]!, key === 'regressions' && i < 20));
      }
      await sink.write(`${rows(key, list.slice(i))}</section>`);
    }
    await sink.write(
      `</main><footer>Generated by Stride · ${h(new Date().toISOString().slice(0, 19).replace('T', ' '))} UTC · a self-contained file: no network needed.</footer></body></html>\n`,
    );
  });
}
