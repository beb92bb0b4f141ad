/**
 * The run journal on SQLite: how many transitions per second it stores, and what it costs S1.
 *
 *   npm run build && node bench/journal.mjs            # every variant, 3 repetitions
 *   node bench/journal.mjs --reps 5
 *   node --expose-gc bench/journal.mjs one 'S1 journal on'   # one measurement, one JSON line
 *
 * Each measurement runs in a fresh process (this script, with `one <variant>`), so CPU time and
 * peak RSS belong to that variant alone; repetitions are interleaved. The database lives in
 * os.tmpdir() and is deleted afterwards. Prints a markdown table (the one in docs/store.md).
 *
 * Variants:
 * - `S1 journal off`: bench/scenario.mjs's S1 for Stride: 200,000 no-op tasks at concurrency
 *   64, `retry: { maxAttempts: 3 }`, `timeoutMs: 60_000`, a transition listener.
 * - `S1 journal on`: the same run with `attachJournal` into a SqliteStore; the measured window
 *   ends when `journal.closed` resolved (everything durable). `send-gate commits` counts the
 *   synchronous commits the journal makes before attempts are sent (one per turn).
 * - `S1 journal on, test-plan rows`: the same with a test case's input (~250 bytes of JSON) and
 *   a Dify-like output (~450 bytes) per task, so rows have a realistic size.
 * - `store alone`: the same 600,000 transitions and 200,000 attempts, prepared beforehand, handed
 *   to SqliteStore.append 64 tasks at a time, one flush (transaction) per batch: the store's
 *   own throughput, without the engine.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const TASKS = 200_000;
const CONCURRENCY = 64;
const VARIANTS = [
  'S1 journal off',
  'S1 journal on',
  'S1 journal on, test-plan rows',
  'store alone',
];

// ---------------------------------------------------------------- one measurement

const noop = async () => {};

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

function difyAnswer(i) {
  return {
    output: {
      app: 'workflow',
      text: `You can request a refund for order ${1000 + i} within 30 days from your account page; the duplicate charge is reversed automatically.`,
      outputs: { text: 'see text' },
      status: 'succeeded',
      workflowRunId: `7c1e2f7a-1b2c-4d5e-8f90-${String(i).padStart(12, '0')}`,
      taskId: `a2b3c4d5-6e7f-4a8b-9c0d-${String(i).padStart(12, '0')}`,
      totalTokens: 412,
      elapsedTime: 1.82,
    },
    assertions: [{ type: 'contains', passed: true, message: 'contains "refund"' }],
    latencyMs: 1820,
  };
}

async function s1(stride, { journal, rows }) {
  const tasks = Array.from({ length: TASKS }, (_, i) => ({
    input: rows ? testCase(i) : i,
  }));
  const execute = rows ? async (task) => difyAnswer(task.input.id.length) : noop;
  const dir = mkdtempSync(join(os.tmpdir(), 'stride-bench-'));
  const path = join(dir, 'stride.db');
  globalThis.gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const run = new stride.Run(
    tasks,
    { key: 'bench', execute },
    { retry: { maxAttempts: 3 }, timeoutMs: 60_000, concurrency: CONCURRENCY },
  );
  let events = 0;
  run.on('transition', () => {
    events++;
  });
  let store;
  let j;
  let commits = 0;
  if (journal) {
    store = new stride.SqliteStore({ path });
    // Counts the send gate's commits: one synchronous transaction per turn that starts attempts
    // (a build without the gate has no Store.commit, and counts none).
    const commit = store.commit?.bind(store);
    if (commit !== undefined)
      store.commit = () => {
        commits++;
        commit();
      };
    j = await stride.attachJournal(run, store, { options: { concurrency: CONCURRENCY } });
  }
  const result = await run.start();
  if (j !== undefined) await j.closed;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  let stored = 0;
  let dbMB;
  if (store !== undefined) {
    stored = (await store.getRun(run.runId)).counts.total;
    await store.close();
    dbMB = statSync(path).size / 1e6;
  }
  rmSync(dir, { recursive: true, force: true });
  return {
    completed: result.statistics.succeededTasks,
    stored,
    transitions: events,
    commits: journal ? commits : undefined,
    wallMs,
    cpuUs: cpu.user + cpu.system,
    dbMB,
  };
}

/** The journal's batches for `TASKS` no-op tasks, 64 tasks per batch, built before timing. */
function prepareBatches() {
  const batches = [];
  for (let start = 0; start < TASKS; start += CONCURRENCY) {
    const transitions = [];
    const attempts = [];
    for (let i = start; i < Math.min(TASKS, start + CONCURRENCY); i++) {
      const taskId = `task-${i + 1}`;
      const at = i * 0.01;
      const result = {
        id: taskId,
        status: 'succeeded',
        input: i,
        priority: 0,
        attempts: 1,
        output: undefined,
        error: undefined,
        reason: undefined,
        usage: { tokens: 0, cost: 0 },
        startedAt: at,
        finishedAt: at + 0.005,
        executionTimeMs: 0.005,
      };
      transitions.push(
        { taskId, from: 'pending', to: 'queued', at, attempt: 0, retry: false },
        { taskId, from: 'queued', to: 'running', at, attempt: 1 },
        { taskId, from: 'running', to: 'succeeded', at: at + 0.005, attempt: 1, result },
      );
      attempts.push({
        caseId: taskId,
        number: 1,
        startedAt: at,
        endedAt: at + 0.005,
        state: 'succeeded',
        error: undefined,
        usage: { tokens: 0, cost: 0 },
        upstream: undefined,
      });
    }
    batches.push({ transitions, attempts });
  }
  return batches;
}

