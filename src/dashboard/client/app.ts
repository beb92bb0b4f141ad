/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The dashboard's browser code: picks the page from the path. Served as `/assets/app.js` from
 * `dist/dashboard/client/` (compiled by `npm run build`, no bundler: the browser loads these ES
 * modules as they are).
 */

import { comparePage } from './compare.js';
import { el, fill } from './dom.js';
import { runPage } from './run.js';
import { runsPage } from './runs.js';

async function route(main: HTMLElement): Promise<void> {
  const path = location.pathname;
  const run = /^\/runs\/([^/]+)$/.exec(path);
  if (run) return runPage(main, decodeURIComponent(run[1]!));
  if (path === '/compare') return comparePage(main);
  return runsPage(main);
}

const main = document.getElementById('main');
if (main) {
  route(main).catch((err: unknown) => {
    fill(
      main,
      el('h1', {}, 'Something went wrong'),
      el('p', { class: 'error-text' }, String(err instanceof Error ? err.message : err)),
    );
  });
}
