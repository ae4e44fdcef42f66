/**
 * Rotary position embedding (non-interleaved, "rotate half"): the reference, the cos/sin caches'
 * closed form, and the one GPU form of a cos/sin pair, the interleaved rotary table.
 *
 * No kernel lives here: the rotation is fused into the kernels that produce q and k.
 * kv-append.ts rotates q in place and k on its way into the KV cache (prefill), and the decode
 * qkv GEMV does both in its epilogue (matmul-nbits.ts `ropeAppend`). Both read each cos/sin pair
 * of the file as one table built by `interleaveRotaryTable`, through shaders/rotary_table.wgsl, so
 * the model holds each pair on the GPU once.
 *
 * Positions are pastLen + t from the shared step uniform. LongRoPE (Phi-3 128K) has two cos/sin
 * cache pairs; the kernels build one bind group per table and `encode` picks one with
 * `cacheIndex`. The caller decides it from the total length exactly as onnxruntime's `If` does
 * (long caches when the attention-mask length exceeds the original 4096 positions).
 */
import { AppError } from '../errors';

export interface RotaryLayout {
  seqLen: number;
  pastLen: number;
  heads: number;
  headDim: number;
  /** Rotated leading dimensions of each head (= headDim for Phi-3). */
  rotaryDim: number;
  /** Elements per token row; [heads, headDim] starts at `offset` inside each row. */
  rowStride: number;
  offset: number;
}

/** Reference: returns a rotated copy of `x` (rows of `rowStride`); cos/sin are [maxPos, rotaryDim/2]. */
export function rotaryReference(x: Float32Array, cos: Float32Array, sin: Float32Array, l: RotaryLayout): Float32Array {
  const out = x.slice();
  const half = l.rotaryDim / 2;
  for (let t = 0; t < l.seqLen; t++) {
    const pos = l.pastLen + t;
    for (let h = 0; h < l.heads; h++) {
      const base = t * l.rowStride + l.offset + h * l.headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[pos * half + i];
        const s = sin[pos * half + i];
        const x1 = x[base + i];
        const x2 = x[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

/**
 * cos/sin caches [maxPos, rotaryDim/2]: angle = pos · inv_freq[i] / factors[i] with
 * inv_freq[i] = theta^(-2i/rotaryDim), values multiplied by `scale`. Phi-3 128K (LongRoPE) builds
 * its short and long pairs from short_factor / long_factor, both with
 * scale = sqrt(1 + ln(131072/4096) / ln(4096)) ≈ 1.190238.
 */
export function buildRotaryCache(
  maxPos: number,
  rotaryDim: number,
  theta: number,
  factors?: readonly number[],
  scale = 1,
): { cos: Float32Array; sin: Float32Array } {
  const half = rotaryDim / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / (Math.pow(theta, (2 * i) / rotaryDim) * (factors ? factors[i] : 1));
    for (let p = 0; p < maxPos; p++) {
      const a = p * invFreq;
      cos[p * half + i] = Math.cos(a) * scale;
      sin[p * half + i] = Math.sin(a) * scale;
    }
  }
  return { cos, sin };
}

/**
 * The GPU form of a model's cos/sin caches: one table per pair (one pair, or LongRoPE's
 * [short, long]), each built by `interleaveRotaryTable`: [rows, rotaryDim/2, 2] of f32 values, or
 * raw fp16 bits (`dtype`; unpacked in the shader, no shader-f16 needed). Positions are clamped to
 * maxPositions − 1 (the rows of the longest table).
 */
export interface RotaryTables {
  /** Rotated leading dimensions of each head (= headDim for Phi-3); even. */
  rotaryDim: number;
  maxPositions: number;
  dtype: 'f32' | 'f16';
  tables: readonly [GPUBuffer] | readonly [GPUBuffer, GPUBuffer];
}

/**
 * The rotary table of one cos/sin pair: element i of `cos` then element i of `sin`, for every i
 * (so [rows, rotaryDim/2] tables become [rows, rotaryDim/2, 2]). Both are the raw bytes of
 * equal-length tables of `dtype` (f32, or fp16 bits). Element by element, so a caller may stream
 * it: equal, element-aligned byte ranges of cos and sin give that range of the table.
 *
 * Why interleaved: one storage binding instead of two keeps the fused decode GEMV within 10
 * storage buffers per stage (matmul_nbits_rope.wgsl); side by side (rather than cos rows then sin
 * rows) needs no offset of the sin part (LongRoPE's pairs may differ in rows), never splits an fp16
 * pair across words whatever rotaryDim/2 is, and fetches cos and sin in one load.
 */
export function interleaveRotaryTable(cos: Uint8Array, sin: Uint8Array, dtype: 'f32' | 'f16'): Uint8Array {
  const size = dtype === 'f16' ? 2 : 4;
  if (cos.byteLength !== sin.byteLength || cos.byteLength % size !== 0) {
    throw new AppError('BAD_ARGUMENT', `interleaveRotaryTable: cos (${cos.byteLength} bytes) and sin (${sin.byteLength} bytes) must be equal whole numbers of ${dtype} elements.`);
  }
  const out = new Uint8Array(2 * cos.byteLength);
  for (let at = 0, o = 0; at < cos.byteLength; at += size, o += 2 * size) {
    out.set(cos.subarray(at, at + size), o);
    out.set(sin.subarray(at, at + size), o + size);
  }
  return out;
}
