/**
 * `stride run` / `stride resume` of an action plan: the Executor with the built-in tools,
 * journaled like a test plan, one line per step event, Ctrl-C handling, the summary and the
 * reports (one entry per step) from the journal.
 */

import { resolve } from 'node:path';
import { actionPlan } from '../actions/adapter.js';
import { Executor } from '../actions/executor.js';
import { type ActionPlanFile, parseActionPlan, readActionPlanText } from '../actions/load.js';
import { ToolRegistry } from '../actions/registry.js';
import { fileRootWarnings } from '../actions/root-check.js';
import type { ActionPlan, ExecutionResult } from '../actions/types.js';
import type { ReportFormat } from '../report/index.js';
import { openRunFolder } from '../report/run-folder.js';
import type { RunHistory } from '../runner/history.js';
import { RunSession } from '../runner/session.js';
import type { Io } from './io.js';
import { EXIT, jsonSummary, writeRunReports } from './session.js';
import { beforeStartMessage, claimSignals } from './signals.js';

export interface ActionRunOptions {
  readonly history: RunHistory;
  readonly io: Io;
  readonly out: string;
  readonly formats: readonly ReportFormat[];
  readonly progress: boolean;
  readonly quiet: boolean;
  readonly json: boolean;
  readonly resumeCommand: string;
  readonly command: string;
  /** `-j`: overrides `max_concurrent_steps`. */
  readonly concurrency?: number;
  /** `--timeout`: overrides `timeout_policy.step_timeout`. */
  readonly timeoutMs?: number;
  readonly graceMs?: number;
}

/** The tools a plan file gets: the built-ins, with file tools inside its `tools.root`. */
export function registryFor(file: ActionPlanFile): ToolRegistry {
  return ToolRegistry.withBuiltins({
    ...(file.fileRoot === undefined ? {} : { root: file.fileRoot }),
    ...(file.http === undefined ? {} : { http: file.http }),
  });
}

/**
 * Loads an action plan file, checking its tools against the registry it will run with.
 * `warnings` says what is legal but likely a mistake (a file sandbox that confines nothing).
 */
export async function loadActionFile(
  path: string,
  env: NodeJS.ProcessEnv,
): Promise<{ file: ActionPlanFile; tools: ToolRegistry; warnings: string[] }> {
  const text = await readActionPlanText(path);
  const tools = registryFor(parseActionPlan(text, { env, file: path }));
  // The tools depend on the file (`tools.root`): the text is parsed again with their names, so
  // an unknown tool is reported at its step.
  const file = parseActionPlan(text, { env, tools: tools.names(), file: path });
  return { file, tools, warnings: await fileRootWarnings(file) };
}

/** The plan as a run of it: the run id as its id, the file's id and path kept in metadata. */
function asRun(file: ActionPlanFile, runId: string): ActionPlan {
  return {
    ...file.plan,
    id: runId,
    name: file.plan.name ?? file.plan.id,
    metadata: {
      ...(file.plan.metadata ?? {}),
      planId: file.plan.id,
      file: resolve(file.file ?? ''),
    },
  };
}

