import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { choosePrecision } from '../gpu/device';
import { dawnFlags } from '../gpu/node-webgpu';
import { contextLimitFor } from '../phi3/model';
import type { Phi3Config } from '../phi3/plan';
import { kvBytesPerElement, precisionPrelude, withPrecision } from './precision-wgsl';

const adapterInfo = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'H100' };
const features = (shaderF16: boolean) => ({ shaderF16, subgroups: false, timestampQuery: false });

describe('precision selection', () => {
  it("'auto' (and no option) is f16 exactly when the device has shader-f16", () => {
    expect(choosePrecision({ adapterInfo, features: features(true) })).toBe('f16');
    expect(choosePrecision({ adapterInfo, features: features(true) }, 'auto')).toBe('f16');
    expect(choosePrecision({ adapterInfo, features: features(false) }, 'auto')).toBe('f32');
    expect(choosePrecision({ adapterInfo, features: features(true) }, 'f32')).toBe('f32');
    expect(choosePrecision({ adapterInfo, features: features(true) }, 'f16')).toBe('f16');
  });

  it("explicit 'f16' without shader-f16 throws BAD_ARGUMENT naming the feature, the adapter and the way out", () => {
    const call = () => choosePrecision({ adapterInfo, features: features(false) }, 'f16');
    expect(call).toThrow(AppError);
    expect(call).toThrow(/'shader-f16'.*nvidia hopper H100.*'auto' or 'f32'/);
    expect(() => choosePrecision({ adapterInfo, features: features(true) }, 'f8' as never)).toThrow(/precision = "f8" is not one of/);
  });
});

describe('WGSL instantiation', () => {
  it('prepends `enable f16` (first, as WGSL requires) and the KV aliases; the f32 prelude has no enable', () => {
    expect(withPrecision('// body\n', 'f16')).toBe('enable f16;\nalias KV = f16;\nalias KV4 = vec4<f16>;\n// body\n');
    expect(withPrecision('// body\n', 'f32')).toBe('alias KV = f32;\nalias KV4 = vec4<f32>;\n// body\n');
    expect(precisionPrelude('f32')).not.toContain('enable');
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
