import { describe, expect, it } from 'vitest';
import { createMatMulNBits, matMulNBitsPath, matMulNBitsReady, matMulNBitsReference, type MatMulNBitsTuning } from './matmul-nbits';
import { dequantizeMatMulNBits, float32ToFloat16Bits } from './dequantize';
import { float16ToFloat32 } from '../onnx/tensor-data';
import { makeWeights, worstRelative, type WeightCase } from './matmul-testing';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

// Tolerance: |y_gpu − y_ref| ≤ TOL · (1 + |y_ref|) for every output. The reference accumulates in
// f64; the kernels accumulate K products in f32 in a different order, so the error grows with K
// and with the size of the terms (|y| reaches ~20 here); 1e-4 leaves an order of magnitude margin.
const TOL = 1e-4;

interface Case extends WeightCase {
  M: number;
  maxM?: number;
}

async function runCase(c: Case, seed: number, tuning: MatMulNBitsTuning, compile: 'sync' | 'async' = 'sync'): Promise<{ rel: number; abs: number; got: Float32Array; path: string; rows: number; columns: 1 | 2 | null; earlyEncode?: unknown }> {
  const { device } = await testGpu();
  const maxM = c.maxM ?? c.M;
  const { params, scaleBytes } = makeWeights(c, seed);
  const A = seededRandom(maxM * c.K, seed + 3, 2);
  const want = matMulNBitsReference(A.subarray(0, c.M * c.K), c.M, params);
  const { got, path, rows, columns, earlyEncode } = await withErrorScopes(device, async () => {
    const buffers = {
      weights: createStorageBuffer(device, params.packed, 'weights'),
      scales: createStorageBuffer(device, scaleBytes, 'scales'),
      zeroPoints: params.zeroPoints ? createStorageBuffer(device, params.zeroPoints, 'zeroPoints') : undefined,
      input: createStorageBuffer(device, A, 'input'),
      output: createStorageBuffer(device, maxM * c.N * 4, 'output'),
    };
    const kernel = createMatMulNBits(device, {
      K: c.K,
      N: c.N,
      blockSize: c.blockSize,
      hasZeroPoints: c.zp,
      scalesDtype: c.f16 ? 'f16' : 'f32',
      ...buffers,
      maxM,
      tuning,
      compile,
    });
    let earlyEncode: unknown;
    if (compile === 'async') {
      // Encoding before the background compile has been awaited is refused, not silently wrong.
      const early = device.createCommandEncoder();
      const earlyPass = early.beginComputePass();
      try {
        kernel.encode(earlyPass, c.M);
      } catch (err) {
        earlyEncode = err;
      }
      earlyPass.end();
      early.finish();
      await matMulNBitsReady(device);
    }
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass, c.M);
    pass.end();
    device.queue.submit([enc.finish()]);
    const out = new Float32Array(await readBuffer(device, buffers.output, c.M * c.N * 4));
    for (const buf of Object.values(buffers)) buf?.destroy();
    return { got: out, path: matMulNBitsPath(kernel, c.M), rows: kernel.decodeRows, columns: kernel.prefillWideColumns(c.M), earlyEncode };
  });
  return { ...worstRelative(got, want), got, path, rows, columns, earlyEncode };
}

function label(c: Case): string {
  return `M=${c.M} N=${c.N} K=${c.K} block=${c.blockSize} zp=${c.zp ? 'on' : 'off'} scales=${c.f16 ? 'f16' : 'f32'}`;
}

async function check(c: Case, seed: number, tuning: MatMulNBitsTuning = {}): Promise<void> {
  const r = await runCase(c, seed, tuning);
  const split = Object.keys(tuning).length ? ` ${JSON.stringify(tuning)}` : '';
  console.log(`[${runtimeName()}] matmulNBits ${label(c)} (${r.path}${split}): max |Δ|/(1+|y|) = ${r.rel.toExponential(2)}, max |Δ| = ${r.abs.toExponential(2)} (tolerance ${TOL})`);
  expect(r.rel).toBeLessThanOrEqual(TOL);
}

