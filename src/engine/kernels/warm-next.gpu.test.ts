import { describe, expect, it } from 'vitest';
import { createAttention } from './attention';
import { createStepBuffer, writeStep } from './step';
import { createMatMulNBits, matMulNBitsDp4aSupported, matMulNBitsPath, matMulNBitsWarmNextSupported, type MatMulNBitsKernel, type MatMulNBitsTuning } from './matmul-nbits';
import { makeWeights, type WeightCase } from './matmul-testing';
import { matMulNBitsShape } from './dequantize';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

// tuning.warmNext (warm-next.ts): a decode GEMV or decode attention that also reads a share of the
// next matmul's packed rows into the cache. Its contract is exact: the host's output is bit for bit
// the plain kernel's, and the warm workgroups read each word of the leading `prefixWords` of every
// next row exactly once (the wrapping sum of their `sums` equals the sum of those words).

const { device } = await testGpu();
const supported = matMulNBitsWarmNextSupported(device);
const NO_LIMIT_REASON = `needs 9 storage buffers per shader stage; this device allows ${device.limits.maxStorageBuffersPerShaderStage}`;

/** Wrapping u32 sum of the leading prefixWords 16-byte words of each packed row (as the GPU reads them). */
function prefixChecksum(packed: Uint8Array, rows: number, rowWords: number, prefixWords: number): number {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < prefixWords * 4; j++) sum = (sum + view.getUint32((r * rowWords * 4 + j) * 4, true)) >>> 0;
  }
  return sum;
}

/** Storage buffers made for one run, destroyed together. */
function scratch(): { buf(data: ArrayBufferView | number, label: string): GPUBuffer; destroy(): void } {
  const made: GPUBuffer[] = [];
  return {
    buf(data, label) {
      const b = createStorageBuffer(device, data, label);
      made.push(b);
      return b;
    },
    destroy: () => made.forEach((b) => b.destroy()),
  };
}

interface Run {
  plain: Uint32Array;
  warmed: Uint32Array;
  sum: number;
  want: number;
  bytes: number;
  path: string;
}

/** The host GEMV (K × N) with and without warming `next`'s rows: both outputs, the sums' total and its reference. */
async function run(host: WeightCase, next: WeightCase, tuning: MatMulNBitsTuning, seed: number): Promise<Run> {
  const h = makeWeights(host, seed);
  const n = makeWeights(next, seed + 10);
  const x = seededRandom(host.K, seed + 20, 2);
  return withErrorScopes(device, async () => {
    const { buf, destroy } = scratch();
    const kernel = (c: WeightCase, w: ReturnType<typeof makeWeights>, input: GPUBuffer, output: GPUBuffer, t: MatMulNBitsTuning): MatMulNBitsKernel =>
      createMatMulNBits(device, {
        K: c.K,
        N: c.N,
        blockSize: c.blockSize,
        hasZeroPoints: c.zp,
        scalesDtype: c.f16 ? 'f16' : 'f32',
        weights: buf(w.params.packed, 'weights'),
        scales: buf(w.scaleBytes, 'scales'),
        zeroPoints: w.params.zeroPoints ? buf(w.params.zeroPoints, 'zeroPoints') : undefined,
        input,
        output,
        maxM: 1,
        tuning: t,
      });
    const input = buf(x, 'input');
    const outPlain = buf(host.N * 4, 'outPlain');
    const outWarmed = buf(host.N * 4, 'outWarmed');
    // The next matmul is only read by the warm workgroups, never run.
    const nextKernel = kernel(next, n, buf(next.K * 4, 'nextIn'), buf(next.N * 4, 'nextOut'), {});
    const plain = kernel(host, h, input, outPlain, { ...tuning, warmNext: 0 });
    const warmed = kernel(host, h, input, outWarmed, tuning);
    expect(plain.warmSumsBytes(nextKernel.gemvWeights)).toBe(0);
    expect(plain.warmNext(nextKernel.gemvWeights, input)).toBe(0);
    // (16 bytes at least: a next matmul without GEMV rows needs none.)
    const sums = buf(Math.max(16, warmed.warmSumsBytes(nextKernel.gemvWeights)), 'sums');
    const bytes = warmed.warmNext(nextKernel.gemvWeights, sums);
    expect(() => warmed.warmNext(nextKernel.gemvWeights, sums)).toThrow(/already/);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    plain.encode(pass, 1);
    warmed.encode(pass, 1);
    pass.end();
    device.queue.submit([enc.finish()]);
    const words = new Uint32Array(await readBuffer(device, sums));
    let sum = 0;
    for (const v of words) sum = (sum + v) >>> 0;
    const rowWords = matMulNBitsShape(next.K, next.N, next.blockSize).kPadded / 32;
    const result = {
      plain: new Uint32Array(await readBuffer(device, outPlain)),
      warmed: new Uint32Array(await readBuffer(device, outWarmed)),
      sum,
      want: prefixChecksum(n.params.packed, next.N, rowWords, bytes / 16 / next.N),
      bytes,
      path: matMulNBitsPath(warmed, 1),
    };
    destroy();
    return result;
  });
}

