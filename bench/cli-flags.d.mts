/** The V8 flags the `stride` bin sets in its shebang (see cli-flags.mjs). */
export declare const CLI_NODE_FLAGS: readonly string[];
