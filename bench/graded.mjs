/**
 * Graded runs, pipelined (issue #20): 2,000 cases with one llm_rubric each against the mock, app
 * and grader at 50 ms, app concurrency 20, grader concurrency 20.
 *
 *   npm run build && node bench/graded.mjs              # 3 repetitions
 *   node bench/graded.mjs --reps 1 --cases 500
 *
 * Ideal of the two stages pipelined: the app stage, 2,000 / 20 x 50 ms = 5,000 ms, plus one
 * grading of the last answers, 50 ms: 5,050 ms (the grader stage is as long, so either bounds
 * it). Without pipelining each app slot also waits for its case's grading: 10,000 ms. The bar
 * is wall <= 1.15 x the pipelined ideal.
 *
 * The grader has a rate limit (rate_control: 27,000/min, burst 20: 450/s, above what its 20
 * slots at 50 ms can use, 400/s, so it does not lengthen the ideal). Every grader request's send
 * time is recorded where it leaves (its target's execute) and the busiest window of 100 ms and
 * of 1 s is checked against the bucket's bound (burst + rate x window).
 *
 * Processes: this orchestrator, the mock (its CPU is not Stride's), and one fresh process per
 * measurement. Wall is `run.start()` to its result; counts are the mock's (`/__stats`).
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
const LATENCY = 50;
const APP_CONCURRENCY = 20;
const GRADER_CONCURRENCY = 20;
const GRADER_PER_MINUTE = 27_000;
const GRADER_BURST = 20;

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'orchestrate' },
    url: { type: 'string' },
    reps: { type: 'string', default: '3' },
    cases: { type: 'string', default: '2000' },
  },
});
const CASES = Number(values.cases);

// ---------------------------------------------------------------- the mock process

async function serveMock() {
  const { startMock } = await import('../dist/mock/index.js');
  const mock = await startMock({ latencyMs: LATENCY, grader: { passWhenContains: 'refund' } });
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

function busiest(times, w) {
  const s = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    if (j < i) j = i;
    while (j < s.length && s[j] < s[i] + w) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

async function measure() {
  const { ExecutorService, loadPlan } = await import('../dist/index.js');
  const { EngineGrader } = await import('../dist/runner/grader.js');
  const { builtInTarget } = await import('../dist/runner/targets.js');
  const dir = mkdtempSync(join(tmpdir(), 'stride-bench-graded-'));
  try {
    const lines = Array.from({ length: CASES }, (_, i) =>
      JSON.stringify({
        id: `case-${i}`,
        inputs: { query: `case ${i}: where is my refund?` },
        expected: { llm_rubric: 'The answer is about the refund.' },
      }),
    );
    writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
    writeFileSync(
      join(dir, 'plan.yaml'),
      [
        'workflow_id: bench-graded',
        'target:',
        '  type: dify',
        `  base_url: ${values.url}/v1`,
        '  api_key: app-bench',
        '  app: workflow',
        '  response_mode: blocking',
        'cases: cases.jsonl',
        'execution_policy:',
        `  concurrency: ${APP_CONCURRENCY}`,
        '  timeout: 30',
        'grader:',
        `  base_url: ${values.url}/v1`,
        '  api_key: sk-bench',
        '  model: stride-grader',
        `  concurrency: ${GRADER_CONCURRENCY}`,
        `  rate_control: { per_minute: ${GRADER_PER_MINUTE}, burst: ${GRADER_BURST} }`,
        '',
      ].join('\n'),
    );
    const manifest = await loadPlan(join(dir, 'plan.yaml'));
    // The plan's grader, its target wrapped to record when each request leaves.
    const sends = [];
    const inner = await builtInTarget(manifest.grader.target, GRADER_CONCURRENCY);
    const grader = await EngineGrader.start(manifest.grader, {
      target: {
        key: inner.key,
        execute: (task, ctx) => {
          sends.push(performance.now());
          return inner.execute(task, ctx);
        },
      },
    });
    const service = new ExecutorService({ grader });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const { run } = await service.runTestPlan(manifest);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    await grader.close();
    await inner.close?.();
    const st = run.statistics;
    process.stdout.write(
      `${JSON.stringify({
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        succeeded: st.succeededTasks,
        total: st.totalTasks,
        gradings: sends.length,
        max100: busiest(sends, 100),
        max1000: busiest(sends, 1000),
      })}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

async function one() {
  const mock = child(['--role', 'mock']);
  const { url } = await firstLine(mock);
  try {
    const proc = child(['--role', 'run', '--url', url, '--cases', String(CASES)]);
    proc.stdin.end();
    const result = await firstLine(proc);
    const stats = await (await fetch(`${url}/__stats`)).json();
    return { ...result, atMock: stats.byEndpoint };
  } finally {
    mock.stdin.end();
    mock.kill('SIGTERM');
  }
}

async function orchestrate() {
  const ideal = (CASES / APP_CONCURRENCY) * LATENCY + LATENCY;
  const held = (CASES / APP_CONCURRENCY) * 2 * LATENCY;
  const bound = (w) => Math.floor(GRADER_BURST + (GRADER_PER_MINUTE / 60_000) * w);
  const walls = [];
  let held1 = true;
  for (let r = 0; r < Number(values.reps); r++) {
    const m = await one();
    walls.push(m.wallMs);
    const ok = m.max100 <= bound(100) && m.max1000 <= bound(1000);
    held1 &&= ok;
    console.log(
      `rep ${r + 1}: wall ${Math.round(m.wallMs)} ms (${(m.wallMs / ideal).toFixed(3)}x ideal), ` +
        `run process CPU ${Math.round(m.cpuMs)} ms, ` +
        `${m.succeeded}/${m.total} passed, at the mock ${JSON.stringify(m.atMock)}, ` +
        `grader busiest 100 ms ${m.max100} (bound ${bound(100)}), 1 s ${m.max1000} (bound ${bound(1000)})`,
    );
  }
  const med = median(walls);
  console.log(
    `\n${CASES} cases: median wall ${Math.round(med)} ms = ${(med / ideal).toFixed(3)}x the pipelined ideal ` +
      `(${ideal} ms; bar 1.15x; unpipelined ideal ${held} ms); grader rate limit held in every window: ${held1}`,
  );
}

if (values.role === 'mock') await serveMock();
else if (values.role === 'run') await measure();
else await orchestrate();
