/** `stride rerun`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import { newRunId } from '../../store/run-id.js';
import {
  type CommandContext,
  type DispatchFlags,
  dispatchOptions,
  example,
  type OutputFlags,
  outputOptions,
} from '../options.js';
import { UsageError } from '../usage.js';

export function registerRerun(root: Command, { io, setCode }: CommandContext): void {
  const rerunCmd = outputOptions(
    dispatchOptions(root.command('rerun'))
      .description("re-run a run's errors or failures as a new run linked to it")
      .argument('<run-id>', 'the run whose cases to re-run')
      .option('--errors', 're-run the cases that ended error or timeout')
      .option('--failures', 're-run the cases whose assertions failed')
      .option('--force', 're-run even if the plan file changed since the run started'),
    { out: 'stride-out' },
  );
  example(
    rerunCmd,
    'stride rerun 20261124-213005-ab12 --errors',
    'stride rerun 20261124-213005-ab12 --errors --failures',
  ).action(
    async (
      runId: string,
      flags: OutputFlags &
        DispatchFlags & { errors?: boolean; failures?: boolean; force?: boolean },
    ) => {
      if (flags.errors !== true && flags.failures !== true) {
        throw new UsageError('rerun needs --errors, --failures or both');
      }
      const statuses = [
        ...(flags.errors === true ? (['error', 'timeout'] as const) : []),
        ...(flags.failures === true ? (['failed'] as const) : []),
      ];
      const [{ openRuns, sessionOptions }, { runSession }] = await Promise.all([
        import('../journal.js'),
        import('../session.js'),
      ]);
      const { history, close } = await openRuns(flags, io, true);
      try {
        if ((await history.getRun(runId)).kind === 'action') {
          throw new UsageError(
            `run ${runId} is an action plan: rerun is for test plans (run the plan again with stride run)`,
          );
        }
        const manifest = await history.planOf(runId, { env: io.env });
        const code = await runSession(
          ({ onStart, retainResults }) =>
            history.rerun(
              runId,
              { statuses },
              { manifest, onStart, retainResults, force: flags.force === true, runId: newRunId() },
            ),
          sessionOptions(flags, io, history, {
            command: `stride rerun ${runId}${flags.errors === true ? ' --errors' : ''}${flags.failures === true ? ' --failures' : ''}`,
          }),
        );
        setCode(code);
      } finally {
        await close();
      }
    },
  );
}