describe('matmulNBits GEMV, M = 1 [gpu]', () => {
  it('every block size, zero points on/off, f32/f16 scales, N not a multiple of the rows per workgroup', async () => {
    let seed = 10;
    for (const blockSize of [16, 32, 64, 128]) {
      for (const zp of [false, true]) {
        for (const f16 of [false, true]) await check({ M: 1, N: 37, K: 384, blockSize, zp, f16 }, seed++);
      }
    }
  });

  it('odd K: K = 100 with block 32 (GEMV) and block 16 (rows not 16-byte aligned: GEMM path)', async () => {
    await check({ M: 1, N: 19, K: 100, blockSize: 32, zp: true, f16: false }, 40);
    await check({ M: 1, N: 19, K: 100, blockSize: 16, zp: false, f16: true }, 41);
    await check({ M: 1, N: 23, K: 1000, blockSize: 128, zp: true, f16: true }, 42);
  });

  it('stagedRowsPerThread: the rows of the staged GEMV, asked for or as the dp4a fallback; dp4a keeps rowsPerThread', async () => {
    const t = { threadsPerRow: 8, rowGroups: 3, rowsPerThread: 4, stagedRowsPerThread: 2 };
    // K = 100: rows padded to 128 (whole 16-byte words, so a GEMV serves), but the activations are not whole 32-element chunks, so dp4a cannot run.
    const fallback = await runCase({ M: 1, N: 19, K: 100, blockSize: 32, zp: true, f16: false }, 60, { ...t, gemv: 'dp4a' });
    expect([fallback.path, fallback.rows]).toEqual([expect.stringMatching(/^gemv(-subgroup)?$/), 6]);
    expect(fallback.rel).toBeLessThanOrEqual(TOL);
    const staged = await runCase({ M: 1, N: 37, K: 256, blockSize: 32, zp: false, f16: true }, 61, { ...t, gemv: 'staged', stagedRowsPerThread: 3 });
    expect([staged.path, staged.rows]).toEqual([expect.stringMatching(/^gemv(-subgroup)?$/), 9]);
    expect(staged.rel).toBeLessThanOrEqual(TOL);
    // dp4a's numerics (int8 activations) are checked against their own reference in matmul-fused.gpu.test.ts.
    const dp4a = await runCase({ M: 1, N: 37, K: 256, blockSize: 32, zp: false, f16: true }, 62, { ...t, gemv: 'dp4a' });
    expect([dp4a.path, dp4a.rows]).toEqual([expect.stringMatching(/^gemv-dp4a(-subgroup)?$/), 12]);
  });

  it('the workgroup-memory reduction and the real-GPU work split match too', async () => {
    const gpuSplit = { threadsPerRow: 32, rowGroups: 2, rowsPerThread: 4 };
    await check({ M: 1, N: 33, K: 512, blockSize: 32, zp: true, f16: true }, 50, { subgroups: false });
    await check({ M: 1, N: 3072, K: 3072, blockSize: 32, zp: false, f16: false }, 51, { ...gpuSplit, subgroups: false });
    await check({ M: 1, N: 3072, K: 3072, blockSize: 16, zp: true, f16: true }, 52, gpuSplit);
    await check({ M: 1, N: 45, K: 8192, blockSize: 64, zp: false, f16: false }, 53, { threadsPerRow: 4, rowGroups: 3, rowsPerThread: 3 });
    await check({ M: 1, N: 45, K: 256, blockSize: 128, zp: true, f16: false }, 54, { threadsPerRow: 64, rowGroups: 4, rowsPerThread: 1, subgroups: false });
  });

  it('the direct GEMV (no staging): every block size, zero points, f16 scales, subgroups on/off, several splits', async () => {
    let seed = 80;
    for (const blockSize of [16, 32, 64, 128]) {
      for (const zp of [false, true]) {
        await check({ M: 1, N: 37, K: 384, blockSize, zp, f16: zp }, seed++, { gemv: 'direct' });
        await check({ M: 1, N: 37, K: 384, blockSize, zp, f16: !zp }, seed++, { gemv: 'direct', subgroups: false, threadsPerRow: 8, rowGroups: 3, rowsPerThread: 5 });
      }
    }
    await check({ M: 1, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true }, 90, { gemv: 'direct', threadsPerRow: 32, rowGroups: 2, rowsPerThread: 8 });
    await check({ M: 1, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true }, 91, { gemv: 'direct', threadsPerRow: 64, rowGroups: 1, rowsPerThread: 2 });
    await check({ M: 1, N: 32064, K: 3072, blockSize: 32, zp: false, f16: true }, 92, { gemv: 'direct', threadsPerRow: 16, rowGroups: 4, rowsPerThread: 4 });
    // K = 100 is not a whole number of 32-element chunks: the staged GEMV serves it instead.
    const r = await runCase({ M: 1, N: 19, K: 100, blockSize: 32, zp: true, f16: false }, 93, { gemv: 'direct' });
    expect(r.path).not.toContain('direct');
    expect(r.rel).toBeLessThanOrEqual(TOL);
  });

  it('the staged GEMV with weights prefetched (gemvPrefetch): every block size, several tiles, subgroups on/off, and where it does not fit', async () => {
    const nvidia = { threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2, gemvPrefetch: true };
    let seed = 500;
    for (const blockSize of [16, 32, 64, 128]) {
      for (const zp of [false, true]) {
        const r = await runCase({ M: 1, N: 37, K: 384, blockSize, zp, f16: !zp }, seed++, { ...nvidia, subgroups: zp });
        expect(r.path).toMatch(/^gemv.*\+prefetch$/);
        expect(r.rel).toBeLessThanOrEqual(TOL);
      }
    }
    // 256 lanes of 8 rows: most lanes have no chunk (their loads are clamped, never used), and K =
    // 8000 spans several tiles wherever the tile cap is below it, the last one partial; then
    // NVIDIA's split over K = 8192 (two tiles at the 4096 cap) and q/k/v's 9216 rows.
    await check({ M: 1, N: 45, K: 8000, blockSize: 32, zp: true, f16: true }, 510, { threadsPerRow: 256, rowGroups: 1, rowsPerThread: 8, gemvPrefetch: true });
    await check({ M: 1, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true }, 511, nvidia);
    await check({ M: 1, N: 9216, K: 3072, blockSize: 32, zp: false, f16: true }, 512, { ...nvidia, subgroups: false });
    // SwiftShader's split (8 lanes of 8 rows) holds 12 chunks · 8 rows of a 3072 row: over 16 vec4s.
    const r = await runCase({ M: 1, N: 37, K: 3072, blockSize: 32, zp: false, f16: false }, 513, { threadsPerRow: 8, rowGroups: 2, rowsPerThread: 8, gemvPrefetch: true });
    expect(r.path).not.toContain('prefetch');
    expect(r.rel).toBeLessThanOrEqual(TOL);
  });

  it('real shapes: 3072×3072, 8192×3072 (gate/up), 3072×8192 (down)', async () => {
    await check({ M: 1, N: 3072, K: 3072, blockSize: 32, zp: false, f16: false }, 60);
    await check({ M: 1, N: 8192, K: 3072, blockSize: 32, zp: false, f16: true }, 61);
    await check({ M: 1, N: 3072, K: 8192, blockSize: 128, zp: true, f16: false }, 62);
  });

  it('real shape: lm_head 32064×3072, fp16 scales', async () => {
    await check({ M: 1, N: 32064, K: 3072, blockSize: 32, zp: false, f16: true }, 70);
  });
});

