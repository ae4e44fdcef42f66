/**
 * MatMulNBits fusions (inputNorm, inputSiluMul, accumulate) against compositions of the plain
 * TypeScript references: rmsNormReference → matMulNBitsReference, siluMulReference →
 * matMulNBitsReference, y0 + matMulNBitsReference. GEMV (M = 1, both reductions) and GEMM
 * (M = 5, 33), every fusion alone and combined, real Phi-3 shapes and odd ones.
 */
import { describe, expect, it } from 'vitest';
import { createMatMulNBits, matMulNBitsDp4aSupported, matMulNBitsPath, matMulNBitsReference, type MatMulNBitsBindings, type MatMulNBitsTuning } from './matmul-nbits';
import { quantizeActivationsQ8 } from './dequantize';
import { makeWeights, q8Allowance, worstRelative, type WeightCase } from './matmul-testing';
import { rmsNormReference, createRmsNorm } from './rmsnorm';
import { siluMulReference, createSiluMul, type SiluMulLayout } from './silu-mul';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

// Tolerance as the plain matmul tests: |y_gpu − y_ref| ≤ TOL · (1 + |y_ref|). The reference
// composes f64 steps rounded to f32 between them; the kernel keeps the normalised / gated
// activation in f32 registers and sums in another order.
const TOL = 1e-4;
const EPS = 1e-5;

interface Case extends WeightCase {
  M: number;
  maxM?: number;
  norm?: boolean;
  /** 'fused': one [gate | up] buffer (silu-mul.ts's fused layout); 'separate': two buffers, odd strides/offsets */
  silu?: 'fused' | 'separate';
  acc?: boolean;
  tuning?: MatMulNBitsTuning;
}

function siluLayout(c: Case): SiluMulLayout {
  return c.silu === 'fused'
    ? { intermediate: c.K, gateStride: 2 * c.K, gateOffset: 0, upStride: 2 * c.K, upOffset: c.K }
    : { intermediate: c.K, gateStride: c.K + 3, gateOffset: 3, upStride: c.K + 5, upOffset: 2 };
}

function label(c: Case): string {
  const f = [c.norm ? 'inputNorm' : '', c.silu ? `inputSiluMul(${c.silu})` : '', c.acc ? 'accumulate' : ''].filter(Boolean).join('+');
  const t = c.tuning ? ` ${JSON.stringify(c.tuning)}` : '';
  return `${f} M=${c.M}${c.maxM ? `/${c.maxM}` : ''} N=${c.N} K=${c.K} block=${c.blockSize} zp=${c.zp ? 'on' : 'off'} scales=${c.f16 ? 'f16' : 'f32'}${t}`;
}

