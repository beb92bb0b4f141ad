/**
 * The store's one error class. It is a StrideError (recognised by `isStrideError` across copies
 * of the package) that also says which file and what went wrong, so the CLI can tell the user
 * what to do without parsing messages.
 */

import { type ErrorCode, StrideError } from '../core/errors.js';

/**
 * What went wrong:
 * - `corrupt`: the file is not a Stride database, or SQLite found it damaged;
 * - `locked`: another process held the database longer than the busy timeout;
 * - `version`: the database was written by a newer Stride (its schema version is unknown here);
 * - `io`: the disk is full, the file is read-only, or another I/O failure;
 * - `unknown_run`, `duplicate_run`: a run id that does not exist, or already does;
 * - `closed`: the store was closed.
 */
export type StoreFailure =
  | 'corrupt'
  | 'locked'
  | 'version'
  | 'io'
  | 'unknown_run'
  | 'duplicate_run'
  | 'closed';

// One place maps failures to catalogue codes (docs/errors.md).
const CODE: Record<StoreFailure, ErrorCode> = {
  corrupt: 'STORE_CORRUPT',
  locked: 'STORE_LOCKED',
  version: 'STORE_VERSION',
  io: 'STORE_IO',
  unknown_run: 'RUN_NOT_FOUND',
  duplicate_run: 'RUN_EXISTS',
  closed: 'INVALID_STATE',
};

/**
 * A store could not do what was asked. The message names the database file.
 *
 * @example
 * ```ts
 * try { new SqliteStore({ path }); } catch (e) {
 *   if (e instanceof StoreError && e.failure === 'locked') console.error('another stride holds', e.file);
 * }
 * ```
 */
export class StoreError extends StrideError {
  /** The database file, or `memory` for the MemoryStore. */
  readonly file: string;
  readonly failure: StoreFailure;

  constructor(failure: StoreFailure, file: string, message: string, cause?: unknown) {
    super(
      CODE[failure],
      message,
      cause === undefined ? { retryable: false } : { cause, retryable: false },
    );
    this.failure = failure;
    this.file = file;
  }
}
