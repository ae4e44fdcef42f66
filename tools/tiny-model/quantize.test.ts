import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, writeModel, type LazyTensor } from './proto';
import { dequantizeMatrix, quantizeMatrix } from './quantize';
import { floatBytes, fromHalfBits, Rng, toHalfBits } from './random';

function randomMatrix(n: number, k: number, seed: number): Float32Array {
  return new Rng(seed, 'test-matrix').fill(new Float32Array(n * k), 0.5);
}

describe('quantizeMatrix / dequantizeMatrix', () => {
  const cases = [16, 32, 64, 128].flatMap((blockSize) => [false, true].flatMap((zeroPoints) => [false, true].map((halfScales) => ({ blockSize, zeroPoints, halfScales }))));

  it.each(cases)('round-trips within one quantisation step: block $blockSize, zp $zeroPoints, fp16 scales $halfScales', (opts) => {
    // K = 200 is not a multiple of any block size but 16 is not either: exercises padding.
    const n = 24;
    const k = 200;
    const w = randomMatrix(n, k, opts.blockSize);
    const q = quantizeMatrix(n, k, opts, (r, row) => row.set(w.subarray(r * k, (r + 1) * k)));
    const nBlocks = Math.ceil(k / opts.blockSize);
    expect(q.b.length).toBe(n * nBlocks * (opts.blockSize / 2));
    expect(q.scales.length).toBe(n * nBlocks);
    expect(q.zeroPoints?.length).toBe(opts.zeroPoints ? n * Math.ceil(nBlocks / 2) : undefined);
    const back = dequantizeMatrix(q);
    let worstSteps = 0;
    let withinHalf = 0;
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < k; c++) {
        const step = Math.abs(q.scales[r * nBlocks + Math.floor(c / opts.blockSize)]);
        const err = Math.abs(back[r * k + c] - w[r * k + c]);
        worstSteps = Math.max(worstSteps, err / step);
        if (err <= step / 2 + 1e-7) withinHalf++;
      }
    }
    console.log(`block ${opts.blockSize} zp ${opts.zeroPoints} half ${opts.halfScales}: worst error ${worstSteps.toFixed(3)} steps`);
    // Only the value opposite the peak can be clamped (one full step); an fp16-rounded scale moves
    // the peak by at most 8 · 2^-11 steps.
    expect(worstSteps).toBeLessThanOrEqual(opts.halfScales ? 1 + 8 * 2 ** -11 : 1.0001);
    expect(withinHalf / (n * k)).toBeGreaterThan(0.9);
    if (opts.halfScales) for (const s of q.scales) expect(fromHalfBits(toHalfBits(s))).toBe(s);
    if (!opts.zeroPoints) {
      expect(q.scales.some((s) => s < 0)).toBe(true);
      expect(q.scales.some((s) => s > 0)).toBe(true);
    }
  });

  it('packs element 2j in the low nibble and zero points low nibble first', () => {
    // One row, two blocks of 16: block 0 ramps -8..7 times 0.1, block 1 is constant 0.3.
    const k = 32;
    const row = new Float32Array(k);
    for (let j = 0; j < 16; j++) row[j] = (j - 8) * 0.1;
    row.fill(0.3, 16);
    const sym = quantizeMatrix(1, k, { blockSize: 16, zeroPoints: false, halfScales: false }, (_r, r) => r.set(row));
    expect(sym.scales[0]).toBeCloseTo(0.1, 6); // peak is -0.8 → scale = -0.8 / -8
    expect(sym.b[0]).toBe(0 | (1 << 4)); // q = 0 (−0.8) low, q = 1 (−0.7) high
    expect(sym.b[7]).toBe(14 | (15 << 4));
    expect(sym.scales[1]).toBeCloseTo(-0.3 / 8, 6);
    const asym = quantizeMatrix(1, k, { blockSize: 16, zeroPoints: true, halfScales: false }, (_r, r) => r.set(row));
    // Block 0: range [-0.8, 0.7] → scale 0.1, zp 8; block 1: range [0, 0.3] → scale 0.02, zp 0, q 15.
    expect(asym.scales[0]).toBeCloseTo(0.1, 6);
    expect(asym.scales[1]).toBeCloseTo(0.02, 6);
    expect(asym.zeroPoints?.[0]).toBe(8 | (0 << 4));
    expect(asym.b[8]).toBe(15 | (15 << 4));
  });
});

