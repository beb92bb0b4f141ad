/**
 * `stride demo` (= `npm start`): the whole product with no service to set up. Starts the built-in
 * mock on a free loopback port with realistic latency and a few random faults, runs the bundled
 * 500-case plan (examples/demo/) against it with live progress, the journal and every report,
 * and exits with the run's code. The plan also assigns faults by case (hangs, persistent 5xx, a
 * 400, retries that pay off) and some assertions fail on purpose, so each outcome shows.
 */

import { fileURLToPath } from 'node:url';
import { checkCases, loadPlan, type RunManifest } from '../plans/index.js';
import { newRunId } from '../store/run-id.js';
import { type ProgressBefore, progressBefore } from './progress.js';
import { type CliRunOptions, runSession } from './session.js';

/** The bundled demo plan (examples/demo/plan.yaml, shipped in the package). */
const DEMO_PLAN = fileURLToPath(new URL('../../examples/demo/plan.yaml', import.meta.url));

/** The pass rate the demo's exit code is judged by (some of its cases fail on purpose). */
const DEMO_FAIL_UNDER = 0.9;

export interface DemoOptions {
  /** Run the first N of the 500 cases. */
  readonly cases: number;
  /** The mock's fault seed. */
  readonly seed: number;
  /** The mock's mean latency in ms. */
  readonly latencyMs: number;
  readonly concurrency?: number;
  /** Resume this interrupted demo run instead of starting one. */
  readonly resume?: string;
  /** The session's options; its `history` is where the demo run is journaled. */
  readonly session: Omit<CliRunOptions, 'total' | 'before'>;
}

/** Runs the demo and resolves with its exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { session } = options;
  const { history } = session;
  const { startMock } = await import('../mock/server.js');
  const mock = await startMock({
    host: '127.0.0.1',
    port: 0,
    latencyMs: { mean: options.latencyMs, stddev: options.latencyMs / 3 },
    // A Retry-After cools the shared bucket down for everyone, as a real provider's does: kept
    // rare so the demo stays short.
    errorRates: { '429': 0.01, '429-retry-after': 0.004, '503': 0.01 },
    retryAfterSeconds: 1,
    seed: options.seed,
    tokens: 60,
  });
  try {
    // The mock's URL reaches the plan through its ${STRIDE_DEMO_URL}: values from the
    // environment are kept out of the plan's hash, so a resume on a new port is the same plan.
    const env = { ...session.io.env, STRIDE_DEMO_URL: mock.baseUrl };
    const failUnder = session.failUnder ?? DEMO_FAIL_UNDER;
    let manifest: RunManifest;
    let before: ProgressBefore | undefined;
    if (options.resume === undefined) {
      const loaded = await loadPlan(DEMO_PLAN, { env, checkCases: false });
      manifest = {
        ...loaded,
        executionPolicy: {
          ...loaded.executionPolicy,
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        },
        select:
          options.cases >= 500
            ? loaded.select
            : { ...loaded.select, range: { from: 1, to: options.cases } },
      };
    } else {
      manifest = await history.planOf(options.resume, { env, checkCases: false });
      before = progressBefore((await history.getRun(options.resume)).counts);
    }
    const stats = await checkCases(manifest);
    if (!session.json) {
      session.io.stderr.write(
        `Stride demo: ${stats.selected} cases of ${manifest.workflowId} against the built-in mock at ${mock.baseUrl}\n` +
          `  (latency ~${options.latencyMs} ms, random 429s and 503s, hangs and 5xx on some cases, ` +
          `some assertions failing on purpose; exit code 0 if at least ${Math.round(failUnder * 100)}% pass)\n`,
      );
    }
    const resumeId = options.resume;
    return await runSession(
      ({ onStart, retainResults }) =>
        resumeId === undefined
          ? history.run(manifest, { onStart, retainResults, runId: newRunId() })
          : history.resume(resumeId, { manifest, onStart, retainResults }),
      {
        ...session,
        failUnder,
        total: stats.selected,
        ...(before === undefined ? {} : { before }),
        rewriteJsonl: resumeId !== undefined,
      },
    );
  } finally {
    await mock.close();
  }
}
