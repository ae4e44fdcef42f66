import { describe, expect, it } from 'vitest';
import { formatBytes, formatEta } from './format';

describe('formatBytes', () => {
  it('reads MB below a gigabyte and GB from one up, in decimal units', () => {
    expect(formatBytes(0)).toBe('0.0 MB');
    expect(formatBytes(21_600_000)).toBe('21.6 MB');
    expect(formatBytes(999_949_999)).toBe('999.9 MB');
    expect(formatBytes(1e9)).toBe('1.00 GB');
    expect(formatBytes(2_274_123_456)).toBe('2.27 GB');
    expect(formatBytes(10_801_200_000)).toBe('10.80 GB');
  });

  it('never prints NaN or a negative size', () => {
    expect(formatBytes(Number.NaN)).toBe('? MB');
    expect(formatBytes(-1)).toBe('? MB');
  });
});

describe('formatEta', () => {
  it('counts whole seconds, then minutes and seconds (never "1 min 60 s"), then hours and minutes', () => {
    expect(formatEta(0.2)).toBe('1 s left');
    expect(formatEta(59.4)).toBe('1 min 0 s left');
    expect(formatEta(119.5)).toBe('2 min 0 s left');
    expect(formatEta(125)).toBe('2 min 5 s left');
    expect(formatEta(3599.2)).toBe('1 h 0 min left');
    expect(formatEta(3780)).toBe('1 h 3 min left');
  });

  it('says nothing without an estimate', () => {
    expect(formatEta(null)).toBe('');
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('');
    expect(formatEta(Number.NaN)).toBe('');
  });
});
