// int4 dequantisation shared by the MatMulNBits kernels: matmul-nbits.ts prepends this file to all
// five (the three decode GEMVs and the two GEMMs). It declares the uniform they all share and the
// two bindings it reads (scales, zero points; matmul_nbits.wgsl's header lists every binding);
// each kernel declares the SCALES_F16 and HAS_ZP overrides and its other bindings.
//
// Nibbles become f32 without int → float conversions. Why: a u32 → f32 conversion issues at a quarter of the FMA rate or less
// on most GPUs (16 per clock per SM on NVIDIA), one per weight element, and it bounded the decode
// GEMVs on an H100 well below memory bandwidth.
//
// The trick: a nibble q at bit p ≤ 19 of a word, masked in place and ORed into the mantissa of
// 2^23 (bits 0x4b000000), reads as the float 2^23 + q·2^p, exactly; subtracting 2^23 + zp·2^p
// leaves (q − zp)·2^p, exactly (every value is an integer below 2^24). The GEMVs take the four
// nibbles of each 16-bit half-word at p = 0, 4, 8, 12 in one vec4 and pre-scale the activations by
// 2^−p (NIBBLE_SCALE; powers of two, exact), so they dot straight against four consecutive
// activations. Rule: the subtraction must happen before any product (never fold the 2^23 into a
// sum: 2^23 · a swamps f32).

struct Params {
  K: u32,
  N: u32,
  nBlocks: u32,
  kPadded: u32,
  zpRowBytes: u32,
  maxM: u32,
  gridX: u32,
  inStride: u32, // elements between input rows (K, or the gate stride when SILU)
  inOffset: u32, // element offset of row 0 in input
  upStride: u32,
  upOffset: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> zeroPoints: array<u32>;

const NIBBLE_MASKS = vec4<u32>(0xfu, 0xf0u, 0xf00u, 0xf000u);
const NIBBLE_SCALE = vec4<f32>(1.0, 1.0 / 16.0, 1.0 / 256.0, 1.0 / 4096.0);
const MAGIC_BITS = 0x4b000000u; // 2^23

fn nibbleBias(zp: f32) -> vec4<f32> {
  return vec4<f32>(8388608.0) + zp * vec4<f32>(1.0, 16.0, 256.0, 4096.0);
}

// Σ over one packed word's 8 elements of (q − zp) · a, where lo = a[0..3] · NIBBLE_SCALE and
// hi = a[4..7] · NIBBLE_SCALE (element order: byte j holds elements 2j (low nibble) and 2j + 1).
fn dotWord(word: u32, lo: vec4<f32>, hi: vec4<f32>, bias: vec4<f32>) -> f32 {
  let qLo = bitcast<vec4<f32>>((vec4<u32>(word) & NIBBLE_MASKS) | vec4<u32>(MAGIC_BITS)) - bias;
  let qHi = bitcast<vec4<f32>>((vec4<u32>(word >> 16u) & NIBBLE_MASKS) | vec4<u32>(MAGIC_BITS)) - bias;
  return dot(qLo, lo) + dot(qHi, hi);
}

// Element e (0..7) of a packed word, dequantised without its scale: q − zp, exactly.
fn nibble(word: u32, e: u32, zp: f32) -> f32 {
  return bitcast<f32>(((word >> (4u * e)) & 0xfu) | MAGIC_BITS) - (8388608.0 + zp);
}

// Scale of block i (row-major [N, nBlocks]): f32 bits, or one half of an fp16 pair.
fn scaleAt(i: u32) -> f32 {
  if (SCALES_F16) {
    let pair = unpack2x16float(scales[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(scales[i]);
}

// Zero point of row n, block b: 4-bit, or 8 when the model has none.
fn zeroPointAt(n: u32, b: u32) -> f32 {
  if (!HAS_ZP) { return 8.0; }
  let byteIndex = n * params.zpRowBytes + (b >> 1u);
  let byte = (zeroPoints[byteIndex >> 2u] >> ((byteIndex & 3u) * 8u)) & 0xffu;
  return f32((byte >> ((b & 1u) * 4u)) & 0xfu);
}
