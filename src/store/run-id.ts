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
