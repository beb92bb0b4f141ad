// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/**
 * Distributed S5: 20,000 no-op jobs on BullMQ, Stride against raw BullMQ on the same Redis.
 *
 *   npm run build && node bench/distributed.mjs            # 1, 2 and 4 worker processes, 3 reps
 *   node bench/distributed.mjs --reps 1 --jobs 5000
 *
 * Starts its own redis-server (Debian's package) on a free loopback port in a temporary folder.
 * Every variant uses worker *processes* (this script with `worker <kind>`), each at concurrency
 * 64, and one producer in this process:
 * - `raw BullMQ`: a plain Queue (`addBulk` of every job at once) and plain Workers with a no-op
 *   processor; the producer waits for every `completed` event. The floor: BullMQ alone.
 * - `stride`: a Stride run (the engine with retries, timeouts, a transition listener) at
 *   concurrency 256 whose attempts go through the BullmqDispatcher to `stride` workers with a
 *   no-op target: one job per attempt, added when the scheduler starts it, its outcome read back
 *   from the QueueEvents stream, then removed.
 * Throughput = jobs / (first add .. last completion). Prints a markdown table with the ratios.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};

// ---------------------------------------------------------------- worker processes

if (args[0] === 'worker') {
  const [, kind, url, queue] = args;
  if (kind === 'raw') {
    const { Worker } = await import('bullmq');
    const u = new URL(url);
    const w = new Worker(queue, async () => 'ok', {
      connection: { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null },
      concurrency: 64,
      removeOnComplete: { count: 0 },
    });
    await w.waitUntilReady();
    process.stdout.write('ready\n');
    process.on('SIGTERM', async () => {
      await w.close();
      if (process.env.BENCH_CPU)
        process.stderr.write(`raw worker cpu ${JSON.stringify(process.cpuUsage())}\n`);
      process.exit(0);
    });
  } else {
    const { startWorker } = await import('../dist/distributed/index.js');
    const w = await startWorker({
      redis: url,
      queue,
      concurrency: 64,
      targetFactory: async () => ({ execute: async () => 'ok' }),
    });
    process.stdout.write('ready\n');
    process.on('SIGTERM', async () => {
      await w.close();
      if (process.env.BENCH_CPU)
        process.stderr.write(`stride worker cpu ${JSON.stringify(process.cpuUsage())}\n`);
      process.exit(0);
    });
  }
} else {
  await mainBench();
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(os.tmpdir(), 'stride-bench-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  await new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('Ready to accept connections')) resolve();
    });
  });
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => child.kill('SIGTERM') };
}

