/**
 * The JSONL case file S5 streams. Written once per machine (in the OS temp directory) and reused,
 * so the measured processes only read it; its content is a pure function of the count, so every
 * library and every repetition reads the same bytes.
 */

import { once } from 'node:events';
import { createWriteStream, renameSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const caseLine = (i) =>
  `${JSON.stringify({ id: `case-${i}`, inputs: { query: `question number ${i}`, n: i }, tags: ['bench'] })}\n`;

function expectedBytes(count) {
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += Buffer.byteLength(caseLine(i));
  return bytes;
}

/** Path of a file of `count` cases, written if absent or of the wrong size (a killed writer). */
export async function ensureCasesFile(count) {
  const path = join(os.tmpdir(), `stride-bench-cases-${count}.jsonl`);
  try {
    if (statSync(path).size === expectedBytes(count)) return path;
  } catch {
    // Absent: write it below.
  }
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
