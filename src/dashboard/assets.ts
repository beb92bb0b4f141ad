/**
 * What the dashboard serves besides the API: one HTML shell for every page (the browser code
 * picks the page from the path), its style, its script (`client/app.ts`, compiled by `npm run
 * build` into `dist/dashboard/client/app.js`) and uPlot's files from the installed package.
 * Nothing comes from a CDN: the dashboard works offline.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A file the dashboard serves under `/assets/`. */
export interface Asset {
  readonly type: string;
  readonly body: string;
}

const here = fileURLToPath(new URL('.', import.meta.url));
/** The compiled browser code: beside this module in dist/, or dist/'s copy when run from src/. */
const clientDir = here.includes('/src/dashboard/')
  ? here.replace('/src/dashboard/', '/dist/dashboard/')
  : here;
const require = createRequire(import.meta.url);

const FILES: Readonly<Record<string, { path: () => string; type: string }>> = {
  'uPlot.js': {
    path: () => require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'uPlot.css': {
    path: () => require.resolve('uplot/dist/uPlot.min.css'),
    type: 'text/css; charset=utf-8',
  },
};

const cache = new Map<string, Promise<Asset | undefined>>();

/** The asset of that name, read once, or undefined if there is none. */
export function asset(name: string): Promise<Asset | undefined> {
  if (name === 'style.css') {
    return Promise.resolve({ type: 'text/css; charset=utf-8', body: STYLE });
  }
  // The browser modules (app.js imports its siblings): a plain name only, never a path.
  const file =
    FILES[name] ??
    (/^[a-z][a-z-]*\.js$/.test(name)
      ? { path: () => `${clientDir}client/${name}`, type: 'text/javascript; charset=utf-8' }
      : undefined);
  if (file === undefined) return Promise.resolve(undefined);
  let got = cache.get(name);
  if (got === undefined) {
    got = readFile(file.path(), 'utf8').then(
      (body) => ({ type: file.type, body }),
      () => undefined,
    );
    cache.set(name, got);
  }
  return got;
}

/** The page shell: the script renders the page; nothing in it comes from the journal. */
export const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stride</title>
<link rel="stylesheet" href="/assets/uPlot.css">
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/uPlot.js" defer></script>
<script src="/assets/app.js" type="module"></script>
</head>
<body>
<header><a href="/" class="brand">Stride</a><nav><a href="/">Runs</a></nav><span id="conn"></span></header>
<main id="main"><p class="muted">Loading…</p></main>
</body>
</html>
`;

/**
 * The page's security headers: scripts only from this server (an output holding `<script>` is
 * text anyway; this is the second line), no framing.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const STYLE = `
:root { --fg:#1d2330; --muted:#6b7280; --line:#e5e7eb; --bg:#fafafa; --ok:#15803d; --bad:#b91c1c;
  --warn:#b45309; --accent:#2563eb; font-family: system-ui, sans-serif; font-size: 14px; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #111827; }
header a { color: #e5e7eb; text-decoration: none; }
header .brand { font-weight: 700; }
#conn { margin-left: auto; color: #9ca3af; font-size: 12px; }
main { padding: 1rem 1.2rem; max-width: 1400px; }
h1 { font-size: 1.3rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.clickable:hover { background: #f3f4f6; cursor: pointer; }
.muted { color: var(--muted); }
.status { display: inline-block; padding: .05rem .45rem; border-radius: .6rem; font-size: 12px; background: #e5e7eb; }
.status.running, .status.pausing { background: #dbeafe; color: #1e40af; }
.status.paused { background: #fef3c7; color: var(--warn); }
.status.completed, .status.succeeded, .status.pass { background: #dcfce7; color: var(--ok); }
.status.cancelled, .status.stopped, .status.interrupted, .status.abandoned { background: #f3f4f6; color: #374151; }
.status.failed, .status.error, .status.timeout, .status.fail { background: #fee2e2; color: var(--bad); }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin-bottom: 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: .4rem; padding: .6rem .9rem; min-width: 8.5rem; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 1.25rem; font-variant-numeric: tabular-nums; }
.bar { height: .5rem; background: #e5e7eb; border-radius: .25rem; overflow: hidden; min-width: 6rem; }
.bar > div { height: 100%; background: var(--accent); }
.controls { display: flex; gap: .5rem; align-items: center; margin-bottom: 1rem; }
button { font: inherit; padding: .35rem .9rem; border: 1px solid #d1d5db; border-radius: .3rem; background: #fff; cursor: pointer; }
button:disabled { opacity: .45; cursor: default; }
button.danger { border-color: #fca5a5; color: var(--bad); }
input, select { font: inherit; padding: .3rem .45rem; border: 1px solid #d1d5db; border-radius: .3rem; }
.filters { display: flex; gap: .6rem; margin: .6rem 0; align-items: center; flex-wrap: wrap; }
pre { white-space: pre-wrap; word-break: break-word; background: #f9fafb; border: 1px solid var(--line); padding: .5rem; margin: .2rem 0; max-height: 24rem; overflow: auto; font-size: 12px; }
.detail { background: #fff; border: 1px solid var(--line); border-radius: .4rem; padding: .8rem; margin: .8rem 0; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; }
.diff .del { background: #fee2e2; display: block; }
.diff .add { background: #dcfce7; display: block; }
.spark { display: inline-block; vertical-align: middle; }
.error-text { color: var(--bad); }
.step-graph { display: flex; gap: 1.2rem; overflow-x: auto; padding: .4rem 0; }
.step-col { display: flex; flex-direction: column; gap: .6rem; min-width: 12rem; }
.step { background: #fff; border: 1px solid var(--line); border-left: 4px solid #9ca3af; border-radius: .4rem; padding: .45rem .6rem; }
.step.succeeded { border-left-color: var(--ok); }
.step.running, .step.queued { border-left-color: var(--accent); }
.step.failed, .step.error, .step.timeout { border-left-color: var(--bad); }
.chart { background: #fff; border: 1px solid var(--line); border-radius: .4rem; padding: .4rem; margin-bottom: 1rem; }
`;
