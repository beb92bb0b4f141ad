/**
 * File system error codes in words, for messages that must say why a file could not be written
 * (`no space left on the device (ENOSPC)`) rather than Node's `ENOSPC: ..., write`, which names
 * neither the file nor, for a read-only mount under a recursive mkdir, the real reason. Pure: the
 * I/O stays with the callers (report/, store/).
 */

const REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EFBIG: 'the file is larger than the file system allows',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  ENOENT: 'no such file or folder',
  EEXIST: 'a file is in the way',
  EIO: 'an input/output error of the device',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
};

/** The errno code of a thrown value (`ENOSPC`), if it has one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Why a file operation failed, in words, with its code.
 *
 * @example
 * ```ts
 * diskReason(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
 * // 'no space left on the device (ENOSPC)'
 * ```
 */
export function diskReason(err: unknown): string {
  const code = errnoOf(err);
  const reason = code === undefined ? undefined : REASONS[code];
  if (reason !== undefined) return `${reason} (${code})`;
  const message = err instanceof Error ? err.message : String(err);
  return code === undefined || message.includes(code) ? message : `${message} (${code})`;
}
