/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** The Runs page: every run, filters, a pass-rate trend per plan, two runs to compare. */

import type { RunRow } from '../view.js';
import {
  costOf,
  duration,
  el,
  fill,
  getJson,
  headRow,
  num,
  pct,
  pill,
  sparkline,
  when,
} from './dom.js';

const LIVE = new Set(['running', 'pausing', 'paused', 'stopping']);

function progressCell(r: RunRow): HTMLTableCellElement {
  const { done, total } = r.progress;
  const share = total === null || total === 0 ? 0 : Math.min(1, done / total);
  return el(
    'td',
    {},
    el('span', { 'data-testid': 'progress-done' }, num(done)),
    ` / ${total === null ? '?' : num(total)}`,
    el('div', { class: 'bar' }, el('div', { style: `width:${(share * 100).toFixed(1)}%` })),
  );
}

function row(r: RunRow, selected: Set<string>, onSelect: () => void): HTMLTableRowElement {
  const box = el('input', { type: 'checkbox', 'aria-label': `select ${r.id}` });
  box.checked = selected.has(r.id);
  box.addEventListener('change', () => {
    if (box.checked) selected.add(r.id);
    else selected.delete(r.id);
    onSelect();
  });
  return el(
    'tr',
    { 'data-testid': 'run-row', 'data-run-id': r.id },
    el('td', {}, box),
    el('td', {}, el('a', { href: `/runs/${encodeURIComponent(r.id)}` }, r.id)),
    el('td', {}, r.plan, r.kind === 'action' ? el('span', { class: 'muted' }, ' (action)') : null),
    el('td', {}, pill(r.shownStatus, 'run-status')),
    progressCell(r),
    el('td', { class: 'num' }, pct(r.passRate)),
    el('td', { class: 'num', 'data-testid': 'run-cost' }, costOf(r.counts)),
    el('td', {}, when(r.startedAt)),
    el('td', { class: 'num' }, duration(r.durationMs)),
  );
}

/** Pass rates of a plan's finished runs, oldest first. */
function trends(runs: readonly RunRow[]): HTMLElement | null {
  const byPlan = new Map<string, (number | null)[]>();
  for (const r of [...runs].reverse()) {
    if (r.kind !== 'test' || LIVE.has(r.shownStatus)) continue;
    const list = byPlan.get(r.plan) ?? [];
    list.push(r.passRate);
    byPlan.set(r.plan, list);
  }
  if (byPlan.size === 0) return null;
  const items = [...byPlan].map(([plan, rates]) => {
    const last = rates.at(-1) ?? null;
    return el(
      'div',
      { class: 'card', 'data-testid': 'plan-trend' },
      el(
        'div',
        { class: 'label' },
        `${plan} · ${rates.length} run${rates.length === 1 ? '' : 's'}`,
      ),
      el('div', { class: 'value' }, sparkline(rates.slice(-20)), ' ', pct(last)),
    );
  });
  return el('div', { class: 'cards' }, ...items);
}

/** Renders the Runs page into `main` and keeps it up to date. */
export async function runsPage(main: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.search);
  const selected = new Set<string>();
  const planSel = el('select', { 'aria-label': 'plan', 'data-testid': 'plan-filter' });
  const statusSel = el('select', { 'aria-label': 'status', 'data-testid': 'status-filter' });
  for (const s of [
    '',
    'running',
    'paused',
    'completed',
    'cancelled',
    'stopped',
    'interrupted',
    'abandoned',
  ]) {
    statusSel.append(el('option', { value: s }, s === '' ? 'any status' : s));
  }
  statusSel.value = params.get('status') ?? '';
  const compareBtn = el('button', { 'data-testid': 'compare-button' }, 'Compare selected');
  compareBtn.disabled = true;
  const trendBox = el('div');
  const body = el('tbody');
  const note = el('p', { class: 'muted' });
  let runs: RunRow[] = [];
  const onSelect = () => {
    compareBtn.disabled = selected.size !== 2;
  };
  compareBtn.addEventListener('click', () => {
    // The older run is the base.
    const [a, b] = runs.filter((r) => selected.has(r.id)).sort((x, y) => x.startedAt - y.startedAt);
    if (a && b) {
      location.href = `/compare?base=${encodeURIComponent(a.id)}&head=${encodeURIComponent(b.id)}`;
    }
  });

  const render = () => {
    const plans = [...new Set(runs.map((r) => r.plan))].sort();
    const keep = planSel.value || params.get('plan') || '';
    fill(
      planSel,
      el('option', { value: '' }, 'any plan'),
      ...plans.map((p) => el('option', { value: p }, p)),
    );
    planSel.value = keep;
    const shown = runs.filter(
      (r) =>
        (planSel.value === '' || r.plan === planSel.value) &&
        (statusSel.value === '' || r.shownStatus === statusSel.value),
    );
    fill(trendBox, trends(runs.filter((r) => planSel.value === '' || r.plan === planSel.value)));
    fill(body, ...shown.map((r) => row(r, selected, onSelect)));
    fill(note, shown.length === 0 ? 'No run matches.' : `${shown.length} of ${runs.length} runs`);
  };
  planSel.addEventListener('change', render);
  statusSel.addEventListener('change', render);

  fill(
    main,
    el('h1', {}, 'Runs'),
    trendBox,
    el('div', { class: 'filters' }, planSel, statusSel, compareBtn),
    el(
      'table',
      {},
      headRow('', 'run', 'plan', 'status', 'progress', 'pass rate', 'cost', 'started', 'duration'),
      body,
    ),
    note,
  );

  // A running run's row follows it: the list is read again every second while one runs.
  for (;;) {
    try {
      runs = (await getJson<{ runs: RunRow[] }>('/api/runs')).runs;
      render();
    } catch (err) {
      fill(note, el('span', { class: 'error-text' }, String(err)));
    }
    const live = runs.some((r) => LIVE.has(r.shownStatus));
    await new Promise((r) => setTimeout(r, live ? 1000 : 5000));
  }
}
