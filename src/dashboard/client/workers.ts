/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The distributed queue's view (`stride serve --redis`): workers alive, jobs waiting and active,
 * read every 2 s from `/api/workers`. Without --redis the API answers 404 and nothing is shown.
 */

import type { QueueStatus } from '../../distributed/status.js';
import { card, duration, el, fill, headRow, num, when } from './dom.js';

function render(s: QueueStatus): HTMLElement[] {
  if (!s.reachable) {
    return [el('p', { class: 'error-text', 'data-testid': 'queue-unreachable' }, s.message)];
  }
  return [
    el(
      'div',
      { class: 'cards' },
      card('workers alive', num(s.workers.length), 'workers-alive'),
      card('jobs waiting', num(s.jobs.waiting), 'jobs-waiting'),
      card('jobs active', num(s.jobs.active), 'jobs-active'),
      card('delayed', num(s.jobs.delayed)),
      card('failed (kept)', num(s.jobs.failed)),
    ),
    s.workers.length === 0
      ? el('p', { class: 'muted' }, 'No worker is connected to the queue.')
      : el(
          'table',
          {},
          headRow('worker connection', 'address', 'connected for', 'idle'),
          el(
            'tbody',
            {},
            ...s.workers.map((w) =>
              el(
                'tr',
                { 'data-testid': 'worker-row' },
                el('td', {}, w.id),
                el('td', {}, w.addr),
                el('td', { class: 'num' }, duration(w.ageSeconds * 1000)),
                el('td', { class: 'num' }, duration(w.idleSeconds * 1000)),
              ),
            ),
          ),
        ),
    el('p', { class: 'muted' }, `queue ${s.queue}, read ${when(s.at)}`),
  ];
}

/** The Workers section, or null when the dashboard has no queue (no --redis). */
export async function workers(): Promise<HTMLElement | null> {
  const first = await fetch('/api/workers', { credentials: 'same-origin' });
  if (first.status === 404) return null;
  const box = el('div', { 'data-testid': 'workers' });
  const show = (s: QueueStatus) => fill(box, ...render(s));
  show((await first.json()) as QueueStatus);
  const timer = setInterval(() => {
    if (!box.isConnected) {
      clearInterval(timer);
      return;
    }
    void fetch('/api/workers', { credentials: 'same-origin' })
      .then((r) => r.json() as Promise<QueueStatus>)
      .then(show, () => undefined);
  }, 2000);
  return el('div', {}, el('h2', {}, 'Workers (distributed queue)'), box);
}
