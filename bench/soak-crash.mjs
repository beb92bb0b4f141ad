/**
 * The crash soak: the longer run of test/runner/durable-crash.test.ts. Each trial spawns
 * test/runner/crash-child.mjs, which runs an N-case JSONL plan (Dify workflow target against the
 * mock, concurrency 16) into a fresh SQLite file; at a random moment (between 2% and 80% of the
 * cases stored) the child gets `kill -9`; the run is then resumed in this process and checked:
 * one terminal result per case, no stored verdict sent to the mock again, one `maybe_sent`
 * attempt per case running at the kill, the run `completed` with `resumes = 1`, and the final
 * report equal to that of an uninterrupted run of the same plan (run once first), timings aside.
 * The cases are the test's: verdicts fixed per case (passing and failing assertions, HTTP 400,
 * failed workflows, a 500 on the first request of flaky cases), so both runs must agree.
 *
 * Judged at the mock's request counts per case as well (issue 16, items 5 and 6):
 * - every request the mock saw before the kill has an attempt record: an attempt the journal
 *   ended, or the one it shows in flight (recorded `maybe_sent` by the resume);
 * - re-sent: a case with a request whose outcome the journal lost, sent again by the resume.
 *   Only cases in flight in the journal may be (so at most the concurrency);
 * - after the resume, requests = attempt records, but for maybe-sent attempts whose request had
 *   not left when the process died (records - requests <= maybe-sent).
 *
 *   npm run soak                                                 # build, 50 trials of 5,000 cases
 *   node bench/soak-crash.mjs --trials 20 --cases 2000 --seed 7
 *
 * Prints one line per trial and a final table; exits 1 if any trial failed a check.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ExecutorService, loadPlan } from '../dist/index.js';
import { startMock } from '../dist/mock/index.js';
import { resume, runDurable } from '../dist/runner/durable.js';
import { SqliteStore } from '../dist/store/index.js';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} needs a whole number`);
  return n;
}

const TRIALS = arg('trials', 50);
const CASES = arg('cases', 5_000);
const SEED = arg('seed', Date.now() % 1_000_000);
const CHILD = fileURLToPath(new URL('../test/runner/crash-child.mjs', import.meta.url));
const KEY = 'app-soak';

/** mulberry32: a small seeded generator, so a failing trial can be replayed with --seed. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cases with a stored terminal result, read from the file as another process would. */
function storedTotal(db, runId) {
  let conn;
  try {
    conn = new Database(db, { readonly: true, fileMustExist: true });
    const row = conn
      .prepare(
        'SELECT succeeded + failed + timeout + cancelled + error AS n FROM runs WHERE id = ?',
      )
      .get(runId);
    return row?.n ?? 0;
  } catch {
    return 0;
  } finally {
    conn?.close();
  }
}

/** Case `k<i>`, as in test/runner/durable-crash.test.ts: its verdict is fixed by its content. */
function caseLine(i) {
  const id = `k${i}`;
  const inputs = { query: id };
  let expected;
  switch (i % 20) {
    case 3:
      expected = { field: 'text', contains: 'never-in-the-answer' }; // failed
      break;
    case 7:
      expected = { field: 'text', contains: id }; // success, with an assertion
      break;
    case 11:
      inputs.__fault = '400'; // error, not retried
      break;
    case 13:
      inputs.__fault = 'failed'; // a workflow that ends failed with HTTP 200: failed
      break;
    case 17:
      inputs.__fault = '500'; // flaky: a 500 on the first request, then success
      inputs.__fault_times = 1;
      break;
  }
  return JSON.stringify(expected === undefined ? { id, inputs } : { id, inputs, expected });
}

/**
 * A case's report minus what legitimately differs between two runs: timestamp, executionTime,
 * the attempt count (compared apart), and the Dify output's per-request ids and elapsed time.
 */
