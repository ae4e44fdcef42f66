import { describe, expect, it } from 'vitest';
import { attentionPartialsBytes, attentionReference, createAttention, type AttentionLayout } from './attention';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { maxAbsDiff, runtimeName, seededRandom, testGpu } from '../gpu/testing';

// Outputs are convex combinations of v in [-1, 1]; f32 accumulation over up to 3000 keys with a
// streaming softmax (and a split-K combine) stays well inside 1e-5 of the double reference.
const TOLERANCE = 1e-5;

interface Case {
  name: string;
  l: AttentionLayout;
  qScale?: number;
  keysPerSplit?: number;
  maxSplits?: number;
  /** Pass a caller-owned split-K scratch buffer (as a model shares one across layers). */
  sharedPartials?: boolean;
  expectPath: 'tiled' | 'split-k';
}

const phi3 = { heads: 32, kvHeads: 32, headDim: 96, rowStride: 9216, qOffset: 0 };
const cases: Case[] = [
  { name: 'Phi-3 decode, pastLen 0', l: { ...phi3, seqLen: 1, pastLen: 0, maxT: 8 }, expectPath: 'tiled' },
  { name: 'Phi-3 prefill 7 from packed qkv, pastLen 0', l: { ...phi3, seqLen: 7, pastLen: 0, maxT: 16 }, expectPath: 'tiled' },
  { name: 'Phi-3 decode, pastLen 200', l: { ...phi3, seqLen: 1, pastLen: 200, maxT: 256 }, expectPath: 'tiled' },
  { name: 'Phi-3 decode, 3000 keys (split-K)', l: { ...phi3, seqLen: 1, pastLen: 2999, maxT: 3072 }, expectPath: 'split-k' },
  {
    name: 'Phi-3 decode, 3000 keys forced tiled',
    l: { ...phi3, seqLen: 1, pastLen: 2999, maxT: 3072 },
    keysPerSplit: 4096,
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 64, prefill 5 at pastLen 9, peaked scores',
    l: { heads: 8, kvHeads: 2, headDim: 64, rowStride: 12 * 64, qOffset: 0, seqLen: 5, pastLen: 9, maxT: 20 },
    qScale: 4,
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 16, decode pastLen 40',
    l: { heads: 8, kvHeads: 2, headDim: 16, rowStride: 8 * 16, qOffset: 0, seqLen: 1, pastLen: 40, maxT: 48 },
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 32, prefill 33 at pastLen 70 (partial tiles), custom scale 0.3',
    l: { heads: 8, kvHeads: 2, headDim: 32, rowStride: 3 + 12 * 32, qOffset: 3, seqLen: 33, pastLen: 70, maxT: 110, scale: 0.3 },
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 64, decode 3000 keys (split-K)',
    l: { heads: 8, kvHeads: 2, headDim: 64, rowStride: 8 * 64, qOffset: 0, seqLen: 1, pastLen: 2999, maxT: 3000 },
    qScale: 3,
    expectPath: 'split-k',
  },
  {
    name: 'GQA 4/2, D 32, decode 1000 keys, splits clamped to 5 of 64 keys (uneven chunks), shared scratch',
    l: { heads: 4, kvHeads: 2, headDim: 32, rowStride: 4 * 32, qOffset: 0, seqLen: 1, pastLen: 999, maxT: 1024 },
    keysPerSplit: 64,
    maxSplits: 5,
    sharedPartials: true,
    expectPath: 'split-k',
  },
  {
    name: 'split-K with more splits than keys per split (D 16, 70 keys, 8 per split)',
    l: { heads: 2, kvHeads: 1, headDim: 16, rowStride: 32, qOffset: 0, seqLen: 1, pastLen: 69, maxT: 80 },
    keysPerSplit: 8,
    maxSplits: 16,
    expectPath: 'split-k',
  },
];

async function runAttention(device: GPUDevice, c: Case, q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array> {
  const l = c.l;
  const step = createStepBuffer(device);
  writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
  const qBuf = createStorageBuffer(device, q, 'q');
  const kBuf = createStorageBuffer(device, k, 'kCache');
  const vBuf = createStorageBuffer(device, v, 'vCache');
  const out = createStorageBuffer(device, l.seqLen * l.heads * l.headDim * 4, 'out');
  const partials = c.sharedPartials && c.maxSplits ? device.createBuffer({ size: attentionPartialsBytes(l.heads, l.headDim, c.maxSplits), usage: GPUBufferUsage.STORAGE }) : undefined;
  const kernel = createAttention(device, { ...l, step, q: qBuf, kCache: kBuf, vCache: vBuf, out, keysPerSplit: c.keysPerSplit, maxSplits: c.maxSplits, partials });
  expect(kernel.path(l.seqLen, l.pastLen + l.seqLen)).toBe(c.expectPath);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  kernel.encode(pass, l.seqLen, l.pastLen + l.seqLen);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = new Float32Array(await readBuffer(device, out));
  for (const b of [step, qBuf, kBuf, vBuf, out]) b.destroy();
  partials?.destroy();
  return got;
}

describe('attention kernel [gpu]', () => {
  for (const c of cases) {
    it(`matches the reference: ${c.name}`, async () => {
      const { device } = await testGpu();
      const l = c.l;
      const q = seededRandom(l.seqLen * l.rowStride, 31, c.qScale ?? 1);
      const cacheSize = l.kvHeads * l.maxT * l.headDim;
      const k = seededRandom(cacheSize, 32, 1);
      const v = seededRandom(cacheSize, 33, 1);
      const want = attentionReference(q, k, v, l);
      const got = await withErrorScopes(device, () => runAttention(device, c, q, k, v));
      const err = maxAbsDiff(got, want);
      console.log(`[${runtimeName()}] attention ${c.name} [${c.expectPath}]: max |Δ| = ${err.toExponential(2)} (tolerance ${TOLERANCE})`);
      expect(err).toBeLessThanOrEqual(TOLERANCE);
    });
  }

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
