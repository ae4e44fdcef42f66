import { describe, expect, it } from 'vitest';
import { attentionTuningFor, splitSizes } from './attention';

// The defaults come from measurements (attentionTuningFor's doc comment, docs/benchmarks.md);
// this pins which adapter and head size gets which kernel.
describe('attentionTuningFor', () => {
  const h200 = { vendor: 'nvidia', architecture: '', device: 'nvidia-h200', description: 'NVIDIA: 580.159.04' };

  it('real GPUs: lanes, at most 24 splits per head, blocked prefill; SwiftShader keeps the serial kernel', () => {
    const real = { kernel: 'lanes', maxSplits: 24, prefill: 'blocked' };
    expect(attentionTuningFor(h200, 96)).toEqual(real);
    expect(attentionTuningFor({ vendor: 'amd', architecture: 'rdna-3' }, 96)).toEqual(real);
    expect(attentionTuningFor({}, 96)).toEqual(real);
    expect(attentionTuningFor({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' }, 96)).toEqual({});
  });

  it('head dims past a kernel keep the one that handles them (createAttention refuses the others)', () => {
    expect(attentionTuningFor(h200, 128)).toEqual({ kernel: 'lanes', maxSplits: 24, prefill: 'blocked' });
    expect(attentionTuningFor(h200, 256)).toEqual({ kernel: 'lanes', maxSplits: 24 });
    expect(attentionTuningFor(h200, 1024)).toEqual({});
  });
});

describe('splitSizes', () => {
  it('defaults to 64-key splits, at most 64, and never more than the context can use', () => {
    expect(splitSizes({}, 4096)).toEqual({ keysPerSplit: 64, maxSplits: 64 });
    expect(splitSizes({}, 131072)).toEqual({ keysPerSplit: 64, maxSplits: 64 });
    expect(splitSizes({ maxSplits: 24 }, 4096)).toEqual({ keysPerSplit: 64, maxSplits: 24 });
    expect(splitSizes({ maxSplits: 24 }, 1024)).toEqual({ keysPerSplit: 64, maxSplits: 16 });
    expect(splitSizes({ keysPerSplit: 100, maxSplits: 200 }, 1000)).toEqual({ keysPerSplit: 100, maxSplits: 10 });
    expect(splitSizes({}, 10)).toEqual({ keysPerSplit: 64, maxSplits: 1 });
  });

  it('refuses sizes that are not positive integers, naming the field', () => {
    expect(() => splitSizes({ keysPerSplit: 0 }, 64)).toThrow(/keysPerSplit 0 must be a positive integer/);
    expect(() => splitSizes({ maxSplits: 2.5 }, 64)).toThrow(/maxSplits 2.5 must be a positive integer/);
  });
});
