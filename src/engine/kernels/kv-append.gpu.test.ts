import { describe, expect, it } from 'vitest';
import { createKvAppend, kvAppendReference, type KvAppendLayout } from './kv-append';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { maxAbsDiff, runtimeName, seededRandom, testGpu } from '../gpu/testing';

// A copy: exact.
const TOLERANCE = 0;

const cases: Array<{ name: string; l: KvAppendLayout; separate: boolean }> = [
  {
    name: 'Phi-3 packed qkv, prefill 5 at pastLen 3',
    l: { seqLen: 5, pastLen: 3, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 16 },
    separate: false,
  },
  {
    name: 'Phi-3 decode into the last slot',
    l: { seqLen: 1, pastLen: 63, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 64 },
    separate: false,
  },
  {
    name: 'GQA 2 kv heads of 16, separate k and v buffers, overflow dropped',
    l: { seqLen: 4, pastLen: 7, kvHeads: 2, headDim: 16, rowStride: 32, kOffset: 0, vOffset: 0, maxT: 9 },
    separate: true,
  },
];

describe('kv append kernel [gpu]', () => {
  for (const c of cases) {
    it(`matches the reference: ${c.name}`, async () => {
      const { device } = await testGpu();
      const l = c.l;
      const kSrc = seededRandom(l.seqLen * l.rowStride, 21, 1);
      const vSrc = c.separate ? seededRandom(l.seqLen * l.rowStride, 22, 1) : kSrc;
      const cacheSize = l.kvHeads * l.maxT * l.headDim;
      const k0 = seededRandom(cacheSize, 23, 1);
      const v0 = seededRandom(cacheSize, 24, 1);
      const want = kvAppendReference(kSrc, vSrc, k0, v0, l);
      const got = await withErrorScopes(device, async () => {
        const step = createStepBuffer(device);
        writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
        const kBuf = createStorageBuffer(device, kSrc, 'kSrc');
        const vBuf = c.separate ? createStorageBuffer(device, vSrc, 'vSrc') : kBuf;
        const kCache = createStorageBuffer(device, k0, 'kCache');
        const vCache = createStorageBuffer(device, v0, 'vCache');
        const kernel = createKvAppend(device, { ...l, step, kSrc: kBuf, vSrc: vBuf, kCache, vCache });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass, l.seqLen);
        pass.end();
        device.queue.submit([enc.finish()]);
        const k = new Float32Array(await readBuffer(device, kCache));
        const v = new Float32Array(await readBuffer(device, vCache));
        for (const b of new Set([step, kBuf, vBuf, kCache, vCache])) b.destroy();
        return { k, v };
      });
      const err = Math.max(maxAbsDiff(got.k, want.kCache), maxAbsDiff(got.v, want.vCache));
      console.log(`[${runtimeName()}] kv append ${c.name}: max |Δ| = ${err.toExponential(2)} (tolerance ${TOLERANCE})`);
      expect(err).toBeLessThanOrEqual(TOLERANCE);
    });
  }
});