describe('matmulNBits warmNext [gpu]', () => {
  it.skipIf(!supported)(`reads the share of the next rows exactly once and leaves the GEMV's output bit for bit${supported ? '' : ` (${NO_LIMIT_REASON})`}`, async () => {
    const host: WeightCase = { K: 256, N: 37, blockSize: 32, zp: true, f16: true };
    const next: WeightCase = { K: 384, N: 45, blockSize: 32, zp: false, f16: false }; // 12 words per row
    const gemvs: MatMulNBitsTuning[] = [
      { gemv: 'staged' },
      { gemv: 'staged', subgroups: false, threadsPerRow: 8, rowGroups: 3, rowsPerThread: 2 },
      { gemv: 'direct', threadsPerRow: 4, rowGroups: 2, rowsPerThread: 3 },
      ...(matMulNBitsDp4aSupported(device) ? [{ gemv: 'dp4a' as const }, { gemv: 'dp4a' as const, subgroups: false, threadsPerRow: 32, rowGroups: 8, rowsPerThread: 4 }] : []),
    ];
    let seed = 700;
    for (const t of gemvs) {
      // A sliver (one word per row), half, and whole rows; 0.01 of 12 words rounds to 0, so 1.
      for (const [share, words] of [[0.01, 1], [0.5, 6], [1, 12]] as const) {
        const r = await run(host, next, { ...t, warmNext: share }, seed++);
        console.log(`[${runtimeName()}] warmNext ${share} on ${r.path} ${JSON.stringify(t)}: ${r.bytes} bytes read ahead, sums ${r.sum} (want ${r.want}), output identical: ${r.plain.every((v, i) => v === r.warmed[i])}`);
        expect(r.bytes).toBe(next.N * words * 16);
        expect(r.sum).toBe(r.want);
        expect(r.warmed).toEqual(r.plain);
      }
    }
    // A next matmul much larger than the host's grid (runs of hundreds of words per workgroup),
    // with block 16 (rows of 16 words), and one whose rows are not 16-byte aligned (no GEMV: not warmed).
    const big = await run({ K: 64, N: 8, blockSize: 32, zp: false, f16: true }, { K: 512, N: 300, blockSize: 16, zp: true, f16: true }, { warmNext: 0.75, threadsPerRow: 4, rowGroups: 2, rowsPerThread: 2 }, 720);
    expect([big.bytes, big.sum]).toEqual([300 * 12 * 16, big.want]);
    expect(big.warmed).toEqual(big.plain);
    const unaligned = await run(host, { K: 100, N: 9, blockSize: 16, zp: false, f16: false }, { warmNext: 1 }, 730);
    expect([unaligned.bytes, unaligned.sum]).toEqual([0, 0]);
    expect(unaligned.warmed).toEqual(unaligned.plain);
  });

  it('refuses a share outside 0..1 and a sums buffer smaller than the grid', async () => {
    const w = makeWeights({ K: 64, N: 8, blockSize: 32, zp: false, f16: false }, 1);
    const buffers = [createStorageBuffer(device, w.params.packed, 'w'), createStorageBuffer(device, w.scaleBytes, 's'), createStorageBuffer(device, 64 * 4, 'in'), createStorageBuffer(device, 8 * 4, 'out')];
    const make = (warmNext: number) => createMatMulNBits(device, { K: 64, N: 8, blockSize: 32, hasZeroPoints: false, scalesDtype: 'f32', weights: buffers[0], scales: buffers[1], input: buffers[2], output: buffers[3], maxM: 1, tuning: { warmNext } });
    for (const bad of [1.5, -0.1, Number.NaN]) expect(() => make(bad)).toThrow(/tuning\.warmNext = .* must be a number from 0 to 1/);
    const k = make(1);
    if (supported) {
      expect(k.warmSumsBytes(k.gemvWeights)).toBeGreaterThan(4);
      const tiny = createStorageBuffer(device, 4, 'tiny');
      expect(() => k.warmNext(k.gemvWeights, tiny)).toThrow(/warmNext sums buffer has 4 bytes/);
      tiny.destroy();
    } else {
      expect(k.warmSumsBytes(k.gemvWeights)).toBe(0);
    }
    for (const b of buffers) b.destroy();
  });
});

