// The process the crash tests kill: a durable run (or a resume) of a plan against the mock,
// journaled into a SQLite file. Plain JS on the built dist/, so it runs without a TS loader.
//   node crash-child.mjs <db> <plan.yaml> <run|resume> <runId> [freezeAfter]
//
// With `freezeAfter` N the process freezes at a moment chosen for the journal's worst case: a
// request that just reached its socket (undici publishes `bodySent` once the bytes are written)
// while its start is not in the journal file yet, the first such request from the Nth on; if the
// journal always keeps up, the (N + 50)th request. The thread then blocks (Atomics.wait, no
// timeout), and the test kills it: the mock has every request that was sent (the child prints
// `frozen <requests sent>`), and nothing else runs, no journal commit either. The cases' query
// is their id (the test plans are written so), which names the request's case.
import { subscribe } from 'node:diagnostics_channel';
import { writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ExecutorService, loadPlan } from '../../dist/index.js';
import { resume, runDurable } from '../../dist/runner/durable.js';
import { SqliteStore } from '../../dist/store/index.js';

const [db, planPath, mode, runId, freezeAfter] = process.argv.slice(2);
const store = new SqliteStore({ path: db });
const manifest = await loadPlan(planPath);

if (freezeAfter !== undefined) {
  const from = Number(freezeAfter);
  const frozen = new Int32Array(new SharedArrayBuffer(4));
  const perCase = new Map();
  let reader;
  let sent = 0;
  subscribe('undici:request:bodySent', ({ request }) => {
    const id = JSON.parse(String(request.body)).inputs?.query;
    const n = (perCase.get(id) ?? 0) + 1;
    perCase.set(id, n);
    if (++sent < from) return;
    // What a process reading the file sees now: as many starts of this case as its requests?
    reader ??= new Database(db, { readonly: true, fileMustExist: true });
    const { starts } = reader
      .prepare(
        "SELECT count(*) AS starts FROM transitions WHERE run_id = ? AND case_id = ? AND to_state = 'running'",
      )
      .get(runId, id);
    if (starts >= n && sent < from + 50) return;
    writeSync(1, `frozen ${sent}\n`);
    Atomics.wait(frozen, 0, 0);
  });
}

process.stdout.write('started\n');
const { results } =
  mode === 'resume'
    ? await resume(new ExecutorService(), manifest, store, runId)
    : await runDurable(new ExecutorService(), manifest, store, { runId });
await store.close();
process.stdout.write(`done ${results.length}\n`);
