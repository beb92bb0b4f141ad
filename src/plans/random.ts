/** A small seeded PRNG, so that a sample drawn with the same seed is the same everywhere. */

/**
 * mulberry32: 32-bit state, good enough for sampling test cases (not for cryptography).
 *
 * @example
 * ```ts
 * const random = mulberry32(42);
 * random(); // the same number in [0, 1) on every machine
 * ```
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
