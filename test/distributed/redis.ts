// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { AttemptContext, Target, TaskView } from '../../src/core/index.js';
import { type LatencySpec, type MockServer, startMock } from '../../src/mock/index.js';
import type { TargetConfig, TestCase } from '../../src/plans/index.js';
import { createTarget, type DifyTargetOptions } from '../../src/targets/index.js';

/**
 * The time limit of a test that starts `stride worker` processes: a limit for a test that would
 * otherwise hang, not a measure (a worker alone took 11.8 s to start with the load average at 16
 * on 2 cores).
 */
export const SLOW = 180_000;

/** A real redis-server on a free loopback port, in a temporary folder. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Its folder: the append-only file (every write command Redis ran, in order) is in it. */
  readonly dir: string;
  /** Stops it (SIGTERM) and resolves once it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder (after `stop`). */
  restart(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
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
        'yes',
        '--appendfsync',
        'always',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      if (out.includes('Ready to accept connections')) resolve(child);
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'stride-redis-'));
  let child = await launch(port, dir);
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    restart: async () => {
      await stop();
      child = await launch(port, dir);
    },
  };
}

/**
 * A MONITOR connection that survives traffic already flowing. ioredis sets a connection's
 * `monitoring` status one microtask after MONITOR's `OK`; another client's command that Redis
 * echoes in the same TCP read as that `OK` reaches the reply queue first and is emitted as
 * "Command queue state error", which makes `redis.monitor()` reject (the workers of the
 * shared-rate test poll Redis before the watch starts: it failed so once in an idle suite, and
 * 200 monitors opened under a PING loop fail at once without this). Such lines come before the
 * watch begins, so they are dropped; any other error fails the open.
 */
async function openMonitor(base: import('ioredis').Redis): Promise<import('ioredis').Redis> {
  const monitor = base.duplicate({ monitor: true });
  return new Promise((resolve, reject) => {
    const early = (err: Error) => {
      if (!err.message.startsWith('Command queue state error')) {
        monitor.off('error', early);
        monitor.disconnect();
        reject(err);
      }
    };
    monitor.on('error', early);
    monitor.once('monitoring', () => {
      monitor.off('error', early);
      resolve(monitor);
    });
  });
}

/** What `watchBucketTakes` saw of one bucket. */
export interface BucketTakes {
  /** Redis clock time (ms, as the bucket script reads `TIME`) of each token taken. */
  readonly takes: number[];
  /** Calls of the take script that found no token (the caller waits and asks again). */
  refused: number;
}

/**
 * The shared buckets' takes, as Redis recorded them. A MONITOR connection sees every call of the
 * bucket's take script with its arguments (rate, burst, cost) and, inside it, the script's write
 * `HSET <prefix>:bucket:<key> tokens T at NOW`. Replaying the token-bucket rule from the previous
 * write tells a take (T is the refilled level less the cost) from a refusal (T is the refilled
 * level, below the cost); a write that is neither fails the test, so the replay checks the
 * script rather than copying it. The times are the moments the script let attempts start, on
 * Redis's own clock: no transit between worker, Redis and the mock is in them, so CPU load
 * cannot move them. Call it before the traffic to watch: buckets already in Redis are deleted,
 * and how full the script starts a new bucket is measured once, on a probe bucket.
 */