async function workers(kind, n, url, queue) {
  const procs = [];
  for (let i = 0; i < n; i++) {
    // BENCH_PROF=dir: each worker writes a CPU profile there (`--cpu-prof`).
    const prof = process.env.BENCH_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`]
      : [];
    const p = spawn(process.execPath, [...prof, SELF, 'worker', kind, url, queue], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((resolve) => p.stdout.once('data', resolve));
    procs.push(p);
  }
  return procs;
}

async function stop(procs) {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise((r) => {
          p.once('exit', r);
          p.kill('SIGTERM');
        }),
    ),
  );
}

async function rawRun(url, queue, jobs) {
  const { Queue, QueueEvents } = await import('bullmq');
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null };
  const q = new Queue(queue, { connection });
  const events = new QueueEvents(queue, { connection });
  await events.waitUntilReady();
  let done = 0;
  const finished = new Promise((resolve) => {
    events.on('completed', () => {
      if (++done === jobs) resolve();
    });
  });
  const t0 = performance.now();
  const V = process.env.RAWV ?? '';
  const opts = V.includes('age') ? { removeOnComplete: { age: 3600 } } : { removeOnComplete: true };
  const mk = (i) =>
    V.includes('big')
      ? {
          name: 'attempt',
          data: {
            runId: 'bench-123456789',
            taskId: `t${i}`,
            attempt: 1,
            targetKey: 'abcdef0123456789',
            testCase: { id: `t${i}`, inputs: { q: i } },
            replyTo: 'stride:bench:replies:bench-123456789',
            sender: '8d1f3c7e-0b7a-4c1e-9d7b-1f2e3d4c5b6a',
          },
          opts: { ...opts, jobId: `bench-123456789/t${i}/1` },
        }
      : { name: 'noop', data: { i }, opts };
  if (V.includes('win')) {
    // windowed: keep 256 outstanding, add per setImmediate batch like Stride
    let next = 0;
    let pend = [];
    const flush = () => {
      const b = pend;
      pend = [];
      q.addBulk(b);
    };
    const addOne = () => {
      if (next >= jobs) return;
      pend.push(mk(next++));
      if (pend.length === 1) setImmediate(flush);
    };
    events.on('completed', () => addOne());
    for (let k = 0; k < 256; k++) addOne();
  } else
    for (let i = 0; i < jobs; i += 1000) {
      await q.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => mk(i + k)));
    }
  await finished;
  const ms = performance.now() - t0;
  await events.close();
  await q.close();
  return ms;
}

async function strideRun(url, queue, jobs) {
  const { Run } = await import('../dist/index.js');
  const { BullmqDispatcher } = await import('../dist/distributed/index.js');
  const { parsePlan } = await import('../dist/plans/index.js');
  const dispatcher = new BullmqDispatcher({ redis: url, queue });
  const manifest = parsePlan(
    'workflow_id: bench\ntarget: { type: http, url: "${URL:-http://127.0.0.1:1/}" }\ncases:\n  - { id: x, inputs: { q: 1 } }\n',
    {
      env: {},
    },
  );
  const target = await dispatcher.targetFor(manifest, `bench-${Date.now()}`);
  const tasks = Array.from({ length: jobs }, (_, i) => ({
    id: `t${i}`,
    input: { id: `t${i}`, inputs: { q: i } },
  }));
  const run = new Run(tasks, target, {
    concurrency: Number(process.env.SCONC ?? 256),
    retry: { maxAttempts: 3 },
    timeoutMs: 60_000,
  });
  let events = 0;
  run.on('transition', () => {
    events++;
  });
  const t0 = performance.now();
  const result = await run.start();
  const ms = performance.now() - t0;
  if (events < 3 * jobs) throw new Error(`stride: ${events} transitions for ${jobs} jobs`);
  await dispatcher.close();
  if (result.statistics.succeededTasks !== jobs)
    throw new Error(`stride: ${result.statistics.succeededTasks} of ${jobs} succeeded`);
  return ms;
}

/** Redis's own CPU time so far (user + system), in ms. */
async function redisCpu(url) {
  const { Redis } = await import('ioredis');
  const r = new Redis(url);
  const info = await r.info('cpu');
  r.disconnect();
  const get = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
}

async function mainBench() {
  const jobs = opt('jobs', 20_000);
  const reps = opt('reps', 3);
  const list = (name, def) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1].split(',') : def;
  };
  const workerCounts = list('workers', ['1', '2', '4']).map(Number);
  const kinds = list('kinds', ['raw', 'stride']);
  const redis = await startRedis();
  const rows = [];
  try {
    for (const n of workerCounts) {
      const figures = { raw: [], stride: [] };
      for (let r = 0; r < reps; r++) {
        for (const kind of kinds) {
          const queue = `bench-${kind}-${n}-${r}`;
          const procs = await workers(kind, n, redis.url, queue);
          const cpu0 = process.cpuUsage();
          const redisCpu0 = process.env.BENCH_CPU ? await redisCpu(redis.url) : 0;
          const ms =
            kind === 'raw'
              ? await rawRun(redis.url, queue, jobs)
              : await strideRun(redis.url, queue, jobs);
          if (process.env.BENCH_CPU)
            process.stderr.write(
              `${kind} producer cpu ${JSON.stringify(process.cpuUsage(cpu0))} redis cpu ${Math.round((await redisCpu(redis.url)) - redisCpu0)} ms, wall ${Math.round(ms)}\n`,
            );
          await stop(procs);
          figures[kind].push((jobs * 1000) / ms);
          process.stderr.write(
            `${n} worker(s) rep ${r + 1}/${reps} ${kind}: ${Math.round((jobs * 1000) / ms)} jobs/s\n`,
          );
        }
      }
      const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      rows.push({ n, raw: med(figures.raw), stride: med(figures.stride) });
    }
  } finally {
    redis.stop();
  }
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  console.log(
    `\n### Distributed S5: ${jobs.toLocaleString('en-US')} no-op jobs, worker processes at concurrency 64 (median of ${reps})\n`,
  );
  console.log('| workers | raw BullMQ jobs/s | Stride jobs/s | Stride / raw | target |');
  console.log('| ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.n} | ${fmt(r.raw)} | ${fmt(r.stride)} | ${(r.stride / r.raw).toFixed(2)}x | ≥ 0.9x: ${r.stride / r.raw >= 0.9 ? 'met' : 'NOT met'} |`,
    );
  }
}
