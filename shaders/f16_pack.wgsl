// f32 → fp16 packing at load: one chunk of f32 values into a buffer of raw fp16 bits (two per u32
// word, the first in the low half: the layout the kernels' f16 scale and embedding reads expect).
//
// Bindings:
//   0 params  uniform { count, dstElem }: `count` values from src[0..count) become fp16 elements
//             dstElem .. dstElem + count of dst
//   1 src     storage read u32: the f32 values' bits
//   2 dst     storage read_write u32: fp16 pairs
//   3 range   storage read_write atomic<u32>: set to 1 when a value is not a finite number within
//             fp16's range (|x| > 65504, infinities, NaNs); the caller then keeps that data in f32
//
// Contract: each element is x rounded to the nearest fp16, ties to even, subnormals kept (not
// flushed), as float32ToFloat16Bits in dequantize.ts does: the rounding is done in integer
// arithmetic, not with pack2x16float, whose rounding and subnormal handling WGSL leaves to the
// implementation. One invocation per destination word; a word only partly inside the range (the
// first or last, when dstElem or dstElem + count is odd) keeps its other half, so chunks and
// tensors of any length can be packed back to back. Dispatches over one dst run in queue order.

override WG: u32 = 256u;

struct Params {
  count: u32,
  dstElem: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read_write> range: atomic<u32>;

/** fp16 bits of the f32 whose bits are `bits`, rounded to nearest even (valid up to |x| = 65504). */
fn toHalf(bits: u32) -> u32 {
  let sign = (bits >> 16u) & 0x8000u;
  let a = bits & 0x7fffffffu;
  if (a > 0x477fe000u) {
    // Beyond 65504, an infinity or a NaN: the data stays f32 (the caller reads `range`).
    atomicStore(&range, 1u);
    return sign | 0x7c00u;
  }
  if (a >= 0x38800000u) {
    // Normal: rebias the exponent (127 → 15) and round the 13 dropped bits to nearest even.
    return sign | ((a - 0x38000000u + 0xfffu + ((a >> 13u) & 1u)) >> 13u);
  }
  if (a >= 0x33000000u) {
    // Subnormal fp16 (2^-25 ≤ |x| < 2^-14): units of 2^-24, rounded to nearest even.
    let shift = 126u - (a >> 23u);
    let m = (a & 0x7fffffu) | 0x800000u;
    let q = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    return sign | (q + select(0u, 1u, rem > half || (rem == half && (q & 1u) == 1u)));
  }
  return sign;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  if (params.count == 0u) { return; }
  let first = params.dstElem / 2u;
  let last = (params.dstElem + params.count - 1u) / 2u;
  let w = first + (wid.y * nwg.x + wid.x) * WG + lid;
  if (w > last) { return; }
  let e0 = 2u * w;
  var lo: u32;
  var hi: u32;
  if (e0 >= params.dstElem) {
    lo = toHalf(src[e0 - params.dstElem]);
  } else {
    lo = dst[w] & 0xffffu;
  }
  if (e0 + 1u < params.dstElem + params.count) {
    hi = toHalf(src[e0 + 1u - params.dstElem]);
  } else {
    hi = dst[w] >> 16u;
  }
  dst[w] = lo | (hi << 16u);
}
