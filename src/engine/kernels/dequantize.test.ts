import { describe, expect, it } from 'vitest';
import { dequantizeMatMulNBits, float32ToFloat16Bits, matMulNBitsReference, matMulNBitsShape, quantizeActivationsQ8 } from './dequantize';
import { AppError } from '../errors';
import { float16ToFloat32 } from '../onnx/tensor-data';

/** Packs 4-bit values (element 2j low nibble, 2j+1 high) into bytes. */
function pack(q: number[]): Uint8Array {
  const out = new Uint8Array(Math.ceil(q.length / 2));
  q.forEach((v, i) => {
    out[i >> 1] |= (v & 0xf) << (i & 1 ? 4 : 0);
  });
  return out;
}

describe('dequantizeMatMulNBits', () => {
  it('reads element 2j from the low nibble and 2j+1 from the high nibble, zero point 8', () => {
    const q = Array.from({ length: 16 }, (_, i) => i); // 0..15
    const w = dequantizeMatMulNBits({ K: 16, N: 1, blockSize: 16, bits: 4, packed: pack(q), scales: new Float32Array([0.5]) });
    expect(Array.from(w.subarray(0, 4))).toEqual([-4, -3.5, -3, -2.5]);
    expect(w[8]).toBe(0);
    expect(w[15]).toBe(3.5);
    // The same first byte written by hand: 0x10 holds element 0 = 0 (low) and element 1 = 1 (high).
    expect(pack(q)[0]).toBe(0x10);
  });

  it('handles negative scales', () => {
    const q = [15, 0, 8, 9, ...new Array<number>(12).fill(8)];
    const w = dequantizeMatMulNBits({ K: 16, N: 1, blockSize: 16, bits: 4, packed: pack(q), scales: new Float32Array([-2]) });
    expect(Array.from(w.subarray(0, 4))).toEqual([-14, 16, -0, -2]);
  });

  it('uses packed zero points per block, low nibble first, rows padded to whole bytes', () => {
    // K = 48, block 16: 3 blocks, zero-point rows of ceil(3/2) = 2 bytes. N = 2.
    const q = new Array<number>(2 * 48).fill(7);
    const zeroPoints = new Uint8Array([0x53, 0x02, 0x0f, 0x01]); // row 0: 3, 5, 2; row 1: 15, 0, 1
    const scales = new Float32Array([1, 2, 3, 10, -1, 0.25]);
    const w = dequantizeMatMulNBits({ K: 48, N: 2, blockSize: 16, bits: 4, packed: pack(q), scales, zeroPoints });
    expect([w[0], w[16], w[32]]).toEqual([(7 - 3) * 1, (7 - 5) * 2, (7 - 2) * 3]);
    expect([w[48], w[64], w[80]]).toEqual([(7 - 15) * 10, (7 - 0) * -1, (7 - 1) * 0.25]);
  });

  it('ignores the padding when K is not a multiple of the block', () => {
    // K = 20, block 16: 2 blocks, 32 packed elements per row; elements 20..31 are padding.
    const q = [...new Array<number>(20).fill(10), ...new Array<number>(12).fill(15)];
    const w = dequantizeMatMulNBits({ K: 20, N: 1, blockSize: 16, bits: 4, packed: pack(q), scales: new Float32Array([1, 3]) });
    expect(w.length).toBe(20);
    expect(w[15]).toBe(2);
    expect(w[16]).toBe(6);
    expect(w[19]).toBe(6);
    expect(matMulNBitsShape(20, 1, 16)).toMatchObject({ nBlocks: 2, kPadded: 32, rowBytes: 16 });
  });

  for (const blockSize of [16, 32, 64, 128]) {
    it(`puts block boundaries at multiples of ${blockSize} (3 rows, K = 2.5 blocks, zero points)`, () => {
      const N = 3;
      const K = blockSize * 2 + blockSize / 2;
      const { nBlocks, kPadded } = matMulNBitsShape(K, N, blockSize);
      expect(nBlocks).toBe(3);
      const q: number[] = [];
      for (let n = 0; n < N; n++) for (let k = 0; k < kPadded; k++) q.push((n + k) % 16);
      const scales = new Float32Array(N * nBlocks).map((_, i) => (i % 2 ? -1 : 1) * (i + 1) * 0.125);
      const zps = [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
      ];
      const zeroPoints = new Uint8Array(N * 2);
      zps.forEach((z, n) => {
        zeroPoints[n * 2] = z[0] | (z[1] << 4);
        zeroPoints[n * 2 + 1] = z[2];
      });
      const w = dequantizeMatMulNBits({ K, N, blockSize, bits: 4, packed: pack(q), scales, zeroPoints });
      for (let n = 0; n < N; n++) {
        for (const k of [0, blockSize - 1, blockSize, 2 * blockSize - 1, 2 * blockSize, K - 1]) {
          const b = Math.floor(k / blockSize);
          expect(w[n * K + k]).toBe((((n + k) % 16) - zps[n][b]) * scales[n * nBlocks + b]);
        }
      }
    });
  }

  it('rejects inconsistent sizes with MODEL_BAD_WEIGHT naming the size', () => {
    const call = (over: Partial<Parameters<typeof dequantizeMatMulNBits>[0]>) => () =>
      dequantizeMatMulNBits({ K: 32, N: 2, blockSize: 32, bits: 4, packed: new Uint8Array(32), scales: new Float32Array(2), ...over });
    expect(call({})).not.toThrow();
    expect(call({ packed: new Uint8Array(31) })).toThrow(/B has 31 bytes/);
    expect(call({ scales: new Float32Array(3) })).toThrow(/scales has 3 values/);
    expect(call({ zeroPoints: new Uint8Array(1) })).toThrow(/zero_points has 1 bytes/);
    expect(call({ blockSize: 8, packed: new Uint8Array(32), scales: new Float32Array(8) })).toThrow(/block_size = 8/);
    try {
      call({ packed: new Uint8Array(1) })();
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('MODEL_BAD_WEIGHT');
    }
  });
});

