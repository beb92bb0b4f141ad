import { describe, expect, it } from 'vitest';
import { IdSet } from '../../src/plans/idset.js';

describe('IdSet (duplicate ids in bounded memory)', () => {
  it('says new for 200,000 distinct ids and seen for each of them again, across growths', () => {
    const ids = new IdSet();
    let fresh = 0;
    for (let i = 0; i < 200_000; i++) if (ids.add(`case-${i}`)) fresh++;
    expect(fresh).toBe(200_000);
    let again = 0;
    for (let i = 0; i < 200_000; i += 997) if (!ids.add(`case-${i}`)) again++;
    expect(again).toBe(Math.ceil(200_000 / 997));
  });

  it('tells apart ids that differ in one character, order, or case', () => {
    const ids = new IdSet();
    for (const id of ['ab', 'ba', 'AB', 'a', 'b', 'refund-1', 'refund-1#2', 'refund-1#1', '']) {
      expect(ids.add(id)).toBe(true);
    }
    expect(ids.add('refund-1#2')).toBe(false);
    expect(ids.add('')).toBe(false);
  });
});
