// The process the graceful-stop test interrupts: a durable run of a plan against the mock,
// journaled into a SQLite file, with gracefulStop installed on the real process. On SIGINT or
// SIGTERM it stops as the CLI will: the journal flushed, the run left resumable, exit code 130.
// Plain JS on the built dist/ (STRIDE_DIST overrides where), so it runs without a TS loader.
//   node graceful-child.mjs <db> <plan.yaml> <runId>
const dist = process.env.STRIDE_DIST ?? new URL('../../dist', import.meta.url).pathname;
const { ExecutorService, loadPlan } = await import(`${dist}/index.js`);
const { gracefulStop } = await import(`${dist}/runner/graceful.js`);
const { snapshotPlan } = await import(`${dist}/runner/snapshot.js`);
const { attachJournal, SqliteStore } = await import(`${dist}/store/index.js`);

const [db, planPath, runId] = process.argv.slice(2);
const store = new SqliteStore({ path: db });
const manifest = await loadPlan(planPath);
const prepared = await new ExecutorService().prepare(manifest, undefined, { runId });
const journal = await attachJournal(prepared.run, store, {
  runId,
  plan: snapshotPlan(manifest),
  options: manifest.executionPolicy,
});
const dispose = gracefulStop(prepared.run, journal, {
  store,
  graceMs: 5_000,
  onStop: async ({ runId: id, resumable }) => {
    await prepared.close();
    await store.close();
    process.stdout.write(`stopped ${id} resumable=${resumable}\n`);
    process.exit(130);
  },
});
process.stdout.write('started\n');
const result = await prepared.run.start();
await journal.closed;
// A stopped run is cancelled in memory only: onStop closes everything and exits with 130.
if (result.status !== 'cancelled') {
  dispose();
  await prepared.close();
  await store.close();
  process.stdout.write(`done ${result.tasks.length}\n`);
}
