/**
 * Stride's engine and Dify target against the mock, over real sockets: the workload of
 * shared/research/eval-runners.md section 6 (promptfoo: 200 cases at -j 20 against a 50 ms mock took
 * 2.6-3.0 s and 248 MB; 2,000 cases took 21 s and 380 MB).
 *
 *   npm run build && node bench/mock-run.mjs
 *   node bench/mock-run.mjs --cases 200,2000 --concurrency 20 --latency 50 --mode blocking,streaming \
 *     --variants cold,cold-liftoff,warm --reps 3
 *
 * Three kinds of process, so that each figure belongs to one of them:
 * - this script (the orchestrator) starts the mock in a child process (`--role mock`), so the
 *   mock's memory and CPU are not counted;
 * - every measurement is a fresh child (`--role run`): it builds the target, runs the plan with the
 *   engine and prints one JSON line (engine makespan, peak RSS of that process);
 * - between measurements the orchestrator resets the mock and reads its `/__stats` (requests,
 *   peak in-flight), so the table also shows what the "provider" saw.
 *
 * Makespan is `run.start()` to its result, on the engine's clock; the ideal is
 * ceil(cases / concurrency) x latency. A markdown table goes to stdout.
 */

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI_NODE_FLAGS } from './cli-flags.mjs';

const SELF = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'orchestrate' },
    url: { type: 'string' },
    cases: { type: 'string', default: '200,2000' },
    concurrency: { type: 'string', default: '20' },
    latency: { type: 'string', default: '50' },
    mode: { type: 'string', default: 'blocking,streaming' },
    reps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '0' },
    floor: { type: 'boolean', default: false },
    variants: { type: 'string', default: 'cold,cli,warm,floor' },
  },
});

// ---------------------------------------------------------------- the mock process

