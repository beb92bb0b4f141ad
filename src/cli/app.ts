/**
 * The `stride` command: commander 14 over `RunHistory`, the report writers and the mock. Kept
 * apart from the bin file so tests can run it in process; `main` resolves with the exit code and
 * never calls `process.exit`.
 *
 * Exit codes: 0 all passed (or the pass rate reached `--fail-under`), 1 failures or errors,
 * 2 bad input or usage (the message names the flag or file and the bad value), 130 interrupted
 * and resumable.
 */

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { planKindOf } from '../actions/load.js';
import { isStrideError } from '../core/index.js';
import { checkCases, loadPlan, type RunManifest } from '../plans/index.js';
import {
  parseReportFormats,
  type ReportFormat,
  writeReport,
  writeReports,
} from '../report/index.js';
import { ExecutorService } from '../runner/executor-service.js';
import { RunHistory } from '../runner/history.js';
import { StoreError } from '../store/errors.js';
import { DEFAULT_DB_PATH, SqliteStore } from '../store/sqlite.js';
import {
  baselineHook,
  CompareUsageError,
  planRunsText,
  type RegressionGate,
  registerCompare,
  regressionGateOption,
  reportHtmlOptions,
  resolveBaseline,
} from './compare.js';
import { runDemo } from './demo.js';
import {
  durationArg,
  intArg,
  listArg,
  maxFailuresArg,
  rangeArg,
  rateArg,
  runIdFlagProblem,
  shareArg,
} from './flags.js';
import { type Io, processIo } from './io.js';
import { prepareOutput } from './output.js';
import { EXIT, newRunId, runSession, summaryOf } from './session.js';
import { formatRun, formatRuns } from './summary.js';

/** A usage error found after parsing (flags that do not go together): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

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

interface OutputFlags {
  db: string;
  out: string;
  report: string;
  progress: boolean;
  quiet?: boolean;
  json?: boolean;
  failUnder?: number;
}

interface RunFlags extends OutputFlags, DispatchFlags {
  concurrency?: number;
  rate?: number;
  burst?: number;
  timeout?: number;
  maxFailures?: number;
  tag?: string[];
  excludeTag?: string[];
  range?: { from: number; to?: number };
  sample?: number;
  seed?: number;
  repeat?: number;
  runId?: string;
  baseline?: string;
  failOnRegression?: RegressionGate;
}

const ALL_FORMATS = 'jsonl,json,csv,junit,html';

function outputOptions(cmd: Command, defaults: { out: string }): Command {
  return cmd
    .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
    .option('--out <dir>', 'where reports are written', defaults.out)
    .option('--report <formats>', `reports to write: ${ALL_FORMATS}`, ALL_FORMATS)
    .option('--fail-under <share>', 'exit 0 if at least this share passed (0.95 or 95%)', shareArg)
    .option('--no-progress', 'no live progress line')
    .option('-q, --quiet', 'no progress, a one-line summary')
    .option('--json', 'print a machine-readable summary on stdout (progress stays on stderr)');
}

function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

function openHistory(db: string, mustExist: boolean): RunHistory {
  if (mustExist && db !== ':memory:' && !existsSync(db)) {
    throw new UsageError(`--db ${db}: no such run journal (start a run first, or pass --db)`);
  }
  let store: SqliteStore;
  try {
    store = new SqliteStore({ path: db });
  } catch (err) {
    // Nothing ran yet: a journal that cannot be created or opened here is bad input (exit 2).
    if (err instanceof StoreError && err.failure === 'io') throw new UsageError(err.message);
    throw err;
  }
  return new RunHistory({ store });
}

interface DispatchFlags {
  dispatch?: string;
  redis?: string;
  queue?: string;
  batch?: number;
}

/**
 * The run journal and, with `--dispatch bullmq`, the BullMQ dispatcher (loaded on demand, so
 * in-process runs never load BullMQ). An attempt that comes back after its worker was lost is
 * journaled as a `maybe_sent` attempt.
 */
