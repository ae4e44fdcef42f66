/**
 * Round-to-nearest 4-bit quantiser and dequantiser for com.microsoft MatMulNBits weights.
 *
 * Layout (DESIGN.md §3): B is uint8 [N, nBlocks, blockSize/2], byte j of a block holds element 2j
 * in its low nibble and 2j+1 in its high nibble; scales has N·nBlocks values; zero points are
 * packed 4-bit [N, ceil(nBlocks/2)], low nibble first, and default to 8 when absent.
 * W[n,k] = (q[n,k] − zp[n, k/bs]) · scale[n, k/bs]. K that is not a multiple of the block is
 * padded with zeros. Rule: the dequantiser here is the ground truth the engine is tested against;
 * change the format only together with DESIGN.md.
 */

import { fromHalfBits, toHalfBits } from './random';

export interface QuantizeOptions {
  blockSize: number;
  /** Asymmetric quantisation with explicit packed zero points (otherwise symmetric, zp = 8). */
  zeroPoints: boolean;
  /** Round scales to fp16 before quantising, as they are stored in q4f16 files. */
  halfScales: boolean;
}

export interface QuantizedMatrix {
  n: number;
  k: number;
  blockSize: number;
  nBlocks: number;
  /** (N, nBlocks, blockSize/2) packed nibbles. */
  b: Uint8Array;
  /** (N · nBlocks) scales, already rounded to fp16 when `halfScales`. May be negative. */
  scales: Float32Array;
  /** (N, ceil(nBlocks/2)) packed 4-bit zero points, or undefined for zp = 8. */
  zeroPoints?: Uint8Array;
}

/**
 * Quantises an (N, K) matrix given row by row: `fillRow(n, row)` writes row n (K values) into
 * `row`. Only one fp32 row is held at a time.
 */
export function quantizeMatrix(
  n: number,
  k: number,
  opts: QuantizeOptions,
  fillRow: (rowIndex: number, row: Float32Array) => void,
): QuantizedMatrix {
  const bs = opts.blockSize;
  if (![16, 32, 64, 128].includes(bs)) throw new Error(`block size ${bs} is not 16, 32, 64 or 128`);
  const nBlocks = Math.ceil(k / bs);
  const rowBytes = nBlocks * (bs / 2);
  const zpRowBytes = Math.ceil(nBlocks / 2);
  const b = new Uint8Array(n * rowBytes);
  const scales = new Float32Array(n * nBlocks);
  const zeroPoints = opts.zeroPoints ? new Uint8Array(n * zpRowBytes) : undefined;
  const row = new Float32Array(nBlocks * bs); // zero padding past K stays zero
  const round = (s: number): number => (opts.halfScales ? fromHalfBits(toHalfBits(s)) : Math.fround(s));

  for (let r = 0; r < n; r++) {
    fillRow(r, row.subarray(0, k));
    for (let blk = 0; blk < nBlocks; blk++) {
      const base = blk * bs;
      let scale: number;
      let zp: number;
      if (zeroPoints) {
        let lo = 0;
        let hi = 0;
        for (let j = 0; j < bs; j++) {
          const v = row[base + j];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        scale = round((hi - lo) / 15);
        zp = scale === 0 ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
      } else {
        // Signed scale: the largest-magnitude value maps exactly to q = 0, so scales are negative
        // whenever that value is positive (as in onnxruntime's own RTN quantiser).
        let peak = 0;
        for (let j = 0; j < bs; j++) {
          const v = row[base + j];
          if (Math.abs(v) > Math.abs(peak)) peak = v;
        }
        scale = round(peak / -8);
        zp = 8;
      }
      const inv = scale === 0 ? 0 : 1 / scale;
      const out = r * rowBytes + blk * (bs / 2);
      for (let j = 0; j < bs / 2; j++) {
        let q0 = Math.round(row[base + 2 * j] * inv) + zp;
        let q1 = Math.round(row[base + 2 * j + 1] * inv) + zp;
        q0 = q0 < 0 ? 0 : q0 > 15 ? 15 : q0;
        q1 = q1 < 0 ? 0 : q1 > 15 ? 15 : q1;
        b[out + j] = q0 | (q1 << 4);
      }
      scales[r * nBlocks + blk] = scale;
      if (zeroPoints) zeroPoints[r * zpRowBytes + (blk >> 1)] |= blk & 1 ? zp << 4 : zp;
    }
  }
  return { n, k, blockSize: bs, nBlocks, b, scales, zeroPoints };
}

/** Dequantises to an (N, K) fp32 matrix: W[n,k] = (q − zp) · scale. */
export function dequantizeMatrix(m: QuantizedMatrix): Float32Array {
  const { n, k, blockSize: bs, nBlocks, b, scales, zeroPoints } = m;
  const out = new Float32Array(n * k);
  const rowBytes = nBlocks * (bs / 2);
  const zpRowBytes = Math.ceil(nBlocks / 2);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const blk = Math.floor(c / bs);
      const byte = b[r * rowBytes + blk * (bs / 2) + ((c % bs) >> 1)];
      const qv = c & 1 ? byte >> 4 : byte & 15;
      let zp = 8;
      if (zeroPoints) {
        const zb = zeroPoints[r * zpRowBytes + (blk >> 1)];
        zp = blk & 1 ? zb >> 4 : zb & 15;
      }
      out[r * k + c] = (qv - zp) * scales[r * nBlocks + blk];
    }
  }
  return out;
}
