/** `stride prune`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import { durationArg, intArg } from '../flags.js';
import { type CommandContext, example } from '../options.js';
import { UsageError } from '../usage.js';

export function registerPrune(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('prune')
      .description('delete old runs from the journal (retention)')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('--keep <n>', 'keep only the n newest runs', intArg(0))
      .option(
        '--older-than <duration>',
        'delete runs that started longer ago (30d, 12h)',
        durationArg,
      ),
    'stride prune --keep 50',
    'stride prune --older-than 720h',
  ).action(async (flags: { db: string; keep?: number; olderThan?: number }) => {
    if (flags.keep === undefined && flags.olderThan === undefined) {
      throw new UsageError('prune needs --keep, --older-than or both');
    }
    const { openHistory } = await import('../journal.js');
    const history = openHistory(flags.db, true);
    try {
      const n = await history.prune({
        ...(flags.keep === undefined ? {} : { maxRuns: flags.keep }),
        ...(flags.olderThan === undefined ? {} : { maxAgeMs: flags.olderThan }),
      });
      io.stdout.write(`pruned ${n} run(s)\n`);
    } finally {
      await history.store.close();
    }
  });
}
