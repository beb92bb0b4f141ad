// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { type LatencySpec, type MockServer, startMock } from '../../src/mock/index.js';

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
    stop,
    restart: async () => {
      await stop();
      child = await launch(port, dir);
    },
  };
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
  startWorker(queue: string, concurrency: number, cwd?: string): Promise<StrideChild>;
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
    /** A `stride worker` process; resolves once it says it is ready. */
    async startWorker(queue: string, concurrency: number, cwd?: string): Promise<StrideChild> {
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
          '2s',
        ],
        cwd,
      );
      await expect
        .poll(() => w.out(), { timeout: 10_000, interval: 20 })
        .toContain('ready on queue');
      return w;
    },
  };
  return fixture;
}

/** A `stride` child process with its exit code and everything it printed. */
export type StrideChild = ChildProcess & { done: Promise<number | null>; out: () => string };

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
