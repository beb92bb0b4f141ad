/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The Run page: live figures by server-sent events, a throughput and in-flight chart and a
 * latency chart (uPlot),
 * Pause / Resume / Cancel through the session's outside control, the control history, errors by
 * code, and the case table with each case's detail.
 */

import type { RunView } from '../view.js';
import { cases } from './cases.js';
import {
  card,
  costOf,
  duration,
  el,
  fill,
  getJson,
  num,
  pct,
  pill,
  postJson,
  when,
} from './dom.js';
import { steps } from './steps.js';
import { workers } from './workers.js';

interface UPlotLike {
  setData(data: (number | null)[][]): void;
  setSize(size: { width: number; height: number }): void;
}
type UPlotCtor = new (opts: object, data: (number | null)[][], target: HTMLElement) => UPlotLike;

/** Throughput (cases/s between samples) and in flight over the session's samples. */
function throughputSeries(v: RunView): (number | null)[][] {
  const s = v.live?.state.samples ?? [];
  const xs: number[] = [];
  const rate: number[] = [];
  const inFlight: number[] = [];
  for (let i = 1; i < s.length; i++) {
    const a = s[i - 1]!;
    const b = s[i]!;
    const dt = (b.at - a.at) / 1000;
    if (dt <= 0) continue;
    xs.push(b.at / 1000);
    rate.push((b.done - a.done) / dt);
    inFlight.push(b.inFlight);
  }
  return [xs, rate, inFlight];
}

/**
 * Latency p50 and p90 (ms) of the cases that ended between samples; a sample in which none ended
 * is a gap (null), not a zero.
 */
function latencySeries(v: RunView): (number | null)[][] {
  const s = v.live?.state.samples ?? [];
  const xs: number[] = [];
  const p50: (number | null)[] = [];
  const p90: (number | null)[] = [];
  for (const x of s.slice(1)) {
    xs.push(x.at / 1000);
    p50.push(x.latency?.p50 ?? null);
    p90.push(x.latency?.p90 ?? null);
  }
  return [xs, p50, p90];
}

const THROUGHPUT = {
  series: [
    {},
    { label: 'cases/s', stroke: '#2563eb', width: 2 },
    { label: 'in flight', stroke: '#b45309', scale: 'n' },
  ],
  axes: [
    {},
    { label: 'cases/s' },
    { side: 1, scale: 'n', label: 'in flight', grid: { show: false } },
  ],
};

const LATENCY = {
  series: [
    {},
    { label: 'p50 ms', stroke: '#059669', width: 2 },
    { label: 'p90 ms', stroke: '#7c3aed', width: 2 },
  ],
  axes: [{}, { label: 'ms' }],
};

/** A uPlot chart of the live samples, drawn once there are two points and updated in place. */
function chart(
  target: HTMLElement,
  spec: { series: object[]; axes: object[] },
  toData: (v: RunView) => (number | null)[][],
): (v: RunView) => void {
  const UPlot = (globalThis as unknown as { uPlot?: UPlotCtor }).uPlot;
  if (UPlot === undefined) {
    fill(target, el('p', { class: 'muted' }, 'chart library not loaded'));
    return () => undefined;
  }
  let plot: UPlotLike | undefined;
  return (v) => {
    const data = toData(v);
    if ((data[0]?.length ?? 0) < 2) {
      if (plot === undefined)
        fill(target, el('p', { class: 'muted' }, 'no live samples (the run is not driven now)'));
      return;
    }
    if (plot === undefined) {
      target.replaceChildren();
      plot = new UPlot(
        { width: Math.max(300, target.clientWidth - 10), height: 220, ...spec },
        data,
        target,
      );
    } else plot.setData(data);
  };
}

