/**
 * Real full disks (issue #16 item 8): small tmpfs file systems mounted by the test, so the
 * ENOSPC comes from the kernel at the size the file system really has, not from /dev/full or an
 * SQLite page limit (test/cli/damage.test.ts has those). Mounting needs root: CI runs as root;
 * elsewhere every test here fails at once, saying so (docs/testing.md, "Full disks").
 *
 * - `--out` filling up while the run goes: the file and the reason named, exit 1, no truncated
 *   `results.jsonl` left looking complete (whole lines kept as `results.partial.jsonl`), and the
 *   printed `stride report` command writes every report once there is room.
 * - `--out` already full: exit 2 before anything is sent.
 * - the journal's disk filling up: STORE_IO naming the database, exit 1; what the journal wrote
 *   stays, nothing it kept is sent again by the resume once there is room.
 */

import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { until } from '../core/harness.js';
import { captureIo, makePlan, spawnStride } from './helpers.js';

let mock: MockServer;
const mounted: string[] = [];
/** A limit for a test that would otherwise hang (child processes start slowly under load). */
const LIMIT = 300_000;

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'test/cli/enospc.test.ts mounts small tmpfs file systems to fill them, which needs root (CI runs as root). Run it as root, or leave this file out: vitest run --exclude test/cli/enospc.test.ts',
    );
  }
  mock = await startMock({ port: 0, latencyMs: 1 });
});

afterAll(async () => {
  for (const dir of mounted.splice(0)) execFileSync('umount', ['-l', dir]);
  await mock?.close();
});