async function check(c: Case, seed: number): Promise<void> {
  const { device } = await testGpu();
  const maxM = c.maxM ?? c.M;
  const { params, scaleBytes } = makeWeights(c, seed);
  const layout = siluLayout(c);
  // Activation sources (maxM rows) and the reference's x (M, K). Gate and up in ±2 keep
  // |silu(gate) · up| ≤ 3.5, the plain tests' |A| ≤ 2 scale (the f32 error grows with it).
  const gate = c.silu ? seededRandom((maxM - 1) * layout.gateStride + layout.gateOffset + c.K + (c.silu === 'fused' ? c.K : 0), seed + 3, 2) : undefined;
  const upData = c.silu === 'separate' ? seededRandom((maxM - 1) * layout.upStride + layout.upOffset + c.K, seed + 4, 2) : gate;
  const plain = c.silu ? undefined : seededRandom(maxM * c.K, seed + 3, 2);
  let x = c.silu ? siluMulReference(gate!, upData!, c.M, layout) : plain!.slice(0, c.M * c.K);
  const normWeight = seededRandom(c.K, seed + 5, 0.5).map((v) => v + 1);
  if (c.norm) x = rmsNormReference(x, normWeight, EPS).out;
  const y0 = seededRandom(maxM * c.N, seed + 6, 3);
  const withResidual = (prod: Float32Array) => (c.acc ? prod.map((v, i) => Math.fround(y0[i] + v)) : prod);

  const { got, rest, path } = await withErrorScopes(device, async () => {
    const made: GPUBuffer[] = [];
    const buf = (data: ArrayBufferView | number, name: string) => {
      made.push(createStorageBuffer(device, data, name));
      return made[made.length - 1];
    };
    const gateBuf = c.silu ? buf(gate!, 'gate') : undefined;
    const upBuf = c.silu === 'separate' ? buf(upData!, 'up') : gateBuf;
    const output = buf(y0, 'output');
    const step = createStepBuffer(device);
    writeStep(device, step, { seqLen: c.M, pastLen: 0 });
    const bindings: MatMulNBitsBindings = {
      K: c.K,
      N: c.N,
      blockSize: c.blockSize,
      hasZeroPoints: c.zp,
      scalesDtype: c.f16 ? 'f16' : 'f32',
      weights: buf(params.packed, 'weights'),
      scales: buf(scaleBytes, 'scales'),
      zeroPoints: params.zeroPoints ? buf(params.zeroPoints, 'zeroPoints') : undefined,
      input: gateBuf ?? buf(plain!, 'input'),
      output,
      maxM,
      tuning: c.tuning,
      inputNorm: c.norm ? { weight: buf(normWeight, 'normWeight'), eps: EPS } : undefined,
      inputSiluMul: c.silu ? { up: upBuf!, gateStride: layout.gateStride, gateOffset: layout.gateOffset, upStride: layout.upStride, upOffset: layout.upOffset } : undefined,
      accumulate: c.acc,
      step,
    };
    const kernel = createMatMulNBits(device, bindings);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass, c.M);
    pass.end();
    device.queue.submit([enc.finish()]);
    const all = new Float32Array(await readBuffer(device, output, maxM * c.N * 4));
    for (const m of made) m.destroy();
    step.destroy();
    return { got: all.slice(0, c.M * c.N), rest: all.slice(c.M * c.N), path: matMulNBitsPath(kernel, c.M) };
  });
  // The dp4a GEMV computes the product of the int8-rounded activations (quantizeActivationsQ8),
  // up to elements next to a rounding tie (q8Allowance).
  const q8 = path.startsWith('gemv-dp4a');
  if (c.tuning?.gemv === 'dp4a' && c.M === 1 && c.K % 32 === 0 && c.silu !== 'separate' && matMulNBitsDp4aSupported(device)) expect(path).toMatch(/^gemv-dp4a/);
  if (c.tuning?.gemv === 'dp4a' && c.silu === 'separate') expect(path).not.toMatch(/dp4a/); // offsets not 4-aligned: the staged GEMV
  const exact = withResidual(matMulNBitsReference(x, c.M, params));
  const want = q8 ? withResidual(matMulNBitsReference(quantizeActivationsQ8(x, c.K), c.M, params)) : exact;
  const flips = q8 ? q8Allowance(x, params.scales) : 0;
  const r = worstRelative(got, want);
  const vsExact = q8 ? `; vs the f32 product max |Δ|/(1+|y|) = ${worstRelative(got, exact).rel.toExponential(2)}` : '';
  console.log(
    `[${runtimeName()}] matmulNBits fused ${label(c)} (${path}): max |Δ|/(1+|y|) = ${r.rel.toExponential(2)}, max |Δ| = ${r.abs.toExponential(2)} (tolerance ${TOL}${q8 ? ` + ${flips.toExponential(2)}` : ''})${vsExact}`,
  );
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= TOL * (1 + Math.abs(want[i])) + flips)) expect.fail(`output ${i}: got ${got[i]}, want ${want[i]}`);
  }
  if (c.M > 1 && c.tuning?.gemm === 'wide') expect(path).toBe('gemm-wide');
  if (c.M === 1 && c.tuning?.gemvPrefetch) expect(path).toMatch(/\+prefetch$/);
  // accumulate: rows ≥ M are the residual stream's and must come back untouched.
  if (c.acc) expect(Array.from(rest)).toEqual(Array.from(y0.slice(c.M * c.N)));
}

