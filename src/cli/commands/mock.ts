/** `stride mock`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import type { CommandContext } from '../options.js';

export function registerMock(root: Command, _context: CommandContext): void {
  // `stride mock` parses its own flags (see src/mock/cli.ts); listed here for --help.
  root
    .command('mock')
    .description(
      'serve the Dify- and OpenAI-compatible mock with fault injection (stride mock --help)',
    );
}
