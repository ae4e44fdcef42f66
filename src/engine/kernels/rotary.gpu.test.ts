import { describe, expect, it } from 'vitest';
import { buildRotaryCache, createRotary, rotaryReference, type RotaryLayout } from './rotary';
import { float32ToFloat16Bits } from './dequantize';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { maxAbsDiff, runtimeName, seededRandom, testGpu } from '../gpu/testing';
import { float16ToFloat32 } from '../onnx/tensor-data';

// f32 rotation of values |x| <= 2 with |cos|,|sin| <= 1.19: two products and a sum.
const TOLERANCE = 2e-6;

interface Case {
  name: string;
  layout: RotaryLayout;
  rows: number;
  maxPos: number;
  dtype: 'f32' | 'f16';
  longRope: boolean;
}

const LONG_SCALE = Math.sqrt(1 + Math.log(131072 / 4096) / Math.log(4096));
const shortFactors = Array.from({ length: 48 }, (_, i) => 1 + i * 0.01);
const longFactors = Array.from({ length: 48 }, (_, i) => 1 + i * 0.5);

const cases: Case[] = [
  {
    name: 'Phi-3 packed qkv, q and k together, prefill 7 at pastLen 5',
    layout: { seqLen: 7, pastLen: 5, heads: 64, headDim: 96, rotaryDim: 96, rowStride: 9216, offset: 0 },
    rows: 7,
    maxPos: 4096,
    dtype: 'f32',
    longRope: false,
  },
  {
    name: 'Phi-3 k only, decode at pastLen 4095, fp16 caches',
    layout: { seqLen: 1, pastLen: 4095, heads: 32, headDim: 96, rotaryDim: 96, rowStride: 9216, offset: 3072 },
    rows: 1,
    maxPos: 4096,
    dtype: 'f16',
    longRope: false,
  },
  {
    name: 'LongRoPE long caches, GQA k, partial rotary (headDim 64, rotaryDim 32)',
    layout: { seqLen: 3, pastLen: 4100, heads: 2, headDim: 64, rotaryDim: 32, rowStride: 8 * 64 + 4 * 64, offset: 8 * 64 },
    rows: 3,
    maxPos: 4200,
    dtype: 'f32',
    longRope: true,
  },
  {
    name: 'more than 65535 workgroups (2-D grid): 262200 tokens × 2 heads of 16',
    layout: { seqLen: 262200, pastLen: 0, heads: 2, headDim: 16, rotaryDim: 16, rowStride: 32, offset: 0 },
    rows: 262200,
    maxPos: 262200,
    dtype: 'f32',
    longRope: false,
  },
  {
    name: 'odd sizes: 5 heads of 16, offset 3, stride 101',
    layout: { seqLen: 9, pastLen: 0, heads: 5, headDim: 16, rotaryDim: 16, rowStride: 101, offset: 3 },
    rows: 9,
    maxPos: 64,
    dtype: 'f32',
    longRope: false,
  },
];

describe('rotary kernel [gpu]', () => {
  for (const c of cases) {
    it(`matches the reference: ${c.name}`, async () => {
      const { device } = await testGpu();
      const l = c.layout;
      const x = seededRandom(c.rows * l.rowStride, 11, 2);
      const factors = c.longRope ? [shortFactors, longFactors].map((f) => f.slice(0, l.rotaryDim / 2)) : [undefined];
      const scale = c.longRope ? LONG_SCALE : 1;
      let pairs = factors.map((f) => buildRotaryCache(c.maxPos, l.rotaryDim, 10000, f, scale));
      const uploads = pairs.map((p) => (c.dtype === 'f16' ? { cos: float32ToFloat16Bits(p.cos), sin: float32ToFloat16Bits(p.sin) } : p));
      if (c.dtype === 'f16') {
        pairs = uploads.map((p) => ({ cos: float16ToFloat32(p.cos as Uint16Array), sin: float16ToFloat32(p.sin as Uint16Array) }));
      }
      const cacheIndex = c.longRope ? 1 : 0;
      const want = rotaryReference(x, pairs[cacheIndex].cos, pairs[cacheIndex].sin, l);
      const got = await withErrorScopes(device, async () => {
        const step = createStepBuffer(device);
        writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
        const xBuf = createStorageBuffer(device, x, 'x');
        const cacheBufs = uploads.map((p) => ({ cos: createStorageBuffer(device, p.cos, 'cos'), sin: createStorageBuffer(device, p.sin, 'sin') }));
        const kernel = createRotary(device, {
          heads: l.heads,
          headDim: l.headDim,
          rotaryDim: l.rotaryDim,
          rowStride: l.rowStride,
          offset: l.offset,
          maxPositions: c.maxPos,
          dtype: c.dtype,
          step,
          x: xBuf,
          caches: cacheBufs.length === 2 ? [cacheBufs[0], cacheBufs[1]] : [cacheBufs[0]],
        });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass, l.seqLen, cacheIndex);
        pass.end();
        device.queue.submit([enc.finish()]);
        const out = new Float32Array(await readBuffer(device, xBuf));
        for (const b of [step, xBuf, ...cacheBufs.flatMap((p) => [p.cos, p.sin])]) b.destroy();
        return out;
      });
      const err = maxAbsDiff(got, want);
      console.log(`[${runtimeName()}] rotary ${c.name}: max |Δ| = ${err.toExponential(2)} (tolerance ${TOLERANCE})`);
      expect(err).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it('buildRotaryCache matches closed-form values', () => {
    const { cos, sin } = buildRotaryCache(10, 8, 10000, [1, 2, 3, 4], 2);
    // pos 3, i 2: inv_freq = 10000^(-4/8) / 3 = 0.01 / 3
    expect(cos[3 * 4 + 2]).toBeCloseTo(2 * Math.cos(0.01), 6);
    expect(sin[3 * 4 + 2]).toBeCloseTo(2 * Math.sin(0.01), 6);
    expect(LONG_SCALE).toBeCloseTo(1.190238, 6);
  });
});
