import { describe, expect, it } from 'vitest';
import { parseTinyModelArgs } from './cli';
import { resolveOptions } from './options';

describe('tiny-model CLI arguments and options', () => {
  it('maps every flag onto its option', () => {
    const { out, options } = parseTinyModelArgs([
      '--out', 'm', '--layout', 'gqa-packed', '--context', '128k', '--dtype', 'q4f16', '--block-size', '128', '--zero-points',
      '--accuracy-level', '4', '--layers', '3', '--hidden', '96', '--heads', '3', '--kv-heads', '1', '--intermediate', '200',
      '--vocab', '1000', '--max-positions', '2048', '--original-max-positions', '64', '--rope-theta', '500', '--seed', '9',
    ]);
    expect(out).toBe('m');
    expect(options).toEqual({
      layout: 'gqa-packed', context: '128k', dtype: 'q4f16', blockSize: 128, zeroPoints: true, accuracyLevel: 4, layers: 3, hidden: 96,
      heads: 3, kvHeads: 1, intermediate: 200, vocab: 1000, maxPositions: 2048, originalMaxPositions: 64, ropeTheta: 500, seed: 9,
    });
    expect(resolveOptions(options).kvHeads).toBe(1);
    const windowed = parseTinyModelArgs(['--out', 'w', '--layout', 'gqa', '--sliding-window', '8', '--windowed-cache']).options;
    expect(windowed).toEqual({ layout: 'gqa', slidingWindow: 8, windowedCache: true });
    expect(resolveOptions(windowed)).toMatchObject({ slidingWindow: 8, windowedCache: true });
  });

  it('rejects unknown flags, missing values and a missing --out', () => {
    expect(() => parseTinyModelArgs(['--out', 'm', '--bogus', '1'])).toThrow(/unknown option --bogus/);
    expect(() => parseTinyModelArgs(['--out', 'm', '--layers'])).toThrow(/--layers needs a value/);
    expect(() => parseTinyModelArgs(['--layers', 'two', '--out', 'm'])).toThrow(/--layers needs a number, got two/);
    expect(() => parseTinyModelArgs(['--layers', '2'])).toThrow(/--out <dir> is required/);
  });

  it('fills the defaults: a chat-ready web2024 4k q4 model with Phi-3’s vocabulary', () => {
    const o = resolveOptions({});
    expect(o).toMatchObject({ layout: 'web2024', context: '4k', dtype: 'q4', blockSize: 32, layers: 2, hidden: 128, heads: 4, kvHeads: 4, vocab: 32064, maxPositions: 4096, accuracyLevel: 0 });
    const long = resolveOptions({ context: '128k' });
    expect([long.maxPositions, long.originalMaxPositions]).toEqual([131072, 4096]);
  });

  it('names the option in every validation error', () => {
    expect(() => resolveOptions({ layout: 'web2024', kvHeads: 2 })).toThrow(/MultiHeadAttention.*--kv-heads/);
    expect(() => resolveOptions({ layout: 'gqa', hidden: 96, heads: 4 })).toThrow(/head_dim \(hidden\/heads = 24\).*multiple of 16/);
    expect(() => resolveOptions({ hidden: 100, heads: 3 })).toThrow(/--hidden 100 is not a multiple of --heads 3/);
    expect(() => resolveOptions({ blockSize: 24 as 32 })).toThrow(/--block-size/);
    expect(() => resolveOptions({ context: '128k', maxPositions: 64, originalMaxPositions: 64 })).toThrow(/--original-max-positions 64/);
    expect(() => resolveOptions({ layers: 0 })).toThrow(/--layers must be a positive integer/);
    expect(() => resolveOptions({ kvHeads: 1.5 })).toThrow(/--kv-heads must be a positive integer, got 1.5/);
  });
});
