/** `stride demo`: its flags, and an action that parses them and calls the runner. */

import { type Command, Option } from 'commander';
import { intArg } from '../flags.js';
import {
  type CommandContext,
  dbFlag,
  example,
  type OutputFlags,
  outputOptions,
} from '../options.js';

export function registerDemo(root: Command, { io, setCode }: CommandContext): void {
  const demo = outputOptions(
    root
      .command('demo')
      .description(
        'the whole product in 30 s: the mock with faults, a 500-case plan, progress and reports',
      )
      .option('--cases <n>', 'cases to run (from the bundled 500)', intArg(1), 500)
      .option('-j, --concurrency <n>', 'attempts at once', intArg(1))
      .option('--seed <n>', "the mock's fault seed", intArg(0), 7)
      .option('--resume <run-id>', 'resume an interrupted demo run'),
    { out: 'stride-out' },
  );
  demo.addOption(
    new Option('--latency <ms>', 'mean mock latency in ms').argParser(intArg(0)).default(120),
  );
  example(demo, 'stride demo', 'stride demo --cases 100 -j 10 --no-progress').action(
    async (
      flags: OutputFlags & {
        cases: number;
        concurrency?: number;
        seed: number;
        latency: number;
        resume?: string;
      },
    ) => {
      const [{ runDemo }, { openHistory, sessionOptions }, { prepareOutput }] = await Promise.all([
        import('../demo.js'),
        import('../journal.js'),
        import('../output.js'),
      ]);
      await prepareOutput('--out', flags.out);
      const history = openHistory(flags.db, false);
      try {
        setCode(
          await runDemo({
            cases: flags.cases,
            seed: flags.seed,
            latencyMs: flags.latency,
            ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
            ...(flags.resume === undefined ? {} : { resume: flags.resume }),
            session: sessionOptions(flags, io, history, {
              resumeCommand: `stride demo --resume {id}${dbFlag(flags.db)}`,
              command: 'stride demo',
            }),
          }),
        );
      } finally {
        await history.store.close();
      }
    },
  );
}
