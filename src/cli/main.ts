#!/usr/bin/env node
/**
 * The `stride` command. This release has `demo`; `run`, `resume`, `runs`, `report` and `mock`
 * arrive with the plan, store and mock layers.
 */

import { parseArgs } from 'node:util';
import { isStrideError } from '../core/index.js';
import { runDemo } from './demo.js';

const USAGE = `usage: stride demo [--tasks N] [--concurrency N] [--rate PER_MINUTE] [--seed N] [--no-progress]

  demo   run a stub plan with injected faults (429s, 503s, hangs, errors) and print a summary`;

/** Exit codes: 0 all passed, 1 failures or errors, 2 bad input, 130 interrupted. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'demo') {
    process.stderr.write(`stride: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
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
    out: process.stdout,
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const bad =
      err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`stride: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = bad || (isStrideError(err) && err.code === 'INVALID_OPTION') ? 2 : 1;
  },
);
