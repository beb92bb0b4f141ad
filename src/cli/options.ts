/**
 * What the command files share when they declare themselves: the context each registers with,
 * the option groups several commands take (`--db/--out/--report/...`, `--dispatch/--redis/...`)
 * and the examples block. Light on purpose: `stride --help` loads this and commander only (the
 * actions load journal.ts and the rest when they run).
 */

import type { Command } from 'commander';
import { DEFAULT_DB_PATH } from '../store/db-path.js';
import { intArg, shareArg } from './flags.js';
import type { Io } from './io.js';

/** What every command file's `register` receives. */
export interface CommandContext {
  readonly io: Io;
  /** The whole command line (`stride run ...` is shown in the HTML report). */
  readonly argv: readonly string[];
  /** Receives each action's exit code. */
  readonly setCode: (code: number) => void;
}

export interface OutputFlags {
  db: string;
  out: string;
  report: string;
  progress: boolean;
  quiet?: boolean;
  json?: boolean;
  failUnder?: number;
}

export interface DispatchFlags {
  dispatch?: string;
  redis?: string;
  queue?: string;
  batch?: number;
}

export const ALL_FORMATS = 'jsonl,json,csv,junit,html';

export function outputOptions(cmd: Command, defaults: { out: string }): Command {
  return cmd
    .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
    .option('--out <dir>', 'where reports are written', defaults.out)
    .option('--report <formats>', `reports to write: ${ALL_FORMATS}`, ALL_FORMATS)
    .option('--fail-under <share>', 'exit 0 if at least this share passed (0.95 or 95%)', shareArg)
    .option('--no-progress', 'no live progress line')
    .option('-q, --quiet', 'no progress, a one-line summary')
    .option('--json', 'print a machine-readable summary on stdout (progress stays on stderr)');
}

export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

export function dispatchOptions(cmd: Command): Command {
  return cmd
    .option(
      '--dispatch <where>',
      'where attempts run: inprocess, or bullmq (workers: stride worker)',
    )
    .option('--redis <url>', 'Redis for --dispatch bullmq (default: STRIDE_REDIS_URL)')
    .option('--queue <name>', 'the BullMQ queue the workers listen on', 'stride')
    .option(
      '--batch <n>',
      'most attempts started together that share one BullMQ job (1: a job per attempt)',
      intArg(1),
    );
}

export function dbFlag(db: string): string {
  return db === DEFAULT_DB_PATH ? '' : ` --db ${db}`;
}