const FUSIONS: ReadonlyArray<Pick<Case, 'norm' | 'silu' | 'acc'>> = [
  { norm: true },
  { silu: 'fused' },
  { silu: 'separate' },
  { acc: true },
  { norm: true, acc: true },
  { silu: 'fused', acc: true },
  { norm: true, silu: 'separate' },
  { norm: true, silu: 'fused', acc: true },
];

describe('matmulNBits fusions, small and odd shapes [gpu]', () => {
  it('each fusion alone and combined, M = 1 (GEMV), 5 and 33 (GEMM), maxM > M', async () => {
    let seed = 1000;
    for (const f of FUSIONS) {
      await check({ ...f, M: 1, maxM: 3, N: 37, K: 200, blockSize: 32, zp: true, f16: false }, seed++);
      await check({ ...f, M: 5, maxM: 9, N: 45, K: 200, blockSize: 64, zp: false, f16: true }, seed++);
      await check({ ...f, M: 33, maxM: 40, N: 19, K: 136, blockSize: 16, zp: true, f16: true }, seed++);
    }
  });

  it('odd K and splits: K = 100 (GEMV and, block 16, the M = 1 GEMM), workgroup-memory reduction, non-power-of-two workgroups', async () => {
    const all = { norm: true, silu: 'separate', acc: true } as const;
    await check({ ...all, M: 1, N: 19, K: 100, blockSize: 32, zp: true, f16: false }, 1100);
    await check({ ...all, M: 1, maxM: 4, N: 19, K: 100, blockSize: 16, zp: false, f16: true }, 1101);
    await check({ norm: true, acc: true, M: 1, N: 33, K: 1000, blockSize: 128, zp: true, f16: true, tuning: { subgroups: false } }, 1102);
    await check({ norm: true, silu: 'fused', M: 1, N: 45, K: 512, blockSize: 64, zp: false, f16: false, tuning: { threadsPerRow: 4, rowGroups: 3, rowsPerThread: 3 } }, 1103);
    await check({ norm: true, M: 1, N: 45, K: 256, blockSize: 32, zp: false, f16: false, tuning: { threadsPerRow: 64, rowGroups: 4, rowsPerThread: 1, subgroups: false } }, 1104);
    // Two activation tiles (K > 4096 floats): Σx² of the norm runs across them.
    await check({ norm: true, acc: true, M: 1, N: 9, K: 4200, blockSize: 32, zp: false, f16: true }, 1108);
    await check({ ...all, M: 13, maxM: 20, N: 29, K: 96, blockSize: 32, zp: false, f16: false, tuning: { gemmThreads: [2, 3], gemmStepK: 8 } }, 1105);
    await check({ norm: true, acc: true, M: 33, maxM: 35, N: 70, K: 200, blockSize: 16, zp: true, f16: true, tuning: { gemmThreads: [16, 4], gemmStepK: 64 } }, 1106);
    // 8 rows per thread: the norm's per-row RMS slots and the accumulate bound by seqLen.
    await check({ ...all, M: 21, maxM: 40, N: 70, K: 200, blockSize: 32, zp: false, f16: true, tuning: { gemmThreads: [8, 2], gemmStepK: 16, gemmRowsPerThread: 8 } }, 1107);
  });
});

describe('matmulNBits fusions in the staged GEMV with weights prefetched [gpu]', () => {
  it('each fusion alone and combined, subgroups on and off', async () => {
    let seed = 1500;
    for (const f of FUSIONS) {
      await check({ ...f, M: 1, maxM: 3, N: 37, K: 256, blockSize: 32, zp: true, f16: false, tuning: { gemvPrefetch: true, threadsPerRow: 8, rowGroups: 2, rowsPerThread: 2 } }, seed++);
      await check({ ...f, M: 1, N: 45, K: 192, blockSize: 64, zp: false, f16: true, tuning: { gemvPrefetch: true, subgroups: false, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 3 } }, seed++);
    }
  });
});

