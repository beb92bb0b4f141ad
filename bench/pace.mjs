/**
 * Adaptive pace against the mock (issue #17): the Dify target through the engine at a plan
 * concurrency of 20, the mock admitting less, each in its own process.
 *
 *   npm run build && node bench/pace.mjs                 # every scenario, 3 repetitions
 *   node bench/pace.mjs --only c4,rate600 --reps 1
 *   node bench/pace.mjs --only change --trace            # the concurrency over time, for docs
 *
 * Scenarios (latency 50 ms unless said):
 * - c4:       --max-concurrency 4, 200 cases; ideal 200 / 4 x 50 ms = 2.5 s
 * - c4-fixed: the same with adaptive: false (what Stride did before: the issue's baseline)
 * - c8:       --max-concurrency 8, 2,000 cases; ideal 12.5 s
 * - rate600:  --rate-limit 600 (bare 429s: code too_many_requests), 200 cases, plan rate unset;
 *             ideal: one request at once, then one every 100 ms = 19.9 s
 * - nolimit, nolimit-fixed: no limit at the mock, 2,000 cases, adaptive on and off; ideal 5 s
 * - change:   --max-concurrency 8, lowered to 2 at 3 s and raised to 8 at 7 s, 20 ms latency,
 *             3,000 cases: the trace of the effective concurrency shows how fast it follows
 *
 * Three kinds of process: this orchestrator, the mock (its CPU is not Stride's), and one fresh
 * process per measurement. Requests are the mock's count (`/__stats` runs); makespan is
 * `run.start()` to its result.
 */

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);

const SCENARIOS = {
  c4: { mock: { maxConcurrency: 4 }, cases: 200, latency: 50, ideal: 2500 },
  'c4-fixed': {
    mock: { maxConcurrency: 4 },
    cases: 200,
    latency: 50,
    ideal: 2500,
    adaptive: false,
  },
  c8: { mock: { maxConcurrency: 8 }, cases: 2000, latency: 50, ideal: 12_500 },
  rate600: {
    mock: { rateLimit: { perMinute: 600, code: 'too_many_requests' } },
    cases: 200,
    latency: 50,
    ideal: 19_900,
  },
  // No limit at the target: adaptive pace must cost nothing (ideal 2000 / 20 x 50 ms).
  nolimit: { mock: {}, cases: 2000, latency: 50, ideal: 5000 },
  'nolimit-fixed': { mock: {}, cases: 2000, latency: 50, ideal: 5000, adaptive: false },
  change: {
    mock: { maxConcurrency: 8 },
    cases: 3000,
    latency: 20,
    // 3 s at 8, 4 s at 2, the rest at 8: 3000 x 20 ms spread over those capacities.
    ideal: 3000 + 4000 + ((3000 - (3000 / 20) * 8 - (4000 / 20) * 2) / 8) * 20,
    changes: [
      { atMs: 3000, limits: { maxConcurrency: 2 } },
      { atMs: 7000, limits: { maxConcurrency: 8 } },
    ],
  },
};

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'orchestrate' },
    scenario: { type: 'string' },
    url: { type: 'string' },
    only: { type: 'string' },
    reps: { type: 'string', default: '3' },
    trace: { type: 'boolean', default: false },
  },
});

// ---------------------------------------------------------------- the mock process

