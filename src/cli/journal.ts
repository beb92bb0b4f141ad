/**
 * What a command's action prepares before it calls the runner: `openHistory` (the SQLite journal,
 * bad input when it cannot be opened), `openRuns` (the journal plus, with `--dispatch bullmq`,
 * the dispatcher), the session options every run command builds from its flags, and the plan's
 * kind. Loaded by the actions, not by `stride --help`.
 */

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { planKindOf } from '../actions/kind.js';
import { parseReportFormats, type ReportFormat } from '../report/index.js';
import { ExecutorService } from '../runner/executor-service.js';
import { RunHistory } from '../runner/history.js';
import { StoreError } from '../store/errors.js';
import { SqliteStore } from '../store/sqlite.js';
import type { Io } from './io.js';
import { type DispatchFlags, dbFlag, type OutputFlags } from './options.js';
import { prepareOutput } from './output.js';
import { UsageError } from './usage.js';

export function openHistory(db: string, mustExist: boolean): RunHistory {
  if (mustExist && db !== ':memory:' && !existsSync(db)) {
    throw new UsageError(`--db ${db}: no such run journal (start a run first, or pass --db)`);
  }
  let store: SqliteStore;
  try {
    store = new SqliteStore({ path: db });
  } catch (err) {
    // Nothing ran yet: a journal that cannot be created or opened here is bad input (exit 2).
    if (err instanceof StoreError && err.failure === 'io') throw new UsageError(err.message);
    throw err;
  }
  return new RunHistory({ store });
}

/**
 * The run journal and, with `--dispatch bullmq`, the BullMQ dispatcher (loaded on demand, so
 * in-process runs never load BullMQ). An attempt that comes back after its worker was lost is
 * journaled by the run session (runner/session.ts), not here.
 */
export async function openRuns(
  flags: { db: string; out?: string; report?: string } & DispatchFlags,
  io: Io,
  mustExist: boolean,
): Promise<{ history: RunHistory; close(): Promise<void> }> {
  // Every flag is checked before anything is written (docs/cli.md): `--report pdf` left an
  // empty journal behind when the formats were parsed after it was opened (issue #18 item 12).
  if (flags.report !== undefined) formatsOf(flags.report, '--report');
  const dispatch = flags.dispatch ?? 'inprocess';
  if (dispatch !== 'inprocess' && dispatch !== 'bullmq') {
    throw new UsageError(`--dispatch ${JSON.stringify(dispatch)}: expected inprocess or bullmq`);
  }
  const redis = flags.redis ?? io.env.STRIDE_REDIS_URL;
  if (dispatch === 'bullmq' && (redis === undefined || redis === '')) {
    throw new UsageError('--dispatch bullmq needs --redis URL (or STRIDE_REDIS_URL)');
  }
  if (dispatch === 'inprocess' && flags.batch !== undefined) {
    throw new UsageError('--batch applies to --dispatch bullmq only');
  }
  // Before the journal is opened: a report folder that cannot be written is bad input.
  if (flags.out !== undefined) await prepareOutput('--out', flags.out);
  const history = openHistory(flags.db, mustExist);
  if (dispatch === 'inprocess') return { history, close: () => history.store.close() };
  const store = history.store;
  const { BullmqDispatcher } = await import('../distributed/dispatcher.js');
  const dispatcher = new BullmqDispatcher({
    redis: redis!,
    ...(flags.queue === undefined ? {} : { queue: flags.queue }),
    ...(flags.batch === undefined ? {} : { batch: flags.batch }),
    onRedisError: (m) => io.stderr.write(`stride: ${m}\n`),
  });
  const withDispatcher = new RunHistory({ store, service: new ExecutorService({ dispatcher }) });
  return {
    history: withDispatcher,
    close: async () => {
      await dispatcher.close();
      await store.close();
    },
  };
}

/** The report formats a flag names (`flag`: how the error names it). */
export function formatsOf(value: string, flag: '--report' | '--format'): ReportFormat[] {
  try {
    return parseReportFormats(value);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** `action` or `test`, from the plan file's content (a missing file is left to the loader). */
export async function planKind(path: string): Promise<'action' | 'test'> {
  try {
    return planKindOf(await readFile(path, 'utf8'));
  } catch {
    return 'test';
  }
}

/** The session options every run command shares; resumed with `stride resume` by default. */
export function sessionOptions(
  flags: OutputFlags,
  io: Io,
  history: RunHistory,
  extra: { resumeCommand?: string; command: string },
) {
  return {
    history,
    io,
    out: flags.out,
    formats: formatsOf(flags.report, '--report'),
    progress: flags.progress && flags.quiet !== true,
    quiet: flags.quiet === true,
    json: flags.json === true,
    failUnder: flags.failUnder,
    resumeCommand: extra.resumeCommand ?? `stride resume {id}${dbFlag(flags.db)}`,
    command: extra.command,
  };
}
