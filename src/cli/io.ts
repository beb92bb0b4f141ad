/** What a command reads and writes; tests pass their own, the bin passes the process's. */
export interface Io {
  readonly stdout: {
    write(s: string): unknown;
    readonly isTTY?: boolean;
    readonly columns?: number;
  };
  readonly stderr: {
    write(s: string): unknown;
    readonly isTTY?: boolean;
    readonly columns?: number;
  };
  readonly env: NodeJS.ProcessEnv;
}

/** The process's own streams and environment. */
export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
