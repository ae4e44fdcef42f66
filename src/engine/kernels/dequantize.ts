/**
 * The TypeScript ground truth for com.microsoft MatMulNBits (4 bits): dequantisation and the
 * product Y = A · Wᵀ. Every MatMulNBits GPU kernel is tested against `matMulNBitsReference`.
 *
 * Layout (DESIGN.md §3):
 *   B     uint8 [N, nBlocks, blockSize/2]; byte j of a block holds element 2j in its low nibble
 *         and 2j+1 in its high nibble. nBlocks = ceil(K / blockSize); K is padded to whole blocks
 *         and the padding elements are ignored (whatever their nibbles say).
 *   scales     f32 [N * nBlocks] (fp16 files: convert first; may be negative)
 *   zeroPoints uint8 [N, ceil(nBlocks/2)], 4-bit, block 2b in the low nibble, 2b+1 in the high;
 *              absent means zero point 8.
 *   W[n, k] = (q[n, k] − zp[n, k / blockSize]) · scale[n, k / blockSize]
 *
 * Rule: this file is the definition of the format. Change it only together with the kernels and
 * with a test that pins the new behaviour.
 */
import { AppError } from '../errors';

export const SUPPORTED_BLOCK_SIZES: readonly number[] = [16, 32, 64, 128];

export interface MatMulNBitsParams {
  K: number;
  N: number;
  blockSize: number;
  bits: 4;
  /** uint8 [N, nBlocks, blockSize/2] */
  packed: Uint8Array;
  /** f32 [N * nBlocks] */
  scales: Float32Array;
  /** uint8 [N, ceil(nBlocks/2)], packed 4-bit, low nibble first */
  zeroPoints?: Uint8Array;
}

/** Sizes derived from K, N and the block size; the GPU kernels use the same figures. */
export function matMulNBitsShape(K: number, N: number, blockSize: number): {
  nBlocks: number;
  /** K padded to whole blocks */
  kPadded: number;
  /** bytes of B per output row (nBlocks · blockSize/2) */
  rowBytes: number;
  packedBytes: number;
  scaleCount: number;
  zeroPointBytes: number;
} {
  const nBlocks = Math.ceil(K / blockSize);
  const rowBytes = (nBlocks * blockSize) / 2;
  return {
    nBlocks,
    kPadded: nBlocks * blockSize,
    rowBytes,
    packedBytes: N * rowBytes,
    scaleCount: N * nBlocks,
    zeroPointBytes: N * Math.ceil(nBlocks / 2),
  };
}

function bad(message: string): never {
  throw new AppError('MODEL_BAD_WEIGHT', `MatMulNBits: ${message}`);
}

/** Throws MODEL_BAD_WEIGHT naming the first inconsistent size. */
export function validateMatMulNBits(p: Omit<MatMulNBitsParams, 'packed' | 'scales' | 'zeroPoints'> & {
  packedBytes: number;
  scaleCount: number;
  zeroPointBytes?: number;
}): void {
  if (p.bits !== 4) bad(`bits = ${p.bits} is not supported (only 4).`);
  if (!Number.isSafeInteger(p.K) || p.K <= 0) bad(`K = ${p.K} must be a positive integer.`);
  if (!Number.isSafeInteger(p.N) || p.N <= 0) bad(`N = ${p.N} must be a positive integer.`);
  if (!SUPPORTED_BLOCK_SIZES.includes(p.blockSize)) {
    bad(`block_size = ${p.blockSize} is not supported (use ${SUPPORTED_BLOCK_SIZES.join(', ')}).`);
  }
  const s = matMulNBitsShape(p.K, p.N, p.blockSize);
  if (p.packedBytes !== s.packedBytes) {
    bad(`B has ${p.packedBytes} bytes; K=${p.K}, N=${p.N}, block_size=${p.blockSize} need N·nBlocks·block/2 = ${s.packedBytes}.`);
  }
  if (p.scaleCount !== s.scaleCount) bad(`scales has ${p.scaleCount} values; N·nBlocks = ${s.scaleCount}.`);
  if (p.zeroPointBytes !== undefined && p.zeroPointBytes !== s.zeroPointBytes) {
    bad(`zero_points has ${p.zeroPointBytes} bytes; N·ceil(nBlocks/2) = ${s.zeroPointBytes}.`);
  }
}

