/**
 * One CLI session of a durable run (`run`, `resume`, `rerun`, `demo`): live progress, results
 * streamed to JSONL as they settle, Ctrl-C handling, then the summary, the reports and the exit
 * code. Everything durable goes through `RunHistory`; this file only faces the terminal.
 */

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { passRateTrend } from '../compare/trend.js';
import { makeDirectory } from '../report/disk.js';
import { htmlPaceOf } from '../report/html-pace.js';
import {
  type HtmlOptions,
  REPORT_FILES,
  ReportFanout,
  type ReportFormat,
  type ReportMeta,
  type ReportSummary,
} from '../report/index.js';
import { openRunFolder, runFolder } from '../report/run-folder.js';
import type { DurableRunResult, DurableSession } from '../runner/durable.js';
import type { RunHistory } from '../runner/history.js';
import { RunSession, testPlan } from '../runner/session.js';
import type { RunRecord } from '../store/port.js';
import { EXIT } from './exit.js';
import type { Io } from './io.js';
import {
  describeJsonlFailure,
  type JsonlFailure,
  journalFailure,
  keepPartialJsonl,
  messageOf,
  reportFailure,
  type SessionPlace,
} from './output.js';
import { isLiveTerminal, Progress, type ProgressBefore } from './progress.js';
import { beforeStartMessage, claimSignals } from './signals.js';
import { formatRunSummary, paceLines } from './summary.js';

/** How a session reports. */
export interface CliRunOptions {
  readonly history: RunHistory;
  readonly io: Io;
  /** Report directory: each run writes to its own folder in it, `<out>/<run-id>/`. */
  readonly out: string;
  readonly formats: readonly ReportFormat[];
  /** `--no-progress` / `--quiet`. */
  readonly progress: boolean;
  /** `--quiet`: the summary is one line. */
  readonly quiet: boolean;
  /** `--json`: stdout gets one JSON object (the summary), nothing else. */
  readonly json: boolean;
  /** `--fail-under`: the pass rate at which the exit code is still 0. @default 1 */
  readonly failUnder: number | undefined;
  /** The command that resumes this run, printed on Ctrl-C (`{id}` is replaced). */
  readonly resumeCommand: string;
  /** The command shown in the HTML report. */
  readonly command: string;
  /** How long in-flight work may settle after the first Ctrl-C. @default 10_000 */
  readonly graceMs?: number;
  /** What earlier sessions decided (a resume), for the progress line's whole-run counts. */
  readonly before?: ProgressBefore;
  /** The run's case count, when known up front. */
  readonly total?: number;
  /** True for a resume: the JSONL file is re-written from the store at the end, every case in it. */
  readonly rewriteJsonl?: boolean;
  /**
   * Called once the run ended by itself (not when interrupted), before its reports are written
   * (`run --baseline`: the comparison). Its HTML options go to report.html, its text is printed
   * after the run's summary, its JSON merged into `--json`'s, its code raises the exit code.
   */
  readonly afterRun?: (runId: string) => Promise<AfterRun>;
}

/** What `CliRunOptions.afterRun` adds to a session's end. */
export interface AfterRun {
  readonly html?: HtmlOptions;
  readonly text?: string;
  readonly json?: Record<string, unknown>;
  readonly code?: number;
}

/** What the session starts: a RunHistory call given the hooks. */
export type SessionStart = (hooks: {
  onStart: (session: DurableSession) => void;
  retainResults: false;
}) => Promise<DurableRunResult>;

export { EXIT };

/** Results waiting for the report files before the run is paused for them (backpressure). */
const REPORT_HIGH_WATER = 2_000;

