import { describe, expect, it } from 'vitest';
import { createRmsNorm, rmsNormReference } from './rmsnorm';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { maxAbsDiff, runtimeName, seededRandom, testGpu } from '../gpu/testing';

const TOLERANCE = 1e-5;

describe('rmsnorm kernel [gpu]', () => {
  for (const fused of [false, true]) {
    it(`matches the reference ${fused ? 'with fused residual add' : 'plain'} (rows 5, n 3072)`, async () => {
      const { device } = await testGpu();
      const rows = 5;
      const n = 3072;
      const hidden = seededRandom(rows * n, 1, 3);
      const delta = seededRandom(rows * n, 2, 1);
      const weight = seededRandom(n, 3, 2);
      const want = rmsNormReference(hidden, weight, 1e-5, fused ? delta : undefined);
      const got = await withErrorScopes(device, async () => {
        const hBuf = createStorageBuffer(device, hidden, 'hidden');
        const dBuf = createStorageBuffer(device, delta, 'delta');
        const wBuf = createStorageBuffer(device, weight, 'weight');
        const oBuf = createStorageBuffer(device, rows * n * 4, 'out');
        const kernel = createRmsNorm(device, { rows, n, eps: 1e-5, hidden: hBuf, delta: fused ? dBuf : undefined, weight: wBuf, out: oBuf });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass);
        pass.end();
        device.queue.submit([enc.finish()]);
        const out = new Float32Array(await readBuffer(device, oBuf));
        const h = new Float32Array(await readBuffer(device, hBuf));
        for (const b of [hBuf, dBuf, wBuf, oBuf]) b.destroy();
        return { out, h };
      });
      const errOut = maxAbsDiff(got.out, want.out);
      const errHidden = maxAbsDiff(got.h, want.hidden);
      console.log(`[${runtimeName()}] rmsnorm fused=${fused}: max |Δout| = ${errOut.toExponential(2)}, max |Δhidden| = ${errHidden.toExponential(2)} (tolerance ${TOLERANCE})`);
      expect(errOut).toBeLessThanOrEqual(TOLERANCE);
      expect(errHidden).toBeLessThanOrEqual(TOLERANCE);
    });
  }
});
