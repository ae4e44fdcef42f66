import { describe, expect, it } from 'vitest';
import { attentionTuningText, tuningText } from './tuningText';

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

  it('while they are measured in the background, and when that stopped', () => {
    const defaults = { decode: { name: 'default' }, prefill: { name: 'default' } };
    expect(tuningText({ source: 'measuring', ...defaults, progress: { done: 3, total: 12 } })).toBe('kernels: defaults while this GPU\'s are measured in the background (3 of 12), first load only');
    expect(tuningText({ source: 'skipped', ...defaults, reason: 'autotune (decode): 8 more tokens do not fit after the 4090 cached.' })).toBe(
      'kernels: defaults (measuring them stopped: autotune (decode): 8 more tokens do not fit after the 4090 cached; measured again at the next load)',
    );
  });
});

describe('attentionTuningText', () => {
  const defaults = { decode: { name: 'default' }, prefill: { name: 'default' } };
  it('waits for a long chat, says while it measures, and what it chose at which context', () => {
    expect(attentionTuningText({ source: 'waiting', ...defaults, context: 2048 })).toBe('attention: defaults until a chat reaches 2,048 tokens, then measured once on this GPU');
    expect(attentionTuningText({ source: 'measuring', ...defaults, context: 2113, progress: { done: 2, total: 12 } })).toBe("attention: defaults while this GPU's are measured at 2,113 tokens of context (2 of 12)");
    const decode = [
      { name: 'default', ms: 4 },
      { name: 'serial', ms: 3 },
      { name: 'splits-12', ms: 4.2 },
    ];
    const prefill = [
      { name: 'default', ms: 50 },
      { name: 'per-query', ms: 52 },
    ];
    expect(attentionTuningText({ source: 'measured', decode: { name: 'serial', timings: decode }, prefill: { name: 'default', timings: prefill }, context: 2113 })).toBe(
      'attention: serial, 25% faster than the default; prefill: default (no other was 3% faster) (measured on this GPU at 2,113 tokens of context)',
    );
    expect(attentionTuningText({ source: 'stored', decode: { name: 'serial' }, prefill: { name: 'default' }, context: 3000 })).toBe(
      'attention: serial; prefill: default (measured on this GPU at 3,000 tokens of context, at an earlier load)',
    );
    expect(attentionTuningText({ source: 'skipped', ...defaults, context: 2048, reason: 'The GPU device was lost.' })).toBe(
      'attention: defaults (measuring them stopped: The GPU device was lost; measured again after the next load)',
    );
    // A stored choice measured again at 4× its context: it runs meanwhile.
    const stored = { decode: { name: 'splits-48' }, prefill: { name: 'default' } };
    expect(attentionTuningText({ source: 'measuring', ...stored, context: 9000, progress: { done: 0, total: 12 } })).toBe("attention: splits-48; prefill: default while this GPU's are measured again at 9,000 tokens of context (0 of 12)");
    expect(attentionTuningText({ source: 'skipped', ...stored, context: 9000, reason: 'x' })).toBe('attention: splits-48; prefill: default (measuring again stopped: x; measured again after the next load)');
  });
});
