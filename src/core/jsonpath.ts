/**
 * A small JSONPath subset, shared by plan assertions and the HTTP target (pure, so it lives in
 * the core that both may import): `$`, `.name`, `['name']`, `["name"]`, `[0]`,
 * `[-1]` (from the end). No wildcards, filters or recursive descent: a path names one value.
 */

export type JsonPathSegment = string | number;

const NAME = /[A-Za-z0-9_$\-\u00a0-\uffff]+/y;
const INDEX = /\[\s*(-?\d+)\s*\]/y;
const QUOTED = /\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]/y;

/**
 * Parses a path such as `$.data.items[0].name` into segments. The leading `$` may be left out
 * (`data.items[0]`), which is how an assertion's `field` is written.
 *
 * @throws Error with a message saying where the path stops making sense.
 */
export function parseJsonPath(path: string): JsonPathSegment[] {
  const segments: JsonPathSegment[] = [];
  let i = 0;
  if (path.startsWith('$')) i = 1;
  else if (path.length > 0 && path[0] !== '[') {
    NAME.lastIndex = 0;
    const first = NAME.exec(path);
    if (first === null) throw new Error(`invalid JSON path ${JSON.stringify(path)} at offset 0`);
    segments.push(first[0]);
    i = NAME.lastIndex;
  }
  while (i < path.length) {
    const ch = path[i];
    if (ch === '.') {
      NAME.lastIndex = i + 1;
      const m = NAME.exec(path);
      if (m === null)
        throw new Error(`invalid JSON path ${JSON.stringify(path)} at offset ${i + 1}`);
      segments.push(m[0]);
      i = NAME.lastIndex;
      continue;
    }
    if (ch === '[') {
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
    }
    throw new Error(`invalid JSON path ${JSON.stringify(path)} at offset ${i}`);
  }
  return segments;
}

/** The result of looking a path up: found or not, and the value. */
export type JsonPathResult = { found: true; value: unknown } | { found: false };

/**
 * Looks a parsed path up in a value.
 *
 * @example
 * ```ts
 * evalJsonPath({ a: { b: [{ c: 1 }] } }, '$.a.b[0].c'); // { found: true, value: 1 }
 * ```
 */
export function evalJsonPath(
  value: unknown,
  path: string | readonly JsonPathSegment[],
): JsonPathResult {
  const segments = typeof path === 'string' ? parseJsonPath(path) : path;
  let current: unknown = value;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(current)) return { found: false };
      const index = segment < 0 ? current.length + segment : segment;
      if (index < 0 || index >= current.length) return { found: false };
      current = current[index];
    } else {
      if (typeof current !== 'object' || current === null || Array.isArray(current)) {
        return { found: false };
      }
      if (!Object.hasOwn(current, segment)) return { found: false };
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return { found: true, value: current };
}
