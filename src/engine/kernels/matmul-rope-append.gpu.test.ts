/**
 * The decode qkv GEMV with `ropeAppend` (shaders/matmul_nbits_rope.wgsl) against the composition of
 * the plain references it replaces: rmsNormReference → matMulNBitsReference (the qkv row y), then
 * rotaryReference on q and kvAppendReference (rotary of k, k and v into the caches).
 *
 * Tolerance. The GEMV alone is held to the matmul tests' |Δ| ≤ 1e-4 · (1 + |y|). A rotated value
 * x·c ∓ p·s (|c|, |s| ≤ 1.19 with LongRoPE's scale) then carries at most 1.19 · 1e-4 · (2 + |x| + |p|)
 * ≤ 2.4e-4 · (1 + |x| + |p|), plus the f32 rotation's own rounding; so every q, k and v value must
 * satisfy |Δ| ≤ ROPE_TOL · (1 + |x| + |p|) with ROPE_TOL = 2.5e-4 (x, p: the reference's unrotated
 * pair; p = 0 for v and dims ≥ rotaryDim). f16 caches: the reference value is rounded to fp16 and the
 * GPU may pick the other neighbour, so the bound grows by one fp16 ulp; the error is reported in
 * units of (ulp + bound), tolerance 1. Everything the kernel must not touch (other cache positions,
 * the k and v rows of the output, all caches when pos ≥ maxT) must come back bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { createMatMulNBits, matMulNBitsReference, type MatMulNBitsTuning } from './matmul-nbits';
import { makeWeights, worstRelative } from './matmul-testing';
import { rmsNormReference } from './rmsnorm';
import { buildRotaryCache, rotaryReference } from './rotary';
import { kvAppendReference } from './kv-append';
import { float32ToFloat16Bits } from './dequantize';
import { maxF16UlpError, NO_F16_REASON } from './precision-checks';
import type { Precision } from './precision-wgsl';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';
import { float16ToFloat32 } from '../onnx/tensor-data';

const ROPE_TOL = 2.5e-4;
const GEMM_TOL = 1e-4;
const EPS = 1e-5;

interface Case {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  rotaryDim: number;
  K: number;
  blockSize: number;
  zp: boolean;
  f16Scales: boolean;
  norm: boolean;
  pastLen: number;
  maxT: number;
  /** rows of the cos/sin tables */
  maxPos: number;
  cacheIndex: 0 | 1;
  rotaryF16: boolean;
  tuning?: MatMulNBitsTuning;
}

const small = { heads: 4, kvHeads: 2, headDim: 16, rotaryDim: 8, K: 128, blockSize: 32, zp: true, f16Scales: false, norm: true, maxPos: 16 };
const phi3 = { heads: 32, kvHeads: 32, headDim: 96, rotaryDim: 96, K: 3072, blockSize: 32, zp: false, f16Scales: true, norm: true, maxPos: 64 };

const CASES: readonly Case[] = [
  { ...small, name: 'GQA 4/2, D 16, partial rotary 8, staged, f32 tables', pastLen: 5, maxT: 8, cacheIndex: 0, rotaryF16: false, tuning: { gemv: 'staged' } },
  { ...small, name: 'GQA 4/2, D 16, partial rotary 8, staged without subgroups, LongRoPE long pair, fp16 tables', pastLen: 3, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'staged', subgroups: false } },
  { ...small, name: 'GQA 4/2, direct without subgroups, 4×3 threads of 2 rows, LongRoPE long pair, fp16 tables', pastLen: 7, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'direct', subgroups: false, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 2 } },
  { ...small, name: 'GQA 4/2, direct, short pair, no norm', norm: false, pastLen: 0, maxT: 8, cacheIndex: 0, rotaryF16: false, tuning: { gemv: 'direct' } },
  { ...small, name: 'position ≥ maxT: k/v dropped, q rotated (staged, 6 rows per workgroup, partial last workgroup)', pastLen: 9, maxT: 8, cacheIndex: 0, rotaryF16: false, tuning: { gemv: 'staged', subgroups: false, threadsPerRow: 8, rowGroups: 1, rowsPerThread: 6 } },
  { ...small, name: 'position ≥ maxT (direct)', pastLen: 12, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'direct' } },
  { name: 'MHA 2/2, D 32, full rotary, block 16, f16 scales, direct', heads: 2, kvHeads: 2, headDim: 32, rotaryDim: 32, K: 96, blockSize: 16, zp: false, f16Scales: true, norm: true, maxPos: 40, pastLen: 33, maxT: 40, cacheIndex: 1, rotaryF16: false, tuning: { gemv: 'direct', threadsPerRow: 8, rowGroups: 2, rowsPerThread: 8 } },
  { ...phi3, name: 'Phi-3 full width (32 heads of 96, hidden 3072), staged, fp16 tables', pastLen: 40, maxT: 64, cacheIndex: 0, rotaryF16: true, tuning: { gemv: 'staged' } },
  { ...phi3, name: 'Phi-3 full width, direct without subgroups, LongRoPE long pair, f32 tables, last slot', pastLen: 63, maxT: 64, cacheIndex: 1, rotaryF16: false, tuning: { gemv: 'direct', subgroups: false, threadsPerRow: 32, rowGroups: 2, rowsPerThread: 8 } },
];