export async function watchBucketTakes(url: string): Promise<{
  /** Per bucket key. */
  readonly buckets: ReadonlyMap<string, BucketTakes>;
  stop(): Promise<void>;
}> {
  const { Redis } = await import('ioredis');
  const { RedisBuckets } = await import('../../src/distributed/index.js');
  const base = new Redis(url);
  const monitor = await openMonitor(base);
  const client = new Redis(url);
  const buckets = new Map<string, BucketTakes>();
  const state = new Map<string, { tokens: number; at: number }>();
  const problems: string[] = [];
  const PROBE = { prefix: `stride-watch-${process.pid}`, name: 'probe', perMinute: 60, burst: 4 };
  const probeKey = `${PROBE.prefix}:bucket:${PROBE.name}`;
  let probeLeft: number | undefined;
  // The share of its burst a new bucket starts with (the script's policy), from the probe.
  let freshShare = Number.NaN;
  let call: { key: string; perMinute: number; burst: number; cost: number } | undefined;
  // MONITOR shows commands in the order Redis ran them: once it shows a marker sent now, it has
  // shown every command before it.
  const markers = new Map<string, () => void>();
  const sync = async () => {
    const marker = `stride-watch-${process.pid}-${Date.now()}-${markers.size}`;
    const seen = new Promise<void>((resolve) => markers.set(marker, resolve));
    await client.echo(marker);
    await seen;
  };
  const isBucket = (key: unknown): key is string =>
    typeof key === 'string' && key.includes(':bucket:');
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const cmd = String(args[0]).toLowerCase();
    if (source !== 'lua') {
      call = undefined;
      if (cmd === 'echo') markers.get(args[1]!)?.();
      // The take script has three arguments after its key; the cool-down script one.
      if ((cmd === 'evalsha' || cmd === 'eval') && isBucket(args[3]) && args.length === 7) {
        call = {
          key: args[3],
          perMinute: Number(args[4]),
          burst: Number(args[5]),
          cost: Number(args[6]),
        };
      } else if (cmd === 'del' || cmd === 'unlink') {
        for (const key of args.slice(1)) state.delete(key);
      }
      return;
    }
    if (cmd !== 'hset' || !isBucket(args[1])) return;
    const key = args[1];
    const fields = new Map<string, string>();
    for (let i = 2; i + 1 < args.length; i += 2) fields.set(args[i]!, args[i + 1]!);
    const tokens = Number(fields.get('tokens'));
    const at = Number(fields.get('at'));
    if (key === probeKey) {
      probeLeft = tokens;
      return;
    }
    if (fields.has('until') || call?.key !== key) {
      state.set(key, { tokens, at }); // a cool-down: empty until `at`
      return;
    }
    // The script's own arithmetic, in the same doubles: refill since the last write, capped.
    const perMs = call.perMinute / 60_000;
    const prev = state.get(key) ?? { tokens: freshShare * call.burst, at };
    const level = Math.min(call.burst, prev.tokens + (at - prev.at) * perMs);
    let b = buckets.get(key);
    if (b === undefined) {
      b = { takes: [], refused: 0 };
      buckets.set(key, b);
    }
    if (Math.abs(tokens - (level - call.cost)) < 1e-9 && level >= call.cost - 1e-9)
      b.takes.push(at);
    else if (Math.abs(tokens - level) < 1e-9 && level < call.cost) b.refused++;
    else problems.push(`${key} at ${at}: ${tokens} tokens left of ${level}`);
    state.set(key, { tokens, at });
  });
  const close = () => {
    // Commands keep streaming in until the connection is gone: not errors of the watch.
    monitor.removeAllListeners('monitor');
    monitor.on('error', () => {});
    monitor.disconnect();
    base.disconnect();
    client.disconnect();
  };
  try {
    // Whatever an earlier test left in the buckets is not part of this watch.
    const keys = await client.keys('*:bucket:*');
    if (keys.length > 0) await client.del(...keys);
    const probe = new RedisBuckets(client, PROBE.prefix);
    const wait = await probe.tryTake(PROBE.name, PROBE);
    await client.del(probeKey);
    await sync();
    if (probeLeft === undefined) throw new Error('the probe take wrote no bucket');
    freshShare = (wait === 0 ? probeLeft + 1 : probeLeft) / PROBE.burst;
  } catch (err) {
    close();
    throw err;
  }
  return {
    buckets,
    stop: async () => {
      try {
        await sync();
      } finally {
        close();
      }
      expect(problems, 'bucket writes that are neither a take nor a refusal').toEqual([]);
    },
  };
}

/**
 * A worker's target for a plan's Dify config, as the built-in one (the case's `inputs` sent),
 * with Dify target options a plan cannot give: `onEvent` to see what the worker read, and a
 * `stopTimeoutMs` that CPU load cannot beat. For workers started in the test's process.
 */