async function openRuns(
  flags: { db: string; out?: string } & DispatchFlags,
  io: Io,
  mustExist: boolean,
): Promise<{ history: RunHistory; close(): Promise<void> }> {
  const dispatch = flags.dispatch ?? 'inprocess';
  if (dispatch !== 'inprocess' && dispatch !== 'bullmq') {
    throw new UsageError(`--dispatch ${JSON.stringify(dispatch)}: expected inprocess or bullmq`);
  }
  const redis = flags.redis ?? io.env.STRIDE_REDIS_URL;
  if (dispatch === 'bullmq' && (redis === undefined || redis === '')) {
    throw new UsageError('--dispatch bullmq needs --redis URL (or STRIDE_REDIS_URL)');
  }
  if (dispatch === 'inprocess' && flags.batch !== undefined) {
    throw new UsageError('--batch applies to --dispatch bullmq only');
  }
  // Before the journal is opened: a report folder that cannot be written is bad input.
  if (flags.out !== undefined) await prepareOutput('--out', flags.out);
  const history = openHistory(flags.db, mustExist);
  if (dispatch === 'inprocess') return { history, close: () => history.store.close() };
  const store = history.store;
  const { BullmqDispatcher } = await import('../distributed/dispatcher.js');
  const dispatcher = new BullmqDispatcher({
    redis: redis!,
    ...(flags.queue === undefined ? {} : { queue: flags.queue }),
    ...(flags.batch === undefined ? {} : { batch: flags.batch }),
    onRedisError: (m) => io.stderr.write(`stride: ${m}\n`),
    onRedelivered: ({ runId, taskId, attempt }) => {
      const now = Date.now();
      try {
        store.append(runId, {
          transitions: [],
          attempts: [
            {
              caseId: taskId,
              number: attempt,
              startedAt: now,
              endedAt: now,
              state: 'maybe_sent',
              error: {
                code: 'REDELIVERED',
                name: 'Redelivered',
                message: 'its worker was lost: delivered again to another worker',
              },
              usage: { tokens: 0, cost: 0 },
              upstream: undefined,
            },
          ],
        });
      } catch {
        // A run of another coordinator on the same queue: not ours to journal.
      }
    },
  });
  const withDispatcher = new RunHistory({ store, service: new ExecutorService({ dispatcher }) });
  return {
    history: withDispatcher,
    close: async () => {
      await dispatcher.close();
      await store.close();
    },
  };
}

function dispatchOptions(cmd: Command): Command {
  return cmd
    .option(
      '--dispatch <where>',
      'where attempts run: inprocess, or bullmq (workers: stride worker)',
    )
    .option('--redis <url>', 'Redis for --dispatch bullmq (default: STRIDE_REDIS_URL)')
    .option('--queue <name>', 'the BullMQ queue the workers listen on', 'stride')
    .option(
      '--batch <n>',
      'most attempts started together that share one BullMQ job (1: a job per attempt)',
      intArg(1),
    );
}

