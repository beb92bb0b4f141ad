/** A usage error found after parsing (flags that do not go together): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