export async function difyWorkerTarget(
  config: TargetConfig,
  concurrency: number,
  extra: Partial<DifyTargetOptions>,
): Promise<Target<TestCase, unknown>> {
  if (config.type !== 'dify') throw new Error(`a dify target expected, not ${config.type}`);
  const inner = createTarget(
    {
      type: 'dify',
      baseUrl: config.baseUrl,
      apiKey: config.apiKey,
      app: config.app,
      responseMode: config.responseMode,
      user: config.user,
      ...extra,
    },
    { concurrency },
  );
  return Object.assign(
    {
      execute: (task: TaskView<TestCase>, ctx: AttemptContext) =>
        inner.execute({ ...task, input: task.input.inputs }, ctx),
      close: () => inner.close(),
    },
    inner.key === undefined ? {} : { key: inner.key },
  );
}

/**
 * A plan in `dir` against the mock at `${MOCK_URL}` with `n` JSONL cases. Case `c<i>` asks
 * "question <i>" and is counted by the mock under `<tag>-c<i>` (tag: the folder's last 6
 * characters), so tests sharing one mock tell their cases apart.
 */
export function planFile(dir: string, n: number, policy: string, name = 'distributed'): string {
  const tag = dir.slice(-6);
  const lines = Array.from(
    { length: n },
    (_, i) =>
      `{"id":"c${i}","inputs":{"query":"question ${i}","__case":"${tag}-c${i}"},"expected":{"field":"text","contains":"question"}}`,
  );
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  const plan = join(dir, 'plan.yaml');
  writeFileSync(
    plan,
    [
      `workflow_id: ${name}`,
      'target: { type: dify, base_url: "${MOCK_URL}", api_key: "${KEY:-app-shared}", app: workflow, response_mode: blocking }',
      'cases: cases.jsonl',
      `execution_policy: ${policy}`,
      '',
    ].join('\n'),
  );
  return plan;
}

/**
 * The real parts of a distributed test file: a redis-server and the mock (started before the
 * file's tests, stopped after), and `stride` child processes (killed after).
 */
