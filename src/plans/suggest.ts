/** "Did you mean" suggestions for misspelled keys and enum values. */

/** Edit distance (insert, delete, substitute: cost 1 each). */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length] ?? 0;
}

/** `maxAttempts` and `Max-Attempts` compare as `max_attempts`. */
function canonical(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[-\s]+/g, '_')
    .toLowerCase();
}

/**
 * The closest candidate to `input`, or undefined if none is close enough: within a third of the
 * length (at least 2 edits), after folding camelCase and dashes to snake_case; a candidate that
 * starts with the input (`retry` -> `retry_policy`) also counts.
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const key = canonical(input);
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const c = canonical(candidate);
    let score = levenshtein(key, c);
    if (score > Math.max(2, Math.floor(c.length / 3))) {
      score = key.length >= 4 && (c.startsWith(key) || key.startsWith(c)) ? 3 : Infinity;
    }
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return bestScore === Number.POSITIVE_INFINITY ? undefined : best;
}
