import { describe, expect, it } from 'vitest';
import { attentionAutotuneKey, attentionDecodeCandidates, attentionMeasurementCount, attentionPrefillCandidates, attentionTuneDue, autotuneKey } from './autotune';
import type { Phi3Config } from './plan';

// Which attention tunings a device measures (autotune.ts): the candidates follow the adapter's
// defaults (attentionTuningFor) and what the head dim allows.
const h200 = { vendor: 'nvidia', architecture: '', device: 'nvidia-h200', description: 'NVIDIA: 580.159.04' };
const swiftshader = { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' };

describe('attention tuning candidates', () => {
  it('decode: the defaults, the other kernel, half and twice the split cap', () => {
    expect(attentionDecodeCandidates(h200, 96)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'serial', tuning: { kernel: 'serial' } },
      { name: 'splits-12', tuning: { maxSplits: 12 } },
      { name: 'splits-48', tuning: { maxSplits: 48 } },
    ]);
    expect(attentionDecodeCandidates(swiftshader, 96)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'lanes', tuning: { kernel: 'lanes' } },
      { name: 'splits-32', tuning: { maxSplits: 32 } },
      { name: 'splits-128', tuning: { maxSplits: 128 } },
    ]);
    // A head dim past the lanes kernel: only the split caps differ.
    expect(attentionDecodeCandidates(h200, 1024).map((c) => c.name)).toEqual(['default', 'splits-32', 'splits-128']);
  });

  it('prefill: on top of the decode choice, the other prefill kernel where the head dim allows the blocked one', () => {
    expect(attentionPrefillCandidates(h200, 96, undefined)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'per-query', tuning: { prefill: 'kernel' } },
    ]);
    const decode = { kernel: 'lanes' as const };
    expect(attentionPrefillCandidates(swiftshader, 96, decode)).toEqual([
      { name: 'default', tuning: decode },
      { name: 'blocked', tuning: { kernel: 'lanes', prefill: 'blocked' } },
    ]);
    // A decode choice that already names the prefill kernel is what "default" keeps.
    expect(attentionPrefillCandidates(h200, 96, { prefill: 'kernel' })[1]).toEqual({ name: 'blocked', tuning: { prefill: 'blocked' } });
    expect(attentionPrefillCandidates(h200, 256, undefined)).toEqual([{ name: 'default', tuning: undefined }]);
    expect(attentionMeasurementCount(h200, 96)).toBe(2 * (4 + 2));
    expect(attentionMeasurementCount(h200, 256)).toBe(2 * (4 + 1));
  });

  it('the attention key is its own: adapter, model, window and precision change it; the MatMulNBits key never equals it', () => {
    const config = { hidden: 3072, intermediate: 8192, heads: 32, kvHeads: 32, headDim: 96, vocab: 32064, layers: 32, attentionWindow: 2047 } as Phi3Config;
    const key = attentionAutotuneKey(h200, config, 'f16');
    expect(JSON.parse(key)).toMatchObject({ tuning: 'attention', precision: 'f16', defaults: { kernel: 'lanes', maxSplits: 24, prefill: 'blocked' } });
    expect(attentionAutotuneKey({ ...h200, device: 'nvidia-h100' }, config, 'f16')).not.toBe(key);
    expect(attentionAutotuneKey(h200, { ...config, attentionWindow: undefined }, 'f16')).not.toBe(key);
    expect(attentionAutotuneKey(h200, { ...config, layers: 2 }, 'f16')).not.toBe(key);
    expect(attentionAutotuneKey(h200, config, 'f32')).not.toBe(key);
    expect(autotuneKey(h200, config, 'f16', [])).not.toBe(key);
  });
});

describe('attentionTuneDue', () => {
  const chat = (n: number, contextLimit = 131072) => ({ cachedIds: Array<number>(n).fill(1), contextLimit });
  it('from 2,048 cached tokens with room for a 128-token chunk after them; again at 4× the context a stored choice was measured at', () => {
    expect(attentionTuneDue(chat(2047))).toBe(false);
    expect(attentionTuneDue(chat(2048))).toBe(true);
    expect(attentionTuneDue(chat(2048, 4096))).toBe(true);
    expect(attentionTuneDue(chat(3969, 4096))).toBe(false);
    expect(attentionTuneDue(chat(3968, 4096))).toBe(true);
    expect(attentionTuneDue(chat(2048, 2100))).toBe(false);
    // Measured at 2,126 tokens: again from 8,504.
    expect(attentionTuneDue(chat(8503), 2126)).toBe(false);
    expect(attentionTuneDue(chat(8504), 2126)).toBe(true);
    expect(attentionTuneDue(chat(131000), 40000)).toBe(false);
  });
});
