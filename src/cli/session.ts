/**
 * One CLI session of a durable run (`run`, `resume`, `rerun`, `demo`): live progress, results
 * streamed to JSONL as they settle, Ctrl-C handling, then the summary, the reports and the exit
 * code. Everything durable goes through `RunHistory`; this file only faces the terminal.
 */

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { passRateTrend } from '../compare/trend.js';
import { type Hold, isTerminal, type TaskResult } from '../core/index.js';
import type { TestResult } from '../report/convert.js';
import { makeDirectory } from '../report/disk.js';
import {
  type HtmlOptions,
  JsonlStreamWriter,
  REPORT_FILES,
  type ReportFormat,
  type ReportSummary,
  summarize,
  writeReports,
} from '../report/index.js';
import type { DurableRunResult, DurableSession } from '../runner/durable.js';
import { gracefulStop } from '../runner/graceful.js';
import type { RunHistory } from '../runner/history.js';
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
import { formatRunSummary } from './summary.js';

/** How a session reports. */
export interface SessionOptions {
  readonly history: RunHistory;
  readonly io: Io;
  /** Report directory. */
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

/** What `SessionOptions.afterRun` adds to a session's end. */
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

/** Results waiting for the JSONL file before the run is paused for it (backpressure). */
const JSONL_HIGH_WATER = 2_000;

/**
 * A run id a person can read and type: the local start time and 4 random hex digits, e.g.
 * `20261124-213605-3f9a`. Sorted by time, unique enough for one journal (the store refuses a
 * duplicate with RUN_EXISTS rather than mixing two runs).
 */
export function newRunId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const day = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const time = `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${day}-${time}-${randomBytes(2).toString('hex')}`;
}