function controlButtons(id: string, msg: HTMLElement) {
  const act = async (action: 'pause' | 'resume' | 'cancel') => {
    if (action === 'cancel' && !confirm(`Cancel run ${id}? It ends as cancelled.`)) return;
    const { status, body } = await postJson(`/api/runs/${encodeURIComponent(id)}/${action}`);
    const err = (body as { error?: { message: string } } | null)?.error?.message;
    fill(
      msg,
      status === 202
        ? `${action} sent; the run's process takes it within a second`
        : `${action} refused: ${err ?? status}`,
    );
  };
  const pause = el('button', { 'data-testid': 'pause-button' }, 'Pause');
  const resume = el('button', { 'data-testid': 'resume-button' }, 'Resume');
  const cancel = el('button', { 'data-testid': 'cancel-button', class: 'danger' }, 'Cancel');
  pause.addEventListener('click', () => void act('pause'));
  resume.addEventListener('click', () => void act('resume'));
  cancel.addEventListener('click', () => void act('cancel'));
  return {
    nodes: [pause, resume, cancel],
    update(v: RunView) {
      const s = v.shownStatus;
      const controlled = v.live?.state.holds.some((h) => h.reason === 'control') ?? false;
      pause.disabled = !v.driven || controlled || s === 'stopping';
      resume.disabled = !v.driven || !controlled;
      cancel.disabled = !v.driven;
    },
  };
}

function figures(v: RunView): HTMLElement {
  const live = v.live?.state;
  const c = v.counts;
  const stats = v.statistics;
  const lat = stats?.latencyMs;
  const cards: HTMLElement[] = [
    card(
      'done / total',
      el(
        'span',
        {},
        el('span', { 'data-testid': 'progress-done' }, num(v.progress.done)),
        ` / ${v.progress.total === null ? '?' : num(v.progress.total)}`,
      ),
    ),
    card('succeeded', num(c.succeeded)),
    card('failed', num(c.failed)),
    card('error', num(c.error)),
    card('timeout', num(c.timeout)),
    card('cancelled', num(c.cancelled)),
    card('pass rate', pct(v.passRate)),
    card(
      'in flight / concurrency',
      live && v.driven
        ? `${live.inFlight} / ${live.concurrency}${live.pace.adaptive && live.concurrency < live.pace.ceiling ? ` (plan ${live.pace.ceiling})` : ''}`
        : '—',
    ),
    card(
      'throughput',
      live?.throughput.perSecond === undefined || !v.driven
        ? '—'
        : `${live.throughput.perSecond.toFixed(1)} /s`,
    ),
    card('attempts', num(c.attempts)),
    card('retries', num(live?.counts.retries ?? stats?.retries)),
    card('rate-limit waits', num(live?.counts.rateWaits)),
    card('cool-downs (429)', num(live?.counts.coolDowns)),
    card('tokens', num(c.tokens)),
    card('cost', costOf(c), 'cost-card'),
    card('duration', duration(v.durationMs)),
  ];
  if (lat !== undefined && lat.count > 0) {
    cards.push(card('latency p50 / p90', `${duration(lat.p50)} / ${duration(lat.p90)}`));
  }
  return el('div', { class: 'cards' }, ...cards);
}

function heldBy(v: RunView): string | null {
  const holds = v.live?.state.holds ?? [];
  if (!v.driven || holds.length === 0) return null;
  return `paused by ${holds.map((h) => `${h.by ?? h.reason} (${h.reason}, since ${when(h.since)})`).join(', ')}`;
}

