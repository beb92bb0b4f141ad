/**
 * The V8 flags the `stride` bin sets in its shebang (src/cli/main.ts; test/cli/cli.test.ts keeps
 * the two equal), so "(CLI flags)" rows measure what a CLI user runs:
 * - a 1 MB young generation: streamed plans keep a flat live heap, and the default 16 MB
 *   semi-spaces only inflate peak RSS (S5);
 * - Liftoff only for WebAssembly: undici's HTTP parser is Wasm, and optimising it costs ~30 MB
 *   of peak RSS for no measurable time on LLM-sized traffic (mock-run).
 */
export const CLI_NODE_FLAGS = ['--max-semi-space-size=1', '--liftoff-only'];