/** Runs one session and resolves with the process's exit code. */
export async function runSession(start: SessionStart, options: CliRunOptions): Promise<number> {
  const { io, history } = options;
  // Ctrl-C is ours from here (or from the bin's first line): a signal before the graceful stop
  // is installed is delivered to it then, not lost to Node's default kill (signals.ts).
  const { gate: signals, interrupted } = claimSignals();
  if (interrupted !== undefined) {
    io.stderr.write(beforeStartMessage(interrupted));
    return EXIT.interrupted;
  }
  // The run's own folder, `<out>/<run-id>/`, known once the session has its run (issue #18
  // item 14: every run used to overwrite `<out>`); `<out>/latest` then points at it.
  let dir: string | undefined;
  const jsonlPathOf = (d: string): string => join(d, REPORT_FILES.jsonl);
  const streamJsonl = options.formats.includes('jsonl');
  // A resume's reports cover the cases of every session, so they are written from the journal
  // at the end (one read); only its live results.jsonl is fed while it goes. A fresh run's
  // reports are all fed as its cases settle: nothing is read back after the run.
  const fedFormats =
    options.rewriteJsonl === true ? options.formats.filter((f) => f === 'jsonl') : options.formats;
  await makeDirectory(options.out);
  // Opened (and so truncated) only once the run session holds its run's lock (its output is
  // opened after the journal attached): a session refused with RUN_LOCKED must not empty the
  // file a live session of that run is writing.
  let fanout: ReportFanout | undefined;

  let progress: Progress | undefined;
  let resumable = false;
  let place: SessionPlace | undefined;
  // What reached results.jsonl, for the message of a failed journal.
  const streamed = { verdicts: 0, cancelled: 0 };

  const session = new RunSession(testPlan(start), {
    signals,
    store: history.store,
    graceMs: options.graceMs ?? 10_000,
    highWaterMark: REPORT_HIGH_WATER,
    onStart: (started) => {
      place = {
        runId: started.runId,
        history,
        resumeCommand: options.resumeCommand,
        journal: started.journal,
      };
      if (options.progress) {
        progress = new Progress(started.run, io.stderr, {
          tty: isLiveTerminal(io.stderr, io.env),
          ...(options.before === undefined ? {} : { before: options.before }),
          ...(options.total === undefined ? {} : { total: options.total }),
        });
        progress.start();
      }
    },
    // Each settled case is converted once and fanned out to the summary and every report.
    output: async (started) => {
      const record = await history.getRun(started.runId);
      dir = (await openRunFolder(options.out, started.runId)).dir;
      const opened = await ReportFanout.open(dir, fedFormats, {
        plan: record.plan,
        liveJsonl: true,
      });
      fanout = opened;
      return {
        add: async (result, to) => {
          await opened.add(result);
          if (streamJsonl && !opened.failed.has('jsonl')) {
            if (to === 'cancelled') streamed.cancelled++;
            else streamed.verdicts++;
          }
        },
      };
    },
    onStop: (info) => {
      resumable = info.resumable;
      progress?.stop();
      io.stderr.write(
        info.resumable
          ? `\nInterrupted (${info.signal}${info.aborted ? ', in-flight work aborted' : ''}); the journal is flushed.\n`
          : `\nInterrupted (${info.signal}), but the run had already finished.\n`,
      );
    },
  });

  let result: DurableRunResult | undefined;
  let failure: unknown;
  try {
    result = (await session.drive()).result;
  } catch (err) {
    failure = err;
  } finally {
    signals.dispose();
    progress?.stop();
  }
  // The report files could not be opened at all (each format's own failures: fanout.failed).
  const openError = session.outputError;
  const ended = failure === undefined && result !== undefined && !resumable;
  if (!ended && fanout !== undefined) {
    // Interrupted or failed: results.jsonl keeps this session's lines; the rest is dropped.
    if (streamJsonl) await fanout.finish(LIVE_ONLY, {}, ['jsonl']).catch(() => undefined);
    await fanout.abort();
  }
  const jsonlError = (): unknown =>
    streamJsonl ? (openError ?? fanout?.failed.get('jsonl')) : undefined;
  // A results.jsonl cut short (a full disk) is not left under its name as if it were complete.
  let jsonlFailure: JsonlFailure | undefined;
  if (!ended && jsonlError() !== undefined && dir !== undefined) {
    jsonlFailure = await keepPartialJsonl(jsonlPathOf(dir), jsonlError());
  }
  if (failure !== undefined || result === undefined) {
    const written =
      fanout === undefined || !streamJsonl || dir === undefined
        ? undefined
        : { path: jsonlPathOf(dir), ...streamed };
    throw await journalFailure(failure, place, jsonlFailure ?? written);
  }
  const runId = result.runId;
  const runDir = dir ?? runFolder(options.out, runId);

  if (resumable) {
    const record = await history.getRun(runId);
    const done = record.counts.total - record.counts.cancelled;
    io.stderr.write(
      `${done} case(s) have a verdict; nothing else was recorded as done.\n` +
        `Resume with: ${options.resumeCommand.replace('{id}', runId)}\n`,
    );
    if (jsonlFailure !== undefined) io.stderr.write(`${describeJsonlFailure(jsonlFailure)}\n`);
    if (options.json) io.stdout.write(`${JSON.stringify({ runId, status: 'interrupted' })}\n`);
    return EXIT.interrupted;
  }

  const after = await options.afterRun?.(runId);
  const record = await history.getRun(runId);
  const meta = metaOf(record, options.command);
  const html = async (s: ReportSummary): Promise<HtmlOptions> => ({
    ...(await trendOf(history, record, s, options.formats)),
    ...after?.html,
  });
  const written = await (async () => {
    let summary: ReportSummary | undefined;
    let paths: Partial<Record<ReportFormat, string>> = {};
    if (fanout !== undefined) {
      // The summary built while the run went: the results are not read back.
      summary = fanout.builder.build(meta);
      await fanout.finish(summary, { html: await html(summary) }).catch(() => undefined);
      paths = fanout.finished;
    }
    // Written from the journal, in one read: a resume's reports (they cover every session), and
    // any format that could not be written while the run went (a full disk, since freed).
    const again = options.formats.filter(
      (f) => paths[f] === undefined || (f === 'jsonl' && options.rewriteJsonl === true),
    );
    if (jsonlError() !== undefined)
      jsonlFailure = await keepPartialJsonl(jsonlPathOf(runDir), jsonlError());
    if (again.length > 0 || summary === undefined) {
      if (dir === undefined) await openRunFolder(options.out, runId);
      const rewritten = await fromJournal(history, record, meta, again, { out: runDir, html });
      summary = rewritten.summary;
      paths = { ...paths, ...rewritten.paths };
    }
    return { summary, paths };
  })().catch((err: unknown) => {
    throw reportFailure(
      err,
      { runId, history, resumeCommand: options.resumeCommand },
      { out: runDir, formats: options.formats, jsonl: jsonlFailure },
    );
  });
  const summary = written.summary;
  const final = record;
  // In the order the formats were asked for.
  const paths: Partial<Record<ReportFormat, string>> = Object.fromEntries(
    options.formats.flatMap((f) => (written.paths[f] === undefined ? [] : [[f, written.paths[f]]])),
  );
  if (jsonlFailure !== undefined) {
    // Written again, whole, from the journal: the partial copy has served its purpose.
    if (jsonlFailure.partial !== undefined) await rm(jsonlFailure.partial.path, { force: true });
    io.stderr.write(
      `warning: ${messageOf(jsonlFailure.error)} while the run went; it was written again from the journal\n`,
    );
  }
  // Cancelled from another process (the dashboard, `Store.requestControl`): the reports are
  // written, and like Ctrl-C the exit says the run was stopped before its end and can resume.
  const outside =
    result.run.status === 'cancelled'
      ? (await history.store.controlRequests(runId)).find((r) => r.outcome === 'cancelled')
      : undefined;
  const code =
    outside === undefined ? exitCodeFor(summary, final, options.failUnder) : EXIT.interrupted;
  const exit = Math.max(code, after?.code ?? 0);
  if (options.json) {
    io.stdout.write(
      `${JSON.stringify({ ...jsonSummary(summary, final, paths, exit), ...after?.json })}\n`,
    );
  } else {
    io.stdout.write(
      `${formatRunSummary(summary, final, paths, { quiet: options.quiet, failUnder: options.failUnder })}\n`,
    );
  }
  if (after?.text !== undefined && !options.json) io.stdout.write(`\n${after.text}\n`);
  if (outside !== undefined) {
    io.stderr.write(
      `Cancelled by ${outside.by}. Resume with: ${options.resumeCommand.replace('{id}', runId)}\n`,
    );
  }
  return exit;
}

