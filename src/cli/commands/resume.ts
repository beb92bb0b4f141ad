/** `stride resume`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import {
  type CommandContext,
  type DispatchFlags,
  dbFlag,
  dispatchOptions,
  example,
  type OutputFlags,
  outputOptions,
} from '../options.js';
import { UsageError } from '../usage.js';

export function registerResume(root: Command, { io, setCode }: CommandContext): void {
  const resumeCmd = outputOptions(
    dispatchOptions(root.command('resume'))
      .description('resume an interrupted or crashed run: verdicts kept, the rest runs')
      .argument('<run-id>', 'the run to resume (see stride runs)')
      .option('--force', 'resume even if the plan file changed since the run started'),
    { out: 'stride-out' },
  );
  example(
    resumeCmd,
    'stride resume 20261124-213005-ab12',
    'stride resume 20261124-213005-ab12 --db ci/stride.db --force',
  ).action(async (runId: string, flags: OutputFlags & DispatchFlags & { force?: boolean }) => {
    const [{ openRuns, sessionOptions }, { runSession }, { checkCases }, { progressBefore }] =
      await Promise.all([
        import('../journal.js'),
        import('../session.js'),
        import('../../plans/index.js'),
        import('../progress.js'),
      ]);
    const { history, close } = await openRuns(flags, io, true);
    try {
      const stored = await history.getRun(runId);
      if (stored.kind === 'action') {
        const file = (JSON.parse(stored.planJson) as { metadata?: { file?: string } }).metadata
          ?.file;
        if (file === undefined) {
          throw new UsageError(
            `run ${runId} is an action plan run without its plan file: it cannot be resumed from the CLI`,
          );
        }
        setCode(
          await (await import('../action.js')).runActionPlan(file, runId, {
            ...sessionOptions(flags, io, history, {
              command: `stride resume ${runId}${dbFlag(flags.db)}`,
            }),
            resume: true,
          }),
        );
        return;
      }
      const manifest = await history.planOf(runId, { checkCases: false, env: io.env });
      const stats = await checkCases(manifest);
      const code = await runSession(
        ({ onStart, retainResults }) =>
          history.resume(runId, { manifest, onStart, retainResults, force: flags.force === true }),
        {
          ...sessionOptions(flags, io, history, {
            command: `stride resume ${runId}${dbFlag(flags.db)}`,
          }),
          total: stats.selected,
          before: progressBefore(stored.counts),
          rewriteJsonl: true,
        },
      );
      setCode(code);
    } finally {
      await close();
    }
  });
}
