import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { dawnFlags } from '../gpu/node-webgpu';
import { contextLimitFor, kvRingRows } from '../phi3/model';
import type { Phi3Config } from '../phi3/plan';
import { choosePrecision, kvBytesPerElement, kvElementsPerWord, kvStoreSource, precisionPrelude, withPrecision } from './precision-wgsl';

describe('precision selection', () => {
  it("'auto' (and no option) is f16 on every device; 'f32' and 'f16' are taken as asked", () => {
    expect(choosePrecision()).toBe('f16');
    expect(choosePrecision('auto')).toBe('f16');
    expect(choosePrecision('f32')).toBe('f32');
    expect(choosePrecision('f16')).toBe('f16');
  });

  it('anything else is a BAD_ARGUMENT naming the choices', () => {
    const call = () => choosePrecision('f8' as never);
    expect(call).toThrow(AppError);
    expect(call).toThrow(/precision = "f8" is not one of 'auto', 'f32', 'f16'/);
  });
});

describe('WGSL instantiation', () => {
  it('the f16 path packs two halves per u32 with core WGSL (no `enable f16`); the f32 path is plain f32', () => {
    const f16 = withPrecision('// body\n', 'f16');
    expect(f16.endsWith('// body\n')).toBe(true);
    expect(f16).toContain('alias KV4 = vec2<u32>;');
    expect(f16).toContain('const KV_PER_WORD: u32 = 2u;');
    expect(f16).toMatch(/unpack2x16float/);
    expect(f16).toMatch(/pack2x16float\(vec2<f32>\(a, b\)\)/);
    expect(withPrecision('// body\n', 'f32')).toContain('alias KV4 = vec4<f32>;');
    expect(withPrecision('// body\n', 'f32')).toContain('const KV_PER_WORD: u32 = 1u;');
    for (const p of ['f16', 'f32'] as const) expect(precisionPrelude(p)).not.toContain('enable');
    expect(kvStoreSource('f16')).toContain('alias KVK = atomic<u32>;');
    expect(kvStoreSource('f16')).toContain('alias KVV = u32;');
    expect(kvStoreSource('f32')).toContain('alias KVK = f32;');
    expect(kvStoreSource('f32')).toContain('alias KVV = f32;');
    expect([kvElementsPerWord('f32'), kvElementsPerWord('f16')]).toEqual([1, 2]);
    expect(kvBytesPerElement('f32')).toBe(4);
    expect(kvBytesPerElement('f16')).toBe(2);
  });
});

describe('KV-cache capacity', () => {
  const phi3 = { kvHeads: 32, headDim: 96, layers: 32, maxPositions: 131072 } as Phi3Config;
  it('f16 elements fit twice the tokens in the same budget and binding limit', () => {
    // 2 GiB over 32 layers × (K + V) × 32·96 elements: 2730 tokens at 4 bytes, 5461 at 2.
    expect(contextLimitFor(phi3, 2 ** 30, 2 ** 31)).toBe(2730);
    expect(contextLimitFor(phi3, 2 ** 30, 2 ** 31, Infinity, 4)).toBe(2730);
    expect(contextLimitFor(phi3, 2 ** 30, 2 ** 31, Infinity, 2)).toBe(5461);
    // A 128 MiB binding limit: 10922 tokens per layer buffer at 4 bytes, 21845 at 2.
    expect(contextLimitFor(phi3, 2 ** 27, 2 ** 40, Infinity, 4)).toBe(10922);
    expect(contextLimitFor(phi3, 2 ** 27, 2 ** 40, Infinity, 2)).toBe(21845);
  });

  it('without a budget (the default) the model and the binding size decide', () => {
    // Phi-3 Mini 4K keeps its whole context on both paths; the 128K model what a 1 GiB binding holds.
    const mini4k = { ...phi3, maxPositions: 4096 };
    expect(contextLimitFor(mini4k, 2 ** 30, Infinity, Infinity, 4)).toBe(4096);
    expect(contextLimitFor(mini4k, 2 ** 30, Infinity, Infinity, 2)).toBe(4096);
    expect(contextLimitFor(phi3, 2 ** 30, Infinity, Infinity, 4)).toBe(87381);
    expect(contextLimitFor(phi3, 2 ** 30, Infinity, Infinity, 2)).toBe(131072);
  });

  it("a window's ring bounds the cache's rows, not the context", () => {
    // Phi-3 Mini 4K's window of 2047 and 512-token chunks: a ring of 2559 rows, 393,216 bytes
    // each on f16 (32 layers × K and V × 32·96 × 2).
    const mini4k = { ...phi3, maxPositions: 4096, attentionWindow: 2047 };
    const ring = kvRingRows(mini4k, 512);
    expect(ring).toBe(2559);
    expect(kvRingRows(phi3, 512)).toBe(Infinity);
    // A 1.1 GB budget holds 2797 rows: the ring fits, so the whole 4096-token context (2797 without it).
    expect(contextLimitFor(mini4k, 2 ** 30, 1.1e9, Infinity, 2, ring)).toBe(4096);
    expect(contextLimitFor(mini4k, 2 ** 30, 1.1e9, Infinity, 2)).toBe(2797);
    // An 8 MiB binding holds 682 f32 rows per layer, fewer than the ring: the context is those 682.
    expect(contextLimitFor(mini4k, 2 ** 23, Infinity, Infinity, 4, ring)).toBe(682);
    // maxContext still caps it.
    expect(contextLimitFor(mini4k, 2 ** 30, Infinity, 3000, 2, ring)).toBe(3000);
  });
});

describe('Dawn flags in Node', () => {
  it('are empty unless PHI3_DAWN_F16_ON_NVIDIA=1, which enables the vulkan_enable_f16_on_nvidia toggle', () => {
    expect(dawnFlags({})).toEqual([]);
    expect(dawnFlags({ PHI3_DAWN_F16_ON_NVIDIA: '0' })).toEqual([]);
    expect(dawnFlags({ PHI3_DAWN_F16_ON_NVIDIA: '1' })).toEqual(['enable-dawn-features=vulkan_enable_f16_on_nvidia']);
    expect(dawnFlags({ PHI3_DAWN_EXACT_TIMESTAMPS: '1' })).toEqual(['disable-dawn-features=timestamp_quantization']);
    expect(dawnFlags({ PHI3_DAWN_F16_ON_NVIDIA: '1', PHI3_DAWN_EXACT_TIMESTAMPS: '1' })).toHaveLength(2);
  });
});