describe('matMulNBitsReference', () => {
  it('computes A · Wᵀ (hand-computed, M = 2, N = 2, K = 3 with block 16)', () => {
    // Row 0: q = 9, 10, 6 → W = 1, 2, -2 (scale 1); row 1: q = 8, 0, 15 → W = 0, 4, -3.5 (scale -0.5).
    const q = [9, 10, 6, ...new Array<number>(13).fill(0), 8, 0, 15, ...new Array<number>(13).fill(0)];
    const params = { K: 3, N: 2, blockSize: 16, bits: 4 as const, packed: pack(q), scales: new Float32Array([1, -0.5]) };
    const A = new Float32Array([1, 2, 3, -1, 0, 0.5]);
    const y = matMulNBitsReference(A, 2, params);
    expect(Array.from(y)).toEqual([1 + 4 - 6, 0 + 8 - 10.5, -1 + 0 - 1, 0 + 0 - 1.75]);
    expect(() => matMulNBitsReference(A, 3, params)).toThrow(/A has 6 values/);
  });
});

describe('float32ToFloat16Bits', () => {
  it('round-trips fp16 values exactly and rounds to nearest even', () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const values = float16ToFloat32(bits);
    const back = float32ToFloat16Bits(values);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(values[i])) continue;
      expect(back[i]).toBe(i);
    }
    const v = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 1e-8, -(2 ** -25) * 1.5]);
    expect(Array.from(float32ToFloat16Bits(v))).toEqual([0x3c00, 0x3c02, 0x7c00, 0, 0x8001]);
  });
});

describe('quantizeActivationsQ8 (the dp4a GEMV\'s activation rounding)', () => {
  it('rounds each 32-element chunk to q · amax / 127, ties to even, an all-zero chunk to zero', () => {
    // Chunk 0: amax 127, so the step is 1 and the values round to integers, ties to even.
    const a = new Float32Array(96);
    a.set([127, -63.5, 0.5, 1.5, 2.5, -2.5, -3.5, 0.49, -126.6]);
    // Chunk 1: amax 127/64, step 1/64 (both exact): 63.5/64 → 64, 1.5/64 → 2, 0.5/64 → 0, −2.5/64 → −2.
    a.set([-127 / 64, 63.5 / 64, 1.5 / 64, 0.5 / 64, -2.5 / 64, 10.2 / 64], 32);
    const q = quantizeActivationsQ8(a, 32);
    expect(Array.from(q.subarray(0, 9))).toEqual([127, -64, 0, 2, 2, -2, -4, 0, -127]);
    expect(Array.from(q.subarray(32, 38)).map((v) => v * 64)).toEqual([-127, 64, 2, 0, -2, 10]);
    expect(Array.from(q.subarray(64))).toEqual(new Array<number>(32).fill(0));
  });

  it('rejects K not a multiple of 32', () => {
    expect(() => quantizeActivationsQ8(new Float32Array(48), 48)).toThrow(AppError);
  });
});
