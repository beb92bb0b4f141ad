import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatDuration, parseDuration, tryParseDuration } from '../../src/plans/index.js';

describe('parseDuration', () => {
  test.each([
    [0, 0],
    [2, 2000],
    [1.5, 1500],
    [0.25, 250],
    ['500ms', 500],
    ['90s', 90_000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    [' 30 ', 30_000],
    ['.5s', 500],
    ['1.1s', 1100],
  ] as const)('%j -> %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test.each([
    ['abc'],
    [''],
    ['5 minutes'],
    ['-1s'],
    [-1],
    ['1d'],
    ['s'],
    ['1m 30s'],
    [Number.POSITIVE_INFINITY],
    [Number.NaN],
    [null],
    [true],
    [{}],
  ] as const)('rejects %j', (input) => {
    expect(tryParseDuration(input)).toBeUndefined();
    expect(() => parseDuration(input, 'timeout')).toThrow(
      /^invalid option timeout: .* \(expected a duration \(seconds, or a string such as "500ms", "90s", "2m", "1h"\)\)$/,
    );
  });

  test('the error is a StrideError with code INVALID_OPTION', () => {
    try {
      parseDuration('soon');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'INVALID_OPTION', name: 'InvalidOptionError' });
      expect((e as Error).message).toBe(
        'invalid option duration: "soon" (expected a duration (seconds, or a string such as "500ms", "90s", "2m", "1h"))',
      );
    }
  });

  test('formatDuration picks the largest exact unit and reads back', () => {
    expect([0, 1, 1500, 90_000, 120_000, 7_200_000, 3_723_004].map(formatDuration)).toEqual([
      '0s',
      '1ms',
      '1500ms',
      '90s',
      '2m',
      '2h',
      '3723004ms',
    ]);
    fc.assert(
      fc.property(fc.nat({ max: 10 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});
