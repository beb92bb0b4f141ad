/** `stride report`: its flags, and an action that parses them and calls the runner. */

import { dirname } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import { ALL_FORMATS, type CommandContext, example } from '../options.js';

export function registerReport(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('report')
      .description('write reports of any stored run from the journal')
      .argument('<run-id>')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('-f, --format <formats>', `one or more of ${ALL_FORMATS}`, 'html')
      .option('-o, --output <path>', 'the file (one format), or the directory (several)'),
    'stride report 20261124-213005-ab12 --format junit -o junit.xml',
    'stride report 20261124-213005-ab12 --format html,csv -o reports/',
  ).action(async (runId: string, flags: { db: string; format: string; output?: string }) => {
    const [{ formatsOf, openHistory }, { prepareOutput }, { writeRunReports }] = await Promise.all([
      import('../journal.js'),
      import('../output.js'),
      import('../session.js'),
    ]);
    const formats = formatsOf(flags.format, '--format');
    const file = formats.length === 1 && flags.output !== undefined && !flags.output.endsWith('/');
    await prepareOutput('--output', file ? dirname(flags.output!) : (flags.output ?? 'stride-out'));
    const history = openHistory(flags.db, true);
    try {
      // One read of the journal for the summary and every format (issue #15 item 6).
      const { paths: written } = await writeRunReports(history, runId, {
        out: file ? dirname(flags.output!) : (flags.output ?? 'stride-out'),
        formats,
        ...(file ? { paths: { [formats[0]!]: flags.output! } } : {}),
      });
      for (const [format, path] of Object.entries(written))
        io.stdout.write(`${format.padEnd(6)} ${path}\n`);
    } finally {
      await history.store.close();
    }
  });
}
