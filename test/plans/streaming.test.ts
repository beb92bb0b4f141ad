import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { iterateCases, parsePlan, readCases } from '../../src/plans/index.js';
import { collect, removeTempDirs, tempFiles } from './helpers.js';

afterAll(removeTempDirs);

// 50,000 cases (200,000 before, issue #14): a file of 5 MB read line by line proves the reader
// streams, selects, samples and ranges as well as one of 20 MB, at a quarter of the time.
const COUNT = 50_000;

async function writeCases(path: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < count; i++) {
    const line = `{"id":"c${i}","inputs":{"query":"question ${i}"},"tags":["${i % 10 === 0 ? 'tenth' : 'rest'}"],"expected":{"contains":"a"}}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

describe('streaming a large case file', () => {
  test(`reads ${COUNT.toLocaleString('en')} JSONL cases, one at a time`, async () => {
    const dir = await tempFiles();
    await writeCases(join(dir, 'big.jsonl'), COUNT);
    let count = 0;
    let last = '';
    for await (const c of readCases('big.jsonl', { baseDir: dir })) {
      count++;
      last = c.id;
    }
    expect(count).toBe(COUNT);
    expect(last).toBe(`c${COUNT - 1}`);

    const plan = (select: string) =>
      parsePlan(`workflow_id: big\ncases: big.jsonl\nselect: ${select}\n`, { baseDir: dir });
    let tenth = 0;
    for await (const _ of iterateCases(plan('{ tags: [tenth] }'))) tenth++;
    expect(tenth).toBe(COUNT / 10);
    const sample = await collect(iterateCases(plan('{ sample: { size: 5, seed: 3 } }')));
    expect(sample).toHaveLength(5);
    expect(await collect(iterateCases(plan('{ sample: { size: 5, seed: 3 } }')))).toEqual(sample);
    const head = await collect(iterateCases(plan('{ range: 1-3 }')));
    expect(head.map((c) => c.id)).toEqual(['c0', 'c1', 'c2']);
  }, 60_000);
});
