import { describe, expect, it } from 'vitest';
import { createSiluMul, siluMulLayoutFused, siluMulLayoutSeparate, siluMulReference } from './silu-mul';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

// Relative to max(1, |reference|): a few f32 roundings and the GPU's exp (a few ulp).
const TOLERANCE = 1e-5;

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

const cases = [
  { name: 'Phi-3 fused gate_up, prefill 3 (I 8192)', seqLen: 3, I: 8192, fused: true, scale: 12 },
  { name: 'Phi-3 separate gate and up, decode (I 8192)', seqLen: 1, I: 8192, fused: false, scale: 12 },
  { name: 'odd size I 37, 5 rows, extreme gates', seqLen: 5, I: 37, fused: true, scale: 200 },
];

describe('silu·up kernel [gpu]', () => {
  for (const c of cases) {
    it(`matches the reference: ${c.name}`, async () => {
      const { device } = await testGpu();
      const l = c.fused ? siluMulLayoutFused(c.I) : siluMulLayoutSeparate(c.I);
      const gate = seededRandom(c.seqLen * l.gateStride, 51, c.scale);
      const up = c.fused ? gate : seededRandom(c.seqLen * l.upStride, 52, 3);
      const want = siluMulReference(gate, up, c.seqLen, l);
      const got = await withErrorScopes(device, async () => {
        const step = createStepBuffer(device);
        writeStep(device, step, { seqLen: c.seqLen, pastLen: 0 });
        const gBuf = createStorageBuffer(device, gate, 'gate');
        const uBuf = c.fused ? gBuf : createStorageBuffer(device, up, 'up');
        const out = createStorageBuffer(device, c.seqLen * c.I * 4, 'out');
        const kernel = createSiluMul(device, { ...l, step, gate: gBuf, up: uBuf, out });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass, c.seqLen);
        pass.end();
        device.queue.submit([enc.finish()]);
        const result = new Float32Array(await readBuffer(device, out));
        for (const b of new Set([step, gBuf, uBuf, out])) b.destroy();
        return result;
      });
      const err = maxRelDiff(got, want);
      console.log(`[${runtimeName()}] silu·up ${c.name}: max |Δ|/max(1,|ref|) = ${err.toExponential(2)} (tolerance ${TOLERANCE})`);
      expect(err).toBeLessThanOrEqual(TOLERANCE);
    });
  }
});