/** Runs one session and resolves with the process's exit code. */
export async function runSession(start: SessionStart, options: SessionOptions): Promise<number> {
  const { io, history } = options;
  const jsonlPath = join(options.out, REPORT_FILES.jsonl);
  const streamJsonl = options.formats.includes('jsonl');
  await makeDirectory(options.out);
  // Opened (and so truncated) only once the session holds its run's lock (onStart): a session
  // refused with RUN_LOCKED must not empty the file a live session of that run is writing.
  let jsonl: JsonlStreamWriter | undefined;

  let progress: Progress | undefined;
  let resumable = false;
  let disposeSignals: () => void = () => {};
  let writing: Promise<void> = Promise.resolve();
  let pending = 0;
  let writeError: unknown;
  // Held while the JSONL file is too far behind; a graceful stop holds the run on its own.
  let jsonlHold: Hold | undefined;
  let place: SessionPlace | undefined;
  // What reached results.jsonl, for the message of a failed journal.
  const streamed = { verdicts: 0, cancelled: 0 };

  const onStart = (session: DurableSession): void => {
    const { run } = session;
    place = {
      runId: session.runId,
      history,
      resumeCommand: options.resumeCommand,
      journal: session.journal,
    };
    if (options.progress) {
      progress = new Progress(run, io.stderr, {
        tty: isLiveTerminal(io.stderr, io.env),
        ...(options.before === undefined ? {} : { before: options.before }),
        ...(options.total === undefined ? {} : { total: options.total }),
      });
      progress.start();
    }
    if (streamJsonl) {
      writing = JsonlStreamWriter.open(jsonlPath).then(
        (writer) => {
          jsonl = writer;
        },
        (err: unknown) => {
          writeError = err;
        },
      );
      run.on('transition', (t) => {
        if (!isTerminal(t.to) || !('result' in t)) return;
        const result = session.toTestResult(t.result as TaskResult<never, never>);
        pending++;
        if (pending === JSONL_HIGH_WATER && jsonlHold === undefined) {
          jsonlHold = run.hold('backpressure', { by: REPORT_FILES.jsonl });
        }
        writing = writing.then(async () => {
          try {
            if (writeError === undefined && jsonl !== undefined) {
              await jsonl.write(result);
              if (t.to === 'cancelled') streamed.cancelled++;
              else streamed.verdicts++;
            }
          } catch (err) {
            writeError = err;
          }
          pending--;
          if (jsonlHold !== undefined && pending <= JSONL_HIGH_WATER / 2) {
            jsonlHold.release();
            jsonlHold = undefined;
          }
        });
      });
    }
    disposeSignals = gracefulStop(run, session.journal, {
      store: history.store,
      graceMs: options.graceMs ?? 10_000,
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
  };

  let result: DurableRunResult | undefined;
  let failure: unknown;
  try {
    result = await start({ onStart, retainResults: false });
  } catch (err) {
    failure = err;
  } finally {
    disposeSignals();
    progress?.stop();
    await writing;
    await jsonl?.close().catch((err: unknown) => {
      writeError ??= err;
    });
  }
  // A results.jsonl cut short (a full disk) is not left under its name as if it were complete.
  const jsonlFailure: JsonlFailure | undefined =
    writeError === undefined ? undefined : await keepPartialJsonl(jsonlPath, writeError);
  if (failure !== undefined || result === undefined) {
    const written = jsonl === undefined ? undefined : { path: jsonlPath, ...streamed };
    throw await journalFailure(failure, place, jsonlFailure ?? written);
  }
  const runId = result.runId;

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
  const {
    summary,
    record: final,
    paths,
  } = await writeRunReports(history, runId, {
    out: options.out,
    // A results.jsonl that failed while the run went is written again from the journal.
    formats:
      options.rewriteJsonl === true || jsonlFailure !== undefined
        ? options.formats
        : options.formats.filter((f) => f !== 'jsonl'),
    command: options.command,
    ...(after?.html === undefined ? {} : { html: after.html }),
  }).catch((err: unknown) => {
    throw reportFailure(
      err,
      { runId, history, resumeCommand: options.resumeCommand },
      { out: options.out, formats: options.formats, jsonl: jsonlFailure },
    );
  });
  if (streamJsonl) paths.jsonl = jsonlPath;
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

/** A stored run's record and report summary, read from the journal in one pass. */
export async function summaryOf(
  history: RunHistory,
  runId: string,
  command?: string,
): Promise<{
  record: RunRecord;
  summary: ReportSummary;
  source: () => AsyncGenerator<TestResult>;
}> {
  const record = await history.getRun(runId);
  const source = () => history.results(runId);
  const summary = await summarize(source, {
    runId: record.id,
    plan: record.plan,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    ...(record.parentId === undefined ? {} : { parentId: record.parentId }),
    ...(record.stoppedBy === undefined
      ? {}
      : { stoppedBy: `${record.stoppedBy.rule}: ${record.stoppedBy.message}` }),
    ...(command === undefined ? {} : { command }),
  });
  return { record, summary, source };
}

/**
 * Summarises a stored run and writes its reports from the journal (every case once, also after
 * a resume). Used by every session, test plan or action plan.
 */
export async function writeRunReports(
  history: RunHistory,
  runId: string,
  options: {
    out: string;
    formats: readonly ReportFormat[];
    command?: string;
    html?: HtmlOptions;
  },
): Promise<{
  summary: ReportSummary;
  record: RunRecord;
  paths: Partial<Record<ReportFormat, string>>;
}> {
  const { record, summary, source } = await summaryOf(history, runId, options.command);
  // The HTML report shows the plan's recent pass rates (cheap: stored counts, see passRateTrend).
  const trend =
    options.formats.includes('html') && record.kind === 'test'
      ? await passRateTrend(history, record.plan, { upTo: runId })
      : undefined;
  const written = await writeReports(options.out, options.formats, summary, source, {
    html: { ...(trend === undefined ? {} : { trend }), ...options.html },
  });
  return { summary, record, paths: { ...written } };
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
    cost: summary.cost,
    durationSeconds: summary.durationSeconds ?? null,
    // Over the cases that ran to a verdict (`count`); null figures when none did, never 0.
    latencySeconds:
      summary.latency.count === 0
        ? { count: 0, min: null, mean: null, p50: null, p90: null, p95: null, p99: null, max: null }
        : summary.latency,
    reports: paths,
  };
}
