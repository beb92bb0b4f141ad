// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax, not a template literal.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CLI_NODE_FLAGS } from '../../bench/cli-flags.mjs';
import type { Io } from '../../src/cli/io.js';

/** An in-process Io that records what a command writes. */
export function captureIo(env: NodeJS.ProcessEnv = {}): {
  io: Io;
  text: { out: string; err: string };
} {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { out: '', err: '' };
  stdout.on('data', (c) => {
    text.out += c;
  });
  stderr.on('data', (c) => {
    text.err += c;
  });
  return { io: { stdout, stderr, env }, text };
}

export interface PlanOptions {
  /** Cases: `ok` passes, `fail` fails its assertion, `error` gets a 500 on every attempt. */
  readonly cases: readonly ('ok' | 'fail' | 'error' | 'hang')[];
  readonly concurrency?: number;
  readonly extra?: string;
}

/**
 * A temporary folder with a plan against the mock at `${MOCK_URL}` and its JSONL case file.
 * Case `c<i>` asks "question <i>"; the mock echoes it, so `contains: question` passes.
 */
export function makePlan(options: PlanOptions): { dir: string; plan: string } {
  const dir = mkdtempSync(join(tmpdir(), 'stride-cli-'));
  const lines = options.cases.map((kind, i) => {
    const inputs: Record<string, unknown> = { query: `question ${i}`, __case: `c${i}` };
    if (kind === 'error') inputs.__fault = '500';
    if (kind === 'hang') inputs.__fault = 'hang';
    const expected =
      kind === 'fail'
        ? { field: 'text', contains: 'never said' }
        : { field: 'text', contains: 'question' };
    return JSON.stringify({ id: `c${i}`, dataset: i % 2 === 0 ? 'even' : 'odd', inputs, expected });
  });
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  const plan = join(dir, 'plan.yaml');
  writeFileSync(
    plan,
    [
      'workflow_id: cli-test',
      'target:',
      '  type: dify',
      '  base_url: ${MOCK_URL}',
      '  api_key: ${TEST_API_KEY:-app-cli-secret-123}',
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      `  concurrency: ${options.concurrency ?? 4}`,
      // A bound, not a measure: no case here should ever time out (the mock answers in ms, a
      // hang case gets its own --timeout), and a loaded machine must not make one.
      '  timeout: 60s',
      '  retry_policy: { max_attempts: 2, backoff_seconds: 0.01 }',
      ...(options.extra === undefined ? [] : [options.extra]),
      '',
    ].join('\n'),
  );
  return { dir, plan };
}

/**
 * `stride <args>` in this process: the CLI's own `main` (what the bin runs and exits with), its
 * output captured. For commands that only read a finished journal (show, runs, compare): a child
 * each cost 0.3-0.5 s of CPU (measured under load) and proved nothing more. Paths must be absolute (no cwd of its own); keep
 * a child where the process matters (a run, signals, exit by crash, the shebang).
 */
export async function strideHere(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../../src/cli/app.js');
  const { io, text } = captureIo(env);
  const code = await main(args, io);
  await new Promise((r) => setImmediate(r)); // the captured streams' last chunks
  return { code, out: text.out, err: text.err };
}

/** The built bin (npm ci builds it; `npm test` builds before running). */
export const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface Child {
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  /** The child's process id (the stride process itself: node is spawned directly). */
  readonly pid: number;
  kill(signal: NodeJS.Signals): void;
}

/** Runs `stride <args>` in a child process (the bin's own node flags). */
export function spawnStride(
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Child {
  const child = spawn(process.execPath, [...CLI_NODE_FLAGS, BIN, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => {
    out += c;
  });
  child.stderr.on('data', (c) => {
    err += c;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? (signal === null ? null : 128)));
  });
  return {
    stdout: () => out,
    stderr: () => err,
    exited,
    pid: child.pid!,
    kill: (signal) => child.kill(signal),
  };
}

/** A local port where nothing listens: bound on port 0, then closed. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
