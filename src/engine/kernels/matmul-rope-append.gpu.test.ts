/**
 * The decode qkv GEMV with `ropeAppend` (shaders/matmul_nbits_rope.wgsl): cases, references and
 * tolerances live in precision-checks.ts (`checkMatMulRopeAppend`, shared with tools/device/checks.ts):
 * every q, k and v value within 2.5e-4 · (1 + |x| + |partner|) of
 * matmul → rotary → kv-append references (f16 caches: plus one fp16 ulp), and everything the kernel
 * must not touch unchanged bit for bit. Here also: M > 1 runs the plain GEMM, and the refusals.
 */
import { describe, expect, it } from 'vitest';
import { createMatMulNBits, matMulNBitsReference, matMulNBitsRopeAppendSupported, ROPE_APPEND_STORAGE_BUFFERS } from './matmul-nbits';
import { makeWeights, worstRelative } from './matmul-testing';
import { checkMatMulRopeAppend, formatCheck, MATMUL_ROPE_CASES } from './precision-checks';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

const GEMM_TOL = 1e-4;

const { device: testDevice } = await testGpu();
const supported = matMulNBitsRopeAppendSupported(testDevice);
// Skipped with the reason where the device offers too few storage buffers per stage (fewer than 10,
// below every adapter we test on: Dawn in Node and Chromium's SwiftShader both run these cases);
// the model then keeps the separate kv append, which kv-append.gpu.test.ts covers.
const NO_LIMIT_REASON = `needs ${ROPE_APPEND_STORAGE_BUFFERS} storage buffers per shader stage; this device allows ${testDevice.limits.maxStorageBuffersPerShaderStage}`;

describe('matmulNBits ropeAppend: the decode qkv GEMV with rotary + KV append [gpu]', () => {
  for (const c of MATMUL_ROPE_CASES) {
    for (const precision of ['f32', 'f16'] as const) {
      it.runIf(supported)(`${precision} caches: ${c.name}${supported ? '' : ` (${NO_LIMIT_REASON})`}`, async () => {
        const results = await checkMatMulRopeAppend(await testGpu(), c, precision);
        for (const r of results) {
          console.log(`[${runtimeName()}] ${formatCheck(r)}`);
          expect(r.skipped).toBeUndefined();
          expect(r.pass).toBe(true);
          expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
        }
        expect(results.length).toBe(3);
      });
    }
  }

  it.runIf(supported)(`M > 1 runs the plain GEMM (prefill keeps its kv append): caches untouched, every row plain${supported ? '' : ` (${NO_LIMIT_REASON})`}`, async () => {
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
        table: createStorageBuffer(device, new Float32Array(16 * 8), 'table'),
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
        ropeAppend: { heads, kvHeads, headDim: D, maxT: 8, kCache: bufs.kCache, vCache: bufs.vCache, rotary: { rotaryDim: 8, maxPositions: 16, dtype: 'f32', tables: [bufs.table] } },
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
    const rope = { heads, kvHeads, headDim: D, maxT: 4, kCache: b(128), vCache: b(128), rotary: { rotaryDim: 8, maxPositions: 4, dtype: 'f32' as const, tables: [table] as const } };
    await withErrorScopes(device, () => {
      expect(() => createMatMulNBits(device, { ...base, ropeAppend: rope })).toThrow(/ropeAppend needs the shared step uniform/);
      if (!supported) {
        expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: rope })).toThrow(new RegExp(`binds ${ROPE_APPEND_STORAGE_BUFFERS} storage buffers in one stage; this device allows`));
        return;
      }
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: rope, tuning: { rowGroups: 3, rowsPerThread: 3 } })).toThrow(/even number of rows per workgroup.*= 9/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, heads: 3 } })).toThrow(/N = 32 must be \(heads \+ 2·kvHeads\)·headDim = 40/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, rotary: { ...rope.rotary, rotaryDim: 6, maxPositions: 4 } }, accumulate: true })).toThrow(/cannot be combined with accumulate/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, maxT: 8 } })).toThrow(/ropeAppend.kCache buffer has 128 bytes; it needs at least 256/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, rotary: { ...rope.rotary, tables: [b(16)] as const } } })).toThrow(/ropeAppend\.rotary\.tables\[0\] buffer has 16 bytes; it needs at least 32/);
      expect(() => createMatMulNBits(device, { ...base, K: 40, blockSize: 16, weights: b(N * 24), scales: b(N * 12), step, ropeAppend: rope })).toThrow(/ropeAppend needs the decode GEMV/);
      expect(() => createMatMulNBits(device, { ...base, step, ropeAppend: { ...rope, maxT: 16, precision: 'f16' } })).toThrow(/ropeAppend.kCache buffer has 128 bytes; it needs at least 256/);
    });
    for (const m of [...made, step]) m.destroy();
  });
});