describe('matmulNBits fusions in the wide GEMM [gpu]', () => {
  it('each fusion alone and combined: M = 5 and 33, partial tiles, several splits', async () => {
    let seed = 1400;
    for (const f of FUSIONS) {
      await check({ ...f, M: 5, maxM: 9, N: 45, K: 192, blockSize: 64, zp: false, f16: true, tuning: { gemm: 'wide' } }, seed++);
      // 4 rows of 64 threads: 16 norm lanes per row; 2 columns per thread, K steps of 64 past the row end.
      await check({ ...f, M: 33, maxM: 40, N: 150, K: 160, blockSize: 16, zp: true, f16: true, tuning: { gemm: 'wide', gemmWideThreads: 64, gemmWideRows: 4, gemmWideCols: 2, gemmWideStepK: 64 } }, seed++);
    }
  });

  it('real shapes: q/k/v with inputNorm, down_proj with inputSiluMul + accumulate (M = 33)', async () => {
    await check({ norm: true, M: 33, N: 9216, K: 3072, blockSize: 32, zp: false, f16: true, tuning: { gemm: 'wide' } }, 1420);
    await check({ silu: 'fused', acc: true, M: 33, maxM: 40, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true, tuning: { gemm: 'wide', gemmWideRows: 32, gemmWideCols: 2 } }, 1421);
  });
});

describe('matmulNBits fusions in the direct GEMV [gpu]', () => {
  it('each fusion alone and combined, subgroups on and off', async () => {
    let seed = 1300;
    for (const f of FUSIONS) {
      await check({ ...f, M: 1, maxM: 3, N: 37, K: 256, blockSize: 32, zp: true, f16: false, tuning: { gemv: 'direct' } }, seed++);
      await check({ ...f, M: 1, N: 45, K: 192, blockSize: 64, zp: false, f16: true, tuning: { gemv: 'direct', subgroups: false, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 3 } }, seed++);
    }
  });

  it('real shapes: q/k/v with inputNorm, down_proj with inputSiluMul + accumulate', async () => {
    await check({ norm: true, M: 1, N: 9216, K: 3072, blockSize: 32, zp: false, f16: true, tuning: { gemv: 'direct' } }, 1320);
    await check({ silu: 'fused', acc: true, M: 1, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true, tuning: { gemv: 'direct', threadsPerRow: 32, rowGroups: 2, rowsPerThread: 8 } }, 1321);
  });
});

describe('matmulNBits fusions in the dp4a GEMV (int8 activations) [gpu]', () => {
  it('each fusion alone and combined, subgroups on and off, blocks 16–128, zero points', async () => {
    // Chromium ≥ 123 and Dawn have the language feature; without it these cases would test the staged GEMV.
    expect(matMulNBitsDp4aSupported((await testGpu()).device)).toBe(true);
    let seed = 1600;
    for (const f of FUSIONS) {
      await check({ ...f, M: 1, maxM: 3, N: 37, K: 256, blockSize: 32, zp: true, f16: false, tuning: { gemv: 'dp4a' } }, seed++);
      await check({ ...f, M: 1, N: 45, K: 192, blockSize: 64, zp: false, f16: true, tuning: { gemv: 'dp4a', subgroups: false, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 3 } }, seed++);
      await check({ ...f, M: 1, N: 21, K: 160, blockSize: 16, zp: true, f16: true, tuning: { gemv: 'dp4a', threadsPerRow: 8, rowGroups: 2, rowsPerThread: 5 } }, seed++);
    }
    await check({ norm: true, acc: true, M: 1, N: 33, K: 1024, blockSize: 128, zp: true, f16: true, tuning: { gemv: 'dp4a', threadsPerRow: 64, rowGroups: 2, rowsPerThread: 8 } }, seed++);
    // Weights prefetched before the activations are quantised: 3 chunks per lane (the last lane's
    // third past the row), subgroups on and off, block 16.
    for (const f of FUSIONS) {
      await check({ ...f, M: 1, N: 30, K: 320, blockSize: 16, zp: true, f16: true, tuning: { gemv: 'dp4a', gemvPrefetch: true, subgroups: seed % 2 === 0, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 2 } }, seed++);
    }
  });

  it('real shapes: q/k/v with inputNorm, down_proj with inputSiluMul + accumulate', async () => {
    await check({ norm: true, M: 1, N: 9216, K: 3072, blockSize: 32, zp: false, f16: true, tuning: { gemv: 'dp4a', threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2 } }, 1620);
    await check({ silu: 'fused', acc: true, M: 1, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true, tuning: { gemv: 'dp4a', gemvPrefetch: true, threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2 } }, 1621);
    // NVIDIA's default split (matMulNBitsTuningFor): 8 row groups of 4 rows.
    const nvidia = { gemv: 'dp4a', threadsPerRow: 32, rowGroups: 8, rowsPerThread: 4 } as const;
    await check({ norm: true, M: 1, N: 9216, K: 3072, blockSize: 32, zp: false, f16: true, tuning: nvidia }, 1622);
    await check({ silu: 'fused', acc: true, M: 1, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true, tuning: nvidia }, 1623);
  });
});