describe('matmulNBits GEMM, M > 1 [gpu]', () => {
  it('every block size, zero points on/off, f32/f16 scales, M = 7 and 33, maxM > M', async () => {
    let seed = 100;
    for (const blockSize of [16, 32, 64, 128]) {
      for (const zp of [false, true]) {
        const f16 = zp === (blockSize % 64 === 0);
        await check({ M: 7, maxM: 40, N: 45, K: 2 * blockSize + 16, blockSize, zp, f16 }, seed++);
        await check({ M: 33, N: 45, K: 256, blockSize, zp, f16: !f16 }, seed++);
      }
    }
  });

  it('other GEMM tilings: 16 × 4 threads with K steps of 64, 2 × 3 threads with K steps of 8, 8 rows per thread, no A padding', async () => {
    await check({ M: 33, maxM: 35, N: 70, K: 200, blockSize: 16, zp: true, f16: true }, 110, { gemmThreads: [16, 4], gemmStepK: 64 });
    await check({ M: 13, N: 29, K: 96, blockSize: 32, zp: false, f16: false }, 111, { gemmThreads: [2, 3], gemmStepK: 8 });
    // NVIDIA's default tiling (128 × 32 tiles, K steps of 16), with M and N not multiples of it.
    await check({ M: 40, maxM: 64, N: 200, K: 256, blockSize: 32, zp: false, f16: true }, 112, { gemmThreads: [32, 8], gemmStepK: 16 });
    // 8 rows per thread: 64-row tiles over M = 70 (a partial second tile), and a 2 × 3 split.
    await check({ M: 70, maxM: 72, N: 200, K: 256, blockSize: 32, zp: true, f16: true }, 113, { gemmThreads: [32, 8], gemmStepK: 16, gemmRowsPerThread: 8 });
    await check({ M: 13, N: 29, K: 96, blockSize: 16, zp: false, f16: false }, 114, { gemmThreads: [2, 3], gemmStepK: 8, gemmRowsPerThread: 8 });
    // The A tile without its row padding (the layout before gemmPadA), and NVIDIA's tiling with it.
    await check({ M: 40, maxM: 64, N: 200, K: 256, blockSize: 32, zp: true, f16: false }, 115, { gemmThreads: [32, 8], gemmStepK: 16, gemmPadA: false });
    await check({ M: 13, N: 29, K: 96, blockSize: 32, zp: false, f16: true }, 116, { gemmThreads: [2, 3], gemmStepK: 8, gemmPadA: false });
  });

  it('real shapes: 3072×3072 (M = 7), 8192×3072 and 3072×8192 (M = 33)', async () => {
    await check({ M: 7, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true }, 120);
    await check({ M: 33, N: 8192, K: 3072, blockSize: 32, zp: false, f16: false }, 121);
    await check({ M: 33, N: 3072, K: 8192, blockSize: 128, zp: true, f16: true }, 122);
  });
});

