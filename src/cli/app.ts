/** The `stride` command's dispatch, separate from the bin file so tests run it in process. */

import { parseArgs } from 'node:util';
import { isStrideError } from '../core/index.js';
import { runDemo } from './demo.js';

/** Where the command writes; tests pass their own. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

const USAGE = `usage: stride <command> [options]

  demo   run a stub plan with injected faults (429s, 503s, hangs, errors) and print a summary
         stride demo [--tasks N] [--concurrency N] [--rate PER_MINUTE] [--seed N] [--no-progress]
  mock   serve the Dify- and OpenAI-compatible mock with fault injection (stride mock --help)
         stride mock --port 5001 --latency 50 --error-rate 429:0.05,503:0.02`;

/**
 * Runs the `stride` command and resolves with its exit code: 0 all passed, 1 failures or
 * errors, 2 bad input (the message names the flag and the bad value), 130 interrupted.
 */
export async function main(argv: readonly string[], io: Io = process): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    const bad =
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true ||
      (isStrideError(err) && err.code === 'INVALID_OPTION');
    io.stderr.write(`stride: ${err instanceof Error ? err.message : String(err)}\n`);
    return bad ? 2 : 1;
  }
}

async function dispatch(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    io.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === 'mock') {
    // Loaded on demand: the mock (and undici) cost nothing to the other commands.
    const { mockCommand } = await import('../mock/cli.js');
    return mockCommand(rest, { stdout: io.stdout, stderr: io.stderr });
  }
  if (command !== 'demo') {
    io.stderr.write(`stride: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 2;
  }
  const { values } = parseArgs({
    args: [...rest],
    options: {
      tasks: { type: 'string', default: '300' },
      concurrency: { type: 'string', default: '20' },
      rate: { type: 'string', default: '6000' },
      seed: { type: 'string', default: '1' },
      'no-progress': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (flag: string, raw: string, min: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      throw new UsageError(`--${flag}: ${JSON.stringify(raw)} is not an integer >= ${min}`);
    }
    return n;
  };
  const options = {
    tasks: int('tasks', values.tasks, 1),
    concurrency: int('concurrency', values.concurrency, 1),
    perMinute: int('rate', values.rate, 1),
    seed: int('seed', values.seed, 0),
    progress: !values['no-progress'],
    out: io.stdout,
  };
  const controller = new AbortController();
  const onInterrupt = () => controller.abort('interrupted (SIGINT)');
  process.once('SIGINT', onInterrupt);
  try {
    const result = await runDemo({ ...options, signal: controller.signal });
    // The demo injects faults on purpose: failed cases are its expected output, not a failure
    // of the command. Only an interrupt changes the exit code.
    return result.status === 'cancelled' ? 130 : 0;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

class UsageError extends Error {}
