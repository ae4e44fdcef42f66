import { describe, expect, it } from 'vitest';
import { tuningText } from './tuningText';

const decode = [
  { name: 'default', ms: 10 },
  { name: 'dp4a', ms: 7.4 },
  { name: 'direct', ms: null, error: 'pipeline failed' },
  { name: 'warm-next', ms: 9.9 },
];
const prefill = [
  { name: 'default', ms: 80 },
  { name: 'tiled', ms: 79 },
];

describe('tuningText', () => {
  it('says which kernels run, by how much they beat the defaults, and when that was measured', () => {
    expect(tuningText({ source: 'measured', decode: { name: 'dp4a', timings: decode }, prefill: { name: 'default', timings: prefill } })).toBe(
      'decode kernels: dp4a, 26% faster than the default; prefill: default (no other was 3% faster) (measured on this GPU)',
    );
    expect(tuningText({ source: 'stored', decode: { name: 'default', timings: decode }, prefill: { name: 'tiled', timings: prefill } })).toBe(
      'decode kernels: default (no other was 3% faster); prefill: tiled, 1% faster than the default (measured on this GPU at an earlier load)',
    );
    expect(tuningText({ source: 'stored', decode: { name: 'direct' }, prefill: { name: 'default' } })).toBe('decode kernels: direct; prefill: default (measured on this GPU at an earlier load)');
    expect(tuningText({ source: 'skipped', decode: { name: 'default' }, prefill: { name: 'default' } })).toBe('kernels: defaults');
  });
});
