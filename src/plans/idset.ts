/**
 * Duplicate-id detection for streamed case files in bounded memory. A `Set<string>` of a million
 * ids holds ~56 MB of live heap (and pushes peak RSS far higher through GC growth); this keeps
 * two 32-bit hashes per id in a typed array: 16 bytes per id at most, off the JS object heap.
 *
 * A hit is only "probably seen" (two independent 32-bit hashes collide for distinct ids with a
 * probability around n^2 / 2^65, 3e-8 for a million ids): callers confirm a hit by re-reading,
 * which they do anyway to name the first occurrence in the error.
 */
export class IdSet {
  private table = new Uint32Array(2 * 1024);
  private count = 0;

  /** Adds `id`; false if it was (probably) present already. */
  add(id: string): boolean {
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    h1 >>>= 0;
    // 0 marks an empty slot, so the second hash is never 0.
    h2 = h2 >>> 0 || 1;
    if ((this.count + 1) * 2 > this.table.length / 2) this.grow();
    return this.insert(h1, h2);
  }

  private insert(h1: number, h2: number): boolean {
    const slots = this.table.length / 2;
    let i = h1 & (slots - 1);
    for (;;) {
      const at = 2 * i;
      if (this.table[at + 1] === 0) {
        this.table[at] = h1;
        this.table[at + 1] = h2;
        this.count++;
        return true;
      }
      if (this.table[at] === h1 && this.table[at + 1] === h2) return false;
      i = (i + 1) & (slots - 1);
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    this.count = 0;
    for (let at = 0; at < old.length; at += 2) {
      if (old[at + 1] !== 0) this.insert(old[at]!, old[at + 1]!);
    }
  }
}