function validateParams(p: MatMulNBitsParams): void {
  validateMatMulNBits({
    ...p,
    packedBytes: p.packed.byteLength,
    scaleCount: p.scales.length,
    zeroPointBytes: p.zeroPoints?.byteLength,
  });
}

/** Row n of W into out (K,); the caller has validated p. */
function dequantizeRow(p: MatMulNBitsParams, n: number, out: Float32Array): void {
  const { K, blockSize, packed, scales, zeroPoints } = p;
  const { nBlocks, rowBytes } = matMulNBitsShape(K, p.N, blockSize);
  const zpRowBytes = Math.ceil(nBlocks / 2);
  for (let k = 0; k < K; k++) {
    const b = Math.floor(k / blockSize);
    const byte = packed[n * rowBytes + (k >> 1)];
    const q = k & 1 ? byte >> 4 : byte & 0x0f;
    let zp = 8;
    if (zeroPoints) {
      const zByte = zeroPoints[n * zpRowBytes + (b >> 1)];
      zp = b & 1 ? zByte >> 4 : zByte & 0x0f;
    }
    out[k] = (q - zp) * scales[n * nBlocks + b];
  }
}

/** W (N, K) f32. */
export function dequantizeMatMulNBits(p: MatMulNBitsParams): Float32Array {
  validateParams(p);
  const w = new Float32Array(p.N * p.K);
  for (let n = 0; n < p.N; n++) dequantizeRow(p, n, w.subarray(n * p.K, (n + 1) * p.K));
  return w;
}

/**
 * Y (M, N) = A (M, K) · Wᵀ, accumulated in f64 and rounded once to f32. W is dequantised one row
 * at a time, so the lm_head shape (32064 × 3072) needs no 394 MB temporary.
 */
export function matMulNBitsReference(A: Float32Array, M: number, p: MatMulNBitsParams): Float32Array {
  validateParams(p);
  if (A.length !== M * p.K) bad(`A has ${A.length} values; M·K = ${M}·${p.K} = ${M * p.K}.`);
  const { K, N } = p;
  const w = new Float32Array(K);
  const y = new Float32Array(M * N);
  for (let n = 0; n < N; n++) {
    dequantizeRow(p, n, w);
    for (let m = 0; m < M; m++) {
      let acc = 0;
      const base = m * K;
      for (let k = 0; k < K; k++) acc += A[base + k] * w[k];
      y[m * N + n] = acc;
    }
  }
  return y;
}

/**
 * The activation rounding of the dp4a GEMV (shaders/matmul_nbits_dp4a.wgsl), row by row: each
 * 32-element chunk c of a row (K a multiple of 32) becomes q[k] · s_c with s_c = amax_c / 127,
 * amax_c = max |a[k]| over the chunk and q[k] = round(a[k] · 127 / amax_c) to the nearest integer,
 * ties to even (an all-zero chunk stays zero). Returns the dequantised values, â, so that
 * `matMulNBitsReference(â, …)` is what that kernel computes up to f32 rounding. Its two divisions
 * are exact-rounded here and within 2.5 ulp on a GPU, so a GPU may round an element lying within
 * about 1e-5 of a half-integer the other way: a test allows for a few such flips, each moving
 * an output by at most s_c · 15 · |block scale|.
 */
export function quantizeActivationsQ8(A: Float32Array, K: number): Float32Array {
  if (K % 32 !== 0 || A.length % K !== 0) bad(`quantizeActivationsQ8: K = ${K} must be a multiple of 32 dividing the ${A.length} values.`);
  const out = new Float32Array(A.length);
  for (let c = 0; c < A.length; c += 32) {
    let amax = 0;
    for (let k = c; k < c + 32; k++) amax = Math.max(amax, Math.abs(A[k]));
    if (amax === 0) continue;
    const inv = Math.fround(127 / amax);
    const scale = Math.fround(amax / 127);
    for (let k = c; k < c + 32; k++) out[k] = roundHalfEven(Math.fround(A[k] * inv)) * scale;
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** f32 → IEEE fp16 bits, round to nearest even (for fp16 scales and tables in tests and uploads). */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = sign | h;
  }
  return out;
}