describe('MatMulNBits format agrees with onnxruntime', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phi3-mnb-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases = [
    { blockSize: 16, zeroPoints: false, half: false, k: 40 },
    { blockSize: 32, zeroPoints: true, half: false, k: 96 },
    { blockSize: 64, zeroPoints: false, half: true, k: 100 },
    { blockSize: 128, zeroPoints: true, half: true, k: 300 },
  ];
  it.each(cases)('Y = A·deq(W)ᵀ: block $blockSize, zp $zeroPoints, fp16 $half, K $k', async ({ blockSize, zeroPoints, half, k }) => {
    const n = 20;
    const m = 3;
    const w = randomMatrix(n, k, k);
    const q = quantizeMatrix(n, k, { blockSize, zeroPoints, halfScales: half }, (r, row) => row.set(w.subarray(r * k, (r + 1) * k)));
    const act = half ? DataType.FLOAT16 : DataType.FLOAT;
    const nBlocks = Math.ceil(k / blockSize);
    const t = (name: string, dataType: number, dims: number[], bytes: Uint8Array, external: boolean): LazyTensor => ({ name, dataType, dims, byteLength: bytes.length, external, chunks: () => [bytes] });
    const inits = [t('B', DataType.UINT8, [n, nBlocks, blockSize / 2], q.b, true), t('scales', act, [n * nBlocks], floatBytes(q.scales, half), false)];
    if (q.zeroPoints) inits.push(t('zp', DataType.UINT8, [q.zeroPoints.length], q.zeroPoints, false));
    const path = join(dir, `mnb-${blockSize}.onnx`);
    writeModel(
      {
        irVersion: 8,
        producerName: 'test',
        opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
        graph: {
          name: 'g',
          nodes: [{
            name: 'mnb', opType: 'MatMulNBits', domain: 'com.microsoft', inputs: ['A', 'B', 'scales', ...(q.zeroPoints ? ['zp'] : [])], outputs: ['Y'],
            attributes: { K: { int: k }, N: { int: n }, bits: { int: 4 }, block_size: { int: blockSize }, accuracy_level: { int: 0 } },
          }],
          initializers: inits,
          inputs: [{ name: 'A', elemType: act, shape: [m, k] }],
          outputs: [{ name: 'Y', elemType: act, shape: [m, n] }],
        },
      },
      path,
      `${path}_data`,
    );
    const a = new Rng(7, 'A').fill(new Float32Array(m * k), 1);
    const aRounded = half ? a.map((v) => fromHalfBits(toHalfBits(v))) : a;
    const session = await ort.InferenceSession.create(path);
    const feed = half ? new ort.Tensor('float16', new Uint16Array(new Uint8Array(floatBytes(a, true)).buffer), [m, k]) : new ort.Tensor('float32', a, [m, k]);
    const out = (await session.run({ A: feed })).Y;
    await session.release();
    const y = half ? Array.from(out.data as Uint16Array, fromHalfBits) : Array.from(out.data as Float32Array);
    const deq = dequantizeMatrix(q);
    let maxDiff = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let ref = 0;
        for (let c = 0; c < k; c++) ref += aRounded[i * k + c] * deq[j * k + c];
        maxDiff = Math.max(maxDiff, Math.abs(ref - y[i * n + j]) / Math.max(1, Math.abs(ref)));
      }
    }
    console.log(`MatMulNBits block ${blockSize} zp ${zeroPoints} fp16 ${half}: max relative difference ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(half ? 4e-3 : 1e-5);
  });
});
