import { describe, expect, it } from 'vitest';
import { createAttention } from './attention';
import { ATTENTION_CASES, checkAttention, formatCheck, NO_F16_REASON } from './precision-checks';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

// Cases, references and tolerances live in precision-checks.ts (shared with tools/device/checks.ts):
// f32 1e-5 against a double-precision reference; f16 caches: the same 1e-5 against the reference
// fed the same f16-rounded K/V (the kernel computes in f32 after loading them).
const hasF16 = (await testGpu()).features.shaderF16;
const phi3 = { heads: 32, kvHeads: 32, headDim: 96, rowStride: 9216, qOffset: 0 };

describe('attention kernel [gpu]', () => {
  for (const c of ATTENTION_CASES) {
    it(`matches the reference: ${c.name}`, async () => {
      const r = await checkAttention(await testGpu(), c, 'f32');
      console.log(`[${runtimeName()}] ${formatCheck(r)}`);
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
      expect(r.pass).toBe(true);
    });
    it.runIf(hasF16)(`f16 KV cache matches the reference: ${c.name}${hasF16 ? '' : ` (${NO_F16_REASON})`}`, async () => {
      const r = await checkAttention(await testGpu(), c, 'f16');
      console.log(`[${runtimeName()}] ${formatCheck(r)}`);
      expect(r.skipped).toBeUndefined();
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
      expect(r.pass).toBe(true);
    });
  }

  it.runIf(!hasF16)("precision 'f16' without shader-f16 is refused with the feature's name", async () => {
    const { device } = await testGpu();
    const step = createStepBuffer(device);
    const buf = createStorageBuffer(device, new Float32Array(64), 'buf');
    expect(() => createAttention(device, { ...phi3, headDim: 8, rowStride: 8, heads: 1, kvHeads: 1, maxT: 4, step, q: buf, kCache: buf, vCache: buf, out: buf, precision: 'f16' })).toThrow(/shader-f16/);
    step.destroy();
    buf.destroy();
  });

  it('timing on this adapter at Phi-3 shapes (indicative, after one warm-up call)', async () => {
    const { device } = await testGpu();
    const shapes: Array<{ name: string; seqLen: number; pastLen: number }> = [
      { name: 'decode, 4096 keys', seqLen: 1, pastLen: 4095 },
      { name: 'decode, 512 keys', seqLen: 1, pastLen: 511 },
      { name: 'prefill 32 tokens', seqLen: 32, pastLen: 0 },
    ];
    const maxT = 4096;
    await withErrorScopes(device, async () => {
      const kBuf = createStorageBuffer(device, seededRandom(32 * maxT * 96, 41, 1), 'kCache');
      const vBuf = createStorageBuffer(device, seededRandom(32 * maxT * 96, 42, 1), 'vCache');
      const qBuf = createStorageBuffer(device, seededRandom(128 * 9216, 43, 1), 'q');
      const out = createStorageBuffer(device, 128 * 3072 * 4, 'out');
      const step = createStepBuffer(device);
      const kernel = createAttention(device, { ...phi3, maxT, step, q: qBuf, kCache: kBuf, vCache: vBuf, out });
      for (const s of shapes) {
        writeStep(device, step, { seqLen: s.seqLen, pastLen: s.pastLen });
        const total = s.pastLen + s.seqLen;
        const run = async (n: number): Promise<number> => {
          const t0 = performance.now();
          const enc = device.createCommandEncoder();
          for (let i = 0; i < n; i++) {
            const pass = enc.beginComputePass();
            kernel.encode(pass, s.seqLen, total);
            pass.end();
          }
          device.queue.submit([enc.finish()]);
          await device.queue.onSubmittedWorkDone();
          return (performance.now() - t0) / n;
        };
        await run(1); // warm-up: pipeline compilation and first-touch of the caches
        const ms = await run(1);
        console.log(`[${runtimeName()}] attention timing ${s.name} (${kernel.path(s.seqLen, total)}): ${ms.toFixed(2)} ms per call`);
      }
      for (const b of [kBuf, vBuf, qBuf, out, step]) b.destroy();
    });
  });
});
