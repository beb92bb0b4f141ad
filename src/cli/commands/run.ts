/** `stride run`: its flags, and an action that parses them and calls the runner. */

import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { newRunId } from '../../store/run-id.js';
import {
  durationArg,
  intArg,
  listArg,
  maxFailuresArg,
  rangeArg,
  rateArg,
  regressionGateOption,
  runIdFlagProblem,
} from '../flags.js';
import { type CommandContext, dispatchOptions, example, outputOptions } from '../options.js';
import { applyOverrides, type RunFlags } from '../overrides.js';
import { UsageError } from '../usage.js';

export function registerRun(root: Command, { io, argv, setCode }: CommandContext): void {
  const run = outputOptions(
    dispatchOptions(root.command('run'))
      .description('run a test plan, journaled, with live progress and reports')
      .argument('<plan>', 'the plan file (YAML or JSON)')
      .option('-j, --concurrency <n>', 'attempts at once', intArg(1))
      .option('--rate <rate>', 'starts per minute (600, 600/min, 10/s)', rateArg)
      .option('--burst <n>', 'starts allowed at once above the rate', intArg(1))
      .option('--timeout <duration>', 'per-attempt timeout (30s, 1500ms)', durationArg)
      .option(
        '--max-failures <n|share>',
        'stop after this many failures (10) or this share (20%)',
        maxFailuresArg,
      )
      .option('--tag <tags>', 'only cases with one of these tags (repeatable, comma list)', listArg)
      .option('--exclude-tag <tags>', 'leave out cases with any of these tags', listArg)
      .option('--range <from-to>', 'only cases at these 1-based positions (1-100, 50-)', rangeArg)
      .option('--sample <n>', 'a seeded random sample of n cases', intArg(1))
      .option('--seed <n>', 'the sample seed', intArg(0))
      .option('--repeat <n>', 'run every selected case n times', intArg(1))
      .option('--run-id <id>', 'the new run id (default: generated)')
      .option('--baseline <run-id|latest>', 'compare the run with this one at the end (latest~N)')
      .addOption(regressionGateOption()),
    { out: 'stride-out' },
  );
  example(
    run,
    'stride run plan.yaml',
    'stride run plan.yaml -j 20 --rate 600/min --timeout 60s --report junit,html --out reports',
    'stride run plan.yaml --tag smoke --fail-under 95% --json',
  ).action(async (planPath: string, flags: RunFlags) => {
    const badId = flags.runId === undefined ? undefined : runIdFlagProblem(flags.runId);
    if (badId !== undefined) throw new UsageError(badId);
    const [
      { formatsOf, planKind, openHistory, openRuns, sessionOptions },
      { prepareOutput },
      session,
    ] = await Promise.all([
      import('../journal.js'),
      import('../output.js'),
      import('../session.js'),
    ]);
    // Before any folder or journal is made (issue #18 item 12).
    formatsOf(flags.report, '--report');
    const { runSession } = session;
    if ((await planKind(planPath)) === 'action') {
      checkActionPlanFlags(planPath, flags);
      await prepareOutput('--out', flags.out);
      const history = openHistory(flags.db, false);
      try {
        setCode(
          await (await import('../action.js')).runActionPlan(planPath, flags.runId ?? newRunId(), {
            ...sessionOptions(flags, io, history, {
              command: `stride ${argv.join(' ')}`,
            }),
            ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
            ...(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout }),
          }),
        );
      } finally {
        await history.store.close();
      }
      return;
    }
    const { checkCases, loadPlan } = await import('../../plans/index.js');
    // An absolute baseDir is stored with the run, so `stride resume` finds the plan from anywhere.
    const loaded = await loadPlan(planPath, {
      checkCases: false,
      env: io.env,
      baseDir: resolve(dirname(planPath)),
    });
    const manifest = applyOverrides(loaded, flags);
    const stats = await checkCases(manifest); // with the flags' selection, before anything runs
    if (flags.failOnRegression !== undefined && flags.baseline === undefined) {
      throw new UsageError('--fail-on-regression needs --baseline <run-id|latest>');
    }
    // Resolved before the run's journal and report folder are opened: an unknown baseline exits
    // 2 with nothing sent or written.
    const compare = flags.baseline === undefined ? undefined : await import('../compare.js');
    const baseline =
      compare === undefined
        ? undefined
        : await compare.resolveBaseline(flags.db, flags.baseline!, manifest.workflowId);
    const { history, close } = await openRuns(flags, io, false);
    try {
      const afterRun =
        baseline === undefined
          ? undefined
          : compare!.baselineHook(history, baseline, {
              spec: flags.baseline!,
              out: flags.out,
              gate: flags.failOnRegression,
            });
      const code = await runSession(
        ({ onStart, retainResults }) =>
          history.run(manifest, {
            onStart,
            retainResults,
            runId: flags.runId ?? newRunId(),
          }),
        {
          ...sessionOptions(flags, io, history, {
            command: `stride ${argv.join(' ')}`,
          }),
          total: stats.selected,
          ...(afterRun === undefined ? {} : { afterRun }),
        },
      );
      setCode(code);
    } finally {
      await close();
    }
  });
}

/** Flags that apply to test plans only, or to a dispatch action plans cannot use: exit 2. */
function checkActionPlanFlags(planPath: string, flags: RunFlags): void {
  const testOnly = (
    [
      'rate',
      'burst',
      'maxFailures',
      'tag',
      'excludeTag',
      'range',
      'sample',
      'seed',
      'repeat',
      'baseline',
      'failOnRegression',
      'failUnder',
    ] as const
  ).filter((k) => flags[k] !== undefined);
  if (flags.dispatch !== undefined && flags.dispatch !== 'inprocess') {
    throw new UsageError(
      `--dispatch ${flags.dispatch}: action plans run in this process (their tools are registered here)`,
    );
  }
  if (testOnly.length > 0) {
    throw new UsageError(
      `--${testOnly[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to test plans; ${planPath} is an action plan`,
    );
  }
}
