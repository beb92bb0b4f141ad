/** `stride report`: its flags, and an action that parses them and calls the runner. */

import { existsSync, statSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import { ALL_FORMATS, type CommandContext, example } from '../options.js';
import { UsageError } from '../usage.js';

/** The extensions of Stride's report files: an `-o` ending in one names a file, not a folder. */
const REPORT_EXTENSIONS = new Set(['.xml', '.json', '.jsonl', '.csv', '.html', '.htm']);

/**
 * Several formats write several files, so `-o` must name a directory. A path that ends in a
 * report file's extension and is not an existing directory was meant as a file (issue #18
 * item 13: `-o x.xml` used to create a directory named `x.xml/`): refused before anything is
 * written.
 */
function checkOutput(output: string | undefined, formats: readonly string[]): void {
  if (output === undefined || formats.length < 2 || output.endsWith('/')) return;
  if (!REPORT_EXTENSIONS.has(extname(output).toLowerCase())) return;
  if (existsSync(output) && statSync(output).isDirectory()) return;
  throw new UsageError(
    `--output ${JSON.stringify(output)} names a file, but --format ${formats.join(',')} writes ` +
      `${formats.length} files: give a directory (for example -o reports/) or one format`,
  );
}

export function registerReport(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('report')
      .description('write reports of any stored run from the journal')
      .argument('<run-id>')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('-f, --format <formats>', `one or more of ${ALL_FORMATS}`, 'html')
      .option(
        '-o, --output <path>',
        'the file (one format), or the directory (several); default stride-out/<run-id>/',
      ),
    'stride report 20261124-213005-ab12 --format junit -o junit.xml',
    'stride report 20261124-213005-ab12 --format html,csv -o reports/',
  ).action(async (runId: string, flags: { db: string; format: string; output?: string }) => {
    const [{ formatsOf, openHistory }, { prepareOutput }, { writeRunReports }, { runFolder }] =
      await Promise.all([
        import('../journal.js'),
        import('../output.js'),
        import('../session.js'),
        import('../../report/run-folder.js'),
      ]);
    const formats = formatsOf(flags.format, '--format');
    checkOutput(flags.output, formats);
    const file = formats.length === 1 && flags.output !== undefined && !flags.output.endsWith('/');
    // By default into the run's own folder, where its run wrote them (issue #18 item 14).
    const out = file ? dirname(flags.output!) : (flags.output ?? runFolder('stride-out', runId));
    await prepareOutput('--output', out);
    const history = openHistory(flags.db, true);
    try {
      // One read of the journal for the summary and every format (issue #15 item 6).
      const { paths: written } = await writeRunReports(history, runId, {
        out,
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
