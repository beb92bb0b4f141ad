/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The case table of a run: filter by status, dataset and tag, search by id, pages of 100, each
 * case's detail.
 */

import type { TaskResult } from '../../core/model.js';
import type { AttemptRecord } from '../../store/port.js';
import { diffBlock, duration, el, fill, getJson, headRow, num, pill, text } from './dom.js';

const PAGE = 100;

interface Page {
  total: number | null;
  offset: number;
  limit: number;
  cases: TaskResult[];
}

interface Assertion {
  type: string;
  passed: boolean;
  message: string;
  expected?: unknown;
  actual?: unknown;
}

/** A test plan's output is `{ output, assertions }`; anything else is shown as it is. */
function split(output: unknown): { output: unknown; assertions: Assertion[] | undefined } {
  if (
    output !== null &&
    typeof output === 'object' &&
    'assertions' in output &&
    'output' in output
  ) {
    const o = output as { output: unknown; assertions: Assertion[] };
    return { output: o.output, assertions: Array.isArray(o.assertions) ? o.assertions : undefined };
  }
  return { output, assertions: undefined };
}

/** The answer text when the target gives one (Dify's and the mock's `text`, an `answer`). */
function answerOf(output: unknown): string | undefined {
  if (output === null || typeof output !== 'object') return undefined;
  const o = output as { text?: unknown; answer?: unknown };
  return typeof o.text === 'string' ? o.text : typeof o.answer === 'string' ? o.answer : undefined;
}

function lines(value: unknown): string[] {
  return text(value).split('\n');
}

/** Expected against actual, line by line (`- ` expected, `+ ` actual, `  ` both). */
function diffOf(expected: unknown, actual: unknown): string {
  const a = lines(expected);
  const b = lines(actual);
  const out: string[] = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) out.push(`  ${a[i]}`);
    else {
      if (a[i] !== undefined) out.push(`- ${a[i]}`);
      if (b[i] !== undefined) out.push(`+ ${b[i]}`);
    }
  }
  return out.join('\n');
}

async function detail(runId: string, caseId: string): Promise<HTMLElement> {
  const d = await getJson<{ results: TaskResult[]; attempts: AttemptRecord[] }>(
    `/api/runs/${encodeURIComponent(runId)}/cases/${encodeURIComponent(caseId)}`,
  );
  const r = d.results.at(-1);
  const box = el('div', { class: 'detail', 'data-testid': 'case-detail' });
  if (r === undefined) {
    fill(box, 'No result yet.');
    return box;
  }
  const input = r.input as { inputs?: unknown; expected?: unknown } | undefined;
  const { output, assertions } = split(r.output);
  box.append(
    el('h2', {}, `Case ${caseId} `, pill(r.status)),
    el(
      'div',
      { class: 'grid2' },
      el('div', {}, el('h3', {}, 'Inputs'), el('pre', {}, text(input?.inputs ?? input))),
      el(
        'div',
        {},
        el('h3', {}, 'Output'),
        el('pre', { 'data-testid': 'case-output' }, text(output)),
      ),
    ),
  );
  const answer = answerOf(output);
  if (answer !== undefined) {
    box.append(el('h3', {}, 'Answer'), el('pre', { 'data-testid': 'case-answer' }, answer));
  }
  if (input?.expected !== undefined)
    box.append(el('h3', {}, 'Expected'), el('pre', {}, text(input.expected)));
  if (r.error)
    box.append(
      el('h3', {}, 'Error'),
      el('pre', { class: 'error-text' }, `${r.error.code}: ${r.error.message}`),
    );
  if (assertions !== undefined && assertions.length > 0) {
    box.append(
      el('h3', {}, 'Assertions'),
      el(
        'table',
        {},
        el(
          'tbody',
          {},
          ...assertions.map((a) =>
            el(
              'tr',
              {},
              el('td', {}, pill(a.passed ? 'pass' : 'fail')),
              el('td', {}, a.type),
              el('td', {}, a.message),
            ),
          ),
        ),
      ),
    );
    for (const a of assertions) {
      if (!a.passed && a.expected !== undefined && a.actual !== undefined) {
        box.append(
          el('h3', {}, `Diff (${a.type}): - expected, + actual`),
          diffBlock(diffOf(a.expected, a.actual)),
        );
      }
    }
  }
  box.append(
    el('h3', {}, `Attempts (${d.attempts.length})`),
    el(
      'table',
      {},
      headRow('#', 'state', 'took', 'error', 'tokens'),
      el(
        'tbody',
        {},
        ...d.attempts.map((a) =>
          el(
            'tr',
            {},
            el('td', {}, String(a.number)),
            el('td', {}, pill(a.state)),
            el('td', { class: 'num' }, duration(a.endedAt - a.startedAt)),
            el('td', {}, a.error ? `${a.error.code}: ${a.error.message}` : ''),
            el('td', { class: 'num' }, num(a.usage.tokens)),
          ),
        ),
      ),
    ),
  );
  return box;
}

