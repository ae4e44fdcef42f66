import { describe, expect, it } from 'vitest';
import { createAttention } from './attention';
import { ATTENTION_CASES, checkAttention, formatCheck } from './precision-checks';
import { createStepBuffer } from './step';
import { createStorageBuffer } from '../gpu/buffers';
import { runtimeName, testGpu } from '../gpu/testing';

// Cases, references and tolerances live in precision-checks.ts (shared with tools/device/checks.ts):
// f32 1e-5 against a double-precision reference; f16 caches: the same 1e-5 against the reference
// fed the same f16-rounded K/V (the kernel computes in f32 after loading them).
const phi3 = { heads: 32, kvHeads: 32, headDim: 96, rowStride: 9216, qOffset: 0 };

describe('attention kernel [gpu]', () => {
  for (const c of ATTENTION_CASES) {
    it(`matches the reference: ${c.name}`, async () => {
      const r = await checkAttention(await testGpu(), c, 'f32');
      console.log(`[${runtimeName()}] ${formatCheck(r)}`);
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
      expect(r.pass).toBe(true);
    });
    it(`f16 KV cache matches the reference: ${c.name}`, async () => {
      const r = await checkAttention(await testGpu(), c, 'f16');
      console.log(`[${runtimeName()}] ${formatCheck(r)}`);
      expect(r.skipped).toBeUndefined();
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
      expect(r.pass).toBe(true);
    });
  }

  it('split sizes that are not positive integers are refused, naming the field', async () => {
    const { device } = await testGpu();
    const step = createStepBuffer(device);
    const buf = createStorageBuffer(device, new Float32Array(64), 'buf');
    const b = { ...phi3, headDim: 8, rowStride: 8, heads: 1, kvHeads: 1, maxT: 4, step, q: buf, kCache: buf, vCache: buf, out: buf };
    expect(() => createAttention(device, { ...b, keysPerSplit: 0 })).toThrow(/keysPerSplit 0 must be a positive integer/);
    expect(() => createAttention(device, { ...b, maxSplits: 2.5 })).toThrow(/maxSplits 2.5 must be a positive integer/);
    step.destroy();
    buf.destroy();
  });
});