describe('matmulNBits wide GEMM (tuning.gemm \'wide\'), M > 1 [gpu]', () => {
  const wide = { gemm: 'wide' } as const;

  it('every block size, zero points on/off, f32/f16 scales, partial row and column tiles, maxM > M', async () => {
    let seed = 400;
    for (const blockSize of [16, 32, 64, 128]) {
      for (const zp of [false, true]) {
        const f16 = zp === (blockSize % 64 === 0);
        // K = 2·block + 32 (a partial block at the end for 64 and 128) and 256.
        const r = await runCase({ M: 7, maxM: 40, N: 45, K: 2 * blockSize + 32, blockSize, zp, f16 }, seed++, wide);
        expect(r.path).toBe('gemm-wide');
        expect(r.rel).toBeLessThanOrEqual(TOL);
        await check({ M: 33, N: 131, K: 256, blockSize, zp, f16: !f16 }, seed++, wide);
      }
    }
  });

  it('other splits: 2 columns per thread, 4 to 32 rows, 32 and 256 threads, K steps of 64 and 96 (past the row end)', async () => {
    await check({ M: 33, maxM: 35, N: 300, K: 256, blockSize: 32, zp: true, f16: true }, 420, { ...wide, gemmWideCols: 2 });
    await check({ M: 13, N: 29, K: 96, blockSize: 16, zp: false, f16: false }, 421, { ...wide, gemmWideThreads: 32, gemmWideRows: 4, gemmWideStepK: 64 });
    await check({ M: 40, maxM: 64, N: 200, K: 320, blockSize: 32, zp: false, f16: true }, 422, { ...wide, gemmWideRows: 32, gemmWideStepK: 96 });
    await check({ M: 70, maxM: 72, N: 600, K: 256, blockSize: 64, zp: true, f16: false }, 423, { ...wide, gemmWideThreads: 256, gemmWideRows: 8, gemmWideCols: 2 });
  });

  it('gemmWideMinGroups: a call too short for that many 2-column workgroups runs 1 column per thread, with the same result', async () => {
    // N = 300 with 128 threads × 2 columns: 2 workgroups per 16 rows. 8 rows → 2 < 4: 1 column
    // (3 workgroups); 33 rows → 6: 2 columns. Without the threshold (0; real GPUs' default is 256), 8 rows keep 2 columns.
    const tuning: MatMulNBitsTuning = { ...wide, gemmWideCols: 2, gemmWideMinGroups: 4 };
    const seen: string[] = [];
    for (const [M, columns, t] of [[8, 1, tuning], [33, 2, tuning], [8, 2, { ...wide, gemmWideCols: 2, gemmWideMinGroups: 0 }]] as const) {
      const c = { M, maxM: 35, N: 300, K: 256, blockSize: 32, zp: true, f16: false };
      const r = await runCase(c, 425, t);
      seen.push(`M=${M}: ${r.columns} column(s), max |Δ|/(1+|y|) = ${r.rel.toExponential(2)}`);
      expect(r.path).toBe('gemm-wide');
      expect(r.columns).toBe(columns);
      expect(r.rel).toBeLessThanOrEqual(TOL);
    }
    console.log(`[${runtimeName()}] matmulNBits gemmWideMinGroups 4, N=300 K=256: ${seen.join('; ')} (tolerance ${TOL})`);
    expect((await runCase({ M: 8, N: 300, K: 256, blockSize: 32, zp: false, f16: false }, 426, { gemm: 'tiled' })).columns).toBeNull(); // the tiled GEMM has no columns
    await expect(runCase({ M: 8, N: 300, K: 256, blockSize: 32, zp: false, f16: false }, 427, { ...tuning, gemmWideMinGroups: -1 })).rejects.toThrow(/gemmWideMinGroups = -1 must be a non-negative integer/);
  });

  // 8192×3072 runs with inputNorm in matmul-fused.gpu.test.ts (as q/k/v 9216×3072).
  it('real shapes: 3072×3072 (M = 7), 3072×8192 (M = 33)', async () => {
    await check({ M: 7, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true }, 430, { ...wide, gemmWideCols: 2 });
    await check({ M: 33, N: 3072, K: 8192, blockSize: 128, zp: true, f16: true }, 432, { ...wide, gemmWideStepK: 64 });
  });

  it('rows that are not whole 16-byte words run the tiled GEMM instead', async () => {
    const r = await runCase({ M: 5, N: 19, K: 100, blockSize: 16, zp: true, f16: false }, 440, wide);
    expect(r.path).toBe('gemm');
    expect(r.rel).toBeLessThanOrEqual(TOL);
  });
});

