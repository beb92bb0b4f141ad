// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
/**
 * Distributed S5: 20,000 no-op jobs on BullMQ, Stride against raw BullMQ on the same Redis.
 *
 *   npm run build && node bench/distributed.mjs            # 1, 2 and 4 worker processes, 3 reps
 *   node bench/distributed.mjs --reps 1 --jobs 5000 --workers 1,2 --kinds raw,stride
 *   BENCH_CPU=1 ...        # CPU time of the producer, each worker and Redis per run, on stderr
 *   BENCH_PROF=dir ...     # a CPU profile of each worker process in dir (`--cpu-prof`)
 *
 * Starts its own redis-server (Debian's package) on a free loopback port in a temporary folder.
 * Every variant uses worker *processes* (this script with `worker <kind>`), each at concurrency
 * 64, and one producer in this process:
 * - `raw`: raw BullMQ, a plain Queue (`addBulk` of every job at once, removed on completion) and
 *   plain Workers with a no-op processor; the producer waits for every `completed` event. The
 *   floor: BullMQ alone, doing nothing else.
 * - `stride`: a Stride run (the engine with retries, timeouts, a transition listener) at
 *   concurrency 256 whose attempts go through the BullmqDispatcher (default `batch`: attempts
 *   started in one tick share a job, up to 8) to `stride` workers with a no-op target, each
 *   outcome read back from the run's stream.
 * - `stride-1`: the same with `batch: 1`, one BullMQ job per attempt.
 * Throughput = jobs (attempts for Stride) / (first add .. last outcome). Prints a markdown table.
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
  for (let i = 0; i < jobs; i += 1000) {
    await q.addBulk(
      Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({
        name: 'noop',
        data: { i: i + k },
        opts: { removeOnComplete: true },
      })),
    );
  }
  await finished;
  const ms = performance.now() - t0;
  await events.close();
  await q.close();
  return ms;
}

async function strideRun(url, queue, jobs, batch) {
  const { Run } = await import('../dist/index.js');
  const { BullmqDispatcher } = await import('../dist/distributed/index.js');
  const { parsePlan } = await import('../dist/plans/index.js');
  const dispatcher = new BullmqDispatcher({ redis: url, queue, ...(batch ? { batch } : {}) });
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
    concurrency: 256,
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
  const kinds = list('kinds', ['raw', 'stride', 'stride-1']);
  for (const k of kinds)
    if (!['raw', 'stride', 'stride-1'].includes(k)) throw new Error(`--kinds: unknown ${k}`);
  const redis = await startRedis();
  const rows = [];
  try {
    for (const n of workerCounts) {
      const figures = Object.fromEntries(kinds.map((k) => [k, []]));
      for (let r = 0; r < reps; r++) {
        for (const kind of kinds) {
          const queue = `bench-${kind}-${n}-${r}`;
          const procs = await workers(kind === 'raw' ? 'raw' : 'stride', n, redis.url, queue);
          const cpu0 = process.cpuUsage();
          const redisCpu0 = process.env.BENCH_CPU ? await redisCpu(redis.url) : 0;
          const ms =
            kind === 'raw'
              ? await rawRun(redis.url, queue, jobs)
              : await strideRun(redis.url, queue, jobs, kind === 'stride-1' ? 1 : undefined);
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
      rows.push({ n, ...Object.fromEntries(kinds.map((k) => [k, med(figures[k])])) });
    }
  } finally {
    redis.stop();
  }
  const fmt = (x) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));
  const ratio = (x, raw) =>
    x === undefined || raw === undefined ? '-' : `${(x / raw).toFixed(2)}x`;
  console.log(
    `\n### Distributed S5: ${jobs.toLocaleString('en-US')} no-op jobs, worker processes at concurrency 64 (median of ${reps})\n`,
  );
  console.log(
    '| workers | raw BullMQ jobs/s | Stride attempts/s (batch 8, default) | Stride / raw | target ≥ 0.9x | Stride, batch 1 | batch 1 / raw |',
  );
  console.log('| ---: | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const r of rows) {
    const met =
      r.stride === undefined || r.raw === undefined
        ? '-'
        : r.stride / r.raw >= 0.9
          ? 'met'
          : 'NOT met';
    console.log(
      `| ${r.n} | ${fmt(r.raw)} | ${fmt(r.stride)} | ${ratio(r.stride, r.raw)} | ${met} | ${fmt(r['stride-1'])} | ${ratio(r['stride-1'], r.raw)} |`,
    );
  }
}
