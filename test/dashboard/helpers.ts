/**
 * What the dashboard tests share: `stride serve` in a child process (its URL read from the first
 * line it prints), JSON over real HTTP, and an SSE reader over fetch.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { type Child, spawnStride } from '../cli/helpers.js';
import { until, writeDifyPlan } from '../runner/child-run.js';

/** A running `stride serve` child. */
export interface Served {
  readonly url: string;
  readonly child: Child;
  /** Every line it printed on stdout. */
  readonly lines: () => string[];
}

/** Starts `stride serve --db DB --port 0 ...args` and waits for its URL. */
export async function serve(
  db: string,
  args: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<Served> {
  const child = spawnStride(['serve', '--db', db, '--port', '0', ...args], { cwd: tmpdir(), env });
  await until(
    'stride serve to print its URL',
    () => child.stdout().includes('\n') || child.stderr().includes('stride:'),
    child,
  );
  const lines = () =>
    child
      .stdout()
      .split('\n')
      .filter((l) => l !== '');
  const url = lines()[0];
  if (url === undefined || !url.startsWith('http://')) {
    throw new Error(`stride serve printed no URL: ${child.stdout()} ${child.stderr()}`);
  }
  return { url, child, lines };
}

/** The token a served child printed (it generated one: off loopback without --token). */
export async function tokenOf(s: Served): Promise<string> {
  let token: string | undefined;
  await until(
    'the token line',
    () => {
      token = /^token: (\S+) /.exec(s.lines()[1] ?? '')?.[1];
      return token !== undefined;
    },
    s.child,
  );
  return token!;
}

/** Stops a served child (SIGINT: the graceful stop) and waits for it. */
export async function stop(s: Served): Promise<number | null> {
  s.child.kill('SIGINT');
  return s.child.exited;
}

/** An API answer, read loosely: each test checks the fields it needs. */
// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field in the tests.
export type Json = any;

/** A GET or POST answered as JSON. */
export async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, init);
  const textBody = await res.text();
  let body: unknown = textBody;
  try {
    body = JSON.parse(textBody);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body };
}

/** A GET with headers fetch will not send (`Host`), over node:http. */
export function rawGet(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

/** Reads an SSE stream; `next()` resolves with the next event's parsed data. */
export function events(url: string, init: RequestInit = {}) {
  const controller = new AbortController();
  const queue: unknown[] = [];
  const waiting: ((v: unknown) => void)[] = [];
  const parser = createParser({
    onEvent: (e) => {
      const data = JSON.parse(e.data);
      const w = waiting.shift();
      if (w) w(data);
      else queue.push(data);
    },
  });
  const done = (async () => {
    const res = await fetch(url, { ...init, signal: controller.signal });
    if (res.status !== 200 || res.body === null) throw new Error(`events: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
    }
  })().catch(() => undefined);
  return {
    next: (): Promise<Json> =>
      queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)),
    close: async () => {
      controller.abort();
      await done;
    },
  };
}

/** A folder with a Dify plan on the mock: `n` cases, case `i`'s output from `output(i)`. */
export function planOnMock(
  name: string,
  baseUrl: string,
  apiKey: string,
  n: number,
  options: {
    concurrency?: number;
    output?: (i: number) => string | undefined;
    expect?: string;
    /** More fields of case `i`'s line (its `dataset`, `tags`). */
    fields?: (i: number) => Record<string, unknown>;
  } = {},
): { dir: string; plan: string; db: string } {
  const dir = mkdtempSync(join(tmpdir(), `stride-dash-${name}-`));
  const lines = Array.from({ length: n }, (_, i) => {
    const out = options.output?.(i);
    return JSON.stringify({
      ...options.fields?.(i),
      id: `k${i}`,
      inputs: { query: `question ${i}`, ...(out === undefined ? {} : { __output: out }) },
      ...(options.expect === undefined
        ? {}
        : { expected: { field: 'text', contains: options.expect } }),
    });
  });
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  const plan = writeDifyPlan(dir, {
    workflowId: name,
    baseUrl,
    apiKey,
    concurrency: options.concurrency ?? 4,
  });
  return { dir, plan, db: join(dir, 'stride.db') };
}
