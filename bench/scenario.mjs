/**
 * One measurement: one scenario, one library configuration, in a fresh process.
 *
 *   node --expose-gc bench/scenario.mjs <scenario> <variant>
 *
 * Prints one JSON line on stdout. bench/run.mjs spawns this script once per measurement so that
 * peak RSS (a whole-process high-water mark) and CPU time belong to one library alone; it is also
 * the entry point for profiling a single case, e.g. `node --cpu-prof bench/scenario.mjs S1 stride`.
 */

import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import PQueue from 'p-queue';
import { Run } from '../dist/index.js';
import { ensureCasesFile, planFileFor } from './cases-file.mjs';

/** The same no-op for every library, so the work per task is identical. */
const noop = async () => {};

const sleep20 = () => new Promise((resolve) => setTimeout(resolve, 20));

/**
 * Stride with the features the issue requires on: retries, a per-attempt timeout (one timer
 * armed and cleared per attempt) and a transition listener (three events per task). The anchors
 * have none of these; that asymmetry is the point of the comparison.
 */
async function runStride(source, execute, options, listen = true) {
  const run = new Run(
    source,
    { key: 'bench', execute },
    { retry: { maxAttempts: 3 }, timeoutMs: 60_000, ...options },
  );
  let events = 0;
  if (listen) {
    run.on('transition', () => {
      events++;
    });
  }
  const result = await run.start();
  return { completed: result.statistics.succeededTasks, events };
}

const range = (count) => Array.from({ length: count }, (_, i) => i);
const taskArray = (count) => Array.from({ length: count }, (_, i) => ({ input: i }));

async function runPLimit(inputs, concurrency, fn) {
  const limit = pLimit(concurrency);
  const outputs = await Promise.all(inputs.map((i) => limit(fn, i)));
  return { completed: outputs.length };
}

async function runPQueue(count, options, fn) {
  const queue = new PQueue(options);
  const outputs = await Promise.all(range(count).map((i) => queue.add(() => fn(i))));
  return { completed: outputs.length };
}

function* taskStream(count) {
  for (let i = 0; i < count; i++) yield { input: i };
}

/**
 * Most starts inside any half-open window [t, t + w). The maximum over all window positions is
 * reached by a window that opens at some start, so scanning the sorted starts with two pointers
 * is exact, not sampled.
 */
function maxInWindow(starts, w) {
  let best = 0;
  let hi = 0;
  for (let lo = 0; lo < starts.length; lo++) {
    while (hi < starts.length && starts[hi] < starts[lo] + w) hi++;
    best = Math.max(best, hi - lo);
  }
  return best;
}

const S3_COUNT = 300;

/** S3's target records each start's time; the figures come from these timestamps alone. */
function startRecorder() {
  const starts = [];
  const fn = async () => {
    starts.push(performance.now());
  };
  const windows = () => {
    const sorted = starts.slice().sort((a, b) => a - b);
    return { max1s: maxInWindow(sorted, 1000), max100ms: maxInWindow(sorted, 100) };
  };
  return { fn, windows };
}

async function s3Stride() {
  const rec = startRecorder();
  // 50/s with a burst of 10, as the issue states the provider's limit.
  const out = await runStride(taskArray(S3_COUNT), rec.fn, {
    concurrency: 50,
    rate: { perMinute: 3000, burst: 10 },
  });
  return { ...out, ...rec.windows() };
}

async function s3PQueue(intervalCap, interval, strict) {
  const rec = startRecorder();
  const out = await runPQueue(S3_COUNT, { concurrency: 50, intervalCap, interval, strict }, rec.fn);
  return { ...out, ...rec.windows() };
}

const S5_COUNT = 1_000_000;

/** The plan reader is loaded before the measured window: its import is not the run's cost. */
async function prepareS5() {
  const stride = await import('../dist/index.js');
  const path = await ensureCasesFile(S5_COUNT);
  return { ...stride, path, plan: planFileFor(path) };
}

/**
 * The whole plan path a user takes: load and check the plan, stream its cases through the
 * engine (ExecutorService.streamTestPlan: results not retained), count the verdicts.
 */
async function runPlan({ loadPlan, ExecutorService, plan }, checkCases) {
  const manifest = await loadPlan(plan, { checkCases });
  const service = new ExecutorService({ target: noop });
  let completed = 0;
  let events = 0;
  for await (const r of service.streamTestPlan(manifest)) {
    events++;
    if (r.status === 'success') completed++;
  }
  return { completed, events };
}

/**
 * The same plan with the SQLite journal on (issue 6's figure): every transition and result goes
 * to a fresh database file in the temp directory, removed afterwards.
 */
async function runPlanJournaled({ loadPlan, ExecutorService, snapshotPlan, plan }) {
  const { attachJournal, SqliteStore } = await import('../dist/store/index.js');
  const db = join(os.tmpdir(), `stride-bench-journal-${process.pid}.db`);
  const manifest = await loadPlan(plan);
  const service = new ExecutorService({ target: noop });
  const prepared = await service.prepare(manifest, undefined, { retainResults: false });
  const store = new SqliteStore({ path: db });
  try {
    const journal = await attachJournal(prepared.run, store, { plan: snapshotPlan(manifest) });
    const result = await prepared.run.start();
    await journal.closed;
    return { completed: result.statistics.succeededTasks, events: result.statistics.totalTasks };
  } finally {
    await store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });
  }
}