/** Renders the Run page into `main` and follows the run by its event stream. */
export async function runPage(main: HTMLElement, id: string): Promise<void> {
  const [first, queue] = await Promise.all([
    getJson<RunView>(`/api/runs/${encodeURIComponent(id)}`),
    workers().catch(() => null),
  ]);
  const status = el('span');
  const who = el('span', { class: 'muted', 'data-testid': 'held-by' });
  const msg = el('span', { class: 'muted', 'data-testid': 'control-message' });
  const buttons = controlButtons(id, msg);
  const figs = el('div');
  const chartBox = el('div', { class: 'chart', 'data-testid': 'throughput-chart' });
  const drawChart = chart(chartBox, THROUGHPUT, throughputSeries);
  const latencyBox = el('div', { class: 'chart', 'data-testid': 'latency-chart' });
  const drawLatency = chart(latencyBox, LATENCY, latencySeries);
  const paceBox = el('div');
  const controlBox = el('div');
  const errorsBox = el('div');
  const stopBox = el('p');
  const table = cases(id, first.kind);
  const graph = first.kind === 'action' ? steps(id) : undefined;
  let lastStepsAt = 0;
  let lastDone = -1;
  let lastErrorsAt = 0;

  const loadErrors = async () => {
    lastErrorsAt = Date.now();
    const { byCode } = await getJson<{ byCode: Record<string, number> }>(
      `/api/runs/${encodeURIComponent(id)}/errors`,
    );
    const rows = Object.entries(byCode).sort((a, b) => b[1] - a[1]);
    fill(
      errorsBox,
      rows.length === 0
        ? el('p', { class: 'muted' }, 'No failed, error or timeout case.')
        : el(
            'table',
            {},
            el(
              'tbody',
              {},
              ...rows.map(([code, n]) =>
                el('tr', {}, el('td', {}, code), el('td', { class: 'num' }, num(n))),
              ),
            ),
          ),
    );
  };

  const update = (v: RunView) => {
    fill(status, pill(v.shownStatus, 'run-status'));
    fill(who, heldBy(v));
    buttons.update(v);
    fill(figs, figures(v));
    drawChart(v);
    drawLatency(v);
    fill(stopBox, v.stoppedBy ? `Stopped by ${v.stoppedBy.rule}: ${v.stoppedBy.message}` : null);
    fill(
      paceBox,
      v.pace.length === 0
        ? el(
            'p',
            { class: 'muted' },
            v.live?.state.pace.adaptive
              ? 'The pace kept the plan’s concurrency.'
              : 'No adaptive pace change.',
          )
        : el('ul', {}, ...v.pace.slice(-10).map((p) => el('li', {}, p.message))),
    );
    fill(
      controlBox,
      v.control.length === 0
        ? el('p', { class: 'muted' }, 'No control request.')
        : el(
            'table',
            {},
            el(
              'tbody',
              {},
              ...v.control.map((r) =>
                el(
                  'tr',
                  {},
                  el('td', {}, when(r.at)),
                  el('td', {}, r.action),
                  el('td', {}, r.by),
                  el('td', {}, r.outcome ?? 'waiting'),
                ),
              ),
            ),
          ),
    );
    if (v.progress.done !== lastDone) {
      lastDone = v.progress.done;
      table.changed();
      // A plan's steps move a few times a second at most: read at most every second, and once
      // the run is no longer driven (its final states and the rollback).
      if (graph !== undefined && (Date.now() - lastStepsAt > 1000 || !v.driven)) {
        lastStepsAt = Date.now();
        void graph.refresh();
      }
      if (Date.now() - lastErrorsAt > 5000 || !v.driven) void loadErrors().catch(() => undefined);
    }
  };

  fill(
    main,
    el('h1', {}, `Run ${first.id} `, status),
    el(
      'p',
      { class: 'muted' },
      `${first.kind === 'action' ? 'action plan' : 'plan'} ${first.plan} · started ${when(first.startedAt)}`,
      first.resumes > 0 ? ` · resumed ${first.resumes}×` : '',
      first.driver ? ` · driven by pid ${first.driver.pid} on ${first.driver.host}` : '',
    ),
    el('div', { class: 'controls' }, ...buttons.nodes, who, msg),
    stopBox,
    figs,
    queue,
    el('h2', {}, 'Throughput and in flight'),
    chartBox,
    el('h2', {}, 'Latency over time (cases ended between samples)'),
    latencyBox,
    el(
      'div',
      { class: 'grid2' },
      el('div', {}, el('h2', {}, 'Errors by code'), errorsBox),
      el('div', {}, el('h2', {}, 'Control'), controlBox, el('h2', {}, 'Pace'), paceBox),
    ),
    graph?.node,
    el('h2', {}, first.kind === 'action' ? 'Steps' : 'Cases'),
    table.node,
  );
  update(first);

  const conn = document.getElementById('conn');
  const events = new EventSource(`/api/runs/${encodeURIComponent(id)}/events`);
  events.addEventListener('run', (e) => {
    update(JSON.parse((e as MessageEvent<string>).data) as RunView);
    if (conn) conn.textContent = 'live';
  });
  events.addEventListener('error', () => {
    if (conn) conn.textContent = 'reconnecting…';
  });
}
