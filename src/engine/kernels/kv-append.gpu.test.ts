import { describe, expect, it } from 'vitest';
import { createKvAppend, kvAppendReference, type KvAppendLayout } from './kv-append';
import { buildRotaryCache, rotaryReference } from './rotary';
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
  /** Rotate q in place in the same dispatch: inside the packed kSrc row, or in its own buffer. */
  rotateQ?: { heads: number; rowStride: number; offset: number; packed: boolean };
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
  {
    name: 'fused rotary + q in place, Phi-3 packed qkv, prefill 3 at pastLen 0',
    l: { seqLen: 3, pastLen: 0, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 16 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 64, cacheIndex: 0 },
    rotateQ: { heads: 32, rowStride: 9216, offset: 0, packed: true },
  },
  {
    name: 'fused rotary + q in place, fp16 caches, Phi-3 packed qkv decode at pastLen 4095',
    l: { seqLen: 1, pastLen: 4095, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 4096 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 4096, cacheIndex: 0, dtype: 'f16' },
    rotateQ: { heads: 32, rowStride: 9216, offset: 0, packed: true },
  },
  {
    name: 'fused rotary + q in place, separate q/k/v buffers, GQA 8/2, D 64 partial rotary 32, LongRoPE long pair, prefill 5 at pastLen 7 (overflow dropped)',
    l: { seqLen: 5, pastLen: 7, kvHeads: 2, headDim: 64, rowStride: 2 * 64 + 3, kOffset: 3, vOffset: 0, maxT: 10 },
    separate: true,
    rotary: { rotaryDim: 32, maxPos: 48, cacheIndex: 1 },
    rotateQ: { heads: 8, rowStride: 8 * 64 + 5, offset: 5, packed: false },
  },
  {
    name: 'fused rotary + q in place, separate q, Phi-3 shape, LongRoPE long pair, fp16 caches, decode at pastLen 4095',
    l: { seqLen: 1, pastLen: 4095, kvHeads: 32, headDim: 96, rowStride: 3072, kOffset: 0, vOffset: 0, maxT: 4096 },
    separate: true,
    rotary: { rotaryDim: 96, maxPos: 4096, cacheIndex: 1, dtype: 'f16' },
    rotateQ: { heads: 32, rowStride: 3072, offset: 0, packed: false },
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
      const rq = c.rotateQ;
      const q0 = rq && !rq.packed ? seededRandom(l.seqLen * rq.rowStride, 25, 1) : kSrc;
      // What the q buffer must hold afterwards (packed: the whole qkv rows, k and v unchanged).
      const wantQ = rq && used ? rotaryReference(q0, used.cos, used.sin, { seqLen: l.seqLen, pastLen: l.pastLen, heads: rq.heads, headDim: l.headDim, rotaryDim: used.rotaryDim, rowStride: rq.rowStride, offset: rq.offset }) : undefined;
      const got = await withErrorScopes(device, async () => {
        const step = createStepBuffer(device);
        writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
        const kBuf = createStorageBuffer(device, kSrc, 'kSrc');
        const vBuf = c.separate ? createStorageBuffer(device, vSrc, 'vSrc') : kBuf;
        const kCache = createStorageBuffer(device, k0, 'kCache');
        const vCache = createStorageBuffer(device, v0, 'vCache');
        const cacheBufs = uploads.map((p) => ({ cos: createStorageBuffer(device, p.cos, 'cos'), sin: createStorageBuffer(device, p.sin, 'sin') }));
        const rotary = rc ? { rotaryDim: rc.rotaryDim, maxPositions: rc.maxPos, dtype: rc.dtype ?? 'f32', caches: [cacheBufs[0], cacheBufs[1]] as const } : undefined;
        const qBuf = rq ? (rq.packed ? kBuf : createStorageBuffer(device, q0, 'q')) : undefined;
        const rotateQ = rq && qBuf ? { heads: rq.heads, qBuffer: qBuf, rowStride: rq.rowStride, offset: rq.offset } : undefined;
        const kernel = createKvAppend(device, { ...l, step, kSrc: kBuf, vSrc: vBuf, kCache, vCache, rotary, rotateQ });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass, l.seqLen, rc?.cacheIndex);
        pass.end();
        device.queue.submit([enc.finish()]);
        const k = new Float32Array(await readBuffer(device, kCache));
        const v = new Float32Array(await readBuffer(device, vCache));
        const q = qBuf ? new Float32Array(await readBuffer(device, qBuf)) : undefined;
        for (const b of new Set([step, kBuf, vBuf, kCache, vCache, ...(qBuf ? [qBuf] : []), ...cacheBufs.flatMap((p) => [p.cos, p.sin])])) b.destroy();
        return { k, v, q };
      });
      const err = Math.max(maxAbsDiff(got.k, want.kCache), maxAbsDiff(got.v, want.vCache));
      const tolerance = c.rotary ? ROTARY_TOLERANCE : TOLERANCE;
      console.log(`[${runtimeName()}] kv append ${c.name}: max |Δ| = ${err.toExponential(2)} (tolerance ${tolerance})`);
      expect(err).toBeLessThanOrEqual(tolerance);
      if (wantQ) {
        expect(got.q).toBeDefined();
        const qErr = maxAbsDiff(got.q ?? new Float32Array(0), wantQ);
        console.log(`[${runtimeName()}] kv append ${c.name}: q max |Δ| = ${qErr.toExponential(2)} (tolerance ${ROTARY_TOLERANCE})`);
        expect(qErr).toBeLessThanOrEqual(ROTARY_TOLERANCE);
      }
    });
  }

  it('rejects rotateQ without rotary, and a q buffer shared with only one of kSrc/vSrc', async () => {
    const { device } = await testGpu();
    const step = createStepBuffer(device);
    const a = createStorageBuffer(device, new Float32Array(64), 'a');
    const b = createStorageBuffer(device, new Float32Array(64), 'b');
    const cache = createStorageBuffer(device, new Float32Array(64), 'cache');
    const l = { kvHeads: 1, headDim: 8, rowStride: 8, kOffset: 0, vOffset: 0, maxT: 4, step, kCache: cache, vCache: cache };
    const rotary = { rotaryDim: 8, maxPositions: 1, dtype: 'f32' as const, caches: [{ cos: cache, sin: cache }] as const };
    expect(() => createKvAppend(device, { ...l, kSrc: a, vSrc: a, rotateQ: { heads: 1, qBuffer: b, rowStride: 8, offset: 0 } })).toThrow(/needs rotary/);
    expect(() => createKvAppend(device, { ...l, kSrc: a, vSrc: b, rotary, rotateQ: { heads: 1, qBuffer: a, rowStride: 8, offset: 0 } })).toThrow(/both kSrc and vSrc/);
    for (const buf of [step, a, b, cache]) buf.destroy();
  });
});
