/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** The Compare page: `compareRuns`' view, regressions first, side by side, diff, significance. */

import type { CaseChange, Comparison, SideSummary } from '../../compare/types.js';
import { card, costOf, diffBlock, el, fill, getJson, headRow, pct, pill, text } from './dom.js';

const LISTS = [
  ['regressions', 'Regressions'],
  ['fixes', 'Fixes'],
  ['still_failing', 'Still failing'],
  ['changed', 'Changed output'],
  ['flaky', 'Flaky'],
  ['added', 'Added'],
  ['removed', 'Removed'],
  ['unjudged', 'Unjudged'],
] as const;

function side(label: string, s: SideSummary): HTMLElement {
  const ci = s.ci95 === null ? '' : ` (95 % CI ${pct(s.ci95.low)}–${pct(s.ci95.high)})`;
  return card(
    `${label}: ${s.runs.map((r) => r.id).join(', ')}`,
    `${pct(s.pass_rate)}${ci} · ${s.passed}/${s.total} · ${costOf({ cost: s.cost, costUnknown: s.cost_unknown, total: s.total })}`,
  );
}

function changeRow(c: CaseChange, list: string): HTMLElement {
  const sideCell = (x: CaseChange['base']) => el('td', {}, x === null ? '—' : pill(x.status));
  const tr = el(
    'tr',
    { class: 'clickable', 'data-testid': `${list}-row`, 'data-case-id': c.id },
    el('td', {}, c.dataset),
    el('td', {}, c.id),
    sideCell(c.base),
    sideCell(c.head),
    el('td', {}, c.assertion?.message ?? c.head?.error ?? ''),
  );
  const detailRow = el('tr', { hidden: '' }, el('td', { colspan: '5' }));
  tr.addEventListener('click', () => {
    if (!detailRow.hasAttribute('hidden')) {
      detailRow.setAttribute('hidden', '');
      return;
    }
    detailRow.removeAttribute('hidden');
    const cell = detailRow.firstElementChild as HTMLElement;
    if (!c.detailed) {
      fill(
        cell,
        el('p', { class: 'muted' }, 'Details are given for the first cases of each list only.'),
      );
      return;
    }
    fill(
      cell,
      el(
        'div',
        { class: 'grid2' },
        el('div', {}, el('h3', {}, 'Base output'), el('pre', {}, text(c.base?.output))),
        el('div', {}, el('h3', {}, 'Head output'), el('pre', {}, text(c.head?.output))),
      ),
      c.inputs === undefined
        ? null
        : el('div', {}, el('h3', {}, 'Inputs'), el('pre', {}, text(c.inputs))),
      c.diff ? el('div', {}, el('h3', {}, 'Diff: - base, + head'), diffBlock(c.diff)) : null,
    );
  });
  return el('tbody', {}, tr, detailRow);
}

/** Renders the Compare page for `?base=&head=`. */
export async function comparePage(main: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.search);
  const base = params.get('base');
  const head = params.get('head');
  if (!base || !head) {
    fill(
      main,
      el('h1', {}, 'Compare'),
      el('p', {}, 'Select two runs on the Runs page to compare them.'),
    );
    return;
  }
  fill(main, el('h1', {}, `Compare ${base} → ${head}`), el('p', { class: 'muted' }, 'Comparing…'));
  const c = await getJson<Comparison>(`/api/compare?${new URLSearchParams({ base, head })}`);
  const s = c.summary;
  const verdict = s.significant
    ? `A significant regression (p = ${s.p_value.toPrecision(3)} < ${s.alpha}).`
    : `No significant regression (p = ${s.p_value.toPrecision(3)}, α = ${s.alpha}).`;
  const sections: HTMLElement[] = [];
  for (const [key, title] of LISTS) {
    const list = c[key];
    if (list.length === 0) continue;
    sections.push(
      el('h2', {}, `${title} (${s.counts[key]})`),
      el(
        'table',
        { 'data-testid': `${key}-table` },
        headRow('dataset', 'case', 'base', 'head', 'why'),
        ...list.map((x) => changeRow(x, key === 'regressions' ? 'regression' : key)),
      ),
    );
  }
  fill(
    main,
    el('h1', {}, `Compare ${base} → ${head}`),
    el(
      'p',
      { 'data-testid': 'compare-verdict', class: s.significant ? 'error-text' : '' },
      verdict,
    ),
    el(
      'div',
      { class: 'cards' },
      side('base', s.base),
      side('head', s.head),
      card(
        'Δ pass rate',
        s.delta.pass_rate === null
          ? '—'
          : `${s.delta.pass_rate >= 0 ? '+' : ''}${(s.delta.pass_rate * 100).toFixed(1)} pts`,
      ),
      card('regressions / fixes', `${s.counts.regressions} / ${s.counts.fixes}`),
      card('matched cases', String(s.matched)),
    ),
    ...s.warnings.map((w) => el('p', { class: 'muted' }, w)),
    ...(sections.length === 0 ? [el('p', {}, 'No case changed.')] : sections),
  );
}
