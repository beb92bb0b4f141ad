/**
 * The CLI on damaged or unusable disks, in process, against the mock on a real socket: a journal
 * damaged under an intact header, report folders that cannot be created or written.
 */

import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { keepPartialJsonl } from '../../src/cli/output.js';
import { runSession } from '../../src/cli/session.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { loadPlan } from '../../src/plans/index.js';
import { RunHistory } from '../../src/runner/history.js';
import { SqliteStore } from '../../src/store/index.js';
import { captureIo, makePlan } from './helpers.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 1 });
});
afterAll(async () => {
  await mock.close();
});

function env(): NodeJS.ProcessEnv {
  return { MOCK_URL: mock.baseUrl };
}

/** Runs a small plan into `db` and returns its run id. */
async function journaledRun(dir: string, plan: string, db: string): Promise<string> {
  const run = captureIo(env());
  const code = await main(
    ['run', plan, '--db', db, '--out', join(dir, 'out'), '--json', '--no-progress'],
    run.io,
  );
  expect(code, run.text.err).toBe(1);
  return (JSON.parse(run.text.out) as { runId: string }).runId;
}

describe('a journal damaged under an intact SQLite header', () => {
  it('resume, rerun, report and show exit 2 with STORE_CORRUPT naming the file; nothing is sent', async () => {
    const { dir, plan } = makePlan({ cases: ['ok', 'error', 'ok'] });
    const db = join(dir, 'stride.db');
    const runId = await journaledRun(dir, plan, db);
    expect(existsSync(`${db}-wal`)).toBe(false);
    const clean = readFileSync(db);
    // The stored plan snapshot is the only JSON text holding "cli-test" in quotes.
    const at = clean.indexOf('"cli-test"');
    expect(at).toBeGreaterThan(0);
    expect(clean.indexOf('"cli-test"', at + 1)).toBe(-1);
    const bytes = Buffer.from(clean);
    bytes[at + 3] = 0x01;
    writeFileSync(db, bytes);
    const sent = mock.stats().runs;
    for (const argv of [
      ['resume', runId, '--db', db, '--out', join(dir, 'again'), '--no-progress'],
      ['rerun', runId, '--errors', '--db', db, '--out', join(dir, 'again'), '--no-progress'],
      ['show', runId, '--db', db],
      ['report', runId, '--db', db, '--format', 'json', '-o', join(dir, 'r.json')],
    ]) {
      const { io, text } = captureIo(env());
      expect(await main(argv, io), `${argv[0]}: ${text.err}`).toBe(2);
      expect(text.err).toContain(`stride: database ${db} is damaged: the plan of run "${runId}"`);
      expect(text.err).toContain('not valid JSON at position');
      expect(text.err).not.toContain('Bad control character');
    }
    expect(mock.stats().runs).toBe(sent);
  });
});

/** A path where nothing can be created: /proc takes no new folders (as root too). */
const PROC_DIR = `/proc/stride-test-${process.pid}`;

describe('report folders and journals that cannot be created: exit 2 before anything ran', () => {
  it.each([
    [
      '--out under a regular file',
      (dir: string) => ['--out', join(dir, 'plan.yaml', 'out')],
      `a part of the path is a file, not a folder (ENOTDIR)`,
    ],
    [
      '--out under /proc',
      () => ['--out', join(PROC_DIR, 'out')],
      'the file system does not allow it (ENOENT)',
    ],
    [
      '--db under a regular file',
      (dir: string) => ['--db', join(dir, 'plan.yaml', 'j.db')],
      'a part of the path is a file, not a folder (ENOTDIR)',
    ],
    [
      '--db under /proc',
      () => ['--db', join(PROC_DIR, 'j.db')],
      'the file system does not allow it (ENOENT)',
    ],
  ])('%s: the message names it and why; no journal, nothing sent', async (_label, flags, why) => {
    const { dir, plan } = makePlan({ cases: ['ok', 'ok'] });
    const argv = [
      'run',
      plan,
      '--db',
      join(dir, 'stride.db'),
      '--out',
      join(dir, 'out'),
      ...flags(dir),
    ];
    const sent = mock.stats().runs;
    const { io, text } = captureIo(env());
    expect(await main(argv, io)).toBe(2);
    const [flag, path] = flags(dir) as [string, string];
    expect(text.err).toContain(
      flag === '--out'
        ? `stride: --out ${path}: cannot create the folder ${path}`
        : `stride: database ${path}: `,
    );
    expect(text.err).toContain(why);
    expect(existsSync(join(dir, 'stride.db'))).toBe(false);
    expect(mock.stats().runs).toBe(sent);
  });

  it('report -o under /proc: exit 2 naming the folder (it used to hang for ever)', async () => {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const db = join(dir, 'stride.db');
    const run = captureIo(env());
    expect(
      await main(['run', plan, '--db', db, '--out', join(dir, 'out'), '--quiet', '--json'], run.io),
    ).toBe(0);
    const runId = (JSON.parse(run.text.out) as { runId: string }).runId;
    const { io, text } = captureIo();
    const out = join(PROC_DIR, 'r.json');
    expect(await main(['report', runId, '--db', db, '--format', 'json', '-o', out], io)).toBe(2);
    expect(text.err).toContain(
      `stride: --output ${PROC_DIR}: cannot create the folder ${PROC_DIR}: the file system does not allow it (ENOENT)`,
    );
  });
});