// tuning.gemmF16 rounds each activation and each dequantised weight to f16, multiplies in f16 and
// sums each K step's S products (32 · CHUNKS) in f16, then the steps in f32. Against a reference
// fed a and w rounded to nearest f16, with exact products and sums, the difference is then only
// those f16 roundings: at most (S + 5) · u · Σ_k |a_k · w_k| to first order (u = 2^-11): one
// rounding per product and one per addition of a step (S + 1, the standard worst case of
// recursive summation), and 4 more because WGSL lets an f32 → f16 conversion take either
// neighbour, so a and w may each be one f16 ulp (2u) off the reference's; plus the f32 kernel's
// 1e-4 · (1 + |y|). A worst case, not a fit to one driver's results, so no driver should fail it
// by chance; it is loose (the log prints the share of it used: 0.1–1.6% on lavapipe), so two
// more checks hold the rest: the f16 run must differ from the exact result by far more than the
// f32 kernel (the f16 code really ran), and the f32 instantiation of the same code is held to
// 1e-4 above. The model test checks the whole f16 path against onnxruntime.
const U16 = 2 ** -11;

/** Per output of case `c`: the reference with a and w rounded to f16 (f64 sums), and Σ_k |a_k · w_k|. */
function f16Reference(c: Case, seed: number): { want: Float64Array; l1: Float64Array } {
  const { params } = makeWeights(c, seed);
  const a = float16ToFloat32(float32ToFloat16Bits(seededRandom((c.maxM ?? c.M) * c.K, seed + 3, 2)));
  const w = float16ToFloat32(float32ToFloat16Bits(dequantizeMatMulNBits(params)));
  const want = new Float64Array(c.M * c.N);
  const l1 = new Float64Array(c.M * c.N);
  for (let m = 0; m < c.M; m++) {
    for (let n = 0; n < c.N; n++) {
      let sum = 0;
      let abs = 0;
      for (let k = 0; k < c.K; k++) {
        const x = a[m * c.K + k] * w[n * c.K + k];
        sum += x;
        abs += Math.abs(x);
      }
      want[m * c.N + n] = sum;
      l1[m * c.N + n] = abs;
    }
  }
  return { want, l1 };
}

