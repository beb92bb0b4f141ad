/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * An action run's step graph (a column per level of the DAG, each step with its state and what
 * it waits for) and its rollback (the compensations in the order they ran), from
 * `/api/runs/:id/steps`.
 */

import type { StepsView } from '../steps.js';
import { el, fill, getJson, headRow, num, pill } from './dom.js';

function graph(v: StepsView): HTMLElement {
  if (v.steps.length === 0) return el('p', { class: 'muted' }, 'The plan has no step.');
  const columns: HTMLElement[] = [];
  const depth = Math.max(...v.steps.map((s) => s.level)) + 1;
  for (let level = 0; level < depth; level++) {
    const col = el('div', { class: 'step-col' });
    for (const s of v.steps.filter((x) => x.level === level)) {
      col.append(
        el(
          'div',
          {
            class: `step ${s.state}`,
            'data-testid': 'step-node',
            'data-step-id': s.id,
            'data-state': s.state,
          },
          el('div', {}, el('strong', {}, s.id), ' ', pill(s.state)),
          el('div', { class: 'muted' }, s.tool, s.attempts > 1 ? ` · ${s.attempts} attempts` : ''),
          s.dependencies.length > 0
            ? el('div', { class: 'muted' }, `after ${s.dependencies.join(', ')}`)
            : null,
          s.error === null ? null : el('div', { class: 'error-text' }, s.error),
        ),
      );
    }
    columns.push(col);
  }
  return el('div', { class: 'step-graph', 'data-testid': 'step-graph' }, ...columns);
}

function rollback(v: StepsView): HTMLElement {
  const rb = v.rollback;
  if (rb === null)
    return el('p', { class: 'muted', 'data-testid': 'rollback' }, 'No rollback ran.');
  return el(
    'div',
    { 'data-testid': 'rollback' },
    el('p', {}, `Rollback run ${rb.runId} `, pill(rb.status, 'rollback-status')),
    el(
      'table',
      {},
      headRow('#', 'undo of step', 'tool', 'state', 'attempts', 'error'),
      el(
        'tbody',
        {},
        ...rb.compensations.map((c, i) =>
          el(
            'tr',
            { 'data-testid': 'compensation-row', 'data-step-id': c.stepId },
            el('td', { class: 'num' }, String(i + 1)),
            el('td', {}, c.stepId),
            el('td', {}, c.tool ?? ''),
            el('td', {}, pill(c.state)),
            el('td', { class: 'num' }, num(c.attempts)),
            el('td', {}, c.error ?? ''),
          ),
        ),
      ),
    ),
  );
}

/** The Steps section: `refresh()` reads the graph again (the run page calls it as the run moves). */
export function steps(runId: string): { node: HTMLElement; refresh(): Promise<void> } {
  const graphBox = el('div');
  const rollbackBox = el('div');
  const refresh = async () => {
    try {
      const v = await getJson<StepsView>(`/api/runs/${encodeURIComponent(runId)}/steps`);
      fill(graphBox, graph(v));
      fill(rollbackBox, rollback(v));
    } catch (err) {
      fill(graphBox, el('p', { class: 'error-text' }, String(err)));
    }
  };
  const node = el(
    'div',
    {},
    el('h2', {}, 'Step graph'),
    graphBox,
    el('h2', {}, 'Rollback'),
    rollbackBox,
  );
  return { node, refresh };
}
