/**
 * What a run id may be. A run id names a run in the journal, in Redis keys, in commands a user
 * types (`stride resume <id>`) and, some day, in file and URL paths, so it is checked where
 * runs are created: no path separators, no `..`, no spaces or control characters, bounded.
 */

/** Longest run id `stride run --run-id` accepts. */
export const RUN_ID_MAX_LENGTH = 128;

/**
 * Longest id a store accepts: room above `RUN_ID_MAX_LENGTH` for the suffixes Stride adds to a
 * run id (an action plan's rollback is the run `<id>:rollback`).
 */
export const STORED_RUN_ID_MAX_LENGTH = 200;

// Letters and digits of any script, then also `.`, `_`, `-`, `:`. A first letter or digit rules
// out `.`, `..` and an id that reads as a flag (`-x`).
const RUN_ID = /^[\p{L}\p{N}][\p{L}\p{N}._:-]*$/u;
const FIRST = /^[\p{L}\p{N}]$/u;
const NEXT = /^[\p{L}\p{N}._:-]$/u;

/** What a valid run id looks like, for messages. */
export const RUN_ID_EXPECTED =
  'letters, digits, ".", "_", "-" and ":", starting with a letter or digit';

/**
 * Why `id` cannot be a run id (`has "/"`, `is 5000 characters long`), or `undefined` when it
 * can. Say what is expected with `RUN_ID_EXPECTED` and the length.
 *
 * @example
 * ```ts
 * runIdProblem('20261124-213605-3f9a'); // undefined
 * runIdProblem('a/b'); // 'has "/"'
 * runIdProblem('../../etc/x'); // 'has "." first'
 * ```
 */
export function runIdProblem(id: unknown, maxLength = RUN_ID_MAX_LENGTH): string | undefined {
  if (typeof id !== 'string') return 'is not a string';
  if (id === '') return 'is empty';
  if (id.length > maxLength) return `is ${id.length} characters long`;
  if (RUN_ID.test(id)) return undefined;
  const chars = [...id];
  const at = chars.findIndex((c, i) => !(i === 0 ? FIRST : NEXT).test(c));
  const c = chars[at]!;
  // Printable ASCII is shown as is; anything else (a control character, a space) by code point.
  const shown = /^[\x21-\x7e]$/.test(c)
    ? JSON.stringify(c)
    : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return `has ${shown}${at === 0 ? ' first' : ''}`;
}

/**
 * A run id a person can read and type: the local start time and 4 random hex digits, e.g.
 * `20261124-213605-3f9a`. Sorted by time, unique enough for one journal (the store refuses a
 * duplicate with RUN_EXISTS rather than mixing two runs). The one run id maker of the faces
 * (`stride run`, `rerun`, `demo`); the engine's own default id (`Run.runId` when none is given)
 * is a UUID, because library code may start many runs in one second.
 *
 * @example
 * ```ts
 * newRunId(new Date(2026, 10, 24, 21, 36, 5)); // '20261124-213605-3f9a' (random last part)
 * ```
 */
export function newRunId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const day = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const time = `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  const random = globalThis.crypto.getRandomValues(new Uint8Array(2));
  const hex = [...random].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${day}-${time}-${hex}`;
}
