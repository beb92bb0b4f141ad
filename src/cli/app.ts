/**
 * The `stride` command: commander 14 over `RunHistory`, the report writers and the mock. Kept
 * apart from the bin file so tests can run it in process; `main` resolves with the exit code and
 * never calls `process.exit`.
 *
 * Exit codes: 0 all passed (or the pass rate reached `--fail-under`), 1 failures or errors,
 * 2 bad input or usage (the message names the flag or file and the bad value), 130 interrupted
 * and resumable.
 */

import { Command, CommanderError } from 'commander';
import { isStrideError } from '../core/errors.js';
import { COMMANDS } from './commands/index.js';
import { EXIT } from './exit.js';
import { type Io, processIo } from './io.js';
import { releaseEarlySignals } from './signals.js';
import { UsageError } from './usage.js';

export { UsageError } from './usage.js';

/** Error codes that mean bad input (exit 2) rather than a failed run (exit 1). */
const BAD_INPUT = new Set([
  'INVALID_OPTION',
  'MISSING_ARGUMENT',
  'EMPTY_PLAN',
  'PLAN_INVALID',
  'PLAN_NOT_FOUND',
  'CASES_INVALID',
  'ENV_MISSING',
  'PLAN_CHANGED',
  'NOTHING_TO_COMPARE',
  'RUN_NOT_FOUND',
  'RUN_LOCKED',
  'STORE_CORRUPT',
  'STORE_VERSION',
]);

/** The commands whose run session takes the signals the bin kept from its first line. */
const DRIVES_A_RUN = new Set(['run', 'resume', 'rerun', 'demo', 'worker']);

/** Builds the program; `setCode` receives each action's exit code. */
function program(io: Io, argv: readonly string[], setCode: (code: number) => void): Command {
  const root = new Command('stride')
    .description('Runs test plans against LLM apps reliably, at the pace the target allows.')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(add --help for usage and examples)')
    .showSuggestionAfterError(true);
  for (const register of COMMANDS) register(root, { io, argv, setCode });
  // A command that drives no run gives Ctrl-C back to Node before it starts (signals.ts).
  root.hook('preAction', (_root, command) => {
    if (!DRIVES_A_RUN.has(command.name())) releaseEarlySignals();
  });
  return root;
}

/**
 * Runs the `stride` command line and resolves with its exit code.
 *
 * @example
 * ```ts
 * const code = await main(['run', 'plan.yaml', '--no-progress']);
 * ```
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  if (argv[0] === 'mock') {
    releaseEarlySignals();
    // Loaded on demand: the mock server costs nothing to the other commands.
    const { mockCommand } = await import('../mock/cli.js');
    return mockCommand(argv.slice(1), { stdout: io.stdout, stderr: io.stderr });
  }
  let code: number = EXIT.ok;
  const root = program(io, argv, (c) => {
    code = c;
  });
  if (argv.length === 0) {
    root.outputHelp();
    return EXIT.usage;
  }
  try {
    await root.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with code 0; every other parse error is bad usage.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    io.stderr.write(`stride: ${err instanceof Error ? err.message : String(err)}\n`);
    const bad = err instanceof UsageError || (isStrideError(err) && BAD_INPUT.has(err.code));
    return bad ? EXIT.usage : EXIT.failures;
  }
}
