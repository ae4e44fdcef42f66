/**
 * Test-only helpers shared by the MatMulNBits GPU tests: deterministic int4 weights and the
 * relative-error measure their tolerances are stated in.
 */
import { float32ToFloat16Bits, matMulNBitsShape, type MatMulNBitsParams } from './dequantize';
import { float16ToFloat32 } from '../onnx/tensor-data';
import { seededRandom } from '../gpu/testing';

export interface WeightCase {
  K: number;
  N: number;
  blockSize: number;
  zp: boolean;
  f16: boolean;
}

/** Deterministic random weights shaped like a real int4 checkpoint (|scale| ~ 0.005..0.03, some negative). */
export function makeWeights(c: WeightCase, seed: number): { params: MatMulNBitsParams; scaleBytes: Uint8Array } {
  const s = matMulNBitsShape(c.K, c.N, c.blockSize);
  const packed = new Uint8Array(s.packedBytes);
  const r = seededRandom(s.packedBytes, seed, 1);
  for (let i = 0; i < packed.length; i++) packed[i] = Math.floor((r[i] + 1) * 128) & 0xff;
  let scales: Float32Array = seededRandom(s.scaleCount, seed + 1, 0.03).map((v) => (Math.abs(v) < 0.005 ? v + Math.sign(v || 1) * 0.005 : v));
  let scaleBytes: Uint8Array;
  if (c.f16) {
    const bits = float32ToFloat16Bits(scales);
    scales = float16ToFloat32(bits);
    scaleBytes = new Uint8Array(bits.buffer);
  } else {
    scaleBytes = new Uint8Array(scales.buffer);
  }
  let zeroPoints: Uint8Array | undefined;
  if (c.zp) {
    zeroPoints = new Uint8Array(s.zeroPointBytes);
    const z = seededRandom(s.zeroPointBytes, seed + 2, 1);
    for (let i = 0; i < zeroPoints.length; i++) zeroPoints[i] = Math.floor((z[i] + 1) * 128) & 0xff;
  }
  return { params: { K: c.K, N: c.N, blockSize: c.blockSize, bits: 4, packed, scales, zeroPoints }, scaleBytes };
}

export function worstRelative(got: Float32Array, want: Float32Array): { rel: number; abs: number } {
  let rel = 0;
  let abs = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const q = d / (1 + Math.abs(want[i]));
    if (!(q <= rel)) rel = Number.isNaN(q) ? Infinity : q;
    if (!(d <= abs)) abs = Number.isNaN(d) ? Infinity : d;
  }
  return { rel, abs };
}

/**
 * What the dp4a GEMV may differ by from `quantizeActivationsQ8`'s rounding: a GPU's division is
 * within 2.5 ulp and its exp (SILU) and norm order differ by a few more, so an element whose
 * a · 127 / amax lies within 2e-6 (relative) of a half-integer may round the other way. Each such
 * element moves an output by at most its chunk's step (amax / 127) · 15 · the largest |block
 * scale|; elements farther from a tie must round as the reference does. Usually none is that close.
 */
export function q8Allowance(x: Float32Array, scales: Float32Array): number {
  let smax = 0;
  for (const v of scales) smax = Math.max(smax, Math.abs(v));
  let allowance = 0;
  for (let c = 0; c < x.length; c += 32) {
    let amax = 0;
    for (let k = c; k < c + 32; k++) amax = Math.max(amax, Math.abs(x[k]));
    for (let k = c; k < c + 32 && amax > 0; k++) {
      const t = (Math.abs(x[k]) * 127) / amax;
      if (Math.abs(t - Math.floor(t) - 0.5) <= 2e-6 * t + 1e-7) allowance += (amax / 127) * 15 * smax;
    }
  }
  return allowance;
}
