/** Run ids are checked where runs are created: every store, whatever face created the run. */

import { describe, expect, test } from 'vitest';
import { isStrideError } from '../../src/core/index.js';
import {
  MemoryStore,
  RUN_ID_MAX_LENGTH,
  runIdProblem,
  SqliteStore,
  STORED_RUN_ID_MAX_LENGTH,
} from '../../src/store/index.js';
import { newRun } from './contract.js';
import { tempDb } from './helpers.js';

describe('runIdProblem', () => {
  test('says what is wrong, or nothing', () => {
    expect(runIdProblem('20261124-213605-3f9a')).toBeUndefined();
    expect(runIdProblem('3f1c0e58-7d2a-4b8e-9c1d-2f6a5b4e3d21')).toBeUndefined(); // the engine's UUIDs
    expect(runIdProblem('plan-7:rollback')).toBeUndefined();
    expect(runIdProblem('発注.v2')).toBeUndefined(); // letters of any script
    expect(runIdProblem('../../../etc/x')).toBe('has "." first');
    expect(runIdProblem('a/b')).toBe('has "/"');
    expect(runIdProblem('a\\b')).toBe('has "\\\\"');
    expect(runIdProblem('..')).toBe('has "." first');
    expect(runIdProblem('x'.repeat(5000))).toBe('is 5000 characters long');
    expect(runIdProblem('x'.repeat(RUN_ID_MAX_LENGTH))).toBeUndefined();
    expect(runIdProblem('tab\there')).toBe('has U+0009');
    expect(runIdProblem('')).toBe('is empty');
    expect(runIdProblem(42)).toBe('is not a string');
  });
});

describe.each([
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => new SqliteStore({ path: tempDb() })],
])('%s.createRun refuses a bad run id', (_name, make) => {
  test.each([
    ['../../../etc/x', '../../../etc/x', 'it has "." first'],
    ['a/b', 'a/b', 'it has "/"'],
    ['5,000 characters', 'x'.repeat(5000), 'it is 5000 characters long'],
  ])('%s', async (_label, id, problem) => {
    const store = make();
    const err = await store.createRun(newRun(id)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStrideError(err) && err.code).toBe('INVALID_OPTION');
    const message = (err as Error).message;
    expect(message).toMatch(/^invalid option run\.id: "/);
    expect(message).toContain(problem);
    expect(message).toContain(`at most ${STORED_RUN_ID_MAX_LENGTH} characters`);
    expect(message.length).toBeLessThan(300);
    expect(await store.listRuns()).toEqual([]);
    await store.close();
  });

  test('an id up to the stored limit is kept (room for the :rollback suffix)', async () => {
    const store = make();
    const id = `${'r'.repeat(RUN_ID_MAX_LENGTH)}:rollback`;
    await store.createRun(newRun(id));
    expect((await store.listRuns()).map((r) => r.id)).toEqual([id]);
    await store.close();
  });
});
