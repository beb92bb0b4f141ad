/** `stride compare BASE HEAD`: the flags; cli/compare.ts does the comparing. */

import { type Command, Option } from 'commander';
import { COMPARE_DETAILS } from '../../compare/defaults.js';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import type { CompareFlags } from '../compare.js';
import { compareFormatArg, intArg, regressionGateOption } from '../flags.js';
import type { CommandContext } from '../options.js';

export function registerCompare(root: Command, { io, setCode }: CommandContext): void {
  root
    .command('compare')
    .description(
      'compare two runs case by case: regressions, fixes, flaky cases, and whether the difference is real',
    )
    .argument('<base>', 'the baseline: a run id, latest or latest~N (--plan), or a comma list')
    .argument('<head>', 'the run to judge: a run id, latest or latest~N, or a comma list')
    .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
    .option('--plan <name>', 'the plan whose runs latest and latest~N name')
    .option('--json', 'print the comparison as JSON (same as --format json)')
    .addOption(
      new Option('--format <format>', 'text (default), md, html or json').argParser(
        compareFormatArg,
      ),
    )
    .option('-o, --output <file>', 'write the --format output to this file')
    .addOption(regressionGateOption())
    .option(
      '--details <n>',
      'cases of each list given with inputs, outputs and diff',
      intArg(0),
      COMPARE_DETAILS,
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ stride compare latest~1 latest --plan support-bot',
        '  $ stride compare 20261124-213005-ab12 20261125-090112-c3d4 --format html -o compare.html',
        '  $ stride compare latest~1 latest --plan support-bot --format md -o comment.md --fail-on-regression=significant',
        '',
      ].join('\n'),
    )
    .action(async (base: string, head: string, flags: CompareFlags) => {
      const { compareCommand } = await import('../compare.js');
      setCode(await compareCommand(io, base, head, flags));
    });
}