/** A tmpfs of `kb` KiB mounted on a new folder; `resize` gives it another size in place. */
function tmpfs(kb: number): { dir: string; resize(kb: number): void } {
  const dir = mkdtempSync(join(tmpdir(), 'stride-enospc-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k,mode=0755`, 'tmpfs', dir]);
  mounted.push(dir);
  return {
    dir,
    resize: (size) => {
      execFileSync('mount', ['-o', `remount,size=${size}k`, 'tmpfs', dir]);
    },
  };
}

/** Writes `path` until the file system is full (ENOSPC); any other error is thrown. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

function env(): NodeJS.ProcessEnv {
  return { MOCK_URL: mock.baseUrl };
}

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

/** Requests the mock saw per case `c<i>` since `before` (a `byCase` snapshot). */
function sentSince(before: Record<string, number>): Map<string, number> {
  const now = mock.stats().byCase;
  return new Map(
    Object.entries(now)
      .map(([id, n]) => [id, n - (before[id] ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );
}

describe('a real full disk (tmpfs)', () => {
  it(
    '--out fills up while the run goes: file and reason named, exit 1, no truncated results.jsonl; the printed command writes every report once there is room',
    async () => {
      const { plan } = bigPlan(200);
      // About 10 of the 200 results fit; the journal has room (a tmpfs too: fast and clean).
      const outFs = tmpfs(64);
      const dbFs = tmpfs(32 * 1024);
      const out = join(outFs.dir, 'out');
      const db = join(dbFs.dir, 'stride.db');
      const { io, text } = captureIo(env());
      const code = await main(
        ['run', plan, '--db', db, '--out', out, '--run-id', 'E1', '--quiet'],
        io,
      );
      expect(code, text.err).toBe(1);
      const file = join(out, 'E1', 'results.jsonl'); // the run's own folder under --out
      expect(text.err).toContain(
        `stride: cannot write ${file}: no space left on the device (ENOSPC)`,
      );
      // Nothing that looks complete and is not: no report, no temporary file; what the stream
      // wrote is kept as whole lines under a name that says partial.
      expect(readdirSync(join(out, 'E1'))).toEqual(['results.partial.jsonl']);
      const partial = readFileSync(join(out, 'E1', 'results.partial.jsonl'), 'utf8');
      expect(partial.endsWith('\n')).toBe(true);
      const kept = partial.trim().split('\n');
      for (const line of kept) expect(() => JSON.parse(line)).not.toThrow();
      expect(kept.length).toBeLessThan(200);
      // Every result is in the journal: the run was not cut short by its reports.
      const runId = /Every result of run (\S+) is in the journal/.exec(text.err)?.[1];
      expect(runId, text.err).toBeDefined();
      const store = new SqliteStore({ path: db });
      let stored = 0;
      for await (const r of store.results(runId!)) if (r.status !== 'cancelled') stored++;
      await store.close();
      expect(stored).toBe(200);
      // Once there is room, the command it printed writes every report from the journal.
      const command = /write the reports again with: (stride report .*)\n/.exec(text.err)?.[1];
      expect(command, text.err).toBeDefined();
      outFs.resize(16 * 1024);
      const again = captureIo();
      expect(await main(command!.split(' ').slice(1), again.io), again.text.err).toBe(0);
      expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(200);
    },
    LIMIT,
  );

  it(
    '--out on a disk already full: exit 2 naming --out and the reason, nothing sent, no journal',
    async () => {
      const { dir, plan } = makePlan({ cases: ['ok', 'ok'] });
      const outFs = tmpfs(16);
      // Filled to the last byte by a file of its own.
      const filler = join(outFs.dir, 'filler');
      expect(() => writeFileSync(filler, Buffer.alloc(64 * 1024))).toThrow(/ENOSPC/);
      const out = join(outFs.dir, 'out');
      const db = join(dir, 'stride.db');
      const before = { ...mock.stats().byCase };
      const { io, text } = captureIo(env());
      expect(await main(['run', plan, '--db', db, '--out', out, '--quiet'], io)).toBe(2);
      expect(text.err).toMatch(
        /^stride: --out .*: cannot write in the folder .*: no space left on the device \(ENOSPC\)/,
      );
      expect(text.err).toContain(out);
      expect(sentSince(before).size).toBe(0);
      expect(existsSync(db)).toBe(false);
    },
    LIMIT,
  );

  it(
    'the journal fills up: STORE_IO naming the database, exit 1; what it wrote stays and is not sent again by the resume once there is room',
    async () => {
      const { dir, plan } = bigPlan(200);
      // A disk with room for the start of the run, filled to the last byte once 20 requests have
      // reached the mock (by a file of the test's, as any other writer would).
      const dbFs = tmpfs(16 * 1024);
      const db = join(dbFs.dir, 'stride.db');
      const out = join(dir, 'out');
      mkdirSync(out);
      const before = { ...mock.stats().byCase };
      // Real processes: the run's lock is let go when its process ends, as after any crash.
      const run = spawnStride(['run', plan, '--db', db, '--out', out, '--quiet'], {
        cwd: dir,
        env: env(),
      });
      await until(() => sentSince(before).size >= 20, '20 requests at the mock', 120_000);
      const filler = join(dbFs.dir, 'filler');
      fill(filler);
      const code = await run.exited;
      const text = { err: run.stderr() };
      expect(code, text.err).toBe(1);
      expect(text.err).toContain(
        `database ${db}: database or disk is full while writing the journal.`,
      );
      const runId = /resume with: stride resume (\S+) --db/.exec(text.err)?.[1];
      expect(runId, text.err).toBeDefined();
      // What the journal kept, read on a connection of its own once there is room again.
      rmSync(filler);
      const check = new SqliteStore({ path: db });
      const kept: string[] = [];
      for await (const r of check.results(runId!)) if (r.status !== 'cancelled') kept.push(r.id);
      await check.close();
      const sent = sentSince(before);
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.length).toBeLessThan(200);
      expect(sent.size).toBeLessThan(200); // nothing more was sent once the disk was full
      // Now the resume finishes the run, and sends nothing the journal kept.
      const resumed = spawnStride(['resume', runId!, '--db', db, '--out', out, '--quiet'], {
        cwd: dir,
        env: env(),
      });
      expect(await resumed.exited, resumed.stderr()).toBe(0);
      expect(
        readFileSync(join(out, runId!, 'results.jsonl'), 'utf8')
          .trim()
          .split('\n'),
      ).toHaveLength(200);
      const total = sentSince(before);
      for (const id of kept) expect(total.get(id), id).toBe(1);
      expect(total.size).toBe(200);
    },
    LIMIT,
  );
});