/** Stands for a ReportMeta where no writer reads it (finishing a live results.jsonl). */
const LIVE_ONLY: ReportMeta = { runId: '', plan: '', startedAt: 0, finishedAt: undefined };

/** What the reports say about a stored run. */
function metaOf(record: RunRecord, command: string | undefined): ReportMeta {
  return {
    runId: record.id,
    plan: record.plan,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    activeMs: record.activeMs,
    resumes: record.resumes,
    ...(record.parentId === undefined ? {} : { parentId: record.parentId }),
    ...(record.stoppedBy === undefined
      ? {}
      : { stoppedBy: `${record.stoppedBy.rule}: ${record.stoppedBy.message}` }),
    ...(command === undefined ? {} : { command }),
  };
}

/**
 * The HTML report's pass-rate trend (cheap: stored counts, see passRateTrend), with this run's
 * own rate from its summary, so a resumed run's results are not read again for it.
 */
async function trendOf(
  history: RunHistory,
  record: RunRecord,
  summary: ReportSummary,
  formats: readonly ReportFormat[],
): Promise<HtmlOptions> {
  if (!formats.includes('html') || record.kind !== 'test') return {};
  const trend = await passRateTrend(history, record.plan, {
    upTo: record.id,
    upToPassRate: summary.total === 0 ? null : summary.passRate,
  });
  // The pace over the run, from the journal (the last session's statistics give the ceiling).
  const stats = record.statistics;
  const pace = htmlPaceOf(
    record,
    await history.store.paceChanges(record.id),
    stats?.pace?.ceiling ?? 0,
    paceLines(stats),
  );
  return pace === undefined ? { trend } : { trend, pace };
}

