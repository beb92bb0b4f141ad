/**
 * The JSONL case file S5 streams. Written once per machine (in the OS temp directory) and reused,
 * so the measured processes only read it; its content is a pure function of the count, so every
 * library and every repetition reads the same bytes.
 */

import { once } from 'node:events';
import { createWriteStream, existsSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const caseLine = (i) =>
  `${JSON.stringify({ id: `case-${i}`, inputs: { query: `question number ${i}`, n: i }, tags: ['bench'] })}\n`;

/**
 * Path of a file of `count` cases, written if absent. A completed file is renamed into place, so
 * its presence means it is whole (a killed writer leaves only a `.partial`). The check must not
 * allocate: it runs inside the measured process, whose peak RSS is the figure.
 */
export async function ensureCasesFile(count) {
  const path = join(os.tmpdir(), `stride-bench-cases-v2-${count}.jsonl`);
  if (existsSync(path)) return path;
  // Written under a temporary name and renamed, so a reader never sees half a file.
  const partial = `${path}.${process.pid}.partial`;
  const out = createWriteStream(partial);
  for (let i = 0; i < count; i++) {
    if (!out.write(caseLine(i))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  renameSync(partial, path);
  return path;
}

/** A plan file next to the case file (written by the parent, like the cases). */
export function planFileFor(casesPath) {
  return casesPath.replace(/\.jsonl$/, '.plan.yaml');
}

/** Writes the plan of S5: the case file, concurrency 64, a 60 s timeout. */
export async function ensurePlanFile(casesPath) {
  const plan = planFileFor(casesPath);
  if (!existsSync(plan)) {
    writeFileSync(
      plan,
      `workflow_id: bench-s5\ncases: ${casesPath}\nexecution_policy: { concurrency: 64, timeout: 60s }\n`,
    );
  }
  return plan;
}
