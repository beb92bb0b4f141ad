/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Browser helpers of the dashboard. Every value from the journal becomes a text node
 * (`textContent`), never markup: an output holding `<script>` is shown, not run.
 */

type Child = Node | string | number | null | undefined | false;

/** An element with attributes (strings only: no handler strings) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Readonly<Record<string, string | undefined>> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  appendAll(e, children);
  return e;
}

/** Appends children, skipping the empty ones; text always as text nodes. */
function appendAll(parent: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

/** A table's head row of plain column names. */
export function headRow(...names: string[]): HTMLTableSectionElement {
  return el('thead', {}, el('tr', {}, ...names.map((h) => el('th', {}, h))));
}

/** Replaces an element's children. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  appendAll(parent, children);
}

/** A JSON API read; throws with the API's message on an error answer. */
export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin' });
  const body = (await res.json()) as T & { error?: { message: string } };
  if (!res.ok) throw new Error(body.error?.message ?? `${res.status} ${res.statusText}`);
  return body;
}

/** A POST to the API; resolves with the status and the body. */
export async function postJson(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(path, { method: 'POST', credentials: 'same-origin' });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** A share as a percentage, `—` when unknown. */
export function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined ? '—' : `${(x * 100).toFixed(digits)} %`;
}

/** Money with 4 decimals under $1. */
export function money(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  return x < 1 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`;
}

/**
 * A run's cost: unknown is said, never shown as $0 (issue #18 item 2). `unknown` when no case's
 * cost is known (no price), `unknown for N cases (partial $x)` when some are; the dollars only
 * when every case's cost is known. The same rule as the CLI's `costText` (report/summary.ts).
 */
export function costOf(
  c: { readonly cost: number; readonly costUnknown: number; readonly total: number } | undefined,
): string {
  if (c === undefined) return '—';
  if (c.costUnknown === 0) return money(c.cost);
  if (c.costUnknown >= c.total) return 'unknown';
  return `unknown for ${c.costUnknown} case${c.costUnknown === 1 ? '' : 's'} (partial ${money(c.cost)})`;
}

/** A number with thousands separators. */
export function num(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : x.toLocaleString('en-US');
}

/** Milliseconds as `1h 02m`, `3m 05s`, `4.2 s`, `120 ms`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Epoch ms as a local date and time. */
export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.toLocaleDateString('en-CA')} ${d.toLocaleTimeString('en-GB')}`;
}

/** A status pill. */
export function pill(status: string, testid?: string): HTMLSpanElement {
  return el('span', { class: `status ${status}`, 'data-testid': testid }, status);
}

/** Any value as text for a `<pre>`: strings as they are, the rest as indented JSON. */
export function text(value: unknown): string {
  if (value === undefined) return '(none)';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

/** A labelled figure. */
export function card(label: string, value: Child, testid?: string): HTMLDivElement {
  return el(
    'div',
    { class: 'card' },
    el('div', { class: 'label' }, label),
    el('div', { class: 'value', 'data-testid': testid }, value),
  );
}

/** A line diff (`- ` base, `+ ` head) with its lines coloured. */
export function diffBlock(diff: string): HTMLPreElement {
  const pre = el('pre', { class: 'diff' });
  for (const line of diff.split('\n')) {
    const cls = line.startsWith('- ') ? 'del' : line.startsWith('+ ') ? 'add' : undefined;
    pre.append(el('span', { class: cls }, line), cls === undefined ? '\n' : '');
  }
  return pre;
}

/** An inline SVG sparkline of values in 0..1 (null: a gap). */
export function sparkline(values: readonly (number | null)[], w = 90, h = 18): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('class', 'spark');
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return svg;
  const lo = Math.min(...known);
  const span = Math.max(...known) - lo || 1;
  const step = values.length > 1 ? (w - 4) / (values.length - 1) : 0;
  const pts: string[] = [];
  values.forEach((v, i) => {
    if (v !== null) pts.push(`${2 + i * step},${h - 2 - ((v - lo) / span) * (h - 4)}`);
  });
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts.join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#2563eb');
  line.setAttribute('stroke-width', '1.5');
  svg.append(line);
  return svg;
}