async function serveMock() {
  const s = SCENARIOS[values.scenario];
  const { startMock } = await import('../dist/mock/index.js');
  const mock = await startMock({ latencyMs: s.latency, ...s.mock });
  process.stdout.write(`${JSON.stringify({ url: mock.url })}\n`);
  const stop = async () => {
    await mock.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.stdin.resume();
  process.stdin.once('end', stop);
}

// ---------------------------------------------------------------- one measurement

async function measure() {
  const s = SCENARIOS[values.scenario];
  const { Run } = await import('../dist/core/index.js');
  const { createTarget } = await import('../dist/targets/index.js');
  const target = createTarget(
    {
      type: 'dify',
      baseUrl: `${values.url}/v1`,
      apiKey: 'app-bench',
      app: 'workflow',
      responseMode: 'blocking',
      user: 'bench',
    },
    { concurrency: 20 },
  );
  const run = new Run(
    Array.from({ length: s.cases }, (_, i) => ({
      id: `case-${i}`,
      input: { inputs: { query: `case ${i}: what is the refund policy?` } },
    })),
    target,
    {
      concurrency: 20,
      timeoutMs: 30_000,
      retry: { maxAttempts: 3 },
      ...(s.adaptive === false ? { adaptive: false } : {}),
    },
  );
  const t0 = performance.now();
  const trace = [];
  let first;
  run.on('paceChanged', (c) => {
    first ??= c.message;
    trace.push([Math.round(performance.now() - t0), c.concurrency.to, c.ratePerMinute.to]);
  });
  for (const change of s.changes ?? []) {
    setTimeout(() => {
      fetch(`${values.url}/__limits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(change.limits),
      }).catch(() => {});
    }, change.atMs).unref();
  }
  const result = await run.start();
  const makespanMs = performance.now() - t0;
  await target.close();
  const st = result.statistics;
  process.stdout.write(
    `${JSON.stringify({
      makespanMs,
      succeeded: st.succeededTasks,
      attempts: st.attempts,
      refused: st.refused,
      pace: st.pace,
      first,
      trace,
    })}\n`,
  );
}

// ---------------------------------------------------------------- orchestration

function child(args) {
  return spawn(process.execPath, [SELF, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
}

async function firstLine(proc) {
  const rl = createInterface({ input: proc.stdout });
  for await (const line of rl) {
    rl.close();
    return JSON.parse(line);
  }
  throw new Error('child printed nothing');
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function one(name) {
  const mock = child(['--role', 'mock', '--scenario', name]);
  const { url } = await firstLine(mock);
  try {
    const proc = child(['--role', 'run', '--scenario', name, '--url', url]);
    proc.stdin.end();
    const result = await firstLine(proc);
    const stats = await (await fetch(`${url}/__stats`)).json();
    return { ...result, requests: stats.runs, limited: stats.limited };
  } finally {
    mock.stdin.end();
    mock.kill('SIGTERM');
  }
}

/** The concurrency over time, sampled every 250 ms, as `t: concurrency` pairs. */
function sampled(trace, makespanMs) {
  const out = [];
  let c = 20;
  let i = 0;
  for (let t = 0; t <= makespanMs; t += 250) {
    while (i < trace.length && trace[i][0] <= t) c = trace[i++][1];
    out.push(`${(t / 1000).toFixed(2)}s:${c}`);
  }
  return out.join(' ');
}

async function orchestrate() {
  const names = values.only ? values.only.split(',') : Object.keys(SCENARIOS);
  const reps = Number(values.reps);
  const lines = [
    `Adaptive pace against the mock: plan concurrency 20, median of ${reps} (worst in brackets). Node ${process.version}.`,
    '',
    '| scenario | cases | passed | requests (mock) | requests / case | refused (429) | makespan | ideal | makespan / ideal | lowest concurrency | end concurrency | adapted rate at end | first change |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const name of names) {
    if (SCENARIOS[name] === undefined)
      throw new Error(`unknown scenario ${name}: ${Object.keys(SCENARIOS)}`);
  }
  // Repetitions interleaved (A B, A B, ...): a machine that slows down part-way slows all alike.
  const all = new Map(names.map((n) => [n, []]));
  for (let r = 0; r < reps; r++) {
    for (const name of names) {
      const m = await one(name);
      all.get(name).push(m);
      process.stderr.write(
        `${name} rep ${r + 1}: ${m.succeeded}/${SCENARIOS[name].cases} passed, ${m.requests} requests, ${m.makespanMs.toFixed(0)} ms\n`,
      );
      if (values.trace) process.stderr.write(`  trace: ${sampled(m.trace, m.makespanMs)}\n`);
      if (values.trace && m.trace.some((t) => t[2] !== null && t[2] !== undefined))
        process.stderr.write(
          `  rate: ${m.trace.map(([t, , r]) => `${(t / 1000).toFixed(2)}s:${r === undefined || r === null ? '-' : Math.round(r)}`).join(' ')}\n`,
        );
    }
  }
  for (const name of names) {
    const s = SCENARIOS[name];
    const samples = all.get(name);
    const mk = samples.map((x) => x.makespanMs);
    const req = samples.map((x) => x.requests);
    const last = samples.at(-1);
    lines.push(
      `| ${name} | ${s.cases} | ${median(samples.map((x) => x.succeeded))} | ${median(req)} (${Math.max(...req)}) | ${(median(req) / s.cases).toFixed(3)} (${(Math.max(...req) / s.cases).toFixed(3)}) | ${median(samples.map((x) => x.limited))} | ${(median(mk) / 1000).toFixed(2)} s (${(Math.max(...mk) / 1000).toFixed(2)}) | ${(s.ideal / 1000).toFixed(2)} s | ${(median(mk) / s.ideal).toFixed(3)} (${(Math.max(...mk) / s.ideal).toFixed(3)}) | ${last.pace?.lowestConcurrency ?? '–'} | ${last.pace?.concurrency ?? '–'} | ${last.pace?.ratePerMinute === undefined ? '–' : `${Math.round(last.pace.ratePerMinute)}/min`} | ${last.first ?? '–'} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (values.role === 'mock') await serveMock();
else if (values.role === 'run') await measure();
else await orchestrate();
