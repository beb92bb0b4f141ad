/**
 * Active time and wall time apart (issue #18 item 4), through the `stride` bin in child
 * processes: a run stopped early (two cases the mock fails, max_failures), its first session moved an hour
 * into the past in the journal (a stored timestamp gap, instead of waiting an hour), then resumed
 * against the mock. Wall time holds the hour; active time is the sum of the two sessions, in the
 * terminal summary, `--json`, results.json, the HTML report and `stride show`.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { startMock } from '../../src/mock/index.js';
import { makePlan, spawnStride } from './helpers.js';

const HOUR = 3_600_000;

interface Times {
  durationSeconds: number;
  activeSeconds: number | null;
  sessions: number;
}

describe('a resumed run: active time apart from wall time', () => {
  it('wall time holds the hour between sessions; active time is the sum of the sessions, in every face', async () => {
    const mock = await startMock({ port: 0, latencyMs: 1 });
    try {
      const env = { MOCK_URL: mock.baseUrl };
      const { dir, plan } = makePlan({
        cases: Array.from({ length: 12 }, (_, i) => (i < 2 ? ('error' as const) : ('ok' as const))),
        concurrency: 1,
        extra: '  stop_conditions: { max_failures: 2 }',
      });
      const db = join(dir, 'j.db');
      // Session 1: the mock fails the first two cases, so the run stops; the rest are cancelled.
      const first = spawnStride(['run', plan, '--json', '--no-progress', '--db', db], {
        cwd: dir,
        env,
      });
      expect(await first.exited, first.stderr()).toBe(1);
      const s1 = JSON.parse(first.stdout()) as Times & { runId: string };
      const runId = s1.runId;
      // one session: active time is the wall time
      expect(s1).toMatchObject({ sessions: 1, activeSeconds: s1.durationSeconds });

      // The fixture: session 1 happened an hour earlier (its start and end move, its length not).
      const raw = new Database(db);
      raw
        .prepare(
          'UPDATE runs SET started_at = started_at - ?, finished_at = finished_at - ? WHERE id = ?',
        )
        .run(HOUR, HOUR, runId);
      raw.close();

      const before = Date.now();
      const resumed = spawnStride(
        ['resume', runId, '--db', db, '--no-progress', '--report', 'json,html', '--out', 'out'],
        { cwd: dir, env },
      );
      const code = await resumed.exited;
      const elapsed = Date.now() - before;
      expect(code, resumed.stderr()).toBe(1); // the two errors of session 1 stay errors

      const doc = JSON.parse(readFileSync(join(dir, 'out', runId, 'results.json'), 'utf8')) as {
        summary: Times & { total: number };
      };
      const s = doc.summary;
      expect(s).toMatchObject({ total: 12, sessions: 2 });
      // active = session 1 + session 2, and session 2 lasted at most the child's lifetime
      const session2 = s.activeSeconds! - s1.durationSeconds;
      expect(session2).toBeGreaterThan(0);
      expect(session2 * 1000).toBeLessThanOrEqual(elapsed);
      // wall time holds the hour; active time does not
      expect(s.durationSeconds).toBeGreaterThanOrEqual(HOUR / 1000);
      expect(s.activeSeconds!).toBeLessThan(s.durationSeconds - HOUR / 1000 + 1e-6);

      // the terminal summary, the HTML report and `stride show` say the same
      expect(resumed.stdout()).toMatch(/^ {2}time {7}active \d.* · wall 60m\d\ds \(2 sessions\)$/m);
      const html = readFileSync(join(dir, 'out', runId, 'report.html'), 'utf8');
      const fact = (name: string) =>
        new RegExp(`data-fact="${name}"><dt>[^<]*</dt><dd>([^<]*)</dd>`).exec(html)?.[1];
      expect(fact('Wall time')).toMatch(/^(60 min|1 h 0 min)/);
      expect(fact('Active time')).toMatch(/^\d+(\.\d+)? (ms|s)$/);
      expect(fact('Sessions')).toBe('2');
      const show = spawnStride(['show', runId, '--db', db], { cwd: dir, env });
      expect(await show.exited).toBe(0);
      expect(show.stdout()).toMatch(/^time {7}active \d.* · wall 60m\d\ds \(2 sessions\)$/m);
      const shown = spawnStride(['show', runId, '--db', db, '--json'], { cwd: dir, env });
      expect(await shown.exited).toBe(0);
      const record = JSON.parse(shown.stdout()) as { activeMs: number };
      expect(record.activeMs / 1000).toBeCloseTo(s.activeSeconds!, 6);
    } finally {
      await mock.close();
    }
  });
});