/** The report formats a flag names (`flag`: how the error names it). */
function formatsOf(value: string, flag: '--report' | '--format'): ReportFormat[] {
  try {
    return parseReportFormats(value);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** `action` or `test`, from the plan file's content (a missing file is left to the loader). */
async function planKind(path: string): Promise<'action' | 'test'> {
  try {
    return planKindOf(await readFile(path, 'utf8'));
  } catch {
    return 'test';
  }
}

/** Applies the `run` flags over the plan: its execution policy and its case selection. */
function applyOverrides(manifest: RunManifest, flags: RunFlags): RunManifest {
  const p = manifest.executionPolicy;
  const sel = manifest.select;
  if (flags.seed !== undefined && flags.sample === undefined && sel.sample === undefined) {
    throw new UsageError(
      `--seed ${flags.seed}: it seeds --sample, and neither it nor the plan samples`,
    );
  }
  if (flags.burst !== undefined && flags.rate === undefined && p.rateControl === undefined) {
    throw new UsageError(`--burst ${flags.burst}: it needs --rate (the plan has no rate_control)`);
  }
  const rate =
    flags.rate === undefined && flags.burst === undefined
      ? p.rateControl
      : {
          perMinute: flags.rate ?? p.rateControl?.perMinute ?? 60,
          burst: flags.burst ?? p.rateControl?.burst ?? 1,
        };
  const sampleSize = flags.sample ?? sel.sample?.size;
  return {
    ...manifest,
    executionPolicy: {
      ...p,
      ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
      ...(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout }),
      ...(rate === undefined ? {} : { rateControl: rate }),
      stopConditions: {
        ...p.stopConditions,
        ...(flags.maxFailures === undefined ? {} : { maxFailures: flags.maxFailures }),
      },
    },
    select: {
      ...sel,
      ...(flags.tag === undefined ? {} : { tags: flags.tag }),
      ...(flags.excludeTag === undefined ? {} : { excludeTags: flags.excludeTag }),
      ...(flags.range === undefined ? {} : { range: flags.range }),
      ...(sampleSize === undefined
        ? {}
        : { sample: { size: sampleSize, seed: flags.seed ?? sel.sample?.seed ?? 1 } }),
      ...(flags.repeat === undefined ? {} : { repeat: flags.repeat }),
    },
  };
}

function dbFlag(db: string): string {
  return db === DEFAULT_DB_PATH ? '' : ` --db ${db}`;
}

/** The session options every run command shares; resumed with `stride resume` by default. */
function sessionOptions(
  flags: OutputFlags,
  io: Io,
  history: RunHistory,
  extra: { resumeCommand?: string; command: string },
) {
  return {
    history,
    io,
    out: flags.out,
    formats: formatsOf(flags.report, '--report'),
    progress: flags.progress && flags.quiet !== true,
    quiet: flags.quiet === true,
    json: flags.json === true,
    failUnder: flags.failUnder,
    resumeCommand: extra.resumeCommand ?? `stride resume {id}${dbFlag(flags.db)}`,
    command: extra.command,
  };
}

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
    if ((await planKind(planPath)) === 'action') {
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
      await prepareOutput('--out', flags.out);
      const history = openHistory(flags.db, false);
      try {
        setCode(
          await (await import('./action.js')).runActionPlan(planPath, flags.runId ?? newRunId(), {
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
    const baseline =
      flags.baseline === undefined
        ? undefined
        : await resolveBaseline(flags.db, flags.baseline, manifest.workflowId);
    const { history, close } = await openRuns(flags, io, false);
    try {
      const afterRun =
        baseline === undefined
          ? undefined
          : baselineHook(history, baseline, {
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
          await (await import('./action.js')).runActionPlan(file, runId, {
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
          doneBefore: stored.counts.total - stored.counts.cancelled,
          rewriteJsonl: true,
        },
      );
      setCode(code);
    } finally {
      await close();
    }
  });

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

  example(
    root
      .command('runs')
      .description('list the runs in the journal, newest first')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('-n, --limit <n>', 'at most this many', intArg(1), 20)
      .option('--plan <name>', "one plan's runs with pass rate, cost, p50 and a trend")
      .option('--json', 'print JSON'),
    'stride runs',
    'stride runs -n 5 --json',
    'stride runs --plan support-bot',
  ).action(async (flags: { db: string; limit: number; json?: boolean; plan?: string }) => {
    if (!existsSync(flags.db)) {
      io.stdout.write(flags.json === true ? '[]\n' : `no runs yet (no journal at ${flags.db})\n`);
      return;
    }
    const history = openHistory(flags.db, true);
    try {
      if (flags.plan !== undefined) {
        io.stdout.write(await planRunsText(history, flags.plan, flags.limit, flags.json === true));
        return;
      }
      const runs = await history.listRuns({ limit: flags.limit });
      io.stdout.write(flags.json === true ? `${JSON.stringify(runs)}\n` : `${formatRuns(runs)}\n`);
    } finally {
      await history.store.close();
    }
  });

  example(
    root
      .command('show')
      .description('show one run: status, counts, timings')
      .argument('<run-id>')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('--json', 'print JSON'),
    'stride show 20261124-213005-ab12',
  ).action(async (runId: string, flags: { db: string; json?: boolean }) => {
    const history = openHistory(flags.db, true);
    try {
      const run = await history.getRun(runId);
      if (flags.json === true) {
        const { planJson, optionsJson, ...rest } = run;
        io.stdout.write(
          `${JSON.stringify({ ...rest, plan: JSON.parse(planJson), options: JSON.parse(optionsJson) })}\n`,
        );
      } else io.stdout.write(`${formatRun(run)}\n`);
    } finally {
      await history.store.close();
    }
  });

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
    const formats = formatsOf(flags.format, '--format');
    const file = formats.length === 1 && flags.output !== undefined && !flags.output.endsWith('/');
    await prepareOutput('--output', file ? dirname(flags.output!) : (flags.output ?? 'stride-out'));
    const history = openHistory(flags.db, true);
    try {
      const { summary, source, record } = await summaryOf(history, runId);
      const options = { html: await reportHtmlOptions(history, record) };
      const written = file
        ? { [formats[0]!]: await writeReport(formats[0]!, flags.output!, summary, source, options) }
        : await writeReports(flags.output ?? 'stride-out', formats, summary, source, options);
      for (const [format, path] of Object.entries(written))
        io.stdout.write(`${format.padEnd(6)} ${path}\n`);
    } finally {
      await history.store.close();
    }
  });

  example(
    root
      .command('validate')
      .description('check a plan and every case file without running anything')
      .argument('<plan>')
      .option('--json', 'print JSON'),
    'stride validate plan.yaml',
  ).action(async (planPath: string, flags: { json?: boolean }) => {
    if ((await planKind(planPath)) === 'action') {
      const { loadActionFile } = await import('./action.js');
      const { file, tools, warnings } = await loadActionFile(planPath, io.env);
      const edges = file.plan.steps.reduce((n, s) => n + (s.dependencies?.length ?? 0), 0);
      for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
      if (flags.json === true) {
        io.stdout.write(
          `${JSON.stringify({ plan: file.plan.id, kind: 'action', valid: true, steps: file.plan.steps.length, dependencies: edges, tools: [...new Set(file.plan.steps.map((s) => s.tool))], warnings })}\n`,
        );
      } else {
        io.stdout.write(
          `${planPath}: valid. action plan ${file.plan.id}: ${file.plan.steps.length} step(s), ${edges} dependenc${edges === 1 ? 'y' : 'ies'}; tools available: ${tools.names().join(', ')}\n`,
        );
      }
      return;
    }
    const manifest = await loadPlan(planPath, { checkCases: false, env: io.env });
    const stats = await checkCases(manifest);
    if (flags.json === true) {
      io.stdout.write(`${JSON.stringify({ plan: manifest.workflowId, valid: true, ...stats })}\n`);
      return;
    }
    const datasets = Object.entries(stats.byDataset)
      .map(([name, n]) => `${name === '' ? '(cases)' : name}: ${n}`)
      .join(', ');
    io.stdout.write(
      `${planPath}: valid. ${manifest.workflowId}: ${stats.total} case(s) (${datasets}); ${stats.selected} selected to run; ` +
        `target ${manifest.target?.type ?? '(none)'}, concurrency ${manifest.executionPolicy.concurrency}\n`,
    );
  });

  example(
    root
      .command('prune')
      .description('delete old runs from the journal (retention)')
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('--keep <n>', 'keep only the n newest runs', intArg(0))
      .option(
        '--older-than <duration>',
        'delete runs that started longer ago (30d, 12h)',
        durationArg,
      ),
    'stride prune --keep 50',
    'stride prune --older-than 720h',
  ).action(async (flags: { db: string; keep?: number; olderThan?: number }) => {
    if (flags.keep === undefined && flags.olderThan === undefined) {
      throw new UsageError('prune needs --keep, --older-than or both');
    }
    const history = openHistory(flags.db, true);
    try {
      const n = await history.prune({
        ...(flags.keep === undefined ? {} : { maxRuns: flags.keep }),
        ...(flags.olderThan === undefined ? {} : { maxAgeMs: flags.olderThan }),
      });
      io.stdout.write(`pruned ${n} run(s)\n`);
    } finally {
      await history.store.close();
    }
  });

  example(
    root
      .command('worker')
      .description(
        'execute attempts of runs started with --dispatch bullmq (any number, any machine)',
      )
      .requiredOption(
        '--redis <url>',
        'the Redis the coordinators use (default: STRIDE_REDIS_URL)',
        io.env.STRIDE_REDIS_URL,
      )
      .option('--queue <name>', 'the BullMQ queue', 'stride')
      .option('-j, --concurrency <n>', 'attempts this worker runs at once', intArg(1), 16)
      .option(
        '--lock-duration <duration>',
        "how long a lost worker's attempts wait before another worker takes them",
        durationArg,
        10_000,
      ),
    'stride worker --redis redis://127.0.0.1:6379 -j 32',
    'DIFY_API_KEY=app-... stride worker --redis redis://redis.internal:6379 --queue evals',
  ).action(
    async (flags: { redis: string; queue: string; concurrency: number; lockDuration: number }) => {
      const { startWorker } = await import('../distributed/worker.js');
      const worker = await startWorker({
        redis: flags.redis,
        queue: flags.queue,
        concurrency: flags.concurrency,
        lockDurationMs: flags.lockDuration,
        env: io.env,
        onRedisError: (m) => io.stderr.write(`stride worker: ${m}\n`),
      });
      io.stderr.write(
        `stride worker ${worker.name}: ready on queue ${flags.queue} (concurrency ${flags.concurrency}); Ctrl-C stops it\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      io.stderr.write(`stride worker ${worker.name}: stopping (in-flight attempts finish first)\n`);
      await worker.close();
      io.stderr.write(
        `stride worker ${worker.name}: stopped after ${worker.stats.executed} attempts in ${worker.stats.jobs} jobs (${worker.stats.returned} given back to the coordinator)\n`,
      );
    },
  );

  registerCompare(root, io, setCode);

  // `stride mock` parses its own flags (see src/mock/cli.ts); listed here for --help.
  root
    .command('mock')
    .description(
      'serve the Dify- and OpenAI-compatible mock with fault injection (stride mock --help)',
    );

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
    const bad =
      err instanceof UsageError ||
      err instanceof CompareUsageError ||
      (isStrideError(err) && BAD_INPUT.has(err.code));
    return bad ? EXIT.usage : EXIT.failures;
  }
}