function reportView(r) {
  let outputs = r.outputs;
  if (typeof outputs === 'object' && outputs !== null) {
    const { workflowRunId: _r, taskId: _t, messageId: _m, elapsedTime: _e, ...rest } = outputs;
    outputs = rest;
  }
  const { timestamp: _at, executionTime: _time, metadata, ...fields } = r;
  const { attemptCount: _attempts, ...meta } = metadata;
  return JSON.stringify({ ...fields, outputs, metadata: meta });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A trial that could not be judged (the child did not start or did not reach the kill, or the
 * judging threw): a failure with its reason, its figures unknown (null), never 0.
 */
function notJudged(killAt, reason) {
  return { killAt, judged: false, problems: [reason] };
}

async function trial(n, random, mock, planPath, manifest, dir, baseline) {
  mock.reset();
  const db = join(dir, `soak-${n}.db`);
  const runId = `soak-${n}`;
  const killAt = Math.floor(CASES * (0.02 + random() * 0.78));
  const child = spawn(process.execPath, [CHILD, db, planPath, 'run', runId], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  let spawnError;
  const exited = new Promise((resolve) => {
    child.once('close', resolve);
    child.once('error', (e) => {
      spawnError = e;
      resolve();
    });
  });
  const deadline = Date.now() + 60_000;
  let progress = storedTotal(db, runId);
  while (progress < killAt && child.exitCode === null && spawnError === undefined) {
    if (Date.now() > deadline) break;
    await sleep(2);
    progress = storedTotal(db, runId);
  }
  const ended = child.exitCode !== null || child.signalCode !== null || spawnError !== undefined;
  child.kill('SIGKILL');
  await exited;
  // A child that could not start, or stopped before the kill (a broken install, a crash), or
  // stalled for a minute is a failed trial with its reason: nothing was killed mid-run, so the
  // trial proves nothing and must not be skipped or counted as a pass.
  if (ended || progress < killAt) {
    const why = spawnError
      ? `could not be spawned: ${spawnError.message}`
      : ended
        ? `ended by itself (exit ${child.exitCode ?? child.signalCode}) with ${progress} of ${killAt} cases stored`
        : `stored ${progress} of ${killAt} cases in 60 s`;
    // Node's crash output: the error line (e.g. `Error [ERR_MODULE_NOT_FOUND]: ...`) says why.
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    const tail = lines.find((l) => /^\w*Error\b|\bError \[/.test(l)) ?? lines.at(-1) ?? '';
    removeDb(db);
    return notJudged(killAt, `the child ${why}${tail ? `: ${tail}` : ''}`);
  }
  const problems = [];
  const before = { ...mock.stats().byCase };

  const store = new SqliteStore({ path: db });
  try {
    const stored = new Set();
    for await (const r of store.results(runId)) stored.add(r.id);
    const state = await store.loadRun(runId);
    const maybeSentIds = new Set(
      state?.unfinished.filter((u) => u.maybeSent).map((u) => u.caseId) ?? [],
    );
    const maybeSent = maybeSentIds.size;
    // The journal's record of each case at the kill: attempts it ended (maybe-sent ones are
    // recorded by the resume, so none is among them yet).
    const ended = new Map();
    for await (const a of store.attempts(runId))
      ended.set(a.caseId, (ended.get(a.caseId) ?? 0) + 1);
    let unrecorded = 0;
    for (const [id, n] of Object.entries(before))
      unrecorded += Math.max(0, n - (ended.get(id) ?? 0) - (maybeSentIds.has(id) ? 1 : 0));
    if (unrecorded > 0)
      problems.push(`${unrecorded} requests at the mock without an attempt record`);
    const started = performance.now();
    const resumed = await resume(new ExecutorService(), manifest, store, runId);
    const resumeMs = performance.now() - started;
    const after = mock.stats().byCase;

    if (resumed.results.length !== CASES) problems.push(`${resumed.results.length} results`);
    const report = new Map(resumed.results.map((r) => [r.executionId, r]));
    const unlike = [];
    let attemptsDiffer = 0;
    for (const [id, expected] of baseline.results) {
      const got = report.get(id);
      if (got === undefined || reportView(got) !== reportView(expected)) unlike.push(id);
      else if (got.metadata.attemptCount !== expected.metadata.attemptCount) {
        attemptsDiffer++;
        // Only a maybe-sent case (its maybe_sent attempt counts, whether or not it arrived), or
        // one that reached the mock before the kill without a stored verdict, may differ.
        if (stored.has(id) || (!maybeSentIds.has(id) && (before[id] ?? 0) === 0)) unlike.push(id);
      }
    }
    if (unlike.length > 0) {
      const at = (id) => {
        const r = report.get(id);
        const e = baseline.results.get(id);
        return (
          `${id} (${stored.has(id) ? 'stored' : maybeSentIds.has(id) ? 'maybe-sent' : 'other'}, ` +
          `requests ${before[id] ?? 0} before the kill, ${after[id] ?? 0} after): ` +
          `${r ? `${reportView(r)} attempts ${r.metadata.attemptCount}` : 'missing'} / uninterrupted ` +
          `${reportView(e)} attempts ${e.metadata.attemptCount}`
        );
      };
      problems.push(
        `${unlike.length} cases unlike the uninterrupted run, first: ${unlike.slice(0, 3).map(at).join(' | ')}`,
      );
    }
    const perCase = new Map();
    for await (const r of store.results(runId)) perCase.set(r.id, (perCase.get(r.id) ?? 0) + 1);
    if (perCase.size !== CASES) problems.push(`${perCase.size} cases stored`);
    const twice = [...perCase.values()].filter((c) => c !== 1).length;
    if (twice > 0) problems.push(`${twice} cases with more than one result`);
    const verdictsResent = [...stored].filter((id) => after[id] !== before[id]).length;
    if (verdictsResent > 0) problems.push(`${verdictsResent} stored verdicts sent again`);
    let neverSent = 0;
    for (let i = 0; i < CASES; i++) if ((after[`k${i}`] ?? 0) < 1) neverSent++;
    if (neverSent > 0) problems.push(`${neverSent} cases never sent`);
    let maybeSentStored = 0;
    for await (const a of store.attempts(runId)) if (a.state === 'maybe_sent') maybeSentStored++;
    if (maybeSentStored !== maybeSent)
      problems.push(`${maybeSentStored} maybe_sent attempts stored, ${maybeSent} expected`);
    const run = await store.getRun(runId);
    if (run?.status !== 'completed') problems.push(`run ${run?.status}`);
    for (const k of ['succeeded', 'failed', 'timeout', 'cancelled', 'error', 'tokens', 'cost'])
      if (run?.counts[k] !== baseline.counts[k])
        problems.push(`counts.${k} ${run?.counts[k]}, uninterrupted ${baseline.counts[k]}`);
    if (run?.resumes !== 1) problems.push(`resumes ${run?.resumes}`);
    // Re-sent: a request whose outcome the journal lost, and the case sent again.
    const resent = Object.keys(before).filter(
      (id) => (after[id] ?? 0) > before[id] && before[id] > (ended.get(id) ?? 0),
    );
    const outside = resent.filter((id) => !maybeSentIds.has(id));
    if (outside.length > 0)
      problems.push(
        `${outside.length} re-sent cases not in flight in the journal: ${outside.slice(0, 5)}`,
      );
    let records = 0;
    for await (const _ of store.attempts(runId)) records++;
    const requests = Object.values(after).reduce((sum, n) => sum + n, 0);
    if (records < requests || records - requests > maybeSent)
      problems.push(`${requests} requests, ${records} attempt records, ${maybeSent} maybe-sent`);
    let lost = 0;
    for (let i = 0; i < CASES; i++) if (!perCase.has(`k${i}`)) lost++;
    return {
      killAt,
      judged: true,
      stored: stored.size,
      maybeSent,
      resent: resent.length,
      resentOutside: outside.length,
      verdictsResent,
      unrecorded,
      lost,
      requests,
      records,
      attemptsDiffer,
      resumeMs,
      problems,
    };
  } finally {
    await store.close();
    removeDb(db);
  }
}

function removeDb(db) {
  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
}

const dir = mkdtempSync(join(os.tmpdir(), 'stride-soak-'));
const mock = await startMock({ apiKeys: [KEY], latencyMs: { min: 5, max: 20 } });
try {
  const lines = Array.from({ length: CASES }, (_, i) => caseLine(i));
  writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
  const planPath = join(dir, 'plan.yaml');
  writeFileSync(
    planPath,
    [
      'workflow_id: crash-soak',
      'target:',
      '  type: dify',
      `  base_url: ${mock.baseUrl}`,
      `  api_key: ${KEY}`,
      '  app: workflow',
      '  response_mode: blocking',
      'cases: cases.jsonl',
      'execution_policy:',
      '  concurrency: 16',
      '  retry_policy: { max_attempts: 3, backoff_seconds: 0.05 }',
      '',
    ].join('\n'),
  );
  const manifest = await loadPlan(planPath);
  // The reference: the same plan, uninterrupted, journaled into its own SQLite file.
  mock.reset();
  const baseStore = new SqliteStore({ path: join(dir, 'baseline.db') });
  let baseline;
  try {
    const run = await runDurable(new ExecutorService(), manifest, baseStore, { runId: 'baseline' });
    baseline = {
      results: new Map(run.results.map((r) => [r.executionId, r])),
      counts: (await baseStore.getRun('baseline')).counts,
    };
  } finally {
    await baseStore.close();
  }
  const random = seeded(SEED);
  const verdicts = {};
  for (const r of baseline.results.values()) verdicts[r.status] = (verdicts[r.status] ?? 0) + 1;
  console.log(
    `crash soak: ${TRIALS} trials of ${CASES} cases, seed ${SEED}; uninterrupted run: ${JSON.stringify(verdicts)}`,
  );
  const all = [];
  const t0 = performance.now();
  for (let n = 0; n < TRIALS; n++) {
    let f;
    try {
      f = await trial(n, random, mock, planPath, manifest, dir, baseline);
    } catch (e) {
      f = notJudged(null, `the trial threw: ${e instanceof Error ? e.message : String(e)}`);
    }
    all.push(f);
    if (!f.judged) {
      console.log(
        `trial ${String(n + 1).padStart(3)}: FAILED, not judged: ${f.problems.join('; ')}`,
      );
      continue;
    }
    console.log(
      `trial ${String(n + 1).padStart(3)}: killed at ${f.stored}/${CASES} stored; in flight (maybe-sent) ${f.maybeSent}; ` +
        `re-sent ${f.resent}; stored verdicts re-sent ${f.verdictsResent}; requests without a record ${f.unrecorded}; ` +
        `requests ${f.requests} / attempt records ${f.records}; lost ${f.lost}; attempts unlike ${f.attemptsDiffer}; resume ${Math.round(f.resumeMs)} ms; ` +
        (f.problems.length === 0 ? 'ok' : `FAILED: ${f.problems.join('; ')}`),
    );
  }
  // Figures are summed over the judged trials only; the table says how many those were.
  const judged = all.filter((f) => f.judged);
  const sum = (k) => judged.reduce((s, f) => s + f[k], 0);
  const failures = all.filter((f) => f.problems.length > 0).length;
  console.log('');
  if (judged.length === 0) {
    console.log(`no trial could be judged (${TRIALS} failed)`);
    process.exitCode = 1;
  } else {
    console.log(
      '| trials (judged) | cases per trial | stored at the kill (min-max) | lost | stored verdicts re-sent | in flight at the kill (sum; max) | re-sent (sum; max per trial) | re-sent not in flight | requests without an attempt record | requests / attempt records | failures | wall s |',
    );
    console.log(
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    const storedAt = judged.map((f) => f.stored);
    const max = (k) => Math.max(...judged.map((f) => f[k]));
    console.log(
      `| ${TRIALS} (${judged.length}) | ${CASES} | ${Math.min(...storedAt)}-${Math.max(...storedAt)} | ${sum('lost')} | ${sum('verdictsResent')} | ` +
        `${sum('maybeSent')}; ${max('maybeSent')} | ${sum('resent')}; ${max('resent')} | ` +
        `${sum('resentOutside')} | ${sum('unrecorded')} | ` +
        `${sum('requests')} / ${sum('records')} | ${failures} | ${((performance.now() - t0) / 1000).toFixed(0)} |`,
    );
    process.exitCode = failures > 0 ? 1 : 0;
  }
} finally {
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
}