/**
 * Each entry: the expected task count, an optional `prepare` whose result every variant gets,
 * and the functions that do the measured work.
 */
const scenarios = {
  S1: {
    count: 200_000,
    variants: {
      stride: () => runStride(taskArray(200_000), noop, { concurrency: 64 }),
      // Diagnostic only, not a configuration the issue asks for: the same run without the
      // transition listener, to show what the events cost.
      'stride no listener': () => runStride(taskArray(200_000), noop, { concurrency: 64 }, false),
      'p-limit': () => runPLimit(range(200_000), 64, noop),
      'p-queue': () => runPQueue(200_000, { concurrency: 64 }, noop),
    },
  },
  S2: {
    count: 2_000,
    variants: {
      stride: () => runStride(taskArray(2_000), sleep20, { concurrency: 50 }),
      'p-limit': () => runPLimit(range(2_000), 50, sleep20),
      'p-queue': () => runPQueue(2_000, { concurrency: 50 }, sleep20),
      // No limiter at all: 50 chains of 40 back-to-back 20 ms timers. What Node's timers allow;
      // no library can beat it, so it separates scheduler overhead from timer granularity.
      floor: async () => {
        const chain = async () => {
          for (let i = 0; i < 40; i++) await sleep20();
        };
        await Promise.all(Array.from({ length: 50 }, chain));
        return { completed: 2_000 };
      },
    },
  },
  S3: {
    count: S3_COUNT,
    variants: {
      stride: s3Stride,
      'p-queue 50/1000ms': () => s3PQueue(50, 1000, false),
      'p-queue 50/1000ms strict': () => s3PQueue(50, 1000, true),
      'p-queue 5/100ms': () => s3PQueue(5, 100, false),
      'p-queue 5/100ms strict': () => s3PQueue(5, 100, true),
    },
  },
  S4: {
    count: 1_000_000,
    variants: {
      'stride stream': () =>
        runStride(taskStream(1_000_000), noop, { concurrency: 128, retainResults: false }),
      'stride stream+retain': () =>
        runStride(taskStream(1_000_000), noop, { concurrency: 128, retainResults: true }),
      'p-limit': () => runPLimit(range(1_000_000), 128, noop),
      'p-queue': () => runPQueue(1_000_000, { concurrency: 128 }, noop),
    },
  },
  S5: {
    count: S5_COUNT,
    prepare: prepareS5,
    variants: {
      // The plan path as Stride users take it: load and check, stream, judge, keep nothing.
      'stride plan': (ctx) => runPlan(ctx, true),
      // The same run with the V8 flags of the stride command (a 1 MB young generation): the
      // live heap stays ~11 MB either way; the default 16 MB semi-spaces only let RSS balloon.
      'stride plan (CLI flags)': (ctx) => runPlan(ctx, true),
      // With the SQLite journal on (issue 6: under 200 MB for a million cases).
      'stride plan + journal (CLI flags)': (ctx) => runPlanJournaled(ctx),
      // The same without loadPlan's up-front read of the whole case file.
      'stride plan, no pre-check': (ctx) => runPlan(ctx, false),
      // The reader alone: the floor under the row above, to separate reading from running.
      'readCases only': async ({ readCases, path }) => {
        let completed = 0;
        for await (const _ of readCases(path)) completed++;
        return { completed };
      },
      // What a p-limit user writes: read the whole file, parse every line, no validation.
      'p-limit readFile': async ({ path }) => {
        const text = await readFile(path, 'utf8');
        const cases = text
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line));
        return runPLimit(cases, 64, noop);
      },
    },
  },
  // Not a scenario: the peak RSS of a process that loaded the same modules and did nothing.
  idle: { count: 0, variants: { node: async () => ({ completed: 0 }) } },
};

const [name, variant] = process.argv.slice(2);
const work = scenarios[name]?.variants[variant];
if (work === undefined) {
  const known = Object.entries(scenarios)
    .map(([s, def]) => `${s}: ${Object.keys(def.variants).join(', ')}`)
    .join('\n  ');
  console.error(`usage: scenario.mjs <scenario> <variant>\n  ${known}`);
  process.exit(2);
}

const context = await scenarios[name].prepare?.();
// Start every library from the same clean heap; setup garbage must not be billed to the run.
globalThis.gc?.();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const out = await work(context);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);

const expected = scenarios[name].count;
if (out.completed !== expected) {
  console.error(`${name} ${variant}: ${out.completed} of ${expected} tasks completed`);
  process.exit(1);
}
console.log(
  JSON.stringify({
    scenario: name,
    variant,
    tasks: expected,
    wallMs,
    cpuUs: cpu.user + cpu.system,
    // Linux reports kilobytes.
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    ...out,
  }),
);
