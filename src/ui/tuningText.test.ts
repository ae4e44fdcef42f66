import { describe, expect, it } from 'vitest';
import { tuningText } from './tuningText';

const timings = [
  { name: 'default', msPerStep: 10 },
  { name: 'dp4a', msPerStep: 7.4 },
  { name: 'direct', msPerStep: null, error: 'pipeline failed' },
  { name: 'warm-next', msPerStep: 9.9 },
];

describe('tuningText', () => {
  it('says which GEMV runs, by how much it beat the default, and when that was measured', () => {
    expect(tuningText({ name: 'dp4a', source: 'measured', timings })).toBe('decode kernels: dp4a, 26% faster than the default (measured on this GPU)');
    expect(tuningText({ name: 'dp4a', source: 'stored', timings })).toBe('decode kernels: dp4a, 26% faster than the default (measured on this GPU at an earlier load)');
    expect(tuningText({ name: 'default', source: 'measured', timings })).toBe('decode kernels: default; none of the 3 others was 3% faster (measured on this GPU)');
    expect(tuningText({ name: 'default', source: 'skipped' })).toBe('decode kernels: defaults');
    expect(tuningText({ name: 'direct', source: 'stored' })).toBe('decode kernels: direct (measured on this GPU at an earlier load)');
  });
});
