/**
 * Issue #18 item 14: each run writes its reports to its own folder under `--out`
 * (`<out>/<run-id>/`) and `<out>/latest` points at the last one, so an action-plan run no longer
 * replaces a test plan's reports. `stride report ID` writes to the run's folder by default. The
 * in-process CLI against the mock on a real socket, real files.
 */

import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/app.js';
import { type MockServer, startMock } from '../../src/mock/index.js';
import { latestRunId, openRunFolder } from '../../src/report/run-folder.js';
import { captureIo, makePlan } from './helpers.js';

const ACTION_EXAMPLE = resolve(import.meta.dirname, '../../examples/actions/publish-notes');
const FILES = ['junit.xml', 'report.html', 'results.csv', 'results.json', 'results.jsonl'];

let mock: MockServer;
beforeAll(async () => {
  mock = await startMock({ port: 0, latencyMs: 1 });
});
afterAll(async () => {
  await mock.close();
});

describe('a folder per run under --out', () => {
  it('a test plan then an action plan with the same --out keep both runs, latest is the second; report rebuilds either', async () => {
    const { dir, plan } = makePlan({ cases: ['ok', 'fail', 'ok'] });
    const db = join(dir, 'stride.db');
    const out = join(dir, 'out');
    const first = captureIo({ MOCK_URL: mock.baseUrl });
    expect(
      await main(['run', plan, '--db', db, '--out', out, '--run-id', 'T1', '--json'], first.io),
    ).toBe(1);
    expect(JSON.parse(first.text.out).reports).toMatchObject({
      junit: join(out, 'T1', 'junit.xml'),
    });

    // The action plan example, run from the same folder with the same --out.
    mkdirSync(join(dir, 'sandbox'));
    const actionPlan = join(dir, 'actions.yaml');
    writeFileSync(actionPlan, readFileSync(join(ACTION_EXAMPLE, 'plan.yaml')));
    const second = captureIo(); // its tools' root, sandbox/, is next to the plan file
    expect(
      await main(['run', actionPlan, '--db', db, '--out', out, '--run-id', 'A2', '-q'], second.io),
      second.text.err,
    ).toBe(0);

    // Both runs' reports are there, each whole; before the fix A2's replaced T1's in out/.
    expect(readdirSync(out).sort()).toEqual(['A2', 'T1', 'latest']);
    expect(readdirSync(join(out, 'T1')).sort()).toEqual(FILES);
    expect(readdirSync(join(out, 'A2')).sort()).toEqual(FILES);
    const t1 = JSON.parse(readFileSync(join(out, 'T1', 'results.json'), 'utf8'));
    const a2 = JSON.parse(readFileSync(join(out, 'A2', 'results.json'), 'utf8'));
    expect([t1.summary.meta.runId, t1.results?.length]).toEqual(['T1', 3]);
    expect(a2.summary.meta.runId).toBe('A2');
    // latest: a relative link to the second run's folder.
    expect(lstatSync(join(out, 'latest')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(out, 'latest'))).toBe('A2');
    expect(readFileSync(join(out, 'latest', 'results.json'), 'utf8')).toBe(
      readFileSync(join(out, 'A2', 'results.json'), 'utf8'),
    );
    expect(await latestRunId(out)).toBe('A2');

    // `stride report ID` rebuilds the first run's reports into its own folder by default.
    const before = readFileSync(join(out, 'T1', 'junit.xml'), 'utf8');
    rmSync(join(out, 'T1'), { recursive: true });
    const cwd = process.cwd();
    process.chdir(dir); // the default is stride-out/<run-id>/ under the working folder
    const rep = captureIo();
    try {
      expect(await main(['report', 'T1', '--db', db, '--format', 'junit'], rep.io)).toBe(0);
    } finally {
      process.chdir(cwd);
    }
    expect(rep.text.out).toBe(`junit  ${join('stride-out', 'T1', 'junit.xml')}\n`);
    const rebuilt = readFileSync(join(dir, 'stride-out', 'T1', 'junit.xml'), 'utf8');
    // The same testcases (the timestamp attribute is when the file was written).
    const cases = (xml: string) => xml.match(/<testcase [^>]*name="[^"]*"/g);
    expect(cases(rebuilt)).toEqual(cases(before));
    // A report is not a run: latest is untouched.
    expect(existsSync(join(dir, 'stride-out', 'latest'))).toBe(false);
  });

  it('where links cannot be made, latest.txt names the folder instead', async () => {
    const out = mkdtempSync(join(tmpdir(), 'stride-latest-'));
    const refuse = async () => {
      throw Object.assign(new Error('operation not permitted'), { code: 'EPERM' });
    };
    const opened = await openRunFolder(out, 'R1', refuse);
    expect(opened).toEqual({
      dir: join(out, 'R1'),
      latest: { kind: 'index', path: join(out, 'latest.txt'), reason: 'EPERM' },
    });
    expect(readFileSync(join(out, 'latest.txt'), 'utf8')).toBe('R1\n');
    await openRunFolder(out, 'R2', refuse);
    expect(await latestRunId(out)).toBe('R2');
    expect(readdirSync(out).sort()).toEqual(['R1', 'R2', 'latest.txt']);
  });

  it('a run whose id is "latest" keeps its folder; a real folder named latest is left alone', async () => {
    const out = mkdtempSync(join(tmpdir(), 'stride-latest-'));
    await openRunFolder(out, 'latest');
    expect(lstatSync(join(out, 'latest')).isDirectory()).toBe(true);
    expect((await openRunFolder(out, 'R3')).latest).toBeUndefined();
    expect(lstatSync(join(out, 'latest')).isDirectory()).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['R3', 'latest']); // no temporary link left
  });
});
