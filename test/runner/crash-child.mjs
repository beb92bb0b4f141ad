// The process the crash test kills: a durable run (or a resume) of a plan against the mock,
// journaled into a SQLite file. Plain JS on the built dist/, so it runs without a TS loader.
//   node crash-child.mjs <db> <plan.yaml> <run|resume> <runId>
import { ExecutorService, loadPlan } from '../../dist/index.js';
import { resume, runDurable } from '../../dist/runner/durable.js';
import { SqliteStore } from '../../dist/store/index.js';

const [db, planPath, mode, runId] = process.argv.slice(2);
const store = new SqliteStore({ path: db });
const manifest = await loadPlan(planPath);
const service = new ExecutorService();
process.stdout.write('started\n');
const { results } =
  mode === 'resume'
    ? await resume(service, manifest, store, runId)
    : await runDurable(service, manifest, store, { runId });
await store.close();
process.stdout.write(`done ${results.length}\n`);
