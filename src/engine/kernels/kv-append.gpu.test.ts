import { describe, expect, it } from 'vitest';
import { createKvAppend } from './kv-append';
import { checkKvAppend, formatCheck, KV_APPEND_CASES } from './precision-checks';
import { createStepBuffer } from './step';
import { createStorageBuffer } from '../gpu/buffers';
import { runtimeName, testGpu } from '../gpu/testing';

// Cases, references and tolerances live in precision-checks.ts (shared with tools/device/checks.ts):
// f32 caches: a copy is exact, one f32 rotation within 2e-6; f16 caches: each stored value within
// one fp16 ulp (+2e-6) of the reference rounded to fp16; q (f32 on both paths) within 2e-6.

describe('kv append kernel [gpu]', () => {
  for (const c of KV_APPEND_CASES) {
    it(`matches the reference: ${c.name}`, async () => {
      const results = await checkKvAppend(await testGpu(), c, 'f32');
      for (const r of results) {
        console.log(`[${runtimeName()}] ${formatCheck(r)}`);
        expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
      }
      expect(results.length).toBe(c.rotateQ ? 2 : 1);
    });
    it(`f16 caches match the reference: ${c.name}`, async () => {
      const results = await checkKvAppend(await testGpu(), c, 'f16');
      for (const r of results) {
        console.log(`[${runtimeName()}] ${formatCheck(r)}`);
        expect(r.skipped).toBeUndefined();
        expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
      }
      expect(results.length).toBe(c.rotateQ ? 2 : 1);
    });
  }

  it('an f16 cache needs an even headDim (each invocation writes a word of two halves)', async () => {
    const { device } = await testGpu();
    const step = createStepBuffer(device);
    const a = createStorageBuffer(device, new Float32Array(64), 'a');
    const cache = createStorageBuffer(device, new Float32Array(64), 'cache');
    const layout = { kvHeads: 1, headDim: 7, rowStride: 7, kOffset: 0, vOffset: 0, maxT: 4, step, kSrc: a, vSrc: a, kCache: cache, vCache: cache };
    expect(() => createKvAppend(device, { ...layout, precision: 'f16' })).toThrow(/headDim 7 must be even for an f16 cache/);
    expect(() => createKvAppend(device, { ...layout, precision: 'f32' })).not.toThrow();
    for (const buf of [step, a, cache]) buf.destroy();
  });

  it('rejects rotateQ without rotary, and a q buffer shared with only one of kSrc/vSrc', async () => {
    const { device } = await testGpu();
    const step = createStepBuffer(device);
    const a = createStorageBuffer(device, new Float32Array(64), 'a');
    const b = createStorageBuffer(device, new Float32Array(64), 'b');
    const cache = createStorageBuffer(device, new Float32Array(64), 'cache');
    const l = { kvHeads: 1, headDim: 8, rowStride: 8, kOffset: 0, vOffset: 0, maxT: 4, step, kCache: cache, vCache: cache };
    const rotary = { rotaryDim: 8, maxPositions: 1, dtype: 'f32' as const, tables: [cache] as const };
    expect(() => createKvAppend(device, { ...l, kSrc: a, vSrc: a, rotateQ: { heads: 1, qBuffer: b, rowStride: 8, offset: 0 } })).toThrow(/needs rotary/);
    expect(() => createKvAppend(device, { ...l, kSrc: a, vSrc: b, rotary, rotateQ: { heads: 1, qBuffer: a, rowStride: 8, offset: 0 } })).toThrow(/both kSrc and vSrc/);
    for (const buf of [step, a, b, cache]) buf.destroy();
  });
});
