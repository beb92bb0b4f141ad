// Code checks for plan.yaml (`assert_module: ./checks.mjs#name`). Each is called on a worker
// thread with { output, inputs, expected, case } and returns true/false, a score from 0 to 1,
// or { pass, score, reason }. A check that takes longer than 5 s (or the case's timeout) is
// ended; it cannot hang the run.

/** Short answers score higher: 1 up to 60 characters, then less, down to 0 at 300. */
export function concise({ output }) {
  const length = String(output).length;
  const score = length <= 60 ? 1 : Math.max(0, 1 - (length - 60) / 240);
  return { pass: score >= 0.5, score, reason: `${length} characters` };
}

/** No rude words. */
export function polite({ output }) {
  return !/\b(stupid|idiot|whatever)\b/i.test(String(output));
}
