/**
 * Teaches the seeds' faces (`ConcurrentExecutor`, `TaskScheduler`, `StubExecutor`) to run a
 * manifest: `runManifest(manifest, token)` streams the plan's cases as tasks with the options
 * its execution policy means, the same mapping ExecutorService uses. Installed when this module
 * loads; the public entry point (src/index.ts) imports it, so core stays free of plan files.
 */

import { installManifestAdapter, StrideError, type TaskSpec } from '../core/index.js';
import { iterateCases, type RunManifest, type TestCase } from '../plans/index.js';
import { runOptionsFor, taskFor } from './executor-service.js';

async function* caseTasks(manifest: RunManifest): AsyncGenerator<TaskSpec<TestCase>> {
  for await (const testCase of iterateCases(manifest)) yield taskFor(testCase);
}

installManifestAdapter({
  tasks(manifest) {
    const m = manifest as RunManifest;
    if (
      m.datasets.length === 0 ||
      m.datasets.every((d) => d.cases.kind === 'inline' && d.cases.cases.length === 0)
    ) {
      throw new StrideError('EMPTY_PLAN', 'RunManifest.cases cannot be empty');
    }
    return caseTasks(m);
  },
  options: (manifest) => runOptionsFor(manifest as RunManifest),
});