describe('matmulNBits wide GEMM in f16 arithmetic (tuning.gemmF16) [gpu]', () => {
  const f16Wide = { gemm: 'wide', gemmF16: true } as const;

  it('with shader-f16: within the f16 roundings\' bound of an f16-rounded reference, and really rounded (unlike the f32 kernel); without: refused, naming the feature', async () => {
    const { device } = await testGpu();
    if (!device.features.has('shader-f16')) {
      // SwiftShader (Chromium's, and Node's fallback) has no shader-f16.
      await expect(runCase({ M: 7, N: 45, K: 256, blockSize: 32, zp: false, f16: true }, 450, f16Wide)).rejects.toThrow(/gemmF16 needs the shader-f16 feature/);
      return;
    }
    let seed = 450;
    for (const [c, extra] of [
      [{ M: 7, maxM: 40, N: 45, K: 96, blockSize: 16, zp: true, f16: false }, {}],
      [{ M: 33, N: 131, K: 256, blockSize: 32, zp: false, f16: true }, {}],
      [{ M: 33, maxM: 35, N: 300, K: 256, blockSize: 32, zp: true, f16: true }, { gemmWideCols: 2 }],
      [{ M: 40, maxM: 64, N: 200, K: 320, blockSize: 64, zp: false, f16: false }, { gemmWideRows: 32, gemmWideStepK: 96 }],
      [{ M: 33, N: 3072, K: 8192, blockSize: 128, zp: true, f16: true }, { gemmWideStepK: 64 }],
    ] as const) {
      const tuning: MatMulNBitsTuning = { ...f16Wide, ...extra };
      const stepK = tuning.gemmWideStepK ?? 32;
      const f16 = await runCase(c, seed, tuning);
      const f32 = await runCase(c, seed, { gemm: 'wide', ...extra });
      const { want, l1 } = f16Reference(c, seed++);
      let worst = 0; // the largest share of its bound that an output's difference takes
      for (let i = 0; i < want.length; i++) {
        const bound = (stepK + 5) * U16 * l1[i] + TOL * (1 + Math.abs(want[i]));
        worst = Math.max(worst, Math.abs(f16.got[i] - want[i]) / bound);
      }
      console.log(`[${runtimeName()}] matmulNBits ${label(c)} (${f16.path} ${JSON.stringify(extra)}): worst |Δ| against the f16-rounded reference = ${worst.toFixed(3)} of its bound; against the exact one max |Δ|/(1+|y|) = ${f16.rel.toExponential(2)} (the f32 kernel's ${f32.rel.toExponential(2)})`);
      expect(f16.path).toBe('gemm-wide-f16');
      expect(worst).toBeLessThanOrEqual(1);
      // The f16 instantiation must not be the f32 one: rounding to f16 costs far more than f32's order.
      expect(f16.rel).toBeGreaterThan(10 * f32.rel);
    }
    // Rows that are not whole 16-byte words run the tiled GEMM, in f32.
    const tiled = await runCase({ M: 5, N: 19, K: 100, blockSize: 16, zp: true, f16: false }, seed, f16Wide);
    expect(tiled.path).toBe('gemm');
    expect(tiled.rel).toBeLessThanOrEqual(TOL);
  });

  it('needs tuning.gemm \'wide\'', async () => {
    await expect(runCase({ M: 7, N: 45, K: 256, blockSize: 32, zp: false, f16: true }, 460, { gemm: 'tiled', gemmF16: true })).rejects.toThrow(/gemmF16 needs tuning.gemm 'wide' \(got tiled\)/);
  });
});

