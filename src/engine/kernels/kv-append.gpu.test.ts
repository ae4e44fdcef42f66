import { describe, expect, it } from 'vitest';
import { createKvAppend, kvAppendReference, type KvAppendLayout } from './kv-append';
import { buildRotaryCache } from './rotary';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { f16BitsToF32, maxAbsDiff, runtimeName, seededRandom, testGpu } from '../gpu/testing';
import { float32ToFloat16Bits } from './dequantize';

// A copy: exact. With the fused rotary: one rotation in f32 (as rotary.gpu.test.ts).
const TOLERANCE = 0;
const ROTARY_TOLERANCE = 2e-6;

interface Case {
  name: string;
  l: KvAppendLayout;
  separate: boolean;
  /** Fused rotary of k: rotaryDim, cache positions, and which of two (LongRoPE) pairs to use. */
  rotary?: { rotaryDim: number; maxPos: number; cacheIndex: 0 | 1; dtype?: 'f32' | 'f16' };
}

const cases: Case[] = [
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
  {
    name: 'fused rotary, Phi-3 packed qkv, prefill 6 at pastLen 10',
    l: { seqLen: 6, pastLen: 10, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 16 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 64, cacheIndex: 0 },
  },
  {
    name: 'fused rotary, LongRoPE long pair, GQA D 64 partial rotary 32, decode',
    l: { seqLen: 1, pastLen: 40, kvHeads: 2, headDim: 64, rowStride: 8 * 64 + 4 * 64, kOffset: 8 * 64, vOffset: 10 * 64, maxT: 48 },
    separate: false,
    rotary: { rotaryDim: 32, maxPos: 48, cacheIndex: 1 },
  },
  {
    name: 'fused rotary, fp16 caches (short pair), Phi-3 decode at pastLen 4095',
    l: { seqLen: 1, pastLen: 4095, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 4096 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 4096, cacheIndex: 0, dtype: 'f16' },
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
      const rc = c.rotary;
      const f16 = rc?.dtype === 'f16';
      const built = rc ? [buildRotaryCache(rc.maxPos, rc.rotaryDim, 10000), buildRotaryCache(rc.maxPos, rc.rotaryDim, 10000, new Array<number>(rc.rotaryDim / 2).fill(4), 1.19)] : [];
      const uploads = built.map((p) => (f16 ? { cos: float32ToFloat16Bits(p.cos), sin: float32ToFloat16Bits(p.sin) } : p));
      const pairs = f16 ? uploads.map((p) => ({ cos: f16BitsToF32(p.cos as Uint16Array), sin: f16BitsToF32(p.sin as Uint16Array) })) : built;
      const used = rc ? { ...pairs[rc.cacheIndex], rotaryDim: rc.rotaryDim } : undefined;
      const want = kvAppendReference(kSrc, vSrc, k0, v0, l, used);
      const got = await withErrorScopes(device, async () => {
        const step = createStepBuffer(device);
        writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
        const kBuf = createStorageBuffer(device, kSrc, 'kSrc');
        const vBuf = c.separate ? createStorageBuffer(device, vSrc, 'vSrc') : kBuf;
        const kCache = createStorageBuffer(device, k0, 'kCache');
        const vCache = createStorageBuffer(device, v0, 'vCache');
        const cacheBufs = uploads.map((p) => ({ cos: createStorageBuffer(device, p.cos, 'cos'), sin: createStorageBuffer(device, p.sin, 'sin') }));
        const rotary = rc ? { rotaryDim: rc.rotaryDim, maxPositions: rc.maxPos, dtype: rc.dtype ?? 'f32', caches: [cacheBufs[0], cacheBufs[1]] as const } : undefined;
        const kernel = createKvAppend(device, { ...l, step, kSrc: kBuf, vSrc: vBuf, kCache, vCache, rotary });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass, l.seqLen, rc?.cacheIndex);
        pass.end();
        device.queue.submit([enc.finish()]);
        const k = new Float32Array(await readBuffer(device, kCache));
        const v = new Float32Array(await readBuffer(device, vCache));
        for (const b of new Set([step, kBuf, vBuf, kCache, vCache, ...cacheBufs.flatMap((p) => [p.cos, p.sin])])) b.destroy();
        return { k, v };
      });
      const err = Math.max(maxAbsDiff(got.k, want.kCache), maxAbsDiff(got.v, want.vCache));
      const tolerance = c.rotary ? ROTARY_TOLERANCE : TOLERANCE;
      console.log(`[${runtimeName()}] kv append ${c.name}: max |Δ| = ${err.toExponential(2)} (tolerance ${tolerance})`);
      expect(err).toBeLessThanOrEqual(tolerance);
    });
  }
});