export function distributedFixture(latencyMs: LatencySpec): {
  readonly redis: RedisServer;
  readonly mock: MockServer;
  /** `--dispatch bullmq --redis <this redis> --queue <queue> --db <db>`. */
  dispatchArgs(queue: string, db: string): string[];
  spawnStride(args: readonly string[], cwd?: string): StrideChild;
  startWorker(
    queue: string,
    concurrency: number,
    cwd?: string,
    lockDuration?: string,
  ): Promise<StrideChild>;
} {
  let redis: RedisServer | undefined;
  let mock: MockServer | undefined;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    mock = await startMock({ port: 0, latencyMs });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await mock?.close();
    await redis?.stop();
  });
  const fixture = {
    get redis() {
      return redis!;
    },
    get mock() {
      return mock!;
    },
    dispatchArgs(queue: string, db: string): string[] {
      return ['--dispatch', 'bullmq', '--redis', redis!.url, '--queue', queue, '--db', db];
    },
    spawnStride(args: readonly string[], cwd?: string): StrideChild {
      const child = spawn(process.execPath, [BIN, ...args], {
        ...(cwd === undefined ? {} : { cwd }),
        env: { PATH: process.env.PATH, MOCK_URL: mock!.baseUrl, CI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (c) => {
        out += c;
      });
      child.stderr!.on('data', (c) => {
        out += c;
      });
      const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      return Object.assign(child, { done, out: () => out });
    },
    /**
     * A `stride worker` process; resolves once it says it is ready. Its job locks last
     * `lockDuration` (60 s unless given): a lock CPU load cannot let lapse (it is renewed every
     * 20 s), so a live worker's jobs are never handed to another worker behind its back, which
     * would send their attempts twice (before, every test worker had 2 s locks, renewed every
     * 0.67 s: a worker the machine starved for 1.3 s lost its jobs, issue #14). A test that
     * kills a worker gives that one a short lock, so its jobs come back fast.
     */
    async startWorker(
      queue: string,
      concurrency: number,
      cwd?: string,
      lockDuration = '60s',
    ): Promise<StrideChild> {
      const w = fixture.spawnStride(
        [
          'worker',
          '--redis',
          redis!.url,
          '--queue',
          queue,
          '-j',
          String(concurrency),
          '--lock-duration',
          lockDuration,
        ],
        cwd,
      );
      // A limit for a process that never gets ready, not a measure: under load a worker takes
      // over 10 s to start (measured 11.8 s with the load average at 16 on 2 cores).
      await expect
        .poll(() => w.out(), { timeout: 60_000, interval: 20 })
        .toContain('ready on queue');
      return w;
    },
  };
  return fixture;
}

/**
 * BullMQ's stalled check on `queue` every 500 ms, from this process: what the live workers do
 * every half lock duration (30 s with the 60 s locks `startWorker` gives them), run often so a
 * killed worker's jobs come back within its own short lock plus a second. The same BullMQ
 * script, with the workers' limit of 10 stalls; it takes no job.
 */
export async function stalledCheck(url: string, queue: string): Promise<() => Promise<void>> {
  const { Worker } = await import('bullmq');
  const { connectionOptions } = await import('../../src/distributed/redis.js');
  const checker = new Worker(queue, null, {
    connection: connectionOptions(url),
    autorun: false,
    stalledInterval: 500,
    maxStalledCount: 10,
  });
  await checker.waitUntilReady();
  // The stalled-check script throttles itself queue-wide: each run sets `stalled-check` for the
  // caller's own interval, so a live worker's check (every 30 s) would silence this one for 30 s,
  // and the killed worker's attempts would come back by their 30 s timeout instead of as
  // redelivered (seen at idle: 0 maybe-sent for 5-10 cases sent twice). The key is only a
  // throttle, so it is cleared before this checker's turns; the check itself is BullMQ's.
  const { Redis } = await import('ioredis');
  const client = new Redis(url);
  const throttle = `bull:${queue}:stalled-check`;
  const clear = setInterval(() => {
    client.del(throttle).catch(() => {});
  }, 100);
  await client.del(throttle);
  await checker.startStalledCheckTimer();
  return async () => {
    clearInterval(clear);
    await checker.close();
    client.disconnect();
  };
}

/** A reply a worker wrote to a run's outcome stream (`src/distributed/protocol.ts`). */
export interface StreamReply {
  readonly id: string;
  readonly returned?: boolean;
  readonly maybeSent?: boolean;
  readonly job?: string;
  readonly outcome?: { readonly takenAt?: number; readonly worker?: string };
}

/**
 * Every reply the workers write to run `runId`'s outcome stream, read as they come (the
 * coordinator trims what it read a minute ago). Start it before the run.
 */
export async function watchReplies(
  url: string,
  queue: string,
  runId: string,
): Promise<{ readonly replies: StreamReply[]; stop(): Promise<void> }> {
  const { Redis } = await import('ioredis');
  const reader = new Redis(url);
  const key = `stride:${queue}:outcomes:${encodeURIComponent(runId)}`;
  const replies: StreamReply[] = [];
  let cursor = '0-0';
  let stopping = false;
  const read = async (block: boolean): Promise<void> => {
    const got = block
      ? await reader.xread('BLOCK', 200, 'STREAMS', key, cursor)
      : await reader.xread('STREAMS', key, cursor);
    for (const [, entries] of got ?? []) {
      for (const [id, fields] of entries) {
        cursor = id;
        replies.push(...(JSON.parse(fields[1]!) as StreamReply[]));
      }
    }
  };
  const loop = (async () => {
    while (!stopping) await read(true);
  })();
  return {
    replies,
    stop: async () => {
      stopping = true;
      await loop;
      await read(false); // what came after the last blocking read
      reader.disconnect();
    },
  };
}

/** A `stride` child process with its exit code and everything it printed. */
export type StrideChild = ChildProcess & { done: Promise<number | null>; out: () => string };

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