describe('matmulNBits pipelines compiled asynchronously [gpu]', () => {
  it('refuses to encode until matMulNBitsReady resolves, then computes the same result (GEMV and GEMM)', async () => {
    // Splits used nowhere else in this file, so these pipelines are not already in the cache.
    for (const [c, tuning] of [
      [{ M: 1, N: 29, K: 256, blockSize: 32, zp: false, f16: true }, { threadsPerRow: 16, rowGroups: 5, rowsPerThread: 3 }],
      [{ M: 9, N: 29, K: 256, blockSize: 64, zp: true, f16: false }, { gemm: 'tiled', gemmThreads: [4, 4], gemmStepK: 24 }],
      [{ M: 9, N: 29, K: 256, blockSize: 32, zp: false, f16: true }, { gemm: 'wide', gemmWideThreads: 64, gemmWideRows: 8 }],
    ] as const) {
      const r = await runCase(c, 300, tuning, 'async');
      expect(String(r.earlyEncode)).toMatch(/await matMulNBitsReady\(device\) before encoding/);
      expect(r.rel).toBeLessThanOrEqual(TOL);
    }
  });
});

describe('matmulNBits validation [gpu]', () => {
  it('names the buffer that is too small and refuses M outside 1..maxM', async () => {
    const { device } = await testGpu();
    const buf = (size: number) => device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
    const made: GPUBuffer[] = [];
    const b = (size: number) => {
      made.push(buf(size));
      return made[made.length - 1];
    };
    const base = { K: 64, N: 8, blockSize: 32, hasZeroPoints: false, scalesDtype: 'f32' as const, maxM: 2 };
    const ok = { weights: b(256), scales: b(64), input: b(512), output: b(64) };
    await withErrorScopes(device, () => {
      expect(() => createMatMulNBits(device, { ...base, ...ok, weights: b(252) })).toThrow(/weights buffer has 252 bytes; it needs at least 256/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, scalesDtype: 'f16', scales: b(28) })).toThrow(/scales buffer has 28 bytes/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, hasZeroPoints: true })).toThrow(/zeroPoints buffer is missing/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, input: b(256) })).toThrow(/input buffer has 256 bytes/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, blockSize: 8 })).toThrow(/block_size = 8/);
      const tooBig = { gemm: 'tiled', gemmThreads: [16, 16] as const, gemmStepK: 8 * device.limits.maxComputeWorkgroupStorageSize } as const;
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: tooBig })).toThrow(/needs \d+ bytes of workgroup memory; this device allows \d+/);
      const wideTooBig = { gemm: 'wide', gemmWideRows: 32, gemmWideStepK: 32 * device.limits.maxComputeWorkgroupStorageSize } as const;
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: wideTooBig })).toThrow(/gemmWideRows 32 with gemmWideStepK \d+ needs \d+ bytes of workgroup memory/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: { gemm: 'wide', gemmWideRows: 12 as 16 } })).toThrow(/gemmWideRows = 12 must be 4, 8, 16 or 32/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: { gemm: 'wide', gemmWideStepK: 48 } })).toThrow(/gemmWideStepK = 48 must be a positive multiple of 32/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: { gemm: 'huge' as 'wide' } })).toThrow(/tuning.gemm = huge must be 'tiled' or 'wide'/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: { gemv: 'int8' as 'dp4a' } })).toThrow(/tuning.gemv = int8 must be 'staged', 'direct' or 'dp4a'/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, tuning: { stagedRowsPerThread: 9 } })).toThrow(/tuning.stagedRowsPerThread = 9 must be 1..8/);
      const kernel = createMatMulNBits(device, { ...base, ...ok });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      expect(() => kernel.encode(pass, 3)).toThrow(/M = 3 must be an integer in 1..maxM \(2\)/);
      pass.end();
      enc.finish();
    });
    for (const m of made) m.destroy();
  });
});
