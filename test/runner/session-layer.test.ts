/**
 * The run session owns every journal record (issue #15 item 1: "the CLI writes no journal
 * record"): the faces (src/cli, src/dashboard) call no Store method that writes a run's journal.
 * They read, ask for control (`requestControl`: a request the driving session takes and
 * records), prune (`stride prune`) and close. A face that appended a record itself would be
 * missed by library users, as the CLI's REDELIVERED attempts once were.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

/** The Store port's methods that write a run's journal, its lock or its live state. */
const WRITES = [
  'createRun',
  'reopenRun',
  'append',
  'finishRun',
  'appendPace',
  'appendAnswer',
  'lockRun',
  'writeLive',
  'takeControl',
  'commit',
];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'client') out.push(...sources(path)); // the browser's DOM code, no store
    } else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('the session layer owns the journal', () => {
  test('the CLI and the dashboard write no journal record themselves', () => {
    const port = readFileSync(join(root, 'src', 'store', 'port.ts'), 'utf8');
    for (const m of WRITES) expect(port, m).toMatch(new RegExp(`\\n  ${m}\\(`));
    const found: string[] = [];
    for (const face of ['cli', 'dashboard']) {
      for (const file of sources(join(root, 'src', face))) {
        const text = readFileSync(file, 'utf8');
        for (const m of WRITES) {
          for (const hit of text.matchAll(new RegExp(`\\.${m}\\(`, 'g'))) {
            const line = text.slice(0, hit.index).split('\n').length;
            found.push(`${file.slice(root.length + 1)}:${line} .${m}(`);
          }
        }
      }
    }
    expect(found).toEqual([]);
  });
});
