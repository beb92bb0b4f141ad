/**
 * What the tests that interrupt a run in a child process share: the Dify plan they run against
 * the mock, how many verdicts the child has stored (read from its SQLite file, as another process
 * would), and waiting for the child to get that far or to exit.
 */

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** Writes `plan.yaml` in `dir` (a Dify workflow on the mock, cases from `cases.jsonl`). */
export function writeDifyPlan(
  dir: string,
  plan: { workflowId: string; baseUrl: string; apiKey: string; concurrency: number },
): string {
  const path = join(dir, 'plan.yaml');
  writeFileSync(
    path,
    [
      `workflow_id: ${plan.workflowId}`,
      'target:',
      '  type: dify',
      `  base_url: ${plan.baseUrl}`,
      `  api_key: ${plan.apiKey}`,
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      `  concurrency: ${plan.concurrency}`,
      '  retry_policy: { max_attempts: 3, backoff_seconds: 0.05 }',
      '',
    ].join('\n'),
  );
  return path;
}

/** Cases with a stored terminal result, read from the file as another process would. */
export function storedTotal(db: string, runId: string): number {
  let conn: Database.Database | undefined;
  try {
    conn = new Database(db, { readonly: true, fileMustExist: true });
    const row = conn
      .prepare(
        'SELECT succeeded + failed + timeout + cancelled + error AS n FROM runs WHERE id = ?',
      )
      .get(runId) as { n: number } | undefined;
    return row?.n ?? 0;
  } catch {
    return 0; // not created yet
  } finally {
    conn?.close();
  }
}

/**
 * Waits until the child has stored `n` verdicts or exited. A poll on the file: another process's
 * SQLite writes send no event to wait for.
 */
export async function whenStored(
  child: ChildProcess,
  db: string,
  runId: string,
  n: number,
  timeoutMs: number,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (storedTotal(db, runId) < n && child.exitCode === null) {
    if (Date.now() > deadline) throw new Error(`the child made no progress: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Resolves with the child's exit code once it exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/**
 * Waits for `cond` (an event in a file, at the mock, in a child), checking every 10 ms; fails
 * naming `what` and the child's stderr after 60 s (a CLI child took over 10 s to start with the
 * load average at 20 on 2 cores). A guard against a hang, not a timing check.
 */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  child?: { stderr(): string },
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${child?.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
