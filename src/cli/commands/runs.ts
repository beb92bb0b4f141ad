/** `stride runs`: its flags, and an action that parses them and calls the runner. */

import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import { intArg } from '../flags.js';
import { type CommandContext, example } from '../options.js';

export function registerRuns(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('runs')
      .description('list the runs in the journal, newest first')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('-n, --limit <n>', 'at most this many', intArg(1), 20)
      .option('--plan <name>', "one plan's runs with pass rate, cost, p50 and a trend")
      .option('--json', 'print JSON'),
    'stride runs',
    'stride runs -n 5 --json',
    'stride runs --plan support-bot',
  ).action(async (flags: { db: string; limit: number; json?: boolean; plan?: string }) => {
    if (!existsSync(flags.db)) {
      io.stdout.write(flags.json === true ? '[]\n' : `no runs yet (no journal at ${flags.db})\n`);
      return;
    }
    const { openHistory } = await import('../journal.js');
    const history = openHistory(flags.db, true);
    try {
      if (flags.plan !== undefined) {
        const { planRunsText } = await import('../compare.js');
        io.stdout.write(await planRunsText(history, flags.plan, flags.limit, flags.json === true));
        return;
      }
      const { formatRuns, runRows } = await import('../summary.js');
      const runs = await runRows(await history.listRuns({ limit: flags.limit }), async (id) => {
        const record = await history.store.getRun(id);
        if (record === undefined) return undefined;
        // The listed fields only: the plan's JSON and statistics stay with `stride show`.
        const { planJson: _p, optionsJson: _o, clockOffsetMs: _c, statistics: _s, ...row } = record;
        return row;
      });
      io.stdout.write(flags.json === true ? `${JSON.stringify(runs)}\n` : `${formatRuns(runs)}\n`);
    } finally {
      await history.store.close();
    }
  });
}