/** Runs (or resumes) an action plan and resolves with the exit code. */
export async function runActionPlan(
  planPath: string,
  runId: string,
  options: ActionRunOptions & { readonly resume?: boolean },
): Promise<number> {
  const { io, history } = options;
  const { file, tools, warnings } = await loadActionFile(planPath, io.env);
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  const plan = asRun(file, runId);
  const concurrency = options.concurrency ?? file.maxConcurrentSteps;
  const executor = new Executor({
    toolRegistry: tools,
    store: history.store,
    ...(file.autoRollback === undefined ? {} : { autoRollback: file.autoRollback }),
    ...(file.failFast === undefined ? {} : { failFast: file.failFast }),
    ...(concurrency === undefined ? {} : { maxConcurrentSteps: concurrency }),
    ...(file.retryPolicy === undefined ? {} : { retryPolicy: file.retryPolicy }),
    ...(file.resourceLimits === undefined ? {} : { resourceLimits: file.resourceLimits }),
    timeoutPolicy: {
      ...file.timeoutPolicy,
      ...(options.timeoutMs === undefined ? {} : { stepTimeoutMs: options.timeoutMs }),
    },
  });
  const err = io.stderr;
  if (options.progress) {
    executor.on('step', (e) => {
      if (e.status === 'running')
        err.write(`  > ${e.stepId}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}\n`);
      else err.write(`  ${e.status === 'completed' ? 'ok' : e.status.padEnd(2)} ${e.stepId}\n`);
    });
    executor.on('compensation', (e) => {
      if (e.status === 'running') err.write(`  < undo ${e.stepId}\n`);
      else if (e.status === 'failed') err.write(`  ! undo ${e.stepId} failed\n`);
    });
  }
  if (!options.json && !options.quiet) {
    err.write(
      `${options.resume === true ? 'Resuming' : 'Running'} action plan ${plan.name} (${plan.steps.length} steps) as run ${runId}\n`,
    );
  }
  // Ctrl-C before the graceful stop is installed waits for it (signals.ts).
  const { gate: signals, interrupted: early } = claimSignals();
  if (early !== undefined) {
    err.write(beforeStartMessage(early));
    return EXIT.interrupted;
  }
  // The same run session as a test plan's: signals, holds, who holds it.
  const session = new RunSession(
    actionPlan(executor, plan, options.resume === true ? { resume: true } : {}),
    {
      signals,
      store: history.store,
      graceMs: options.graceMs ?? 10_000,
      onStop: (info) => {
        err.write(
          `\nInterrupted (${info.signal}${info.aborted ? ', in-flight steps aborted' : ''}); the journal is flushed.\n`,
        );
      },
    },
  );
  const { result, interrupted } = await session.drive().finally(() => signals.dispose());
  if (interrupted !== undefined) {
    err.write(`Resume with: ${options.resumeCommand.replace('{id}', runId)}\n`);
    if (options.json) io.stdout.write(`${JSON.stringify({ runId, status: 'interrupted' })}\n`);
    return EXIT.interrupted;
  }
  // The run's own folder under --out, and `latest` pointed at it (issue #18 item 14).
  const { dir } = await openRunFolder(options.out, runId);
  const { summary, record, paths } = await writeRunReports(history, runId, {
    out: dir,
    formats: options.formats,
    command: options.command,
  });
  const code = result.status === 'completed' ? EXIT.ok : EXIT.failures;
  if (options.json) {
    io.stdout.write(
      `${JSON.stringify({ ...jsonSummary(summary, record, paths, code), kind: 'action', execution: result })}\n`,
    );
    return code;
  }
  io.stdout.write(`${formatExecution(result, options.quiet)}\n`);
  if (!options.quiet) {
    for (const [format, path] of Object.entries(paths))
      io.stdout.write(`    ${format.padEnd(6)} ${path}\n`);
  }
  return code;
}

/** The summary of an action plan run. */
export function formatExecution(r: ExecutionResult, quiet: boolean): string {
  const done = r.stepResults.filter((s) => s.status === 'completed').length;
  const head = `Run ${r.planId}: ${r.status} (${done}/${r.stepResults.length} steps completed${r.error === undefined ? '' : `; ${r.error.type}: ${r.error.message}`})`;
  if (quiet) return head;
  const width = Math.max(4, ...r.stepResults.map((s) => s.stepId.length));
  const lines = ['', head, '  steps:'];
  for (const s of r.stepResults) {
    lines.push(
      `    ${s.stepId.padEnd(width)}  ${s.status.padEnd(9)} ${String(Math.round(s.executionTime)).padStart(6)} ms${s.retryCount > 0 ? `  ${s.retryCount} retr${s.retryCount === 1 ? 'y' : 'ies'}` : ''}${s.error === undefined ? '' : `  ${s.error}`}`,
    );
  }
  const u = r.resourceUsage;
  lines.push(
    `  usage:    ${u.toolInvocations} tool calls, ${u.networkRequests} network requests, ${u.diskReads} disk reads (${u.diskBytesRead} B), ${u.diskWrites} writes (${u.diskBytesWritten} B), cpu ${Math.round(u.cpuTimeMs)} ms, peak memory ${u.memoryPeakMb} MB`,
  );
  if (r.rollback !== undefined) {
    lines.push(`  rollback: ${r.rollback.status}`);
    for (const c of r.rollback.compensations) {
      lines.push(
        `    undo ${c.stepId}: ${c.status}${c.outcomeUnknown ? ' (outcome of the step unknown)' : ''}${c.error === undefined ? '' : `: ${c.error}`}`,
      );
    }
  }
  lines.push('  reports:');
  return lines.join('\n');
}
