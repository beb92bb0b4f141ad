/** `stride show`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import { type CommandContext, example } from '../options.js';

export function registerShow(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('show')
      .description('show one run: status, counts, timings')
      .argument('<run-id>')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('--json', 'print JSON'),
    'stride show 20261124-213005-ab12',
  ).action(async (runId: string, flags: { db: string; json?: boolean }) => {
    const [{ openHistory }, { formatRun, runRows }] = await Promise.all([
      import('../journal.js'),
      import('../summary.js'),
    ]);
    const history = openHistory(flags.db, true);
    try {
      const run = await history.getRun(runId);
      // An action plan's outcome (failed, rolled back), as `stride runs` shows it.
      const [row] = await runRows([run], (id) => history.store.getRun(id));
      const outcome = row?.id === run.id ? row.outcome : run.status;
      if (flags.json === true) {
        const { planJson, optionsJson, ...rest } = run;
        io.stdout.write(
          `${JSON.stringify({ ...rest, activeMs: rest.activeMs ?? null, outcome, plan: JSON.parse(planJson), options: JSON.parse(optionsJson) })}\n`,
        );
      } else io.stdout.write(`${formatRun(run, outcome)}\n`);
    } finally {
      await history.store.close();
    }
  });
}
