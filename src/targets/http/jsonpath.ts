/**
 * A JSONPath subset naming one value: `$`, `.name`, `['name']`, `["name"]`, `[0]`, `[-1]` (from
 * the end). The same subset the plan assertions use; kept here because targets depend on the
 * core alone.
 */

import { InvalidOptionError } from '../../core/index.js';

export type PathSegment = string | number;

const NAME = /[A-Za-z0-9_$\-\u00a0-\uffff]+/y;
const INDEX = /\[\s*(-?\d+)\s*\]/y;
const QUOTED = /\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]/y;

/** Parses `$.data.items[0].name` (the `$` may be left out). Throws InvalidOptionError. */
export function parsePath(path: string, field = 'outputPath'): PathSegment[] {
  const fail = (at: number): never => {
    throw new InvalidOptionError(
      field,
      path,
      `a JSON path such as $.data.outputs.text (bad at offset ${at})`,
    );
  };
  const segments: PathSegment[] = [];
  let i = 0;
  if (path.startsWith('$')) i = 1;
  else if (path.length > 0 && path[0] !== '[') {
    NAME.lastIndex = 0;
    const first = NAME.exec(path);
    if (first === null) fail(0);
    segments.push(first![0]);
    i = NAME.lastIndex;
  }
  while (i < path.length) {
    if (path[i] === '.') {
      NAME.lastIndex = i + 1;
      const m = NAME.exec(path);
      if (m === null) fail(i + 1);
      segments.push(m![0]);
      i = NAME.lastIndex;
      continue;
    }
    INDEX.lastIndex = i;
    const idx = INDEX.exec(path);
    if (idx !== null) {
      segments.push(Number(idx[1]));
      i = INDEX.lastIndex;
      continue;
    }
    QUOTED.lastIndex = i;
    const q = QUOTED.exec(path);
    if (q !== null) {
      segments.push((q[1] ?? q[2] ?? '').replace(/\\(.)/g, '$1'));
      i = QUOTED.lastIndex;
      continue;
    }
    fail(i);
  }
  return segments;
}

/** The value at `segments`, or undefined if any step is missing. */
export function getPath(value: unknown, segments: readonly PathSegment[]): unknown {
  let cur = value;
  for (const seg of segments) {
    if (typeof seg === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[seg < 0 ? cur.length + seg : seg];
    } else {
      if (typeof cur !== 'object' || cur === null) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return cur;
}
