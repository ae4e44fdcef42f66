// ROPE_APPEND epilogue of the decode GEMVs (matmul_nbits.wgsl and matmul_nbits_direct.wgsl): the
// packed qkv GEMV of one decode token also does what kv_append.wgsl's mainPackedQ does, so that
// dispatch disappears from decode. matmul-nbits.ts appends this file, then rotary_table.wgsl
// (rotaryCosSin) and precision-wgsl.ts's `kvStoreSource` (KVK, KVV, storeK, storeV), only for the
// fused pipelines; the plain ones get the stubs `ropeRow(n) = n` and an empty `ropeAppend`
// instead, so they never declare group 1.
//
// Bindings (group 1 is its own bind group: one per LongRoPE rotary table, chosen at encode):
//   group 0, 6  step     uniform Step (seqLen = 1, pastLen): the token's position is pastLen
//   group 1, 0  rope     uniform { heads, kvHeads, headDim, rotaryDim, cacheLen, maxT, qDim, vStart }
//   group 1, 1  rotaryTable  storage read: the model's rotary table (rotary_table.wgsl, appended after
//                        this file); rows ≥ 1, only rows < cacheLen are read.
//   group 1, 2  kCache   storage read_write [kvHeads, maxT, headDim] cache elements: f32, or f16
//                        packed two per atomic u32 (rows of one word may be in two workgroups)
//   group 1, 3  vCache   the same layout: f32, or f16 packed two per u32 (the even row of a pair
//                        writes both, its partner's value being the next element)
//
// Why one interleaved table (rotary.ts) rather than separate cos and sin: the pipeline binds 10
// storage buffers per stage (group 0's seven, shared with the plain GEMVs, plus rotaryTable, kCache,
// vCache), and 10 is what Chromium's SwiftShader and WebGPU's lower limit classes offer; separate
// tables made it 11, and there decode fell back to the kv-append dispatch. kv_append.wgsl reads the
// same tables, so the model holds each pair once.
//
// Contract, with y = the GEMV's row 0 laid out [q (heads·headDim) | k (kvHeads·headDim) | v (same)]
// (qDim = heads·headDim, vStart = qDim + kvHeads·headDim = where v starts), pos = pastLen, and
// rot(x, d) the non-interleaved ("rotate half") rotary (pairs (d, d + rotaryDim/2) for
// d < rotaryDim/2, dims ≥ rotaryDim passed through, cache row min(pos, cacheLen − 1)):
//   output[q rows]                      = rot(q)        (f32; attention reads q from here)
//   kCache[g, pos mod maxT, d] = rot(k)[g, d] and vCache[g, pos mod maxT, d] = v[g, d], rounded to
//   the cache's element type (the other half of an f16 word is left as it is); the cache is a
//   ring of maxT rows, as attention reads it (attention_common.wgsl)
//   output[k and v rows]                  are not written (attention reads k and v from the caches)
// exactly as kv_append.wgsl's mainPackedQ after the plain GEMV (rotation in f32, one rounding on store).
//
// Why a row permutation: a rotary pair (d, d + rotaryDim/2) is rotaryDim/2 rows apart, but a
// workgroup owns RG·ROWS consecutive rows. So output row L of the GEMV computes weight row
// ropeRow(L), which interleaves each head's rotated dims: L = head base + 2i → d = i and
// L = head base + 2i + 1 → d = i + rotaryDim/2. A pair then sits at rows 2j, 2j + 1 of one
// workgroup (RG·ROWS and headDim even, checked in TypeScript), and after the reduction each row's
// thread reads its partner's total from workgroup memory (one barrier, in the body's `emit`).
// The permutation changes only which weight row a thread reads (a per-row integer map the
// compiler hoists out of the chunk loop), never the weights' layout, which the prefill GEMM shares.

struct RopeParams {
  heads: u32,
  kvHeads: u32,
  headDim: u32,
  rotaryDim: u32,
  cacheLen: u32,
  maxT: u32,
  qDim: u32,
  vStart: u32,
}

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.
@group(0) @binding(6) var<uniform> ropeStep: Step;
@group(1) @binding(0) var<uniform> rope: RopeParams;
@group(1) @binding(1) var<storage, read> rotaryTable: array<u32>;
@group(1) @binding(2) var<storage, read_write> kCache: array<KVK>;
@group(1) @binding(3) var<storage, read_write> vCache: array<KVV>;

// The weight row that output row n computes (see the header); v rows and dims ≥ rotaryDim keep theirs.
fn ropeRow(n: u32) -> u32 {
  if (n >= rope.vStart) { return n; }
  let e = n % rope.headDim;
  if (e >= rope.rotaryDim) { return n; }
  return n - e + (e >> 1u) + (e & 1u) * (rope.rotaryDim / 2u);
}

// Output row `row` has the total x; `partner` is the total of row row ^ 1 (its rotary partner
// when the row is a rotated q or k dim; for a v row, v element j ^ 1 of the same head).
fn ropeAppend(row: u32, x: f32, partner: f32) {
  let n = ropeRow(row);
  let D = rope.headDim;
  let pos = ropeStep.pastLen;
  let slot = pos % rope.maxT; // the cache row of pos (a ring: see the header)
  if (n >= rope.vStart) {
    let j = n - rope.vStart;
    storeV(((j / D) * rope.maxT + slot) * D + j % D, x, partner);
    return;
  }
  let e = n % D;
  var y = x;
  if (e < rope.rotaryDim) {
    let half = rope.rotaryDim / 2u;
    let at = min(pos, rope.cacheLen - 1u) * half + e % half;
    let cs = rotaryCosSin(at);
    let c = cs.x;
    let s = cs.y;
    // First half: x1·cos − x2·sin; second half: x2·cos + x1·sin (x1, x2 the pair).
    y = select(x * c + partner * s, x * c - partner * s, e < half);
  }
  if (n < rope.qDim) {
    output[n] = y;
    return;
  }
  let j = n - rope.qDim;
  storeK(((j / D) * rope.maxT + slot) * D + j % D, y);
}