async function serveMock() {
  const { startMock } = await import('../dist/mock/index.js');
  const mock = await startMock({ latencyMs: Number(values.latency), chunks: 3 });
  process.stdout.write(`${JSON.stringify({ url: mock.url, baseUrl: mock.baseUrl })}\n`);
  const stop = async () => {
    await mock.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The orchestrator closing our stdin also ends us (no orphan if it dies).
  process.stdin.resume();
  process.stdin.once('end', stop);
}

// ---------------------------------------------------------------- one measurement

/**
 * The floor: the same requests over the same kind of undici pool, from 20 bare async loops with
 * no engine and no target (no retries, timeouts, events, parsing beyond reading the body). What
 * this transport and this mock allow; the engine's overhead is the distance to it.
 */
async function measureFloor() {
  const { Agent } = await import('undici');
  const cases = Number(values.cases);
  const concurrency = Number(values.concurrency);
  const base = new URL(values.url);
  const agent = new Agent({ connections: concurrency, pipelining: 1 });
  let next = 0;
  const worker = async () => {
    while (next < cases) {
      const i = next++;
      const res = await agent.request({
        origin: base.origin,
        path: `${base.pathname}/workflows/run`,
        method: 'POST',
        headers: { authorization: 'Bearer app-bench', 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: { query: `case ${i}: what is the refund policy?` },
          response_mode: values.mode,
          user: 'bench',
        }),
      });
      const text = await res.body.text();
      if (values.mode === 'blocking') JSON.parse(text);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const makespanMs = performance.now() - t0;
  await agent.close();
  process.stdout.write(
    `${JSON.stringify({ makespanMs, succeeded: cases, maxRssMB: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
}

async function measure() {
  if (values.floor) return measureFloor();
  const { Run } = await import('../dist/core/index.js');
  const { createTarget } = await import('../dist/targets/index.js');
  const cases = Number(values.cases);
  const concurrency = Number(values.concurrency);
  const mode = values.mode;
  const target = createTarget(
    {
      type: 'dify',
      baseUrl: values.url,
      apiKey: 'app-bench',
      app: 'workflow',
      responseMode: mode,
      user: 'bench',
    },
    { concurrency },
  );
  const plan = (n, prefix) =>
    Array.from({ length: n }, (_, i) => ({
      id: `${prefix}-${i}`,
      input: { inputs: { query: `case ${i}: what is the refund policy?` } },
    }));
  const warmup = Number(values.warmup);
  if (warmup > 0) {
    await new Run(plan(warmup, 'warm'), target, { concurrency }).start();
    // The warm-up is not part of the measured plan: the mock's counts start again here.
    await fetch(`${new URL(values.url).origin}/__reset`, { method: 'POST' });
  }
  const run = new Run(plan(cases, 'case'), target, {
    concurrency,
    timeoutMs: 30_000,
    retry: { maxAttempts: 3 },
  });
  const t0 = performance.now();
  const result = await run.start();
  const makespanMs = performance.now() - t0;
  await target.close();
  const s = result.statistics;
  process.stdout.write(
    `${JSON.stringify({
      makespanMs,
      succeeded: s.succeededTasks,
      attempts: s.attempts,
      tokens: s.tokens,
      p50: s.latencyMs.p50,
      p99: s.latencyMs.p99,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
}

// ---------------------------------------------------------------- orchestration

function child(args, nodeFlags = []) {
  return spawn(process.execPath, [...nodeFlags, SELF, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

async function firstLine(proc) {
  const rl = createInterface({ input: proc.stdout });
  for await (const line of rl) {
    rl.close();
    return JSON.parse(line);
  }
  throw new Error('child printed nothing');
}

/**
 * How the Stride process runs: `cold` is a fresh process whose first work is the plan (what a CLI
 * user sees); `cold-liftoff` the same with V8's `--liftoff-only` (undici's HTTP parser is
 * WebAssembly, and optimising it costs about 30 MB of peak RSS); `warm` runs a 40-case plan
 * first in the same process (a long-lived process: a server, the later part of a long run);
 * `floor` is no Stride at all (see measureFloor).
 */
const VARIANTS = {
  cold: { flags: [], warmup: 0 },
  'cold-liftoff': { flags: ['--liftoff-only'], warmup: 0 },
  // What the stride bin runs with (bench/cli-flags.mjs).
  cli: { flags: CLI_NODE_FLAGS, warmup: 0 },
  warm: { flags: [], warmup: 40 },
  floor: { flags: [], warmup: 0, floor: true },
};

async function runOnce(url, cases, mode, variant) {
  const started = performance.now();
  const proc = child(
    [
      '--role',
      'run',
      '--url',
      url,
      '--cases',
      String(cases),
      '--concurrency',
      values.concurrency,
      '--mode',
      mode,
      '--warmup',
      String(variant.warmup),
      ...(variant.floor ? ['--floor'] : []),
    ],
    variant.flags,
  );
  proc.stdin.end();
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const result = await firstLine(proc);
  const code = await exited;
  if (code !== 0) throw new Error(`measurement exited ${code}`);
  return { ...result, processMs: performance.now() - started };
}

/**
 * Warms the mock's own JIT before anything is measured: it stands for a server that has been up
 * for a while, and its cold start is not Stride's overhead. Plain fetch, not Stride.
 */
async function warmMock(baseUrl) {
  const body = JSON.stringify({
    inputs: { query: 'warm-up' },
    response_mode: 'blocking',
    user: 'warm',
  });
  const one = async (mode) => {
    const res = await fetch(`${baseUrl}/workflows/run`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer app-warm',
        'content-type': 'application/json',
        'x-mock-latency-ms': '0',
      },
      body: mode === 'streaming' ? body.replace('blocking', 'streaming') : body,
    });
    await res.text();
  };
  for (let i = 0; i < 25; i++)
    await Promise.all(Array.from({ length: 20 }, (_, j) => one(j % 2 ? 'streaming' : 'blocking')));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function orchestrate() {
  const latency = Number(values.latency);
  const concurrency = Number(values.concurrency);
  const reps = Number(values.reps);
  const sizes = values.cases.split(',').map(Number);
  const modes = values.mode.split(',');
  const variants = values.variants.split(',').map((name) => {
    if (!(name in VARIANTS))
      throw new Error(`unknown variant ${name}: ${Object.keys(VARIANTS).join(', ')}`);
    return { name, ...VARIANTS[name] };
  });
  const mock = child(['--role', 'mock', '--latency', String(latency)]);
  const { url } = await firstLine(mock);
  const rows = [];
  try {
    await warmMock(`${url}/v1`);
    for (const cases of sizes) {
      for (const mode of modes) {
        for (const variant of variants) {
          const samples = [];
          // One mock, one client at a time: nothing else competes for the two cores.
          for (let r = 0; r < reps; r++) {
            await fetch(`${url}/__reset`, { method: 'POST' });
            const m = await runOnce(`${url}/v1`, cases, mode, variant);
            const stats = await (await fetch(`${url}/__stats`)).json();
            samples.push({ ...m, peakInFlight: stats.peakInFlight, upstream: stats.runs });
            process.stderr.write(
              `${cases} cases ${mode} ${variant.name} rep ${r + 1}: ${m.makespanMs.toFixed(0)} ms, ${m.maxRssMB.toFixed(0)} MB, peak ${stats.peakInFlight}\n`,
            );
          }
          const ideal = Math.ceil(cases / concurrency) * latency;
          rows.push({ cases, mode, variant: variant.name, ideal, samples });
        }
      }
    }
  } finally {
    mock.kill('SIGTERM');
  }
  const lines = [
    `Stride + Dify target against the mock: concurrency ${concurrency}, latency ${latency} ms, median of ${reps} (worst in brackets).`,
    `Node ${process.version}, ${(await import('node:os')).cpus().length} CPUs.`,
    '',
    '| cases | response mode | Stride process | ideal | engine makespan | makespan / ideal | peak RSS (Stride process) | process wall (start to exit) | upstream requests | mock peak in-flight |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { cases, mode, variant, ideal, samples } of rows) {
    const mk = samples.map((s) => s.makespanMs);
    const rss = samples.map((s) => s.maxRssMB);
    const wall = samples.map((s) => s.processMs);
    lines.push(
      `| ${cases} | ${mode} | ${variant} | ${(ideal / 1000).toFixed(2)} s | ${(median(mk) / 1000).toFixed(3)} s (${(Math.max(...mk) / 1000).toFixed(3)}) | ${(median(mk) / ideal).toFixed(3)}x (${(Math.max(...mk) / ideal).toFixed(3)}x) | ${median(rss).toFixed(0)} MB (${Math.max(...rss).toFixed(0)}) | ${(median(wall) / 1000).toFixed(2)} s | ${median(samples.map((s) => s.upstream))} | ${Math.max(...samples.map((s) => s.peakInFlight))} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (values.role === 'mock') await serveMock();
else if (values.role === 'run') await measure();
else await orchestrate();
