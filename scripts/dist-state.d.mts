/** The first source whose `dist/` output is missing or older than it (see dist-state.mjs). */
export declare function staleSource(root: string): string | undefined;
