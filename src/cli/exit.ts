/** Exit codes (README, "Exit codes"). In a file of its own: `main` needs it before any command loads. */
export const EXIT = { ok: 0, failures: 1, usage: 2, interrupted: 130 } as const;
