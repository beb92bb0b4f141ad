/**
 * The dashboard's numbers (issue #21):
 *
 *   npm run build && node bench/dashboard.mjs pages   # answer times over a 100k-case run
 *   node bench/dashboard.mjs live --reps 3             # a 2,000 cases/s run with and without an open page
 *
 * pages: a journal with one run of 100,000 test-plan cases (realistic rows: a case's input, a
 * Dify-like output; 10 % fail), written by a real journaled Run; `stride serve`'s server started
 * in this process on port 0; each request timed at the client over HTTP, interleaved, 30 rounds;
 * median and p90. "Runs page" is what that page loads (the shell and /api/runs); "run page" is the
 * run's view, its first case page and its errors by code; "case page" is 100 cases deep in the
 * run (offset 90,000), and 100 failed ones at offset 9,000.
 *
 * live: each measurement in a fresh process (`one on|off`): a journaled Run of 20,000 tasks at
 * concurrency 20, each waiting 10 ms on a real timer (about 2,000 cases/s), wall and CPU of the
 * run's process from start until the journal closed. "on": `stride serve` runs in another
 * process on the same journal with an open event stream on the run (another process reading it
 * as a page would); "off": nothing else. Interleaved on/off, --reps pairs.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/', import.meta.url);
const stride = await import(new URL('index.js', dist).href);
const { SqliteStore, attachJournal } = await import(new URL('store/index.js', dist).href);

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};

function testCase(i) {
  return {
    id: `refund-${i}`,
    inputs: { query: `How do I get a refund for order ${1000 + i}? I was charged twice.` },
    dataset: 'refunds',
    tags: ['smoke', 'refund'],
    priority: 0,
    expected: [{ type: 'contains', value: 'refund', field: 'text' }],
  };
}

function answer(i) {
  return {
    output: {
      app: 'workflow',
      text: `You can request a refund for order ${1000 + i} within 30 days from your account page.`,
      status: 'succeeded',
      workflowRunId: `7c1e2f7a-1b2c-4d5e-8f90-${String(i).padStart(12, '0')}`,
      totalTokens: 412,
    },
    assertions: [{ type: 'contains', passed: true, message: 'contains "refund"' }],
    latencyMs: 1820,
  };
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p90: q(0.9) };
}

async function pages() {
  const N = 100_000;
  const dir = mkdtempSync(join(os.tmpdir(), 'stride-dash-bench-'));
  const store = new SqliteStore({ path: join(dir, 'stride.db') });
  const tasks = Array.from({ length: N }, (_, i) => ({ input: testCase(i) }));
  const run = new stride.Run(
    tasks,
    {
      key: 'bench',
      execute: async (t) => {
        const i = Number(t.input.id.slice(7));
        if (i % 10 === 3) throw new stride.HttpError(400, 'invalid_param: query');
        return answer(i);
      },
    },
    { concurrency: 64, retry: { maxAttempts: 1 } },
  );
  const t0 = performance.now();
  const journal = await attachJournal(run, store, { runId: 'big', options: { concurrency: 64 } });
  await run.start();
  await journal.closed;
  console.error(`journal written: ${N} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const { startDashboard } = await import(new URL('dashboard/server.js', dist).href);
  const d = await startDashboard({ store, port: 0 });
  const get = async (path) => {
    const t = performance.now();
    const res = await fetch(`${d.url}${path.slice(1)}`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
    return performance.now() - t;
  };
  const figures = {
    'runs page (/ + /api/runs)': [],
    'run page (view + first 100 cases + errors by code)': [],
    '  the run view (/api/runs/big)': [],
    '  errors by code (/api/runs/big/errors)': [],
    'case page of 100 at offset 90,000': [],
    'case page of 100 failed at offset 9,000': [],
  };
  const rounds = arg('--rounds', 30);
  for (let r = 0; r < rounds + 2; r++) {
    const t = {};
    t.shell = await get('/');
    t.runs = await get('/api/runs');
    t.view = await get('/api/runs/big');
    t.first = await get('/api/runs/big/cases?limit=100');
    t.errors = await get('/api/runs/big/errors');
    t.deep = await get('/api/runs/big/cases?offset=90000&limit=100');
    t.failed = await get('/api/runs/big/cases?status=error&offset=9000&limit=100');
    if (r < 2) continue; // warm-up
    figures['runs page (/ + /api/runs)'].push(t.shell + t.runs);
    figures['run page (view + first 100 cases + errors by code)'].push(t.view + t.first + t.errors);
    figures['  the run view (/api/runs/big)'].push(t.view);
    figures['  errors by code (/api/runs/big/errors)'].push(t.errors);
    figures['case page of 100 at offset 90,000'].push(t.deep);
    figures['case page of 100 failed at offset 9,000'].push(t.failed);
  }
  await d.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`| request (100,000-case run, ${rounds} rounds) | median ms | p90 ms |`);
  console.log('| --- | ---: | ---: |');
  for (const [name, xs] of Object.entries(figures)) {
    const s = stats(xs);
    console.log(`| ${name} | ${s.median.toFixed(1)} | ${s.p90.toFixed(1)} |`);
  }
}

// ------------------------------------------------------------------------------- live

const CLI = fileURLToPath(new URL('cli/main.js', dist));

async function one(mode) {
  const dir = mkdtempSync(join(os.tmpdir(), 'stride-dash-live-'));
  const path = join(dir, 'stride.db');
  const store = new SqliteStore({ path });
  const TASKS = 20_000;
  const run = new stride.Run(
    Array.from({ length: TASKS }, (_, i) => ({ input: i })),
    { key: 'live', execute: () => new Promise((r) => setTimeout(r, 10)) },
    { concurrency: 20 },
  );
  const journal = await attachJournal(run, store, { runId: 'LIVE', options: { concurrency: 20 } });
  const kids = [];
  if (mode === 'on') {
    const serve = spawn(process.execPath, [CLI, 'serve', '--db', path, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    kids.push(serve);
    const url = await new Promise((resolve) => {
      let out = '';
      serve.stdout.on('data', (c) => {
        out += c;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
    });
    // The open page: another process reading the run's event stream to the end.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const r = await fetch(${JSON.stringify(`${url}api/runs/LIVE/events`)}); process.stdout.write('open\\n'); for await (const c of r.body) process.stdout.write('.');`,
        '--input-type=module',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    kids.push(reader);
    let events = 0;
    await new Promise((resolve) => {
      reader.stdout.on('data', (c) => {
        const s = String(c);
        if (s.includes('open')) resolve();
        events += s.split('.').length - 1;
      });
    });
    process.on('exit', () => console.error(`chunks pushed: ${events}`));
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run.start();
  await journal.closed;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const k of kids) k.kill('SIGINT');
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      mode,
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      perSecond: TASKS / (wallMs / 1000),
    }),
  );
}

function measure(mode) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'one', mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)))
        : reject(new Error(`one ${mode}: ${code}`)),
    );
  });
}

async function live() {
  const reps = arg('--reps', 3);
  const got = { off: [], on: [] };
  for (let r = 0; r < reps; r++) {
    for (const mode of r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const m = await measure(mode);
      got[mode].push(m);
      console.error(JSON.stringify(m));
    }
  }
  const med = (xs, k) => stats(xs.map((x) => x[k])).median;
  console.log('| 20,000 tasks, ~2,000/s | off | on (serve + open stream) | on / off |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [label, k] of [
    ['wall s', 'wallMs'],
    ['run process CPU s', 'cpuMs'],
    ['cases/s', 'perSecond'],
  ]) {
    const off = med(got.off, k);
    const on = med(got.on, k);
    const f = k === 'perSecond' ? (x) => x.toFixed(0) : (x) => (x / 1000).toFixed(2);
    console.log(`| ${label} | ${f(off)} | ${f(on)} | ${(on / off).toFixed(3)} |`);
  }
}

const [cmd, mode] = process.argv.slice(2);
if (cmd === 'pages') await pages();
else if (cmd === 'live') await live();
else if (cmd === 'one') await one(mode);
else console.error('usage: node bench/dashboard.mjs pages | live [--reps N]');
