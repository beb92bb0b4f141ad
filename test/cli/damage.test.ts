/**
 * The CLI on damaged or unusable disks, in process, against the mock on a real socket: a journal
 * damaged under an intact header, report folders that cannot be created or written.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
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