/** The table; `changed()` re-reads the page shown (called when the run's done count moves). */
export function cases(runId: string, kind: string): { node: HTMLElement; changed(): void } {
  const statusSel = el('select', {
    'aria-label': 'case status',
    'data-testid': 'case-status-filter',
  });
  for (const s of ['', 'succeeded', 'failed', 'error', 'timeout', 'cancelled']) {
    statusSel.append(el('option', { value: s }, s === '' ? 'any status' : s));
  }
  const search = el('input', {
    type: 'search',
    placeholder: kind === 'action' ? 'step id contains…' : 'case id contains…',
    'data-testid': 'case-search',
  });
  // A test plan's cases carry a dataset and tags; an action plan's steps do not.
  const dataset = el('input', {
    type: 'search',
    placeholder: 'dataset',
    'aria-label': 'dataset',
    'data-testid': 'case-dataset',
  });
  const tag = el('input', {
    type: 'search',
    placeholder: 'tag',
    'aria-label': 'tag',
    'data-testid': 'case-tag',
  });
  const prev = el('button', {}, '‹ Prev');
  const next = el('button', {}, 'Next ›');
  const info = el('span', { class: 'muted' });
  const body = el('tbody');
  const detailBox = el('div');
  let offset = 0;
  let loading = false;
  let again = false;

  const load = async () => {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const q = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
      if (statusSel.value) q.set('status', statusSel.value);
      if (search.value) q.set('q', search.value);
      if (dataset.value) q.set('dataset', dataset.value);
      if (tag.value) q.set('tag', tag.value);
      const page = await getJson<Page>(`/api/runs/${encodeURIComponent(runId)}/cases?${q}`);
      fill(
        body,
        ...page.cases.map((r) => {
          const tr = el(
            'tr',
            { class: 'clickable', 'data-testid': 'case-row', 'data-case-id': r.id },
            el('td', {}, r.id),
            el('td', {}, pill(r.status)),
            el('td', { class: 'num' }, String(r.attempts)),
            el('td', { class: 'num' }, duration(r.executionTimeMs)),
            el('td', {}, r.error ? r.error.code : ''),
          );
          tr.addEventListener('click', () => {
            void detail(runId, r.id).then(
              (d) => fill(detailBox, d),
              (err) => fill(detailBox, el('p', { class: 'error-text' }, String(err))),
            );
          });
          return tr;
        }),
      );
      const end = offset + page.cases.length;
      fill(
        info,
        `${page.cases.length === 0 ? 0 : offset + 1}–${end} of ${page.total === null ? 'matching' : num(page.total)}`,
      );
      prev.disabled = offset === 0;
      next.disabled = page.cases.length < PAGE || (page.total !== null && end >= page.total);
    } catch (err) {
      fill(info, el('span', { class: 'error-text' }, String(err)));
    } finally {
      loading = false;
      if (again) {
        again = false;
        void load();
      }
    }
  };
  const restart = () => {
    offset = 0;
    void load();
  };
  statusSel.addEventListener('change', restart);
  search.addEventListener('input', restart);
  dataset.addEventListener('input', restart);
  tag.addEventListener('input', restart);
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - PAGE);
    void load();
  });
  next.addEventListener('click', () => {
    offset += PAGE;
    void load();
  });
  void load();
  const node = el(
    'div',
    {},
    el(
      'div',
      { class: 'filters' },
      statusSel,
      search,
      ...(kind === 'action' ? [] : [dataset, tag]),
      prev,
      next,
      info,
    ),
    el(
      'table',
      {},
      headRow(kind === 'action' ? 'step' : 'case', 'status', 'attempts', 'time', 'error'),
      body,
    ),
    detailBox,
  );
  let lastLoad = 0;
  let pending = false;
  // A live run moves several times a second: the page shown is read again at most every 2 s,
  // and once more after the last move (a paused run's table shows its last count).
  const changed = () => {
    const wait = 2000 - (Date.now() - lastLoad);
    if (wait > 0) {
      if (!pending) {
        pending = true;
        setTimeout(() => {
          pending = false;
          changed();
        }, wait);
      }
      return;
    }
    lastLoad = Date.now();
    void load();
  };
  return { node, changed };
}