function toF16(values: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const bits = float32ToFloat16Bits(values);
  return { bits, values: float16ToFloat32(bits) };
}

/** Count of positions where a and b differ bit for bit (NaN-safe). */
function changed(a: ArrayLike<number>, b: ArrayLike<number>, skip: (i: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!skip(i) && !Object.is(a[i], b[i])) n++;
  return n;
}

interface Measured {
  q: number;
  cache: number;
  untouched: number;
  path: string;
}

async function check(c: Case, precision: Precision): Promise<Measured> {
  const { device } = await testGpu();
  const { heads, kvHeads, headDim: D, rotaryDim: R, K } = c;
  const qDim = heads * D;
  const kvDim = kvHeads * D;
  const N = qDim + 2 * kvDim;
  const half = R / 2;
  const { params, scaleBytes } = makeWeights({ K, N, blockSize: c.blockSize, zp: c.zp, f16: c.f16Scales }, 4000 + N + c.pastLen);
  const x = seededRandom(K, 41, 2);
  const normWeight = seededRandom(K, 42, 0.5).map((v) => v + 1);
  const a = c.norm ? rmsNormReference(x, normWeight, EPS).out : x;
  const y = matMulNBitsReference(a, 1, params);

  const built = [buildRotaryCache(c.maxPos, R, 10000), buildRotaryCache(c.maxPos, R, 10000, new Array<number>(half).fill(4), 1.19)];
  const uploads = built.map((p) => (c.rotaryF16 ? { cos: float32ToFloat16Bits(p.cos), sin: float32ToFloat16Bits(p.sin) } : p));
  const used = c.rotaryF16 ? { cos: float16ToFloat32(uploads[c.cacheIndex].cos as Uint16Array), sin: float16ToFloat32(uploads[c.cacheIndex].sin as Uint16Array) } : built[c.cacheIndex];
  const wantQ = rotaryReference(y, used.cos, used.sin, { seqLen: 1, pastLen: c.pastLen, heads, headDim: D, rotaryDim: R, rowStride: N, offset: 0 });
  const cacheSize = kvHeads * c.maxT * D;
  const k0 = toF16(seededRandom(cacheSize, 43, 1));
  const v0 = toF16(seededRandom(cacheSize, 44, 1));
  const init = precision === 'f16' ? { k: k0.values, v: v0.values } : { k: seededRandom(cacheSize, 43, 1), v: seededRandom(cacheSize, 44, 1) };
  const want = kvAppendReference(y, y, init.k, init.v, { seqLen: 1, pastLen: c.pastLen, kvHeads, headDim: D, rowStride: N, kOffset: qDim, vOffset: qDim + kvDim, maxT: c.maxT }, { ...used, rotaryDim: R });
  const y0 = seededRandom(N, 45, 3);

  /** The error bound's scale of qkv row n: 1 + |x| + |partner| (partner only for rotated dims). */
  const scaleOf = (n: number) => {
    const inQk = n < qDim + kvDim;
    const e = n % D;
    const p = inQk && e < R ? (e < half ? n + half : n - half) : -1;
    return 1 + Math.abs(y[n]) + (p >= 0 ? Math.abs(y[p]) : 0);
  };

  const got = await withErrorScopes(device, async () => {
    const made: GPUBuffer[] = [];
    const buf = (data: ArrayBufferView | number, name: string) => {
      made.push(createStorageBuffer(device, data, name));
      return made[made.length - 1];
    };
    const step = createStepBuffer(device);
    made.push(step);
    writeStep(device, step, { seqLen: 1, pastLen: c.pastLen });
    const output = buf(y0, 'qkv');
    const kCache = buf(precision === 'f16' ? k0.bits : init.k, 'kCache');
    const vCache = buf(precision === 'f16' ? v0.bits : init.v, 'vCache');
    const pairs = uploads.map((p) => ({ cos: buf(p.cos, 'cos'), sin: buf(p.sin, 'sin') }));
    const kernel = createMatMulNBits(device, {
      K,
      N,
      blockSize: c.blockSize,
      hasZeroPoints: c.zp,
      scalesDtype: c.f16Scales ? 'f16' : 'f32',
      weights: buf(params.packed, 'weights'),
      scales: buf(scaleBytes, 'scales'),
      zeroPoints: params.zeroPoints ? buf(params.zeroPoints, 'zeroPoints') : undefined,
      input: buf(x, 'hidden'),
      output,
      maxM: 1,
      tuning: c.tuning,
      inputNorm: c.norm ? { weight: buf(normWeight, 'normWeight'), eps: EPS } : undefined,
      ropeAppend: { heads, kvHeads, headDim: D, maxT: c.maxT, kCache, vCache, precision, rotary: { rotaryDim: R, maxPositions: c.maxPos, dtype: c.rotaryF16 ? 'f16' : 'f32', caches: [pairs[0], pairs[1]] } },
      step,
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass, 1, c.cacheIndex);
    pass.end();
    device.queue.submit([enc.finish()]);
    const readCache = async (b: GPUBuffer) => (precision === 'f16' ? float16ToFloat32(new Uint16Array(await readBuffer(device, b), 0, cacheSize)) : new Float32Array(await readBuffer(device, b), 0, cacheSize));
    const result = { out: new Float32Array(await readBuffer(device, output)), k: await readCache(kCache), v: await readCache(vCache), path: kernel.decodePath };
    for (const m of made) m.destroy();
    return result;
  });

  // q: rotated, in the output's q rows.
  let q = 0;
  for (let n = 0; n < qDim; n++) q = Math.max(q, Math.abs(got.out[n] - wantQ[n]) / scaleOf(n));
  // Caches at the token's position (when kept), in units of the bound (f16: one ulp added).
  const pos = c.pastLen;
  let cache = 0;
  const atPos = (i: number) => Math.floor(i / D) % c.maxT === pos;
  if (pos < c.maxT) {
    for (let g = 0; g < kvHeads; g++) {
      for (let d = 0; d < D; d++) {
        const i = (g * c.maxT + pos) * D + d;
        for (const [gotC, wantC, n] of [
          [got.k, want.kCache, qDim + g * D + d],
          [got.v, want.vCache, qDim + kvDim + g * D + d],
        ] as const) {
          const bound = ROPE_TOL * scaleOf(n);
          if (precision === 'f16') {
            const w16 = toF16(new Float32Array([wantC[i]])).values;
            cache = Math.max(cache, maxF16UlpError([gotC[i]], w16, bound).ulps);
          } else {
            cache = Math.max(cache, Math.abs(gotC[i] - wantC[i]) / bound);
          }
        }
      }
    }
  }
  // Untouched: other cache positions, every position when dropped, and the output's k and v rows.
  const untouched =
    changed(got.k, init.k, (i) => pos < c.maxT && atPos(i)) + changed(got.v, init.v, (i) => pos < c.maxT && atPos(i)) + changed(got.out.slice(qDim), y0.slice(qDim), () => false);
  return { q, cache, untouched, path: got.path };
}

const hasF16 = (await testGpu()).features.shaderF16;

describe('matmulNBits ropeAppend: the decode qkv GEMV with rotary + KV append [gpu]', () => {
  for (const c of CASES) {
    for (const precision of ['f32', 'f16'] as const) {
      const run = precision === 'f32' || hasF16;
      const title = `${precision} caches: ${c.name}${run ? '' : ` (${NO_F16_REASON})`}`;
      it.runIf(run)(title, async () => {
        const r = await check(c, precision);
        const unit = precision === 'f16' ? '(1 fp16 ulp + bound)' : 'bound';
        console.log(
          `[${runtimeName()}] ropeAppend ${precision} ${c.name} (${r.path}): q max |Δ|/(1+|x|+|p|) = ${r.q.toExponential(2)} (tolerance ${ROPE_TOL}); ` +
            `caches max |Δ| in units of ${unit} = ${r.cache.toFixed(3)} (tolerance 1, bound ${ROPE_TOL}·(1+|x|+|p|)); values that must not change but did: ${r.untouched}`,
        );
        expect(r.q).toBeLessThanOrEqual(ROPE_TOL);
        expect(r.cache).toBeLessThanOrEqual(1);
        expect(r.untouched).toBe(0);
        expect(r.path).toBe(`gemv${c.tuning?.gemv === 'direct' ? '-direct' : ''}${(c.tuning?.subgroups ?? true) && (await testGpu()).features.subgroups ? '-subgroup' : ''}`);
      });
    }
  }

  it('M > 1 runs the plain GEMM (prefill keeps its kv append): caches untouched, every row plain', async () => {
    const { device } = await testGpu();
    const heads = 4;
    const kvHeads = 2;
    const D = 16;
    const K = 128;
    const N = (heads + 2 * kvHeads) * D;
    const M = 3;
    const { params, scaleBytes } = makeWeights({ K, N, blockSize: 32, zp: true, f16: false }, 4100);
    const x = seededRandom(M * K, 46, 2);
    const want = matMulNBitsReference(x, M, params);
    const cacheInit = seededRandom(kvHeads * 8 * D, 47, 1);
    const got = await withErrorScopes(device, async () => {
      const step = createStepBuffer(device);
      writeStep(device, step, { seqLen: M, pastLen: 2 });
      const bufs = {
        weights: createStorageBuffer(device, params.packed, 'weights'),
        scales: createStorageBuffer(device, scaleBytes, 'scales'),
        zeroPoints: createStorageBuffer(device, params.zeroPoints!, 'zp'),
        input: createStorageBuffer(device, x, 'input'),
        output: createStorageBuffer(device, M * N * 4, 'output'),
        kCache: createStorageBuffer(device, cacheInit, 'kCache'),
        vCache: createStorageBuffer(device, cacheInit, 'vCache'),
        table: createStorageBuffer(device, new Float32Array(16 * 4), 'table'),
      };
      const kernel = createMatMulNBits(device, {
        K,
        N,
        blockSize: 32,
        hasZeroPoints: true,
        scalesDtype: 'f32',
        ...bufs,
        maxM: M,
        step,
        ropeAppend: { heads, kvHeads, headDim: D, maxT: 8, kCache: bufs.kCache, vCache: bufs.vCache, rotary: { rotaryDim: 8, maxPositions: 16, dtype: 'f32', caches: [{ cos: bufs.table, sin: bufs.table }] } },
      });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      kernel.encode(pass, M);
      pass.end();
      device.queue.submit([enc.finish()]);
      const out = new Float32Array(await readBuffer(device, bufs.output));
      const k = new Float32Array(await readBuffer(device, bufs.kCache));
      const v = new Float32Array(await readBuffer(device, bufs.vCache));
      for (const b of [step, ...Object.values(bufs)]) b.destroy();
      return { out, k, v };
    });
    const r = worstRelative(got.out, want);
    console.log(`[${runtimeName()}] ropeAppend kernel at M = ${M} (GEMM): max |Δ|/(1+|y|) = ${r.rel.toExponential(2)} (tolerance ${GEMM_TOL}); caches unchanged`);
    expect(r.rel).toBeLessThanOrEqual(GEMM_TOL);
    expect(Array.from(got.k)).toEqual(Array.from(cacheInit));
    expect(Array.from(got.v)).toEqual(Array.from(cacheInit));
  });

  it('refuses what the fusion cannot do, naming the value', async () => {
    const { device } = await testGpu();
    const made: GPUBuffer[] = [];
    const b = (size: number) => {
      made.push(device.createBuffer({ size, usage: GPUBufferUsage.STORAGE }));
      return made[made.length - 1];
    };
    const step = createStepBuffer(device);
    const heads = 2;
    const kvHeads = 1;
    const D = 8;
    const N = (heads + 2 * kvHeads) * D;
    const base = { K: 64, N, blockSize: 32, hasZeroPoints: false, scalesDtype: 'f32' as const, maxM: 1, weights: b(N * 32), scales: b(N * 8), input: b(256), output: b(N * 4) };
    const table = b(64);
    const rope = { heads, kvHeads, headDim: D, maxT: 4, kCache: b(128), vCache: b(128), rotary: { rotaryDim: 8, maxPositions: 4, dtype: 'f32' as const, caches: [{ cos: table, sin: table }] as const } };
    await withErrorScopes(device, () => {
      expect(() => createMatMulNBits(device, { ...base, ropeAppend: rope })).toThrow(/ropeAppend needs the shared step uniform/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: rope, tuning: { rowGroups: 3, rowsPerThread: 3 } })).toThrow(/even number of rows per workgroup.*= 9/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, heads: 3 } })).toThrow(/N = 32 must be \(heads \+ 2·kvHeads\)·headDim = 40/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, rotary: { ...rope.rotary, rotaryDim: 6, maxPositions: 4 } }, accumulate: true })).toThrow(/cannot be combined with accumulate/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, maxT: 8 } })).toThrow(/ropeAppend.kCache buffer has 128 bytes; it needs at least 256/);
      expect(() => createMatMulNBits(device, { ...base, K: 40, blockSize: 16, weights: b(N * 24), scales: b(N * 12), step, ropeAppend: rope })).toThrow(/ropeAppend needs the decode GEMV/);
      if (!hasF16) expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, precision: 'f16' } })).toThrow(/shader-f16/);
    });
    for (const m of [...made, step]) m.destroy();
  });
});