describe('attention warmNext [gpu]', () => {
  it("reads the share of o_proj's rows exactly once in decode (one pass and split-K, both kernels) and leaves attention's output bit for bit; prefill reads nothing", async () => {
    const heads = 4;
    const kvHeads = 2;
    const headDim = 32;
    const maxT = 128;
    // The next matmul: 1000 rows of 12 words of arbitrary bits, 6 of them read: 12 warm workgroups
    // of the serial kernel, 6 of 'lanes', more than a one-pass decode's 4 (the grid grows to
    // them) and fewer than split-K's 16.
    const rows = 1000;
    const rowWords = 12;
    const next = new Uint32Array(seededRandom(rows * rowWords * 4, 800, 1).map((v) => Math.floor((v + 1) * 2 ** 31)));
    const nextBytes = new Uint8Array(next.buffer);
    for (const kernel of ['serial', 'lanes'] as const) {
      for (const [seqLen, pastLen] of [[1, 5], [1, 100], [3, 40]] as const) {
        const share = 0.5;
        const r = await withErrorScopes(device, async () => {
          const { buf, destroy } = scratch();
          const step = createStepBuffer(device);
          writeStep(device, step, { seqLen, pastLen });
          const q = buf(seededRandom(seqLen * heads * headDim, 801, 1), 'q');
          const kCache = buf(seededRandom(kvHeads * maxT * headDim, 802, 1), 'kCache');
          const vCache = buf(seededRandom(kvHeads * maxT * headDim, 803, 1), 'vCache');
          const make = (out: GPUBuffer, warmNext: number) => createAttention(device, { heads, kvHeads, headDim, rowStride: heads * headDim, qOffset: 0, maxT, step, q, kCache, vCache, out, kernel, keysPerSplit: 16, maxSplits: 4, warmNext });
          const outPlain = buf(seqLen * heads * headDim * 4, 'outPlain');
          const outWarmed = buf(seqLen * heads * headDim * 4, 'outWarmed');
          const plain = make(outPlain, 0);
          const warmed = make(outWarmed, share);
          const nextRows = { buffer: buf(next, 'next'), rows, rowWords };
          expect(plain.warmNext(nextRows, outPlain)).toBe(0);
          const sums = buf(warmed.warmSumsBytes(nextRows), 'sums');
          const bytes = warmed.warmNext(nextRows, sums);
          expect(() => warmed.warmNext(nextRows, sums)).toThrow(/already/);
          const enc = device.createCommandEncoder();
          const pass = enc.beginComputePass();
          plain.encode(pass, seqLen, pastLen + seqLen);
          warmed.encode(pass, seqLen, pastLen + seqLen);
          pass.end();
          device.queue.submit([enc.finish()]);
          let sum = 0;
          for (const v of new Uint32Array(await readBuffer(device, sums))) sum = (sum + v) >>> 0;
          const result = {
            path: warmed.path(seqLen, pastLen + seqLen),
            bytes,
            sum,
            plain: new Uint32Array(await readBuffer(device, outPlain)),
            warmed: new Uint32Array(await readBuffer(device, outWarmed)),
          };
          destroy();
          step.destroy();
          return result;
        });
        const words = Math.round(share * rowWords);
        console.log(`[${runtimeName()}] attention ${kernel} ${r.path} (seqLen ${seqLen}, pastLen ${pastLen}) warming o_proj: ${r.bytes} bytes, sums ${r.sum}, output identical: ${r.plain.every((v, i) => v === r.warmed[i])}`);
        expect(r.bytes).toBe(rows * words * 16);
        expect(r.sum).toBe(seqLen === 1 ? prefixChecksum(nextBytes, rows, rowWords, words) : 0);
        expect(r.warmed).toEqual(r.plain);
        expect(r.path).toBe(seqLen > 1 ? 'tiled' : pastLen > 16 ? 'split-k' : 'tiled');
      }
    }
  });
});