describe('matmulNBits fusions, real Phi-3 shapes [gpu]', () => {
  it('3072×3072 with inputNorm (q/k/v, o_proj + accumulate): M = 1 and 5', async () => {
    await check({ norm: true, M: 1, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true }, 1200);
    await check({ acc: true, M: 1, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true, tuning: { subgroups: false } }, 1201);
    await check({ norm: true, M: 5, maxM: 8, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true }, 1202);
    await check({ acc: true, M: 5, maxM: 40, N: 3072, K: 3072, blockSize: 32, zp: false, f16: true }, 1203);
  });

  it('8192×3072 (gate/up) with inputNorm: M = 1 and 33', async () => {
    await check({ norm: true, M: 1, N: 8192, K: 3072, blockSize: 32, zp: false, f16: true }, 1210);
    await check({ norm: true, M: 33, N: 8192, K: 3072, blockSize: 32, zp: false, f16: false }, 1211);
  });

  it('3072×8192 (down_proj) with inputSiluMul (fused gate_up rows) + accumulate: M = 1 and 33', async () => {
    await check({ silu: 'fused', acc: true, M: 1, N: 3072, K: 8192, blockSize: 32, zp: false, f16: true }, 1220);
    await check({ silu: 'fused', acc: true, M: 33, maxM: 40, N: 3072, K: 8192, blockSize: 128, zp: true, f16: true }, 1221);
  });
});

describe('matmulNBits fusions validation [gpu]', () => {
  it('names missing or short buffers', async () => {
    const { device } = await testGpu();
    const made: GPUBuffer[] = [];
    const b = (size: number) => {
      made.push(device.createBuffer({ size, usage: GPUBufferUsage.STORAGE }));
      return made[made.length - 1];
    };
    const base = { K: 64, N: 8, blockSize: 32, hasZeroPoints: false, scalesDtype: 'f32' as const, maxM: 2 };
    const ok = { weights: b(256), scales: b(64), input: b(512), output: b(64) };
    await withErrorScopes(device, () => {
      expect(() => createMatMulNBits(device, { ...base, ...ok, accumulate: true })).toThrow(/accumulate needs the shared step uniform/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, inputNorm: { weight: b(128), eps: 1e-5 } })).toThrow(/inputNorm.weight buffer has 128 bytes; it needs at least 256/);
      const silu = { up: b(1024), gateStride: 128, gateOffset: 0, upStride: 128, upOffset: 64 };
      // gate rows of 128 from 0: (2 − 1)·128 + 64 floats = 768 bytes.
      expect(() => createMatMulNBits(device, { ...base, ...ok, inputSiluMul: silu })).toThrow(/input \(gate\) buffer has 512 bytes; it needs at least 768/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, input: b(768), inputSiluMul: { ...silu, up: b(512) } })).toThrow(/inputSiluMul.up buffer has 512 bytes; it needs at least 1024/);
      expect(() => createMatMulNBits(device, { ...base, ...ok, output: ok.input })).toThrow(/different buffers/);
    });
    for (const m of made) m.destroy();
  });
});