async function storeAlone(stride) {
  const batches = prepareBatches();
  const dir = mkdtempSync(join(os.tmpdir(), 'stride-bench-'));
  const path = join(dir, 'stride.db');
  const store = new stride.SqliteStore({ path });
  await store.createRun({
    id: 'bench',
    kind: 'test',
    plan: 'bench',
    planHash: '',
    planJson: 'null',
    optionsJson: '{}',
    startedAt: Date.now(),
  });
  globalThis.gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let transitions = 0;
  for (const batch of batches) {
    store.append('bench', batch);
    await store.flush();
    transitions += batch.transitions.length;
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const stored = (await store.getRun('bench')).counts.total;
  await store.close();
  const dbMB = statSync(path).size / 1e6;
  rmSync(dir, { recursive: true, force: true });
  return { completed: stored, stored, transitions, wallMs, cpuUs: cpu.user + cpu.system, dbMB };
}

async function one(variant) {
  const stride = {
    ...(await import('../dist/index.js')),
    ...(await import('../dist/store/index.js')),
  };
  let out;
  if (variant === 'S1 journal off') out = await s1(stride, { journal: false, rows: false });
  else if (variant === 'S1 journal on') out = await s1(stride, { journal: true, rows: false });
  else if (variant === 'S1 journal on, test-plan rows')
    out = await s1(stride, { journal: true, rows: true });
  else if (variant === 'store alone') out = await storeAlone(stride);
  else throw new Error(`unknown variant ${variant}; known: ${VARIANTS.join(', ')}`);
  if (out.completed !== TASKS) throw new Error(`${variant}: ${out.completed} of ${TASKS} tasks`);
  const journaled = variant !== 'S1 journal off';
  if (journaled && out.stored !== TASKS) throw new Error(`${variant}: ${out.stored} stored`);
  console.log(
    JSON.stringify({
      variant,
      tasks: TASKS,
      ...out,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

// ---------------------------------------------------------------- the driver

function measure(variant) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', fileURLToPath(import.meta.url), 'one', variant],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${variant}: exit ${code ?? signal}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)));
    });
  });
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const fmt = (v, digits) =>
  v === undefined || Number.isNaN(v)
    ? '–'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(argv) {
  let reps = 3;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reps') reps = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --reps N)`);
  }
  const runs = new Map(VARIANTS.map((v) => [v, []]));
  for (let r = 0; r < reps; r++) {
    for (const v of VARIANTS) {
      const m = await measure(v);
      runs.get(v).push(m);
      process.stderr.write(
        `rep ${r + 1} ${v}: ${fmt(m.cpuUs / m.tasks, 2)} µs/task, ${fmt(m.wallMs, 0)} ms\n`,
      );
    }
  }
  const med = (v, get) => median(runs.get(v).map(get));
  const cpuPerTask = (r) => r.cpuUs / r.tasks;
  const off = med('S1 journal off', cpuPerTask);
  const metrics = [
    ['CPU µs per task', cpuPerTask, 2],
    // The store alone does not run S1: its ratio to S1 would mean nothing.
    ['CPU / journal off', (r) => (r.variant === 'store alone' ? NaN : cpuPerTask(r) / off), 2, 'x'],
    ['wall ms', (r) => r.wallMs, 0],
    ['tasks/s', (r) => r.tasks / (r.wallMs / 1000), 0],
    [
      'transitions stored per s',
      (r) => (r.stored > 0 ? r.transitions / (r.wallMs / 1000) : NaN),
      0,
    ],
    ['database MB', (r) => r.dbMB ?? NaN, 1],
    ['send-gate commits', (r) => r.commits ?? NaN, 0],
    ['peak RSS MB', (r) => r.maxRssMB, 0],
  ];
  const lines = [
    `| figure | ${VARIANTS.join(' | ')} |`,
    `| --- | ${VARIANTS.map(() => '---:').join(' | ')} |`,
    ...metrics.map(
      ([label, get, digits, unit = '']) =>
        `| ${label} | ${VARIANTS.map((v) => {
          const x = med(v, get);
          return Number.isNaN(x) ? '–' : `${fmt(x, digits)}${unit}`;
        }).join(' | ')} |`,
    ),
  ];
  const onRatio = med('S1 journal on', cpuPerTask) / off;
  const tps = med('S1 journal on', (r) => r.transitions / (r.wallMs / 1000));
  lines.push(
    '',
    `- target: transitions stored per second ≥ 50,000 through the journal: ${fmt(tps, 0)} (${tps >= 50_000 ? 'met' : 'NOT met'})`,
    `- target: S1 CPU per task with the journal ≤ 3x without: ${fmt(onRatio, 2)}x (${onRatio <= 3 ? 'met' : 'NOT met'})`,
    `- median of ${reps} runs, each in a fresh process; node ${process.version}; ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
  );
  console.log(lines.join('\n'));
}

if (process.argv[2] === 'one') await one(process.argv[3]);
else await main(process.argv.slice(2));