describe('report files on a full disk (symbolic links to /dev/full: every write fails with ENOSPC)', () => {
  it('results.jsonl fails while the run goes: named, then written again from the journal', async () => {
    const { dir, plan } = makePlan({ cases: ['ok', 'ok', 'ok'] });
    const out = join(dir, 'out', 'D1'); // the run's own folder under --out
    const { io, text } = captureIo(env());
    // The folder exists with results.jsonl leading to /dev/full.
    mkdirSync(out, { recursive: true });
    symlinkSync('/dev/full', join(out, 'results.jsonl'));
    const code = await main(
      [
        'run',
        plan,
        '--db',
        join(dir, 'stride.db'),
        '--out',
        join(dir, 'out'),
        '--run-id',
        'D1',
        '--quiet',
      ],
      io,
    );
    expect(code, text.err).toBe(0);
    expect(text.err).toBe(
      `warning: cannot write ${join(out, 'results.jsonl')}: no space left on the device (ENOSPC) while the run went; it was written again from the journal\n`,
    );
    // A real file now, whole: one line per case.
    expect(lstatSync(join(out, 'results.jsonl')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(existsSync(join(out, 'results.partial.jsonl'))).toBe(false);
  });

  it('reports that cannot be written at the end: exit 1 naming the file, and the command that writes them again', async () => {
    const { dir, plan } = makePlan({ cases: ['ok', 'ok'] });
    const out = join(dir, 'out', 'D2'); // the run's own folder under --out
    const db = join(dir, 'stride.db');
    mkdirSync(out, { recursive: true });
    symlinkSync('/dev/full', join(out, 'results.jsonl'));
    // The temporary file the report is written to before its rename (this process's pid).
    symlinkSync('/dev/full', join(out, `results.jsonl.${process.pid}.tmp`));
    const { io, text } = captureIo(env());
    expect(
      await main(
        ['run', plan, '--db', db, '--out', join(dir, 'out'), '--run-id', 'D2', '--quiet'],
        io,
      ),
    ).toBe(1);
    const file = join(out, 'results.jsonl');
    expect(text.err).toContain(
      `stride: cannot write ${file}: no space left on the device (ENOSPC)\n`,
    );
    const command = /write the reports again with: (stride report .*)\n$/.exec(text.err)?.[1];
    expect(command).toBe(
      `stride report ${/Every result of run (\S+) is in the journal/.exec(text.err)?.[1]} --db ${db} --format jsonl,json,csv,junit,html -o ${out}/`,
    );
    expect(existsSync(join(out, `results.jsonl.${process.pid}.tmp`))).toBe(false); // no leftover
    // Once there is room, that command writes every report from the journal.
    rmSync(file);
    const again = captureIo();
    expect(await main(command!.split(' ').slice(1), again.io), again.text.err).toBe(0);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  });

  it('what a cut stream wrote is kept, whole lines only, as results.partial.jsonl', async () => {
    const { dir } = makePlan({ cases: ['ok'] });
    const path = join(dir, 'results.jsonl');
    writeFileSync(path, '{"id":"a"}\n{"id":"b"}\n{"id":"c","out');
    const kept = await keepPartialJsonl(path, new Error('full'));
    expect(kept.partial).toEqual({ path: join(dir, 'results.partial.jsonl'), lines: 2 });
    expect(readFileSync(join(dir, 'results.partial.jsonl'), 'utf8')).toBe(
      '{"id":"a"}\n{"id":"b"}\n',
    );
    expect(existsSync(path)).toBe(false);
    expect(
      (await keepPartialJsonl(join(dir, 'none.jsonl'), new Error('x'))).partial,
    ).toBeUndefined();
  });
});

describe('a full disk under the journal (an injected SQLite page limit)', () => {
  /** A plan of `n` cases whose answers are 3 kB each (the mock echoes the query). */
  function bigPlan(n: number): { dir: string; plan: string } {
    const { dir, plan } = makePlan({ cases: ['ok'] });
    const pad = 'y'.repeat(3000);
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        id: `c${i}`,
        inputs: { query: `question ${i} ${pad}`, __case: `c${i}` },
        expected: { field: 'text', contains: 'question' },
      }),
    );
    writeFileSync(join(dir, 'cases.jsonl'), `${lines.join('\n')}\n`);
    return { dir, plan };
  }

  async function fullJournal(roomAfterStop: boolean) {
    const { dir, plan } = bigPlan(200);
    const db = join(dir, 'stride.db');
    const out = join(dir, 'out');
    const store = new SqliteStore({ path: db });
    const history = new RunHistory({ store });
    const manifest = await loadPlan(plan, { env: env(), baseDir: dir });
    const raw = (store as unknown as { db: Database.Database }).db;
    const pages = raw.pragma('page_count', { simple: true }) as number;
    raw.pragma(`max_page_count = ${pages + 30}`);
    const sent = mock.stats().runs;
    const { io } = captureIo(env());
    const err = await runSession(
      ({ onStart, retainResults }) =>
        history.run(manifest, {
          retainResults,
          runId: 'full-1',
          onStart: (session) => {
            onStart(session);
            // The disk has room again once the run stopped (someone freed space).
            if (roomAfterStop)
              session.run.on('stopping', () => raw.pragma('max_page_count = 1073741823'));
          },
        }),
      {
        history,
        io,
        out,
        formats: ['jsonl'],
        progress: false,
        quiet: true,
        json: false,
        failUnder: undefined,
        resumeCommand: `stride resume {id} --db ${db}`,
        command: 'stride run',
      },
    ).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    const lines = readFileSync(join(out, 'full-1', 'results.jsonl'), 'utf8')
      .trim()
      .split('\n');
    const verdicts = lines.filter(
      (l) =>
        (JSON.parse(l) as { metadata: { taskStatus: string } }).metadata.taskStatus !== 'cancelled',
    );
    // Read back the journal on a connection of its own, without the page limit.
    const check = new SqliteStore({ path: db });
    const stored: string[] = [];
    for await (const r of check.results('full-1')) if (r.status !== 'cancelled') stored.push(r.id);
    await check.close();
    return { err, db, out, verdicts, stored, requests: mock.stats().runs - sent, plan, dir };
  }

  it('names the file and why, says where the answers are and how to resume (STORE_IO: exit 1)', async () => {
    const r = await fullJournal(false);
    expect(r.err?.code).toBe('STORE_IO');
    const message = r.err!.message;
    expect(message).toContain(
      `database ${r.db}: database or disk is full while writing the journal.`,
    );
    expect(message).not.toContain('while closing');
    expect(message).toContain(
      `${join(r.out, 'full-1', 'results.jsonl')} has this session's ${r.verdicts.length} verdict(s)`,
    );
    expect(message).toContain(`Free space, then resume with: stride resume full-1 --db ${r.db}`);
    expect(message).toMatch(
      /The run was stopped: nothing more was sent, and the \d+ request\(s\) in flight were let finish, not aborted/,
    );
    // Every request that left was answered (none aborted), and every answer is in results.jsonl.
    expect(r.verdicts.length).toBeGreaterThan(0);
    expect(r.verdicts.length).toBeLessThan(200);
    expect(r.requests).toBe(r.verdicts.length);
    const inJsonl = r.verdicts.map((l) => (JSON.parse(l) as { executionId: string }).executionId);
    for (const id of r.stored) expect(inJsonl).toContain(id);
    // The answers the full journal could not take are named, as the cases a resume sends again.
    const missing = inJsonl.filter((id) => !r.stored.includes(id));
    expect(missing.length).toBeGreaterThan(0);
    expect(message).toMatch(
      /The journal keeps what it had written before; \d+ answered case\(s\) may be missing from it \(c\d+.*\): a resume sends them again\./,
    );
    const named = /may be missing from it \(([^)]*)\)/.exec(message)![1]!;
    if (missing.length <= 10) for (const id of missing) expect(named).toContain(id);
    // The resume it suggests finishes the run: every case ends with a verdict.
    const resumed = captureIo(env());
    const code = await main(
      ['resume', 'full-1', '--db', r.db, '--out', r.out, '--quiet'],
      resumed.io,
    );
    expect(code, resumed.text.err).toBe(0);
    expect(
      readFileSync(join(r.out, 'full-1', 'results.jsonl'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(200);
  });

  it('when the disk has room again once the run stopped, the journal keeps every answer that came back', async () => {
    const r = await fullJournal(true);
    expect(r.err?.code).toBe('STORE_IO');
    expect(r.err!.message).toContain(
      'Written once the run had stopped, the journal keeps every result that came back.',
    );
    expect(r.stored.sort()).toEqual(
      r.verdicts.map((l) => (JSON.parse(l) as { executionId: string }).executionId).sort(),
    );
    // Every request that left was answered and kept: none was aborted.
    expect(r.requests).toBe(r.verdicts.length);
  });
});