describe('matmulNBits fusions timing [gpu]', () => {
  // Indicative only (SwiftShader measures the CPU emulator). Median wall time of one submit, RUNS
  // runs after a warm-up: the unfused pair of dispatches against the one fused dispatch, M = 1.
  const RUNS = 3;
  async function time(device: GPUDevice, encode: (pass: GPUComputePassEncoder) => void): Promise<number> {
    const times: number[] = [];
    for (let run = 0; run <= RUNS; run++) {
      const t0 = performance.now();
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      if (run > 0) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  it('rmsnorm + 3072×3072 vs inputNorm; silu·up + 3072×8192 (+ the residual add in the next norm) vs inputSiluMul + accumulate', async () => {
    const { device } = await testGpu();
    await withErrorScopes(device, async () => {
      const made: GPUBuffer[] = [];
      const buf = (data: ArrayBufferView | number, name: string) => {
        made.push(createStorageBuffer(device, data, name));
        return made[made.length - 1];
      };
      const step = createStepBuffer(device);
      writeStep(device, step, { seqLen: 1, pastLen: 0 });
      const H = 3072;
      const I = 8192;
      const w1 = makeWeights({ N: H, K: H, blockSize: 32, zp: false, f16: true }, 1300);
      const w2 = makeWeights({ N: H, K: I, blockSize: 32, zp: false, f16: true }, 1301);
      const quant = (w: ReturnType<typeof makeWeights>) => ({
        K: w.params.K,
        N: w.params.N,
        blockSize: 32,
        hasZeroPoints: false,
        scalesDtype: 'f16' as const,
        weights: buf(w.params.packed, 'weights'),
        scales: buf(w.scaleBytes, 'scales'),
        maxM: 1,
      });
      const hidden = buf(seededRandom(H, 1302, 2), 'hidden');
      const delta = buf(H * 4, 'delta');
      const normed = buf(H * 4, 'normed');
      const normW = buf(seededRandom(H, 1303, 0.5).map((v) => v + 1), 'normW');
      const out = buf(H * 4, 'out');
      const gateUp = buf(seededRandom(2 * I, 1304, 3), 'gateUp');
      const act = buf(I * 4, 'act');
      const q1 = quant(w1);
      const q2 = quant(w2);

      const norm = createRmsNorm(device, { rows: 1, n: H, eps: EPS, hidden, weight: normW, out: normed });
      const mm1 = createMatMulNBits(device, { ...q1, input: normed, output: out });
      const mm1Fused = createMatMulNBits(device, { ...q1, input: hidden, output: out, inputNorm: { weight: normW, eps: EPS } });
      const silu = createSiluMul(device, { intermediate: I, gateStride: 2 * I, gateOffset: 0, upStride: 2 * I, upOffset: I, step, gate: gateUp, up: gateUp, out: act });
      const mm2 = createMatMulNBits(device, { ...q2, input: act, output: delta });
      const addNorm = createRmsNorm(device, { rows: 1, n: H, eps: EPS, hidden, delta, weight: normW, out: normed });
      const mm2Fused = createMatMulNBits(device, {
        ...q2,
        input: gateUp,
        output: hidden,
        inputSiluMul: { up: gateUp, gateStride: 2 * I, gateOffset: 0, upStride: 2 * I, upOffset: I },
        accumulate: true,
        step,
      });
      const tag = `[${runtimeName()}] matmulNBits fusion timing (${mm1.decodePath})`;
      const a = await time(device, (p) => (norm.encode(p), mm1.encode(p, 1)));
      const b = await time(device, (p) => mm1Fused.encode(p, 1));
      console.log(`${tag}: rmsnorm + 3072×3072 ${a.toFixed(2)} ms (2 dispatches) vs inputNorm ${b.toFixed(2)} ms (1)`);
      const c = await time(device, (p) => (silu.encode(p, 1), mm2.encode(p, 1), addNorm.encode(p, 1)));
      const d = await time(device, (p) => (mm2Fused.encode(p, 1), norm.encode(p, 1)));
      console.log(`${tag}: silu·up + 3072×8192 + residual-add rmsnorm ${c.toFixed(2)} ms (3 dispatches) vs inputSiluMul+accumulate + rmsnorm ${d.toFixed(2)} ms (2)`);
      for (const m of made) m.destroy();
      step.destroy();
    });
    expect(true).toBe(true);
  });
});