/** Writes `formats` of a stored run from ONE read of its journal, building its summary. */
async function fromJournal(
  history: RunHistory,
  record: RunRecord,
  meta: ReportMeta,
  formats: readonly ReportFormat[],
  options: {
    out?: string;
    paths?: Partial<Record<ReportFormat, string>>;
    html?: (summary: ReportSummary) => Promise<HtmlOptions>;
  },
): Promise<{ summary: ReportSummary; paths: Partial<Record<ReportFormat, string>> }> {
  const source = () => history.results(record.id);
  if (formats.length === 0) {
    const fanout = await ReportFanout.open(options.out ?? '.', [], { plan: record.plan });
    for await (const r of source()) await fanout.add(r);
    return fanout.finish(meta);
  }
  const fanout = await ReportFanout.open(options.out ?? '.', formats, {
    plan: record.plan,
    ...(options.paths === undefined ? {} : { paths: options.paths }),
  });
  try {
    for await (const r of source()) {
      await fanout.add(r);
      const failed = fanout.failed.values().next();
      if (!failed.done) throw failed.value;
    }
  } catch (e) {
    await fanout.abort();
    throw e;
  }
  const summary = fanout.builder.build(meta);
  return fanout.finish(summary, { html: (await options.html?.(summary)) ?? {} });
}

/**
 * Summarises a stored run and writes `formats` of it from ONE read of the journal (every case
 * once, also after a resume; the summary is built on the way). Used by every session that
 * writes its reports from the journal (a resume, an action plan) and by `stride report`.
 * `paths` puts a format in a file of its own instead of `out/REPORT_FILES[format]`.
 */
export async function writeRunReports(
  history: RunHistory,
  runId: string,
  options: {
    out: string;
    formats: readonly ReportFormat[];
    command?: string;
    html?: HtmlOptions;
    paths?: Partial<Record<ReportFormat, string>>;
  },
): Promise<{
  summary: ReportSummary;
  record: RunRecord;
  paths: Partial<Record<ReportFormat, string>>;
}> {
  const record = await history.getRun(runId);
  const { summary, paths } = await fromJournal(
    history,
    record,
    metaOf(record, options.command),
    options.formats,
    {
      out: options.out,
      ...(options.paths === undefined ? {} : { paths: options.paths }),
      html: async (s) => ({
        ...(await trendOf(history, record, s, options.formats)),
        ...options.html,
      }),
    },
  );
  return { summary, record, paths: { ...paths } };
}

/** 0 if every case passed, or the pass rate reached `--fail-under`; 1 otherwise. */
function exitCodeFor(
  summary: ReportSummary,
  record: RunRecord,
  failUnder: number | undefined,
): number {
  if (summary.total === 0) return EXIT.failures;
  // A run a stop rule ended did not run everything: never a pass.
  if (record.status === 'stopped' || record.status === 'cancelled') return EXIT.failures;
  if (failUnder !== undefined) return summary.passRate >= failUnder ? EXIT.ok : EXIT.failures;
  return summary.counts.success === summary.total ? EXIT.ok : EXIT.failures;
}

/** The `--json` summary: stable keys for scripts. */
export function jsonSummary(
  summary: ReportSummary,
  record: RunRecord,
  paths: Partial<Record<ReportFormat, string>>,
  exitCode: number,
): Record<string, unknown> {
  return {
    runId: record.id,
    parentId: record.parentId ?? null,
    plan: record.plan,
    status: record.status,
    stoppedBy: record.stoppedBy ?? null,
    exitCode,
    total: summary.total,
    passed: summary.counts.success,
    failed: summary.counts.failed,
    timeout: summary.counts.timeout,
    error: summary.counts.error,
    cancelled: summary.cancelled,
    passRate: summary.passRate,
    attempts: record.counts.attempts,
    tokens: summary.tokens,
    // Unknown is not 0: null when some case's cost is unknown, with the partial sum labelled.
    cost: summary.costUnknown === 0 ? summary.cost : null,
    costUnknownCases: summary.costUnknown,
    costPartial: summary.costUnknown === 0 ? null : summary.cost,
    // Wall time includes the hours between a resumed run's sessions; active time does not.
    durationSeconds: summary.durationSeconds ?? null,
    activeSeconds: summary.activeSeconds ?? null,
    sessions: summary.sessions,
    // Over the cases that ran to a verdict (`count`); null figures when none did, never 0.
    latencySeconds:
      summary.latency.count === 0
        ? { count: 0, min: null, mean: null, p50: null, p90: null, p95: null, p99: null, max: null }
        : summary.latency,
    reports: paths,
  };
}
